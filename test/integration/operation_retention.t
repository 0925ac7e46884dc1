#!/usr/bin/env bash
# operation_retention.t: the worker deletes finished operations older than
# tenant_airbyte.operation_retention_days, in batches, and nothing else:
# not an unfinished one, not a failed create that no later operation has
# settled (the record that a workspace may exist), not one a waiting call
# is still answered from; 0 keeps everything.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 10
engine_setup
forget_tenants 'ret-%'
ta_standin POST /_control/reset >/dev/null

# age: an operation row of kind/status/step for tenant, finished days ago
age()
{
	q "INSERT INTO tenant_airbyte.operations (kind, tenant_id, status, step, attempts, next_attempt_at, finished_at)
	   VALUES ('$2', '$1', '$3', '$4', 1, '2100-01-01', now() - interval '$5 days')" >/dev/null
}
left()
{
	q "SELECT string_agg(tenant_id || ':' || status, ',' ORDER BY id) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'ret-%'"
}

# 0 keeps everything.  A reload makes the worker apply its retention
# settings at its next cycle, which the provision below runs for sure.
set_setting tenant_airbyte.operation_retention_days 0
sleep 2
age ret-keep-0 provision done create 400
q "SELECT pg_reload_conf()" >/dev/null
sleep 2
q "SELECT tenant_airbyte.provision_tenant('ret-cycle-0', 'Retention cycle')" >/dev/null
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'ret-keep-0'")" 1 \
	"operation_retention_days = 0 keeps a finished operation however old"

age ret-old-done provision done create 40
age ret-recent-done provision done create 5
age ret-old-pending provision pending '' 40
age ret-old-failed-create provision failed create 40
age ret-settled provision dead create 50
age ret-settled provision done create 45
age ret-old-failed-decide provision failed decide 40
q "INSERT INTO tenant_airbyte.operations (kind, tenant_id, status, step, attempts, finished_at)
   SELECT 'provision', 'ret-batch-' || g, 'done', 'create', 1, now() - interval '60 days'
     FROM generate_series(1, 1200) g" >/dev/null

set_setting tenant_airbyte.operation_retention_days 30
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'ret-batch-%') = 0" 120)" t \
	"1,200 done operations older than the setting are all deleted, batch after batch"
tap_is "$(wait_until "NOT EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id IN ('ret-old-done', 'ret-keep-0'))" 60)" t \
	"a done operation older than operation_retention_days is deleted"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'ret-recent-done'")" 1 \
	"a done operation younger than the setting is kept"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'ret-old-pending'")" 1 \
	"an unfinished (pending) operation is never deleted"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'ret-old-failed-create'")" 1 \
	"a failed provision that stopped at its create is kept: the workspace may exist, and the next provision reconciles from it"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'ret-settled'")" 0 \
	"... but once a later provision of the tenant is done, both go"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'ret-old-failed-decide'")" 0 \
	"a failed operation that never reached a create step is deleted like a done one"

# a call that waits while retention runs is answered, and its row stays
ta_standin POST /_control/reset '{"latency_ms": 2000}' >/dev/null
psql_bg "$TA_WORKDIR/ret_wait.out" ret-wait "SELECT tenant_airbyte.provision_tenant('ret-waiting', 'Retention waiting') ->> 'status'"
wait_requests 1 "POST /workspaces" "Retention waiting" 60 >/dev/null
q "UPDATE tenant_airbyte.operations SET created_at = now() - interval '90 days' WHERE tenant_id = 'ret-waiting'" >/dev/null
set_setting tenant_airbyte.operation_retention_days 1
wait "$BG_PID"
tap_is "$(cat "$TA_WORKDIR/ret_wait.out")" provisioned \
	"a provision_tenant() waiting while retention runs gets its outcome"
tap_is "$(q "SELECT status FROM tenant_airbyte.operations WHERE tenant_id = 'ret-waiting'")" done \
	"... and its operation is kept (finished just now)"

reset_setting tenant_airbyte.operation_retention_days
forget_tenants 'ret-%'
ta_standin POST /_control/reset >/dev/null
exit $((TAP_FAILED > 0))

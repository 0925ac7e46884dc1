#!/usr/bin/env bash
# changed_in_flight.t: only the worker writes an operation in flight.  When
# someone does anyway (a superuser changes the lease of one while its create
# is at Airbyte), the outcomes of the cycle it finishes in cannot all be
# written.  The worker must then give that cycle up whole (the workspace
# rows its steps wrote included), say so in the server log, and recover by
# itself well before the leases run out (tenant_airbyte.lease_ms, 120 s):
# every tenant of that cycle ends with exactly one workspace in Airbyte and
# one row here, adopted by name, nothing dead.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 6
engine_setup
cleanup()
{
	ta_standin DELETE /_control/faults >/dev/null
	forget_tenants 'chg-%'
}
trap cleanup EXIT
forget_tenants 'chg-%'
ta_standin DELETE /_control/faults >/dev/null
ta_standin POST /_control/reset_counters >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "ms": 2000, "name_prefix": "Tenant chg "}' >/dev/null
log_offset=$(($(stat -c %s "$TA_PGLOG") + 1))
pid_before=$(worker_pid)

enqueue_created chg 4
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'chg-%' AND status = 'in_flight' AND step = 'create') = 4" 30)" t \
	"four creates are at Airbyte"
q "UPDATE tenant_airbyte.operations SET lease_id = gen_random_uuid() WHERE tenant_id = 'chg-1'" >/dev/null

tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'chg-%' AND status = 'done') = 4" 60)" t \
	"every delivery ends done, long before the leases would have run out"
tap_is "$(exactly_once chg 4 "$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Tenant chg ")")" ok \
	"each tenant has exactly one workspace in Airbyte and one row here"
tap_is "$(created_count "Tenant chg ")" 4 "no create was sent twice: the recovery adopted what was made, by name"
tail -c +"$log_offset" "$TA_PGLOG" | grep -qE 'operation outcomes? (was|were) decided but only'
tap_ok $? "the server log says why the cycle was given up"
tap_is "$(worker_pid)" "$pid_before" "the worker recovered without restarting"

exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# outcomes_recorded_together.t: the worker writes the outcomes of the
# requests that finished together with one statement per cycle, and the
# steps the operations it starts together enter with another; each
# operation and each delivery must still get its own.  Twelve signups go
# out at once and come back together (the stand-in holds every request
# 1 s): six are created, three are refused (400: the operation fails, the
# delivery is dead), three get a 500 first (retried, then created).  Every
# outcome must land on its own operation and delivery: the right status,
# attempts, HTTP status, error and result, the workspace recorded for the
# right tenant, the step and name it sent, and no claim left behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 9
engine_setup
cleanup()
{
	ta_standin DELETE /_control/faults >/dev/null
	ta_standin POST /_control/config '{"latency_ms": 0}' >/dev/null
	forget_tenants 'mix-%'
}
trap cleanup EXIT
forget_tenants 'mix-%'
ta_standin DELETE /_control/faults >/dev/null
ta_standin POST /_control/config '{"latency_ms": 1000}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "400", "name_prefix": "Mix Refused"}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "500", "count": 3, "name_prefix": "Mix Again"}' >/dev/null

q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
   SELECT 'tenant.created', 'mix-' || k || '-' || g, 'Mix ' || initcap(k) || ' ' || g
     FROM (VALUES ('ok', 6), ('refused', 3), ('again', 3)) AS v(k, n), generate_series(1, v.n) AS g" >/dev/null

tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'mix-%' AND status IN ('done', 'dead')) = 12" 90)" t \
	"all twelve deliveries end"
tap_is "$(q "SELECT string_agg(k || ':' || s || ':' || n, ' ' ORDER BY k, s)
	FROM (SELECT split_part(i.tenant_id, '-', 2) AS k, i.status AS s, count(*) AS n
	        FROM tenant_airbyte.webhook_inbox AS i WHERE i.tenant_id LIKE 'mix-%' GROUP BY 1, 2) AS c")" \
	"again:done:3 ok:done:6 refused:dead:3" \
	"the created ones are done, the refused ones dead, the retried ones done"
tap_is "$(q "SELECT string_agg(k || ':' || s || ':' || a || ':' || coalesce(h::text, '-'), ' ' ORDER BY k)
	FROM (SELECT DISTINCT split_part(o.tenant_id, '-', 2) AS k, o.status AS s, o.attempts AS a, o.last_http_status AS h
	        FROM tenant_airbyte.operations AS o WHERE o.tenant_id LIKE 'mix-%') AS c")" \
	"again:done:2:200 ok:done:1:200 refused:failed:1:400" \
	"each operation has its own status, attempts and HTTP status"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations AS o
	JOIN tenant_airbyte.tenant_airbyte_workspaces AS w ON w.tenant_id = o.tenant_id
	WHERE o.tenant_id LIKE 'mix-%' AND o.status = 'done'
	  AND o.outcome->>'tenant_id' = o.tenant_id
	  AND o.outcome->>'workspace_id' = w.airbyte_workspace_id::text
	  AND w.airbyte_workspace_name = 'Mix ' || initcap(split_part(o.tenant_id, '-', 2)) || ' ' || split_part(o.tenant_id, '-', 3) || ' - ' || left(o.tenant_id, 8)")" \
	9 "each created tenant's outcome names its own workspace, recorded for that tenant"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox AS i
	JOIN tenant_airbyte.operations AS o ON o.id = i.operation_id
	WHERE i.tenant_id LIKE 'mix-%' AND i.status = 'done' AND i.result = o.outcome
	  AND i.attempts = o.attempts AND i.last_http_status = o.last_http_status")" \
	9 "each done delivery shows its own operation's result, attempts and HTTP status"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox AS i
	JOIN tenant_airbyte.operations AS o ON o.id = i.operation_id
	WHERE i.tenant_id LIKE 'mix-refused-%' AND o.last_error LIKE '%400%' AND i.last_error = o.last_error
	  AND o.outcome->>'message' IS NOT NULL
	  AND NOT EXISTS (SELECT FROM tenant_airbyte.tenant_airbyte_workspaces AS w WHERE w.tenant_id = o.tenant_id)")" \
	3 "each refused one keeps Airbyte's error, on its operation and its delivery, and no workspace"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations AS o
	JOIN tenant_airbyte.webhook_inbox AS i ON i.operation_id = o.id
	WHERE o.tenant_id LIKE 'mix-%' AND o.lease_id IS NULL AND o.lease_expires_at IS NULL
	  AND o.finished_at IS NOT NULL AND i.lease_id IS NULL AND i.finished_at = o.finished_at")" \
	12 "no claim is left behind, and each delivery finished when its operation did"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations AS o
	WHERE o.tenant_id LIKE 'mix-%' AND o.step = 'create'
	  AND o.intended_name = 'Mix ' || initcap(split_part(o.tenant_id, '-', 2)) || ' ' || split_part(o.tenant_id, '-', 3) || ' - ' || left(o.tenant_id, 8)")" \
	12 "each operation recorded its own step and the name it sent, the refused ones too"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'mix-%'")" 12 \
	"one operation per delivery"
# What the worker did, for the reader: how many cycles wrote the twelve
# first outcomes (finished_at is the time of the cycle's transaction).
echo "# cycles that wrote a final outcome: $(q "SELECT count(DISTINCT finished_at) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'mix-%'")"

exit $((TAP_FAILED > 0))

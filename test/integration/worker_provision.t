#!/usr/bin/env bash
# worker_provision.t: the worker provisions, renames and deprovisions
# against the Airbyte stand-in: 1,000 deliveries end done with exactly
# 1,000 workspaces, never more than max_concurrency requests in flight,
# and DROP EXTENSION completes while the worker is busy.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 12

if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset '{"latency_ms": 20}' >/dev/null
set_setting tenant_airbyte.max_concurrency 8

# --- 1,000 tenants --------------------------------------------------------------
enqueue_created prov 1000
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'prov-%' AND status = 'done') = 1000" 120)" t \
	"1,000 tenant.created deliveries end done"
counters=$(ta_standin GET /_control/counters)
tap_is "$(exactly_once prov 1000 "$counters")" ok "exactly 1,000 workspaces, one per tenant, each recorded"
tap_is "$(json_eval "$counters" 'd["requests"].get("POST /workspaces")')" 1000 "and exactly 1,000 creates were sent"
peak=$(json_eval "$counters" 'd["peak_in_flight"]')
tap_ok $([ "$peak" -le 8 ]; echo $?) "never more than max_concurrency (8) requests in flight (peak $peak)"
tap_ok $([ "$peak" -ge 4 ]; echo $?) "the window is used: several requests were in flight at once (peak $peak)"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'prov-%' AND result->>'status' = 'provisioned' AND attempts = 1")" 1000 \
	"each delivery records its result after one attempt"

# --- rename and deprovision -----------------------------------------------------------
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'prov-2'")
ta_standin POST /_control/jobs "{\"workspaceId\": \"$ws\"}" >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
   VALUES ('tenant.updated', 'prov-1', 'Renamed One'), ('tenant.deleted', 'prov-2', NULL)" >/dev/null
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id IN ('prov-1', 'prov-2') AND status = 'done') = 4" 10)" t \
	"tenant.updated and tenant.deleted end done"
tap_is "$(q "SELECT airbyte_workspace_name FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'prov-1'")|$(json_eval "$(ta_standin GET /_control/counters)" '"Renamed One - prov-1" in d["live_workspaces_by_name"]')" \
	"Renamed One - prov-1|True" "tenant.updated renames the workspace in Airbyte and in the table"
tap_is "$(q "SELECT status || ' ' || (deleted_at IS NOT NULL) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'prov-2'")|$(json_eval "$(ta_standin GET /_control/counters)" 'd["cancelled_jobs"]')" \
	"deleted true|1" "tenant.deleted soft-deletes the tenant and cancels its running job"

# --- DROP EXTENSION while busy ------------------------------------------------------
ta_standin POST /_control/config '{"latency_ms": 300}' >/dev/null
enqueue_created busy 300
wait_until "(SELECT requests_in_flight FROM tenant_airbyte.worker_status) > 0" 10 >/dev/null
pid=$(worker_pid)
PGOPTIONS='-c statement_timeout=30s' "$TA_BINDIR/psql" -X -q -d "$WORKER_DB" -c "DROP EXTENSION tenant_airbyte CASCADE" >/dev/null 2>&1
tap_ok $? "DROP EXTENSION completes while requests are in flight"
tap_is "$(wait_until "EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND query = 'tenant_airbyte: waiting for CREATE EXTENSION tenant_airbyte')" 10)" t \
	"the same worker then waits for the extension"
q "CREATE EXTENSION tenant_airbyte" >/dev/null
id=$(q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('frontegg.user.created', 'after-drop') RETURNING delivery_id")
tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $id) = 'ignored'" 10)" t \
	"and serves the inbox again after CREATE EXTENSION"

ta_standin POST /_control/reset >/dev/null
reset_setting tenant_airbyte.max_concurrency
exit $((TAP_FAILED > 0))

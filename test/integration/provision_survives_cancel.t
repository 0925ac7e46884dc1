#!/usr/bin/env bash
# provision_survives_cancel.t: a provision_tenant() call whose wait is cut
# short, by pg_cancel_backend() or by statement_timeout, while Airbyte is
# slow, returns promptly with the usual error, and the operation it
# recorded goes on to its end in the worker: the workspace is created
# exactly once and recorded, and the result is visible afterwards (the
# next call answers already_exists with it).  Before the operation engine
# the cancelled call left a workspace in Airbyte that nobody recorded.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 14
engine_setup
forget_tenants 'cancel-org-%'
forget_tenants 'timeout-org-%'
ta_standin POST /_control/reset >/dev/null
# Creates for these tenants take 8 s: long enough to interrupt the wait,
# well inside the default http_timeout_ms (30 s).
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "ms": 8000, "name_prefix": "Cancel Org"}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "ms": 8000, "name_prefix": "Timeout Org"}' >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# ended_within PID SECONDS: 0 when the process ended in time
ended_within()
{
	local i
	for i in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# --- pg_cancel_backend ---------------------------------------------------------
psql_bg "$out" ta_cancel_me "SELECT tenant_airbyte.provision_tenant('cancel-org-1', 'Cancel Org')"
victim=$BG_PID
tap_is "$(wait_requests 1 'POST /workspaces' 'Cancel Org' 30)" t "the create reached Airbyte while the call waits"
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'ta_cancel_me'" >/dev/null
ended_within $victim 5
tap_ok $? "the cancelled call returns at once, not when Airbyte answers"
wait $victim 2>/dev/null
tap_ok $(grep -q "canceling statement due to user request" "$out"; echo $?) "... with the usual cancel error"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'cancel-org-1' AND status = 'active')" 60)" t \
	"the operation goes on: the tenant's workspace is recorded afterwards"
tap_is "$(q "SELECT string_agg(status, ',') FROM tenant_airbyte.operations WHERE tenant_id = 'cancel-org-1' AND kind = 'provision'" 2>&1)" done \
	"its one provision operation ended done"
again=$(q "SELECT tenant_airbyte.provision_tenant('cancel-org-1', 'Cancel Org')" 2>&1)
tap_is "$(json_eval "$again" 'd["status"]' 2>/dev/null)" already_exists "calling again answers already_exists (got $again)"
tap_is "$(created_count 'Cancel Org')|$(live_count 'Cancel Org')" "1|1" "Airbyte created exactly one workspace and holds one"

# --- statement_timeout -------------------------------------------------------------
psql_bg "$out" ta_timeout_me "SET statement_timeout = '2s'" \
	"SELECT tenant_airbyte.provision_tenant('timeout-org-1', 'Timeout Org')" \
	"RESET statement_timeout" "SELECT 'still here'"
victim=$BG_PID
ended_within $victim 20
tap_ok $? "statement_timeout ends the wait long before Airbyte answers"
wait $victim 2>/dev/null
tap_ok $(grep -q "canceling statement due to statement timeout" "$out"; echo $?) "... with the statement timeout error"
tap_ok $(grep -q "still here" "$out"; echo $?) "... and the session goes on"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'timeout-org-1' AND status = 'active')" 60)" t \
	"the operation goes on: the tenant's workspace is recorded afterwards"
tap_is "$(q "SELECT string_agg(status, ',') FROM tenant_airbyte.operations WHERE tenant_id = 'timeout-org-1' AND kind = 'provision'" 2>&1)" done \
	"its one provision operation ended done"
again=$(q "SELECT tenant_airbyte.provision_tenant('timeout-org-1', 'Timeout Org')" 2>&1)
tap_is "$(json_eval "$again" 'd["status"]' 2>/dev/null)" already_exists "calling again answers already_exists (got $again)"
tap_is "$(created_count 'Timeout Org')|$(live_count 'Timeout Org')" "1|1" "Airbyte created exactly one workspace and holds one"

forget_tenants 'cancel-org-%'
forget_tenants 'timeout-org-%'
ta_standin POST /_control/reset >/dev/null
exit $((TAP_FAILED > 0))

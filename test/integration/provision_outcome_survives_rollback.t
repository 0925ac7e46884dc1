#!/usr/bin/env bash
# provision_outcome_survives_rollback.t: provision_tenant()'s outcome is
# committed by the worker, not by the caller's transaction (like nextval):
# BEGIN; SELECT provision_tenant(...); ROLLBACK; leaves the workspace
# recorded once, and the next call answers already_exists with the same
# workspace.  Before the operation engine the row went away with the
# ROLLBACK and the next call said "provisioned" again.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 7
engine_setup
forget_tenants 'rollback-org-%'
ta_standin POST /_control/reset '{"latency_ms": 50}' >/dev/null

got=$("$TA_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$WORKER_DB" \
	-c "BEGIN" \
	-c "SELECT tenant_airbyte.provision_tenant('rollback-org-1', 'Rollback Org') ->> 'workspace_id'" \
	-c "ROLLBACK" 2>&1)
rc=$?
tap_ok $rc "provision_tenant() inside a transaction that rolls back returns (got '$got')"
first=$(echo "$got" | grep -E '^[0-9a-f-]{36}$' | head -1)

tap_is "$(q "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'rollback-org-1'")" 1 \
	"after the ROLLBACK the tenant's workspace is still recorded, once"
tap_is "$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'rollback-org-1'")" "$first" \
	"... with the workspace the call returned"

again=$(q "SELECT tenant_airbyte.provision_tenant('rollback-org-1', 'Rollback Org')" 2>&1)
tap_is "$(json_eval "$again" 'd["status"]' 2>/dev/null)" already_exists "the next call answers already_exists (got $again)"
tap_is "$(json_eval "$again" 'd["workspace_id"]' 2>/dev/null)" "$first" "... with the same workspace"
tap_is "$(created_count 'Rollback Org')" 1 "Airbyte was asked to create the workspace exactly once"
tap_is "$(live_count 'Rollback Org')" 1 "... and holds exactly one"

forget_tenants 'rollback-org-%'
ta_standin POST /_control/reset >/dev/null
exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# requests_match_spec: every request body the extension sends validates
# against the request schema Airbyte's OpenAPI spec gives for its endpoint.
# The stand-in checks each body (test/airbyte/request_check.py) and answers
# a violation with 400, so a bad body would also fail its own test; here
# one run drives every request the extension makes (workspace create and
# rename, the three product sources and a pass-through one, OAuth, job
# listing and cancel, source and workspace delete) through both the SQL
# functions and the worker, and asserts that the stand-in counted no
# violation, and that each route was really exercised.  Also: every route
# the stand-in serves that takes a body has the spec's schema in the
# extract (or is a token route the spec gives none for), since the
# stand-in refuses a body on a route it cannot check, and PATCH
# /sources/{id} (a drift repair's rename) is one of them.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 9
if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
ta_standin POST /_control/reset >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'spec-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'spec-%'" >/dev/null
}
cleanup

# Direct calls.
q "SELECT tenant_airbyte.provision_tenant('spec-0001', 'Spec One')" >/dev/null
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'spec-0001'")
q "SELECT tenant_airbyte.create_shopify_source('spec-0001', 'acme', 'shpat-token', start_date => '2024-01-01')" >/dev/null
q "SELECT tenant_airbyte.create_source('spec-0001', 'shopify', 'Shopify password',
	'{\"shop\": \"acme\", \"credentials\": {\"auth_method\": \"api_password\", \"api_password\": \"pw\"}}')" >/dev/null
q "SELECT tenant_airbyte.create_facebook_marketing_source('spec-0001', ARRAY['111', '222'], 'fb-token', start_date => '2024-01-01')" >/dev/null
q "SELECT tenant_airbyte.create_google_ads_source('spec-0001', '1234567890', 'dev-token', 'client-id', 'client-secret', 'refresh-token', start_date => '2024-01-01')" >/dev/null
q "SELECT tenant_airbyte.create_source('spec-0001', 'faker', 'Faker', NULL)" >/dev/null
q "SELECT tenant_airbyte.initiate_oauth('spec-0001', 'google-ads', 'https://app.example/oauth/callback')" >/dev/null
faker=$(q "SELECT airbyte_source_id FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'spec-0001' AND name = 'Faker'")
q "SELECT tenant_airbyte.delete_source('spec-0001', '$faker')" >/dev/null
ta_standin POST /_control/jobs "{\"workspaceId\": \"$ws\"}" >/dev/null
q "SELECT tenant_airbyte.deprovision_tenant('spec-0001')" >/dev/null
q "UPDATE tenant_airbyte.tenant_airbyte_workspaces SET deleted_at = now() - interval '400 days' WHERE tenant_id = 'spec-0001'" >/dev/null
q "SELECT tenant_airbyte.purge_deleted_tenants()" >/dev/null

# Through the worker: created, renamed, deleted.
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'spec-0002', 'Spec Two')" >/dev/null
wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'spec-0002' AND status = 'done')" 60 >/dev/null
ws2=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'spec-0002'")
ta_standin POST /_control/jobs "{\"workspaceId\": \"$ws2\"}" >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.updated', 'spec-0002', 'Spec Two Renamed')" >/dev/null
wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'spec-0002' AND status = 'done') = 2" 60 >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.deleted', 'spec-0002')" >/dev/null
wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'spec-0002' AND status = 'done') = 3" 60 >/dev/null

counters=$(ta_standin GET /_control/counters)
tap_is "$(json_eval "$counters" 'd["spec_violations"]')" "{}" "no request body broke the spec's request schema"
tap_is "$(json_eval "$counters" 'd["spec_violation_log"]')" "[]" "... and none is logged"
tap_is "$(json_eval "$counters" 'd["requests"].get("POST /workspaces", 0) >= 2 and d["requests"].get("PATCH /workspaces/{id}", 0) >= 1')" True \
	"workspace creates (direct and by the worker) and a rename were checked"
tap_is "$(json_eval "$counters" 'd["requests"].get("POST /sources", 0)')" 5 "five source creates were checked (three product types, a password Shopify, a pass-through type)"
tap_is "$(json_eval "$counters" 'd["requests"].get("POST /sources/initiateOAuth", 0)')" 1 "an OAuth start was checked"
tap_is "$(json_eval "$counters" 'd["cancelled_jobs"] == 2 and d["requests"].get("DELETE /workspaces/{id}", 0) == 1 and d["requests"].get("DELETE /sources/{id}", 0) == 1')" True \
	"job cancels, a source delete and a workspace delete were sent"

# Every route that takes a body is checked: none is missing from the extract.
missing=$(cd test && python3 -c '
import sys
sys.path.insert(0, "airbyte")
import airbyte_standin, request_check
rc = request_check.RequestCheck()
print(" ".join(sorted(k for m, rx, k in airbyte_standin.ROUTES
                      if m in ("POST", "PATCH", "PUT") and rc.unchecked(k))) or "none")')
tap_is "$missing" none "every route the stand-in serves with a request body has the spec's request schema"

# PATCH /sources/{id}, which a drift repair sends, is checked against SourcePatchRequest
any_source=00000000-0000-4000-8000-000000000001
bad=$(curl -sS --max-time 30 -X PATCH -H "Authorization: Bearer $TA_STANDIN_TOKEN" -H "Content-Type: application/json" \
	--data '{"name": 5}' -o /dev/null -w '%{http_code}' "$TA_STANDIN_URL/v1/sources/$any_source")
tap_is "$bad" 400 "a PATCH /sources/{id} body that breaks SourcePatchRequest is refused"
good=$(curl -sS --max-time 30 -X PATCH -H "Authorization: Bearer $TA_STANDIN_TOKEN" -H "Content-Type: application/json" \
	--data '{"name": "Renamed"}' -o /dev/null -w '%{http_code}' "$TA_STANDIN_URL/v1/sources/$any_source")
tap_is "$good" 404 "... and one that matches it passes the check (404: no such source)"

ta_standin POST /_control/reset >/dev/null
cleanup
exit $((TAP_FAILED > 0))

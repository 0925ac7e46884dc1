#!/usr/bin/env bash
# requests_match_spec: every request body the extension sends validates
# against the request schema Airbyte's OpenAPI spec gives for its endpoint.
# The stand-in checks each body (test/airbyte/request_check.py) and answers
# a violation with 400, so a bad body would also fail its own test; here
# one run drives every request the extension makes (workspace create and
# rename, the three product sources and a pass-through one, OAuth, job
# listing and cancel, source and workspace delete) through both the SQL
# functions and the worker, and asserts that the stand-in counted no
# violation, and that each route was really exercised.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 6
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

ta_standin POST /_control/reset >/dev/null
cleanup
exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# pipeline_lifecycle.t: a tenant's whole pipeline, from Frontegg deliveries
# sent through tenant_airbyte_webhookd.  Signup: workspace (with the
# template's regionId and notifications), then destination.  A Shopify
# source: its connection, with the template's schedule and namespace, and
# (sync_on_create) a first sync, recorded in tenant_syncs.  tenant.deleted:
# every connection inactive in Airbyte and in the table, the running job
# cancelled.  Signup again (restored): connections active.  Purge: the
# workspace goes, and the rows with it.  apply_template() brings a tenant
# that predates its template up to it, once.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/webhookd.sh
. test/lib/worker.sh

tap_plan 15
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

SECRET=pl-$RANDOM-$RANDOM
TENANT=pl-org-$RANDOM
REGION=8a1f0c1e-1111-4111-8111-111111111111
q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
# Jobs run long enough to be cancelled.
ta_standin POST /_control/reset '{"job_pending_ms": 100, "job_running_ms": 600000}' >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'pl-%';
	   DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE 'pl-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'pl-%';
	   DELETE FROM tenant_airbyte.tenant_templates WHERE tenant_id LIKE 'pl-%';
	   DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
}
cleanup
q "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
trap 'ta_webhookd_stop >/dev/null 2>&1; q "ALTER SYSTEM RESET tenant_airbyte.webhook_secret" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null; cleanup' EXIT

q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\", \"password\": \"pl-secret\"}}',
	'{\"schedule\": \"0 0 */6 * * ?\", \"namespaceDefinition\": \"custom_format\", \"namespaceFormat\": \"{{tenant_schema}}\",
	  \"nonBreakingSchemaUpdatesBehavior\": \"propagate_columns\", \"sync_on_create\": true}',
	'{\"regionId\": \"$REGION\", \"notifications\": {\"failure\": {\"email\": {\"enabled\": true}}}}')" >/dev/null

port=$(ta_free_port)
TA_WEBHOOKD_DB=$WORKER_DB ta_webhookd_start "$port" >/dev/null
post()
{
	curl -s -o /dev/null -w '%{http_code}' -X POST "$TA_WEBHOOKD_URL/api/webhooks/frontegg" \
		-H 'Content-Type: application/json' \
		-H "x-webhook-secret: $(ta_frontegg_jwt "$SECRET")" --data-binary "$1"
}
created="{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$TENANT\"},\"tenant\":{\"name\":\"Pipeline Shop\"},\"n\":"
state() { ta_standin GET /_control/state; }

# --- signup ---------------------------------------------------------------
tap_is "$(post "${created}1}")" 202 "the signup delivery is accepted"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_destinations WHERE tenant_id = '$TENANT')" 60)" t \
	"signup ends with a workspace and a destination"
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$TENANT'")
tap_is "$(json_eval "$(state)" "[(w['regionId'], w['notifications']) for w in d['workspaces'] if w['workspaceId'] == '$ws']")" \
	"[('$REGION', {'failure': {'email': {'enabled': True}}})]" "the workspace was created with the template's regionId and notifications"

# --- a Shopify source: its connection and first sync ------------------------------
source=$(q "SELECT tenant_airbyte.create_shopify_source('$TENANT', 'plshop', 'shpat-pl-token') ->> 'source_id'")
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_syncs WHERE tenant_id = '$TENANT')" 60)" t \
	"the source gets a connection, and its first sync is recorded"
conn=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = '$TENANT' AND airbyte_source_id = '$source'")
schema=$(q "SELECT tenant_airbyte.tenant_schema_for('$TENANT')")
tap_is "$(json_eval "$(state)" "[(c['schedule'], c['namespaceDefinition'], c['namespaceFormat'], c['nonBreakingSchemaUpdatesBehavior'], c['status']) for c in d['connections'] if c['connectionId'] == '$conn']")" \
	"[({'scheduleType': 'cron', 'cronExpression': '0 0 */6 * * ?'}, 'custom_format', '$schema', 'propagate_columns', 'active')]" \
	"the connection has the template's schedule, namespace and schema-change policy"
tap_is "$(q "SELECT status || ' ' || schedule FROM tenant_airbyte.tenant_connections WHERE airbyte_connection_id = '$conn'")" "active 0 0 */6 * * ?" \
	"tenant_connections records it active, with its schedule"
job=$(q "SELECT airbyte_job_id FROM tenant_airbyte.tenant_syncs WHERE airbyte_connection_id = '$conn'")
tap_is "$(json_eval "$(state)" "[j['status'] for j in d['jobs'] if j['jobId'] == $job]")" "['running']" \
	"the first sync runs in Airbyte"

# --- tenant.deleted: paused, the running job cancelled -------------------------------
tap_is "$(post "{\"eventKey\":\"frontegg.tenant.deleted\",\"eventContext\":{\"tenantId\":\"$TENANT\"}}")" 202 "the deletion is accepted"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_connections WHERE airbyte_connection_id = '$conn' AND status = 'inactive')" 60)" t \
	"tenant.deleted makes the connection inactive in the table"
tap_is "$(json_eval "$(state)" "[(c['status'], c['deleted']) for c in d['connections'] if c['connectionId'] == '$conn'] + [j['status'] for j in d['jobs'] if j['jobId'] == $job]")" \
	"[('inactive', False), 'cancelled']" "... and in Airbyte, where nothing is deleted, and the running job is cancelled"

# --- signup again: restored, active again ------------------------------------------
tap_is "$(post "${created}2}")" 202 "a signup again is accepted"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_connections WHERE airbyte_connection_id = '$conn' AND status = 'active')" 60)|$(json_eval "$(state)" "[c['status'] for c in d['connections'] if c['connectionId'] == '$conn']")" \
	"t|['active']" "the restored tenant's connection is active again, in the table and in Airbyte"

# --- purge: the workspace goes, and the rows with it -------------------------------------
q "SELECT tenant_airbyte.deprovision_tenant('$TENANT')" >/dev/null
q "UPDATE tenant_airbyte.tenant_airbyte_workspaces SET deleted_at = now() - interval '400 days' WHERE tenant_id = '$TENANT'" >/dev/null
q "SELECT tenant_airbyte.purge_deleted_tenants()" >/dev/null
tap_is "$(q "SELECT (SELECT count(*) FROM tenant_airbyte.tenant_destinations WHERE tenant_id = '$TENANT') + (SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id = '$TENANT') + (SELECT count(*) FROM tenant_airbyte.tenant_syncs WHERE tenant_id = '$TENANT')")|$(json_eval "$(state)" "[w['deleted'] for w in d['workspaces'] if w['workspaceId'] == '$ws'] + [c['deleted'] for c in d['connections'] if c['connectionId'] == '$conn']")" \
	"0|[True, True]" "purge deletes the workspace, what it held, and the tenant's pipeline rows"

# --- apply_template: a tenant that predates its template -----------------------------------
q "DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
q "SELECT tenant_airbyte.provision_tenant('pl-late-1', 'Late')" >/dev/null
q "SELECT tenant_airbyte.create_source('pl-late-1', 'faker', 'Faker', NULL)" >/dev/null
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\"}}')" >/dev/null
tap_is "$(q "SELECT tenant_airbyte.apply_template('pl-late-1')")|$(q "SELECT tenant_airbyte.apply_template('pl-late-1')")" "2|0" \
	"apply_template() records the missing destination and connection once; again, nothing"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'pl-late-1')" 60)|$(json_eval "$(ta_standin GET /_control/counters)" '(d["duplicate_destinations"], d["duplicate_connections"], d["spec_violations"])')" \
	"t|(0, 0, {})" "the late tenant gets both, none twice, every body valid"

exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# pipeline_destination.t: provisioning a tenant that has a pipeline
# template creates its workspace, then its destination, from the template
# rendered for it, exactly once: a create whose answer was lost is adopted
# by name, a tenant without a template gets none, a template Airbyte
# refuses ends the operation with Airbyte's words, and kill -9 of the
# worker during pipeline creation for 200 tenants leaves each tenant
# exactly one destination, recorded once, and kill -9 while their sources
# get their connections leaves each source exactly one connection.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 14
if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'pd-%';
	   DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE 'pd-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'pd-%';
	   DELETE FROM tenant_airbyte.tenant_templates WHERE tenant_id LIKE 'pd-%';
	   DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
}
cleanup

q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\", \"password\": \"pd-secret\"}}')" >/dev/null

# --- one tenant: workspace, then destination ------------------------------
enqueue_created pd-one 1
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'pd-one-1')" 60)" t \
	"a provisioned tenant with a template gets a destination"
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'pd-one-1'")
dest=$(curl -s -H "Authorization: Bearer $TA_STANDIN_TOKEN" "$TA_STANDIN_URL/v1/destinations?workspaceIds=$ws")
schema=$(q "SELECT tenant_airbyte.tenant_schema_for('pd-one-1')")
name=$(q "SELECT name FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'pd-one-1'")
tap_is "$(json_eval "$dest" '[(x["name"], x["configuration"]["schema"]) for x in d["data"]]')" "[('$name', '$schema')]" \
	"exactly one destination in the tenant's workspace, named as recorded, into the tenant's schema"
tap_is "$(q "SELECT destination_type || ' ' || template FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'pd-one-1'")" "postgres default" \
	"the row says its type and template, and holds no configuration"
tap_is "$(json_eval "$(ta_standin GET /_control/counters)" 'd["spec_violations"]')" "{}" \
	"the POST /destinations body matched the spec's request schema"

# --- a lost answer is adopted, not repeated --------------------------------
ta_standin POST /_control/fault '{"route": "POST /destinations", "kind": "drop", "apply": true, "count": 1}' >/dev/null
enqueue_created pd-lost 1
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'pd-lost-1')" 90)" t \
	"a destination whose create answer was lost is recorded"
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'pd-lost-1'")
dest=$(curl -s -H "Authorization: Bearer $TA_STANDIN_TOKEN" "$TA_STANDIN_URL/v1/destinations?workspaceIds=$ws")
tap_is "$(json_eval "$dest" 'len(d["data"])')|$(q "SELECT outcome->>'status' FROM tenant_airbyte.operations WHERE tenant_id = 'pd-lost-1' AND kind = 'create_destination' AND status = 'done'")" \
	"1|adopted" "... exactly once: the retry found it by name and adopted it"

# --- no template, no destination --------------------------------------------
q "DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
enqueue_created pd-none 1
wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'pd-none-1' AND status = 'done')" 60 >/dev/null
sleep 1
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = 'pd-none-1' AND kind = 'create_destination'")|$(q "SELECT count(*) FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'pd-none-1'")" \
	"0|0" "a tenant without a template gets a workspace and nothing else"

# --- Airbyte refuses: the operation ends with Airbyte's title and detail ----------
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"mysql\", \"configuration\": {\"host\": \"db\", \"database\": \"{{tenant_schema}}\"}}')" >/dev/null
ta_standin POST /_control/config '{"destination_types": ["postgres"]}' >/dev/null
enqueue_created pd-refused 1
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id = 'pd-refused-1' AND kind = 'create_destination' AND status IN ('failed', 'dead'))" 60)" t \
	"a destination Airbyte refuses ends its operation failed"
err=$(q "SELECT coalesce(last_error, '') || ' ' || coalesce(outcome::text, '') FROM tenant_airbyte.operations WHERE tenant_id = 'pd-refused-1' AND kind = 'create_destination'")
tap_ok "$(grep -q "Unknown destinationType 'mysql'" <<<"$err"; echo $?)" "... with Airbyte's detail in the row ($err)"
ta_standin POST /_control/reset >/dev/null

# --- kill -9 of the worker while 200 tenants' pipelines are being created ---------
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\", \"password\": \"pd-secret\"}}')" >/dev/null
ta_standin POST /_control/config '{"latency_ms": 50}' >/dev/null
enqueue_created pd-kill 200
kills=0
for round in 1 2 3; do
	wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_destinations WHERE tenant_id LIKE 'pd-kill-%') >= $((round * 40))" 120 >/dev/null
	pid=$(worker_pid 2>/dev/null)
	if [ -n "$pid" ]; then
		kill -9 "$pid" && kills=$((kills + 1))
	fi
	for i in $(seq 1 300); do
		q "SELECT 1" >/dev/null 2>&1 && [ -n "$(worker_pid 2>/dev/null)" ] && break
		sleep 0.2
	done
done
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_destinations WHERE tenant_id LIKE 'pd-kill-%') = 200" 300)" t \
	"after $kills kills of the worker, all 200 tenants have a recorded destination"
counters=$(ta_standin GET /_control/counters)
tap_is "$(json_eval "$counters" 'd["live_destinations"]')|$(json_eval "$counters" 'd["duplicate_destinations"]')" "200|0" \
	"Airbyte holds exactly 200 destinations, none twice in a workspace"
tap_is "$(q "SELECT count(DISTINCT airbyte_destination_id) FROM tenant_airbyte.tenant_destinations WHERE tenant_id LIKE 'pd-kill-%'")|$(json_eval "$counters" 'd["spec_violations"]')" \
	"200|{}" "each recorded once, every body valid"

# --- and while their 200 sources get their connections ------------------------
# The sources are created in the stand-in directly and recorded in one
# transaction, so that the kills hit connection creation only.
python3 - "$TA_STANDIN_URL" "$TA_STANDIN_TOKEN" "$(q "SELECT string_agg(tenant_id || '=' || airbyte_workspace_id, ',') FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'pd-kill-%'")" \
	>"$TA_WORKDIR/pd-sources.sql" <<'PY'
import json, sys, urllib.request
base, token, pairs = sys.argv[1], sys.argv[2], sys.argv[3]
print("INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name) VALUES")
rows = []
for pair in pairs.split(","):
    tenant, ws = pair.split("=")
    body = json.dumps({"name": "Faker", "workspaceId": ws, "configuration": {"sourceType": "faker"}}).encode()
    req = urllib.request.Request(base + "/v1/sources", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    source = json.load(urllib.request.urlopen(req, timeout=30))["sourceId"]
    rows.append("('%s', '%s', '%s', 'faker', 'Faker')" % (tenant, ws, source))
print(",\n".join(rows) + ";")
PY
"$TA_BINDIR/psql" -X -q -d "$WORKER_DB" -f "$TA_WORKDIR/pd-sources.sql" >/dev/null
kills=0
for round in 1 2 3; do
	wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id LIKE 'pd-kill-%') >= $((round * 40))" 120 >/dev/null
	pid=$(worker_pid 2>/dev/null)
	if [ -n "$pid" ]; then
		kill -9 "$pid" && kills=$((kills + 1))
	fi
	for i in $(seq 1 300); do
		q "SELECT 1" >/dev/null 2>&1 && [ -n "$(worker_pid 2>/dev/null)" ] && break
		sleep 0.2
	done
done
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id LIKE 'pd-kill-%') = 200" 300)" t \
	"after $kills more kills, all 200 sources have a recorded connection"
counters=$(ta_standin GET /_control/counters)
tap_is "$(json_eval "$counters" 'd["live_connections"]')|$(json_eval "$counters" 'd["duplicate_connections"]')|$(q "SELECT count(DISTINCT airbyte_connection_id) FROM tenant_airbyte.tenant_connections WHERE tenant_id LIKE 'pd-kill-%'")|$(json_eval "$counters" 'd["spec_violations"]')" \
	"200|0|200|{}" "Airbyte holds exactly 200 connections, none twice, each recorded once, every body valid"

ta_standin POST /_control/reset >/dev/null
cleanup
exit $((TAP_FAILED > 0))

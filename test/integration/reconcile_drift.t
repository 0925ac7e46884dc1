#!/usr/bin/env bash
# reconcile_drift.t: reconcile() finds each kind of drift made behind the
# extension's back in Airbyte (the stand-in, through Airbyte's own API),
# with a dry run that sends nothing but GET requests; reconcile(false)
# repairs it, each repair an operation, so that a second dry run finds
# nothing; orphans are reported or deleted as tenant_airbyte.orphan_policy
# says; the periodic run (reconcile_interval_s) fills reconcile_runs,
# reconcile_findings and worker_status, and repairs by itself.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 21
if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin

set_guc()
{
	q "ALTER SYSTEM SET tenant_airbyte.$1 = '$2'" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}
reset_gucs()
{
	q "ALTER SYSTEM RESET tenant_airbyte.orphan_policy" >/dev/null
	q "ALTER SYSTEM RESET tenant_airbyte.reconcile_interval_s" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
}
# Everything earlier tests left: reconcile() compares all rows with all of
# Airbyte, and the stand-in is reset below.
forget_all()
{
	q "DELETE FROM tenant_airbyte.webhook_inbox;
	   DELETE FROM tenant_airbyte.operations;
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces;
	   DELETE FROM tenant_airbyte.tenant_templates;
	   DELETE FROM tenant_airbyte.pipeline_templates;
	   DELETE FROM tenant_airbyte.reconcile_findings;
	   DELETE FROM tenant_airbyte.reconcile_runs" >/dev/null
}
cleanup()
{
	reset_gucs
	forget_all
	ta_standin POST /_control/reset >/dev/null
}
trap cleanup EXIT
reset_gucs
forget_all
ta_standin POST /_control/reset >/dev/null

api()
{
	curl -sS --max-time 30 -X "$1" -H "Authorization: Bearer $TA_STANDIN_TOKEN" \
		-H "Content-Type: application/json" ${3:+--data "$3"} "$TA_STANDIN_URL/v1$2"
}
ws_of() { q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$1'"; }
# the findings of a reconcile() call, one "tenant|object|id|problem|action" a line, sorted
findings()
{
	q "SELECT string_agg(concat_ws('|', tenant_id, object, airbyte_id, problem, action), E'\n'
	                     ORDER BY tenant_id, object, airbyte_id, problem)
	     FROM tenant_airbyte.reconcile($1) AS f"
}
# until every operation the last run recorded has finished
wait_repairs()
{
	wait_until "NOT EXISTS (SELECT FROM tenant_airbyte.operations
	                         WHERE status IN ('pending', 'in_flight')
	                           AND tenant_id NOT LIKE 'tenant_airbyte.%')" "$1"
}

q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\", \"password\": \"rd-secret\"}}')" >/dev/null

# --- seven tenants, each with a workspace and a destination; c, d, e a source and its connection
for t in rd-a rd-b rd-c rd-d rd-e rd-f; do
	q "SELECT tenant_airbyte.provision_tenant('$t', 'Drift ${t#rd-}')" >/dev/null
done
wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_destinations WHERE tenant_id LIKE 'rd-%') = 6" 90 >/dev/null
for t in rd-c rd-d rd-e; do
	ws=$(ws_of $t)
	src=$(json_eval "$(api POST /sources "{\"name\": \"Faker $t\", \"workspaceId\": \"$ws\", \"configuration\": {\"sourceType\": \"faker\"}}")" 'd["sourceId"]')
	q "INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)
	   VALUES ('$t', '$ws', '$src', 'faker', 'Faker $t')" >/dev/null
done
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id LIKE 'rd-%') = 3" 90)" t \
	"setup: six tenants with workspace and destination, three with a source and its connection"
wait_repairs 60 >/dev/null
tap_is "$(findings true)" "" "without drift, the dry run finds nothing"

# --- drift, behind the extension's back -------------------------------------------
ws_a=$(ws_of rd-a); ws_b=$(ws_of rd-b); ws_d=$(ws_of rd-d); ws_f=$(ws_of rd-f)
api PATCH "/workspaces/$ws_a" '{"name": "Renamed in the UI"}' >/dev/null
api DELETE "/workspaces/$ws_b" >/dev/null
src_c=$(q "SELECT airbyte_source_id FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'rd-c'")
con_c=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'rd-c'")
api PATCH "/sources/$src_c" '{"name": "Someone else"}' >/dev/null
api PATCH "/connections/$con_c" '{"status": "inactive"}' >/dev/null
dst_d=$(q "SELECT airbyte_destination_id FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'rd-d'")
con_d=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'rd-d'")
api DELETE "/destinations/$dst_d" >/dev/null
con_e=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'rd-e'")
api PATCH "/connections/$con_e" '{"name": "my connection"}' >/dev/null
# an orphan named like rd-e's workspaces, a second workspace with rd-f's exact name
orphan=$(json_eval "$(api POST /workspaces '{"name": "Stray - rd-e"}')" 'd["workspaceId"]')
name_f=$(q "SELECT airbyte_workspace_name FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'rd-f'")
dup=$(json_eval "$(api POST /workspaces "{\"name\": \"$name_f\"}")" 'd["workspaceId"]')
# a create whose answer was lost and whose operation then ended failed: rd-g's
# workspace exists in Airbyte under the name the operation intended
q "INSERT INTO tenant_airbyte.operations (kind, tenant_id, params, intended_name, status, step, attempts, finished_at, last_error)
   VALUES ('provision', 'rd-g', '{\"tenant_name\": \"Drift g\"}', 'Drift g - rd-g', 'failed', 'create', 1, now(), 'lost')" >/dev/null
adopt=$(json_eval "$(api POST /workspaces '{"name": "Drift g - rd-g"}')" 'd["workspaceId"]')
# someone else's workspace: not this extension's name, never reported
api POST /workspaces '{"name": "Marketing sandbox"}' >/dev/null

expected=$(sort <<EOF
rd-a|workspace|$ws_a|renamed|rename_back
rd-b|workspace|$ws_b|gone|recreate
rd-c|connection|$con_c|status|set_status
rd-c|source|$src_c|renamed|rename_back
rd-d|connection|$con_d|gone|recreate
rd-d|destination|$dst_d|gone|recreate
rd-e|connection|$con_e|renamed|rename_back
rd-e|workspace|$orphan|orphan|report
rd-f|workspace|$dup|duplicate|report
rd-g|workspace|$adopt|orphan|adopt
EOF
)
ta_standin POST /_control/reset_counters >/dev/null
got=$(findings true)
tap_is "$(sort <<<"$got")" "$expected" "the dry run finds each kind of drift, exactly these rows"
counters=$(ta_standin GET /_control/counters)
tap_is "$(json_eval "$counters" 'sorted(k for k in d["requests"] if not k.startswith("GET "))')" "[]" \
	"... and sends Airbyte nothing but GET requests"
tap_ok "$(json_eval "$counters" 'int("GET /workspaces" in d["requests"] and "GET /sources" in d["requests"] and "GET /destinations" in d["requests"] and "GET /connections" in d["requests"]) - 1')" \
	"... listing workspaces, sources, destinations and connections"
tap_is "$(json_eval "$(standin_requests 'GET /workspaces')" 'sorted(set("includeDeleted=true" in r["query"] for r in d["requests"]))')" "[False, True]" \
	"... and, a recorded workspace being missing, the deleted workspaces too"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE kind IN ('drift_repair', 'create_destination', 'create_connection') AND status = 'pending'")|$(q "SELECT detail FROM tenant_airbyte.reconcile_findings WHERE airbyte_id = '$ws_b' ORDER BY id DESC LIMIT 1")" \
	"0|deleted in Airbyte" "the dry run records no repair; the finding says the workspace was deleted in Airbyte"

# --- repair -------------------------------------------------------------------------
# the answer to the create of rd-b's workspace again is lost: its retry
# must find the workspace by name, not create a second one
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "drop", "apply": true, "count": 1}' >/dev/null
name_b=$(q "SELECT airbyte_workspace_name FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'rd-b'")
got=$(findings false)
tap_is "$(sort <<<"$got")" "$expected" "reconcile(dry_run => false) reports the same rows"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.reconcile_findings f
             WHERE f.run_id = (SELECT max(run_id) FROM tenant_airbyte.reconcile_runs) AND f.action <> 'report' AND f.operation_id IS NULL")" \
	"0" "... and names the operation of each repair"
tap_is "$(wait_repairs 120)" t "every repair operation finishes"
tap_is "$(q "SELECT string_agg(DISTINCT status, ',') FROM tenant_airbyte.operations
             WHERE id IN (SELECT operation_id FROM tenant_airbyte.reconcile_findings)")" "done" "... done, none failed"
state=$(ta_standin GET /_control/state)
new_b=$(ws_of rd-b)
tap_is "$(json_eval "$state" '[w["name"] for w in d["workspaces"] if w["workspaceId"] == "'"$ws_a"'"]')|$(json_eval "$state" '[c["status"] for c in d["connections"] if c["connectionId"] == "'"$con_c"'"]')|$(json_eval "$(api GET "/sources/$src_c")" 'd["name"]')" \
	"['Drift a - rd-a']|['active']|Faker rd-c" "renamed back, status set back, source renamed back"
tap_is "$([ "$new_b" != "$ws_b" ] && echo moved)|$(q "SELECT count(*) FROM tenant_airbyte.tenant_destinations WHERE tenant_id IN ('rd-b', 'rd-d')")|$(q "SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'rd-d'")|$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'rd-g'")" \
	"moved|2|1|$adopt" "rd-b's workspace created again (and its destination), rd-d's destination and connection again, rd-g's orphan adopted"

tap_is "$(json_eval "$(curl -sS -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=$name_b")" 'd["live_workspaces_by_name"]')|$(json_eval "$(ta_standin GET /_control/counters)" 'd["faults_fired"]')" \
	"{'$name_b': 1}|{'drop': 1}" "... exactly once, although the answer to its create was lost"

got=$(findings true)
tap_is "$(sort <<<"$got")" "$(sort <<EOF
rd-e|workspace|$orphan|orphan|report
rd-f|workspace|$dup|duplicate|report
EOF
)" "a second dry run finds only the orphans orphan_policy = report leaves"

set_guc orphan_policy delete
got=$(findings false)
tap_is "$(sort <<<"$got")" "$(sort <<EOF
rd-e|workspace|$orphan|orphan|delete
rd-f|workspace|$dup|duplicate|delete
EOF
)" "with orphan_policy = delete, the orphans' action is delete"
wait_repairs 60 >/dev/null
tap_is "$(findings true)|$(json_eval "$(ta_standin GET /_control/state)" 'len([w for w in d["workspaces"] if w["deleted"] and w["workspaceId"] in ("'"$orphan"'", "'"$dup"'")])')" \
	"|2" "... they are deleted in Airbyte, and a dry run then finds nothing"

# --- who may reconcile, and who sees the findings -----------------------------------
q "DROP ROLE IF EXISTS rd_app; CREATE ROLE rd_app;
   GRANT USAGE ON SCHEMA tenant_airbyte TO rd_app;
   GRANT SELECT ON tenant_airbyte.reconcile_findings TO rd_app" >/dev/null
out=$(q "SET ROLE rd_app; SELECT * FROM tenant_airbyte.reconcile()" 2>&1)
tap_ok "$(grep -q 'permission denied for function reconcile' <<<"$out"; echo $?)" \
	"a role that is not a superuser cannot call reconcile()"
tap_is "$(q "SET tenant_airbyte.tenant_id = 'rd-e'; SET ROLE rd_app;
             SELECT count(*) > 0 AND bool_and(tenant_id = 'rd-e') FROM tenant_airbyte.reconcile_findings")" "t" \
	"a tenant-scoped role sees its own tenant's findings only (row-level security)"
q "REVOKE ALL ON tenant_airbyte.reconcile_findings FROM rd_app; REVOKE USAGE ON SCHEMA tenant_airbyte FROM rd_app; DROP ROLE rd_app" >/dev/null

# --- the periodic run ---------------------------------------------------------------
set_guc orphan_policy report
before=$(q "SELECT coalesce(max(run_id), 0) FROM tenant_airbyte.reconcile_runs")
api PATCH "/workspaces/$ws_a" '{"name": "Renamed again"}' >/dev/null
set_guc reconcile_interval_s 2
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.reconcile_runs WHERE periodic AND run_id > $before AND problems = 1)
                      AND EXISTS (SELECT FROM tenant_airbyte.reconcile_findings f JOIN tenant_airbyte.reconcile_runs r USING (run_id)
                                   WHERE r.periodic AND f.airbyte_id = '$ws_a' AND f.problem = 'renamed' AND f.operation_id IS NOT NULL)" 120)" t \
	"with reconcile_interval_s set, the worker reconciles by itself and records what it found"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.reconcile_runs WHERE periodic AND run_id > $before AND problems = 0)" 120)|$(json_eval "$(api GET "/workspaces/$ws_a")" 'd["name"]')|$(q "SELECT reconcile_last_at IS NOT NULL AND reconcile_last_problems = 0 FROM tenant_airbyte.worker_status")" \
	"t|Drift a - rd-a|t" "... repairs by itself (the next run finds nothing), and worker_status shows the last run"
set_guc reconcile_interval_s 0

exit $((TAP_FAILED > 0))

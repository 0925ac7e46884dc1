#!/usr/bin/env bash
# pipeline_syncs.t: trigger_sync() and cancel_sync() as the application
# role: a tenant starts and cancels its own syncs, and cannot trigger,
# cancel or see another tenant's; the jobs it starts run in Airbyte and are
# recorded in tenant_syncs, and a connection with a running job starts no
# second one.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 12
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset '{"job_pending_ms": 100, "job_running_ms": 600000}' >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE 'ps-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'ps-%';
	   DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
	q "DO \$\$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'ps_app') THEN
	     DROP OWNED BY ps_app; DROP ROLE ps_app; END IF; END \$\$" >/dev/null
}
cleanup
trap cleanup EXIT
q "CREATE ROLE ps_app;
   GRANT EXECUTE ON FUNCTION tenant_airbyte.trigger_sync(text, uuid), tenant_airbyte.cancel_sync(text, bigint) TO ps_app" >/dev/null
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"127.0.0.1\", \"port\": $TA_PORT,
	  \"database\": \"$WORKER_DB\", \"schema\": \"{{tenant_schema}}\", \"raw_data_schema\": \"{{tenant_schema}}\",
	  \"username\": \"{{loader_user}}\", \"password\": \"{{loader_password}}\"}}')" >/dev/null
for t in ps-a ps-b; do
	q "SELECT tenant_airbyte.provision_tenant('$t', 'Syncs $t')" >/dev/null
	wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_destinations WHERE tenant_id = '$t')" 60 >/dev/null
	q "SELECT tenant_airbyte.create_source('$t', 'faker', 'Faker', NULL)" >/dev/null
done
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id IN ('ps-a', 'ps-b')) = 2" 60)" t \
	"both tenants' sources have their connections"

# as_app TENANT SQL: one statement as the application role in TENANT's context
as_app()
{
	PGOPTIONS='-c client_min_messages=warning' "$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" \
		-c "SET tenant_airbyte.tenant_id = '$1'" -c "SET ROLE ps_app" -c "$2" 2>&1
}

b_job=$(as_app ps-b "SELECT airbyte_job_id FROM tenant_airbyte.trigger_sync('ps-b')")
tap_ok "$([[ "$b_job" =~ ^[0-9]+$ ]]; echo $?)" "B starts a sync of its connection (job $b_job)"
a_job=$(as_app ps-a "SELECT airbyte_job_id || ' ' || status FROM tenant_airbyte.trigger_sync('ps-a')")
tap_ok "$([[ "$a_job" =~ ^[0-9]+\ (pending|running)$ ]]; echo $?)" "A starts its own ($a_job)"
a_job=${a_job%% *}
tap_is "$(as_app ps-a "SELECT count(*) FROM tenant_airbyte.trigger_sync('ps-a')")" 0 \
	"a second trigger while the job runs starts nothing"
out=$(as_app ps-a "SELECT * FROM tenant_airbyte.trigger_sync('ps-b')")
tap_ok "$(grep -q 'permission denied for tenant "ps-b"' <<<"$out"; echo $?)" "A cannot trigger B's syncs ($out)"
out=$(as_app ps-a "SELECT * FROM tenant_airbyte.cancel_sync('ps-b', $b_job)")
tap_ok "$(grep -q 'permission denied for tenant "ps-b"' <<<"$out"; echo $?)" "A cannot cancel B's job by B's tenant id"
out=$(as_app ps-a "SELECT * FROM tenant_airbyte.cancel_sync('ps-a', $b_job)")
tap_ok "$(grep -q "has no sync with job id $b_job" <<<"$out"; echo $?)" "... nor by passing its own tenant id with B's job id"
tap_is "$(as_app ps-a "SELECT string_agg(tenant_id || ':' || airbyte_job_id, ',') FROM tenant_airbyte.sync_status")" "ps-a:$a_job" \
	"A sees only its own sync in sync_status"
tap_is "$(as_app ps-a "SELECT status FROM tenant_airbyte.cancel_sync('ps-a', $a_job)")" cancelled \
	"A cancels its own job"
# The stand-in's jobs turn from pending to running 100 ms after they start
# (job_pending_ms); the calls since B's trigger can take less than that.
# B's job is read once it has left pending: cancelled by mistake, it never
# turns running, and the check below fails.
for _ in $(seq 1 50); do
	state=$(ta_standin GET /_control/state)
	[ "$(json_eval "$state" "[j['status'] for j in d['jobs'] if j['jobId'] == $b_job]")" != "['pending']" ] && break
	sleep 0.1
done
tap_is "$(json_eval "$state" "sorted((j['jobId'], j['status']) for j in d['jobs'])")" "[($b_job, 'running'), ($a_job, 'cancelled')]" \
	"in Airbyte, A's job is cancelled and B's still runs"

# --- the worker follows jobs, including those Airbyte's schedule starts ---------
set_setting tenant_airbyte.sync_poll_interval_s 1
a_conn=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'ps-a'")
cron_job=$(json_eval "$(ta_standin POST /_control/scheduled_job "{\"connectionId\": \"$a_conn\"}")" 'd["jobId"]')
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'ps-a' AND airbyte_job_id = $cron_job)" 60)" t \
	"a job Airbyte started on its schedule appears in tenant_syncs"
ta_standin POST /_control/config '{"job_running_ms": 300}' >/dev/null
tap_is "$(wait_until "(SELECT status = 'succeeded' AND rows_synced > 0 FROM tenant_airbyte.tenant_syncs WHERE airbyte_job_id = $cron_job) AND (SELECT status = 'succeeded' FROM tenant_airbyte.tenant_syncs WHERE airbyte_job_id = $b_job)" 60)" t \
	"the worker records each job's transition to succeeded, with its rows"
reset_setting tenant_airbyte.sync_poll_interval_s

ta_standin POST /_control/reset >/dev/null
exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# first_sync_exactly_once.t: a connection whose template says
# sync_on_create gets its first sync exactly once, even when the worker is
# killed (kill -9) after it recorded the connection and while its
# POST /jobs is on the way:
#   - the request never reached Airbyte (it hung, then the connection was
#     dropped unanswered): the worker starts the sync after the restart;
#   - Airbyte did start the job and only the answer was lost (the job has
#     even finished by then): the worker finds that job by listing the
#     connection's jobs and starts no second one.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 10
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset '{"job_pending_ms": 100, "job_running_ms": 300}' >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE 'fs-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'fs-%';
	   DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
}
cleanup
trap cleanup EXIT

# A destination without a loader (dev-null), so that jobs end at once.
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"dev-null\", \"configuration\": {\"test_destination\": {\"test_destination_type\": \"SILENT\"}}}',
	'{\"schedule\": \"manual\", \"sync_on_create\": true}')" >/dev/null

# jobs_of CONNECTION: the ids of the connection's jobs in Airbyte, oldest first
jobs_of()
{
	json_eval "$(curl -s -H "Authorization: Bearer $TA_STANDIN_TOKEN" \
		"$TA_STANDIN_URL/v1/jobs?connectionId=$1&limit=100")" \
		'sorted(j["jobId"] for j in d["data"])'
}

# kill_worker_after_sync_sent TENANT APPLY: provision TENANT, record a
# source, and kill -9 the worker while the connection's first POST /jobs
# hangs (APPLY true: Airbyte carried it out before hanging)
kill_worker_after_sync_sent()
{
	local tenant=$1 apply=$2 pid i
	q "SELECT tenant_airbyte.provision_tenant('$tenant', 'First sync $tenant')" >/dev/null
	wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_destinations WHERE tenant_id = '$tenant')" 60 >/dev/null
	ta_standin POST /_control/fault "{\"route\": \"POST /jobs\", \"kind\": \"hang\", \"ms\": 10000, \"count\": 1, \"apply\": $apply}" >/dev/null
	q "SELECT tenant_airbyte.create_source('$tenant', 'faker', 'Faker', NULL)" >/dev/null
	# the connection is recorded and its step "sync" committed ...
	KILLED_IN_SYNC=$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations o JOIN tenant_airbyte.tenant_connections c USING (tenant_id)
	            WHERE o.tenant_id = '$tenant' AND o.kind = 'create_connection' AND o.step = 'sync' AND o.status = 'in_flight')" 60)
	# ... and the request has reached the stand-in, which hangs on it
	for i in $(seq 1 100); do
		[ "$(json_eval "$(ta_standin GET /_control/counters)" 'd["requests"].get("POST /jobs", 0)')" -ge 1 ] && break
		sleep 0.1
	done
	pid=$(worker_pid)
	kill -9 "$pid"
	for i in $(seq 1 300); do
		q "SELECT 1" >/dev/null 2>&1 && [ -n "$(worker_pid 2>/dev/null)" ] && [ "$(worker_pid 2>/dev/null)" != "$pid" ] && break
		sleep 0.2
	done
	ta_standin DELETE /_control/faults >/dev/null
}

# --- the POST /jobs never reached Airbyte ---------------------------------------
kill_worker_after_sync_sent fs-lost false
tap_is "$KILLED_IN_SYNC" t "the worker was killed after committing the step \"sync\", its POST /jobs unanswered"
conn=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'fs-lost'")
tap_ok "$([ -n "$conn" ]; echo $?)" "the connection was recorded before the worker was killed"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'fs-lost')" 90)" t \
	"after the restart the first sync is started and recorded"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id = 'fs-lost' AND kind = 'create_connection' AND status = 'done')" 60)" t \
	"... and the connection's operation ends done"
sleep 2
tap_is "$(jobs_of "$conn")|$(q "SELECT count(*) FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'fs-lost'")" \
	"[$(q "SELECT airbyte_job_id FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'fs-lost'")]|1" \
	"Airbyte ran exactly one job for the connection, the one recorded"

# --- Airbyte started the job, the answer was lost ----------------------------------
kill_worker_after_sync_sent fs-found true
tap_is "$KILLED_IN_SYNC" t "the worker was killed after committing the step \"sync\", its POST /jobs carried out but unanswered"
conn=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'fs-found'")
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id = 'fs-found' AND kind = 'create_connection' AND status = 'done')" 90)|$(q "SELECT outcome->>'sync' FROM tenant_airbyte.operations WHERE tenant_id = 'fs-found' AND kind = 'create_connection'")" "t|adopted" \
	"after the restart the connection's operation ends done, having adopted the job it found"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'fs-found')" 60)" t \
	"the job Airbyte started is recorded"
sleep 2
tap_is "$(json_eval "$(jobs_of "$conn")" 'len(d)')|$(q "SELECT count(*) FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'fs-found'")" \
	"1|1" "no second job: Airbyte ran exactly one for the connection, recorded once"
tap_is "$(json_eval "$(ta_standin GET /_control/counters)" 'd["spec_violations"]')" "{}" \
	"every request matched the spec"

ta_standin POST /_control/reset >/dev/null
exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# sync_poll_reads_every_page.t: the job poll reads every page of a
# workspace's jobs, not only the newest 100: 250 jobs of one connection
# (as a busy cron schedule or a backfill leaves them) are all recorded in
# tenant_syncs, and a transition of the oldest one, followed by 150 more
# transitions that put it past the first two pages, is recorded too.
# Later rounds ask Airbyte only for jobs updated since the previous round
# (updatedAtStart), with a valid request.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 5
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
cleanup()
{
	q "DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE 'pp-%';
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'pp-%';
	   DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
	reset_setting tenant_airbyte.sync_poll_interval_s
}
cleanup
trap cleanup EXIT
set_setting tenant_airbyte.sync_poll_interval_s 1

q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"dev-null\", \"configuration\": {\"test_destination\": {\"test_destination_type\": \"SILENT\"}}}',
	'{\"schedule\": \"manual\"}')" >/dev/null
q "SELECT tenant_airbyte.provision_tenant('pp-a', 'Poll pages')" >/dev/null
wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'pp-a')" 60 >/dev/null
q "SELECT tenant_airbyte.create_source('pp-a', 'faker', 'Faker', NULL)" >/dev/null
wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'pp-a')" 60 >/dev/null
ws=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'pp-a'")
conn=$(q "SELECT airbyte_connection_id FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'pp-a'")

# 250 running jobs of the connection, which stay running until cancelled;
# prints their ids, oldest first
job_ids=$(python3 - "$TA_STANDIN_URL" "$ws" "$conn" <<'PY'
import json, sys, urllib.request
base, ws, conn = sys.argv[1:4]
for _ in range(250):
    body = json.dumps({"workspaceId": ws, "connectionId": conn, "status": "running"}).encode()
    req = urllib.request.Request(base + "/_control/jobs", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    print(json.load(urllib.request.urlopen(req, timeout=30))["jobId"])
PY
)
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'pp-a' AND status = 'running') = 250" 120)" t \
	"all 250 running jobs of the connection are recorded, not only the newest 100"

# cancel the oldest, then 150 more: its transition is now 151 jobs deep
cancel()
{
	curl -s -o /dev/null -X DELETE -H "Authorization: Bearer $TA_STANDIN_TOKEN" "$TA_STANDIN_URL/v1/jobs/$1"
}
oldest=$(head -1 <<<"$job_ids")
cancel "$oldest"
for id in $(tail -150 <<<"$job_ids"); do
	cancel "$id"
done
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'pp-a' AND status = 'cancelled') = 151" 120)" t \
	"all 151 cancellations are recorded"
tap_is "$(q "SELECT status FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'pp-a' AND airbyte_job_id = $oldest")" cancelled \
	"... including the oldest job's, behind 150 newer updates"

# a round that began after the previous one asks only for what changed since
q "SELECT pg_sleep(1)" >/dev/null
wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'poll_syncs' AND status = 'done' AND outcome ->> 'updated_since' IS NOT NULL)" 60 >/dev/null
last=$(json_eval "$(curl -s "$TA_STANDIN_URL/_control/requests?route=GET%20/jobs")" 'd["requests"][-1]["query"]')
tap_ok "$(grep -q 'updatedAtStart=' <<<"$last" && grep -q 'orderBy=updatedAt%7CDESC' <<<"$last"; echo $?)" \
	"later rounds ask for jobs updated since the previous round, newest first ($last)"
tap_is "$(json_eval "$(ta_standin GET /_control/counters)" 'd["spec_violations"]')" "{}" \
	"every request matched the spec"

ta_standin POST /_control/reset >/dev/null
exit $((TAP_FAILED > 0))

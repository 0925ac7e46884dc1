#!/usr/bin/env bash
# worker_pause.t: pause_worker() stops the worker taking new work, and the
# pause survives a restart of the server; resume_worker() lets it go on.
# worker_status says paused meanwhile.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 8
engine_setup
forget_tenants 'pz-%'
ta_standin POST /_control/reset >/dev/null
trap 'q "SELECT tenant_airbyte.resume_worker()" >/dev/null 2>&1; ta_standin POST /_control/reset >/dev/null' EXIT

tap_is "$(q "SELECT tenant_airbyte.pause_worker()")" t "pause_worker() pauses a running worker"
tap_is "$(wait_until "(SELECT state FROM tenant_airbyte.worker_status) = 'paused'" 30)" t "worker_status says paused"
enqueue_created pz 5
sleep 3
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'pz-%' AND status <> 'pending'")" 0 \
	"paused, the worker takes no new delivery"

ta_cluster_restart
wait_for_worker 60 >/dev/null
sleep 3
tap_is "$(q "SELECT state FROM tenant_airbyte.worker_status")" paused "after a restart it is still paused"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'pz-%' AND status <> 'pending'")" 0 \
	"... and still takes nothing"
tap_is "$(json_eval "$(ta_standin GET /_control/counters)" 'd["requests"].get("POST /workspaces", 0)')" 0 \
	"Airbyte heard nothing meanwhile"

tap_is "$(q "SELECT tenant_airbyte.resume_worker()")" t "resume_worker() resumes it"
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'pz-%' AND status = 'done') = 5" 60)" t \
	"then every waiting delivery ends done"

forget_tenants 'pz-%'
exit $((TAP_FAILED > 0))

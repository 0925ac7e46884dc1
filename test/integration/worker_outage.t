#!/usr/bin/env bash
# worker_outage.t: while Airbyte cannot be reached at all (connection
# refused), deliveries wait instead of dying: an attempt that never reached
# Airbyte is given back, so even max_attempts = 2 rides out an outage many
# times longer than two attempts' backoff.  Once Airbyte is back, every
# tenant is provisioned exactly once.  Attempts that did reach Airbyte
# still count (worker_faults.t, worker_crash.t).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 5

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null

OWN_STANDIN_RESET="tenant_airbyte.max_attempts"
own_standin 2 outage || { echo "# could not start the stand-in"; exit 1; }
standin_log=$OWN_STANDIN_LOG
set_setting tenant_airbyte.max_attempts 2

ta_standin_stop
enqueue_created refused 20
# Long enough for two counted attempts (five tries each, full-jitter
# backoff from 200 ms) to run out many times over.
sleep 8
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%' AND status IN ('dead', 'done')")" 0 \
	"with Airbyte unreachable and max_attempts 2, no delivery gives up"
tap_ok $([ "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%' AND last_error IS NOT NULL")" -gt 0 ]; echo $?) \
	"... though the worker did try, and recorded why it failed"
tap_is "$(q "SELECT max(attempts) <= 2 FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%'")" t \
	"... and the failed connections were not counted as attempts"

ta_standin_start "$standin_log" || { echo "# could not restart the stand-in"; exit 1; }
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%' AND status = 'done') = 20" 90)" t \
	"once Airbyte answers again, all 20 deliveries end done"
tap_is "$(exactly_once refused 20 "$(ta_standin GET /_control/counters)")" ok \
	"every tenant has exactly one workspace"

exit $((TAP_FAILED > 0))

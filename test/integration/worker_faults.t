#!/usr/bin/env bash
# worker_faults.t: Airbyte misbehaving.  30% 429s (half with Retry-After,
# half without), 10% 500s, requests that hang past http_timeout_ms, creates
# whose answer is lost after Airbyte carried them out; then Airbyte down
# for 30 seconds.  Every tenant ends provisioned, exactly once, within
# max_attempts, and every failed attempt is logged with its delivery and
# tenant.
#
# Runs its own stand-in on TA_STANDIN_PORT + 1, because it stops it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 10

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null

OWN_STANDIN_RESET="tenant_airbyte.http_timeout_ms"
own_standin 1 faults || { echo "# could not start the stand-in"; exit 1; }
standin_log=$OWN_STANDIN_LOG

# The default max_attempts (10): connections refused during the outage
# below are not counted as attempts (worker_outage.t), the rest must fit.
set_setting tenant_airbyte.http_timeout_ms 1000
max_attempts=$(q "SHOW tenant_airbyte.max_attempts")
log_offset=$(($(stat -c %s "$TA_PGLOG") + 1))

ta_standin POST /_control/config '{"latency_ms": 5, "seed": 7}' >/dev/null
ta_standin POST /_control/fault '{"route": "*", "kind": "429", "probability": 0.15, "retry_after": "1"}' >/dev/null
ta_standin POST /_control/fault '{"route": "*", "kind": "429", "probability": 0.18}' >/dev/null
ta_standin POST /_control/fault '{"route": "*", "kind": "500", "probability": 0.14}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "probability": 0.05, "ms": 3000}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "drop", "probability": 0.1, "apply": true}' >/dev/null

enqueue_created fault 200
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'fault-%' AND status = 'done') = 200" 120)" t \
	"under 429s, 500s, hangs and lost answers all 200 deliveries end done"
counters=$(ta_standin GET /_control/counters)
echo "# faults fired: $(json_eval "$counters" 'd["faults_fired"]')"
tap_is "$(exactly_once fault 200 "$counters")" ok "every tenant has exactly one workspace"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'fault-%' AND attempts > $max_attempts")" 0 \
	"none needed more than max_attempts attempts"
tap_ok $([ "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'fault-%' AND attempts > 1")" -gt 0 ]; echo $?) \
	"the faults did make deliveries retry"
tap_ok $([ "$(json_eval "$counters" 'd["faults_fired"].get("drop", 0)')" -gt 0 ] && [ "$(json_eval "$counters" 'd["faults_fired"].get("429", 0)')" -gt 0 ]; echo $?) \
	"creates were lost after taking effect, and 429s were answered"
pattern="tenant_airbyte: delivery [0-9]+ \\(tenant.created, tenant \"fault-[0-9]+\"\\) attempt [0-9]+ of $max_attempts failed: .*HTTP (429|500)"
logged=$(tail -c +"$log_offset" "$TA_PGLOG" | grep -cE "$pattern")
tap_ok $([ "$logged" -gt 0 ]; echo $?) \
	"failed attempts are logged with delivery id, tenant and HTTP status"
tap_is "$(tail -c +"$log_offset" "$TA_PGLOG" | grep -c 'standin-token')" 0 "no log line holds the API token"

# --- Airbyte down for 30 seconds ----------------------------------------------------
ta_standin_stop
enqueue_created outage 100
sleep 30
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'outage-%' AND status IN ('done', 'dead')")" 0 \
	"while Airbyte is down nothing is done and nothing gives up"
ta_standin_start "$standin_log" || { echo "# could not restart the stand-in"; exit 1; }
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'outage-%' AND status = 'done') = 100" 120)" t \
	"after it is back all 100 deliveries end done"
tap_is "$(exactly_once outage 100 "$(ta_standin GET /_control/counters)")" ok "every tenant has exactly one workspace"

exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# budget_rate_limit.t: Airbyte limits requests to a fixed rate and answers
# 429 without Retry-After beyond it, as Airbyte Cloud does.  With no rate
# configured here (tenant_airbyte.max_requests_per_second = 0) the worker
# as a whole slows down to what Airbyte lets through (src/engine/budget.c):
# the share of 429s falls after the first seconds, and no delivery ends
# dead, even with max_attempts 2: a 429 the whole engine gets does not use
# up an attempt.  A configured rate below Airbyte's limit is never
# exceeded, and then nothing is refused at all.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

LIMIT=${TA_RATE_LIMIT:-10}
N=150
tap_plan 8
engine_setup
forget_tenants 'rl-%'
forget_tenants 'rc-%'
ta_standin POST /_control/reset '{"latency_ms": 20}' >/dev/null
set_setting tenant_airbyte.max_attempts 2
trap 'reset_setting tenant_airbyte.max_attempts; reset_setting tenant_airbyte.max_requests_per_second; ta_standin POST /_control/reset >/dev/null' EXIT

# --- discovered: no configured rate ------------------------------------------------
ta_standin POST /_control/limits "{\"rate_limit\": $LIMIT}" >/dev/null
start=$(date +%s.%N)
enqueue_created rl $N
# what worker_status shows while the deliveries are under way
wait_until "(SELECT allowed_requests_per_second IS NOT NULL FROM tenant_airbyte.worker_status)" 30 >/dev/null
sleep 3
rate=$(q "SELECT coalesce(round(allowed_requests_per_second)::text, 'unlimited') FROM tenant_airbyte.worker_status")
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'rl-%' AND status IN ('done', 'dead')) = $N" 240)" t \
	"all $N deliveries finished under a limit of $LIMIT requests/s"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'rl-%' AND status = 'dead'")" 0 \
	"none ended dead (max_attempts 2)"
tap_is "$(exactly_once rl $N "$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Tenant rl ")")" ok \
	"every tenant has exactly one workspace"

# the share of 429s, by when the request arrived: the first 3 s, the rest
shares=$(json_eval "$(standin_requests 'POST /workspaces' 'Tenant rl ')" "
(lambda rs, t0: (lambda early, late: '%.3f %.3f %d %d' % (
    sum(r['status'] == 429 for r in early) / max(1, len(early)),
    sum(r['status'] == 429 for r in late) / max(1, len(late)), len(early), len(late)))(
    [r for r in rs if r['arrived_us'] / 1e6 < t0 + 3], [r for r in rs if r['arrived_us'] / 1e6 >= t0 + 3]))(
    d['requests'], min(r['arrived_us'] for r in d['requests']) / 1e6)")
read -r early late n_early n_late <<<"$shares"
echo "# share of 429s: $early of $n_early requests in the first 3 s, $late of $n_late after"
tap_ok $(python3 -c "import sys; sys.exit(0 if float('$late') < float('$early') and float('$late') < 0.10 else 1)"; echo $?) \
	"the share of 429s falls after the first seconds ($early -> $late), below 10%"
tap_ok $([ "$rate" != unlimited ] && [ "$rate" -le $((LIMIT * 2)) ]; echo $?) \
	"while they ran, worker_status showed the rate the worker had settled on ($rate/s for a limit of $LIMIT/s)"
tap_ok $([ "$(q "SELECT rate_limited_answers FROM tenant_airbyte.worker_status")" -gt 0 ]; echo $?) \
	"... and counts the 429s it got"

# --- configured below the limit -------------------------------------------------------
ta_standin POST /_control/reset_counters >/dev/null
set_setting tenant_airbyte.max_requests_per_second $((LIMIT * 4 / 5))
sleep 2
enqueue_created rc 40
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'rc-%' AND status = 'done') = 40" 120)" t \
	"with max_requests_per_second $((LIMIT * 4 / 5)) all 40 deliveries end done"
tap_is "$(json_eval "$(ta_standin GET /_control/limits)" 'd["rate_limited"]')" 0 \
	"... and Airbyte refused none of their requests"

exit $((TAP_FAILED > 0))

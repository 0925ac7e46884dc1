#!/usr/bin/env bash
# claim_ahead.t: the worker claims and steps a few operations beyond its
# window, so that a slot that frees is refilled at once, and still never
# has more than max_concurrency requests in flight.  One claimed ahead
# that waits too long for a slot (here every request takes 3.5 s and the
# wait allowed is half of lease_ms - http_timeout_ms, 2.5 s) is given up
# before its lease could run out during its request; the lease returns
# it, it reconciles by name and ends done, exactly once.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 7
engine_setup
forget_tenants 'ahead-%'
cleanup()
{
	reset_setting tenant_airbyte.max_concurrency
	reset_setting tenant_airbyte.http_timeout_ms
	reset_setting tenant_airbyte.lease_ms
	ta_standin POST /_control/reset >/dev/null
	forget_tenants 'ahead-%'
}
trap cleanup EXIT
ta_standin POST /_control/reset '{"latency_ms": 3500}' >/dev/null
set_setting tenant_airbyte.max_concurrency 8
set_setting tenant_airbyte.http_timeout_ms 5000
set_setting tenant_airbyte.lease_ms 10000
log_start=$(wc -l <"$TA_PGLOG")

enqueue_created ahead 16
# 8 in the window, a quarter of it (2) claimed ahead
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'ahead-%' AND status = 'in_flight') = 10" 10)" t \
	"the worker holds 10 claims with a window of 8: two are claimed ahead"
sleep 1
tap_is "$(json_eval "$(ta_standin GET /_control/counters)" 'd["in_flight"]')" 8 \
	"... and Airbyte has 8 requests in flight, no more"
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'ahead-%' AND status = 'done') = 16" 90)" t \
	"every delivery ends done"
counters=$(ta_standin GET /_control/counters)
tap_is "$(exactly_once ahead 16 "$counters")" ok "exactly one workspace per tenant, each recorded"
peak=$(json_eval "$counters" 'd["peak_in_flight"]')
tap_ok $([ "$peak" -le 8 ]; echo $?) "never more than max_concurrency (8) requests in flight (peak $peak)"
given_up=$(tail -n +"$log_start" "$TA_PGLOG" | grep -c 'waited 2500 ms for a free slot; it is given up')
tap_is "$given_up" 2 "the two claimed ahead waited 3.5 s for a slot and were given up, saying so"
tap_is "$(q "SELECT count(*) FILTER (WHERE attempts = 2) || ' ' || count(*) FILTER (WHERE status = 'done')
	FROM tenant_airbyte.operations WHERE tenant_id LIKE 'ahead-%'")" "2 16" \
	"they came back through their leases and ended done on their second attempt"

exit $((TAP_FAILED > 0))

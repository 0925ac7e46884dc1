#!/usr/bin/env bash
# budget_circuit.t: the API token is revoked (every request 401) for
# REVOKE_S seconds (TA_REVOKE_S, default 120: two minutes, many probe
# intervals), then restored.  The circuit opens, the worker sends only a
# probe per tenant_airbyte.circuit_probe_interval_s meanwhile, nothing
# ends dead (max_attempts 2), and once the token works again the circuit
# closes and every delivery completes, each tenant provisioned once.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

REVOKE_S=${TA_REVOKE_S:-120}
PROBE_S=5
N=40
tap_plan 9
engine_setup
forget_tenants 'cb-%'
forget_tenants 'cbwarm-%'
ta_standin POST /_control/reset '{"latency_ms": 10}' >/dev/null
set_setting tenant_airbyte.max_attempts 2
set_setting tenant_airbyte.circuit_probe_interval_s $PROBE_S
trap 'reset_setting tenant_airbyte.max_attempts; reset_setting tenant_airbyte.circuit_probe_interval_s; ta_standin POST /_control/reset >/dev/null' EXIT

# the circuit closes once anything succeeds: start from a known state
q "SELECT tenant_airbyte.provision_tenant('cbwarm-1', 'Warm circuit')" >/dev/null

ta_standin POST /_control/limits '{"revoked": true}' >/dev/null
revoked_at=$(date +%s)
enqueue_created cb $N
tap_is "$(wait_until "(SELECT circuit FROM tenant_airbyte.worker_status) IN ('open', 'probing')" 60)" t \
	"with every request answered 401 the circuit opens"
sleep 2
ta_standin POST /_control/reset_counters >/dev/null
counted_from=$(date +%s)

dead_seen=0
while [ $(($(date +%s) - revoked_at)) -lt "$REVOKE_S" ]; do
	d=$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'cb-%' AND status IN ('dead', 'failed')")
	[ "$d" -gt "$dead_seen" ] && dead_seen=$d
	sleep 2
done
open_s=$(($(date +%s) - counted_from))
requests=$(json_eval "$(ta_standin GET /_control/limits)" 'd["revoked_answers"]')
tap_is "$dead_seen" 0 "no delivery ended dead or failed during ${REVOKE_S} s of refused credentials"
tap_ok $([ "$requests" -le $((open_s / PROBE_S + 3)) ]; echo $?) \
	"while open, the worker sent only probes: $requests requests in $open_s s (one per ${PROBE_S} s)"
tap_ok $([ "$requests" -ge 1 ]; echo $?) "... but it did probe"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'cb-%' AND status = 'done'")" 0 \
	"nothing was provisioned meanwhile"
tap_ok $([ "$(q "SELECT max(attempts) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'cb-%'")" -le 2 ]; echo $?) \
	"the waiting deliveries kept their attempts"

ta_standin POST /_control/limits '{"revoked": false}' >/dev/null
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'cb-%' AND status = 'done') = $N" $((PROBE_S * 4 + 60)))" t \
	"once the token works again, all $N deliveries end done"
tap_is "$(q "SELECT circuit FROM tenant_airbyte.worker_status")" closed "the circuit is closed again"
tap_is "$(exactly_once cb $N "$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Tenant cb ")")" ok \
	"every tenant has exactly one workspace"

forget_tenants 'cb-%'
forget_tenants 'cbwarm-%'
exit $((TAP_FAILED > 0))

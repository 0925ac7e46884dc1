#!/usr/bin/env bash
# attempts_counted_at_claim.t: an attempt counts from the moment the
# worker claims the work, not when it records a result.
#
# 1. A create that never answers, and the worker killed (SIGKILL) each
#    time it is in flight: while in flight the operation already shows the
#    attempt counted; after max_attempts (3) crashes it ends dead, and its
#    delivery too, saying why; Airbyte saw exactly 3 creates.  Counting
#    at record time instead would retry such a delivery forever.
# 2. A create that always answers 429 (transient, known not to have
#    taken effect): exactly max_attempts requests reach Airbyte, then the
#    operation ends dead.  Asserted from the stand-in's request log, so
#    an off-by-one in the engine cannot hide behind a clamped counter.
# Before the operation engine there was no tenant_airbyte.operations.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

MAX=3
tap_plan 13
engine_setup
forget_tenants 'crashy-org-%'
forget_tenants 'busy-org-%'
ta_standin POST /_control/reset >/dev/null
set_setting tenant_airbyte.max_attempts $MAX
trap 'reset_setting tenant_airbyte.max_attempts; forget_tenants "crashy-org-%"; forget_tenants "busy-org-%"; ta_standin POST /_control/reset >/dev/null' EXIT

# --- 1. the worker dies on every attempt ------------------------------------------------
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "ms": 300000, "name_prefix": "Crash Every"}' >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'crashy-org-1', 'Crash Every Time')" >/dev/null

in_flight_counted=0
kills=0
for k in $(seq 1 $MAX); do
	if [ "$(wait_requests "$k" 'POST /workspaces' 'Crash Every' 120)" != t ]; then
		echo "# attempt $k never reached Airbyte"
		break
	fi
	seen=$(q "SELECT status || ' ' || attempts FROM tenant_airbyte.operations WHERE tenant_id = 'crashy-org-1' AND kind = 'provision'" 2>&1)
	echo "# attempt $k in flight: operation says '$seen'"
	[ "$seen" = "in_flight $k" ] && in_flight_counted=$((in_flight_counted + 1))
	pid=$(worker_pid)
	[ -n "$pid" ] && kill -9 "$pid" && kills=$((kills + 1))
	# the postmaster reinitialises everything; wait for the new worker
	for i in $(seq 1 600); do
		newpid=$(worker_pid 2>/dev/null)
		[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && break
		sleep 0.1
	done
done
tap_is "$kills" $MAX "the worker was killed while each of the $MAX attempts was in flight"
tap_is "$in_flight_counted" $MAX "each time, the operation in flight already showed that attempt counted"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id = 'crashy-org-1' AND kind = 'provision' AND status = 'dead')" 60)" t \
	"after $MAX crashes the operation ends dead"
tap_is "$(q "SELECT attempts FROM tenant_airbyte.operations WHERE tenant_id = 'crashy-org-1' AND kind = 'provision'" 2>&1)" $MAX \
	"... having used exactly max_attempts attempts"
err=$(q "SELECT last_error FROM tenant_airbyte.operations WHERE tenant_id = 'crashy-org-1' AND kind = 'provision'" 2>&1)
tap_ok $(echo "$err" | grep -qiE "attempt.*$MAX|$MAX.*attempt"; echo $?) "... saying it ran out of attempts (last_error: $err)"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'crashy-org-1' AND status = 'dead')" 60)" t \
	"its delivery ends dead too"
sleep 2
tap_is "$(json_eval "$(standin_requests 'POST /workspaces' 'Crash Every')" 'len(d["requests"])')" $MAX \
	"Airbyte received exactly $MAX creates: none after the last attempt"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'crashy-org-1'")" 0 "no workspace is recorded"

# --- 2. always 429 ------------------------------------------------------------------------------
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "429", "name_prefix": "Always Busy"}' >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'busy-org-1', 'Always Busy')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'busy-org-1' AND status = 'dead')" 90)" t \
	"a delivery whose create always gets 429 ends dead"
tap_is "$(q "SELECT status || ' ' || attempts FROM tenant_airbyte.operations WHERE tenant_id = 'busy-org-1' AND kind = 'provision'" 2>&1)" "dead $MAX" \
	"... its operation dead after $MAX attempts"
sleep 2
tap_is "$(json_eval "$(standin_requests 'POST /workspaces' 'Always Busy')" 'len(d["requests"])')" $MAX \
	"Airbyte received exactly max_attempts ($MAX) creates"
tap_is "$(json_eval "$(standin_requests 'POST /workspaces' 'Always Busy')" 'sorted(set(r["status"] for r in d["requests"]))')" "[429]" \
	"... each answered 429"
tap_ok $(q "SELECT last_error FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'busy-org-1'" | grep -q 429; echo $?) \
	"the delivery's last_error names the 429"

exit $((TAP_FAILED > 0))

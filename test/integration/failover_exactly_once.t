#!/usr/bin/env bash
# failover_exactly_once.t: exactly one workspace per tenant across a
# failover.  A primary and a synchronous streaming standby on 127.0.0.1,
# tenant_airbyte preloaded on both and serving the same database; 300
# tenant.created deliveries with Airbyte answering after 200 ms; the
# primary's postmaster and all its processes killed with SIGKILL while
# creates are in flight (Airbyte carries them out, the answers are lost);
# the standby promoted.  Its worker finishes the work: every tenant has
# exactly one workspace in Airbyte and one row, nothing ends dead.
#
# Exactly-once across failover rests on synchronous replication: an
# operation's intent (tenant, exact name) is committed, and so on the
# standby, before its first request is sent, so the promoted standby
# reconciles by name instead of creating again.  Before the operation
# engine the intent was a file under the primary's $PGDATA, which the
# standby never had.
#
# Runs its own pair on TA_PORT + 22 / + 23 and its own stand-in on
# TA_STANDIN_PORT + 22.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/standby.sh

N=300
tap_plan 9
base_port=$TA_PORT
export TA_STANDIN_PORT=$((${TA_STANDIN_PORT:-18080} + 22))
ta_pair_init "${TA_WORKDIR}-failover" $((base_port + 22)) $((base_port + 23)) postgres ||
	{ echo "# could not start the primary"; exit 1; }
trap 'ta_standin_stop; cp "$TA_PAIR_DIR"/*.log "${TA_WORKDIR}-failover-logs/" 2>/dev/null; ta_pair_stop' EXIT
mkdir -p "${TA_WORKDIR}-failover-logs"
export PGPORT=$TA_PRIMARY_PORT
ta_standin_start "$TA_PAIR_DIR/standin.log" || { echo "# could not start the stand-in"; exit 1; }
q "ALTER SYSTEM SET tenant_airbyte.max_concurrency = 8" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "CREATE EXTENSION tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
tap_ok $? "the primary's worker runs"

ta_standby_create
tap_ok $? "a synchronous streaming standby follows (pg_basebackup -R, synchronous_standby_names)"

ta_standin POST /_control/reset '{"latency_ms": 200}' >/dev/null
enqueue_created fail $N

# Mid-run: the moment the stand-in holds several creates (each answered
# after 200 ms), at least 60 having been sent.  Polled in one process
# every 10 ms, and the crash follows at once, so the answers are lost.
mid=$(python3 - "$TA_STANDIN_URL" <<'PY'
import json, sys, time, urllib.request
deadline = time.time() + 120
while time.time() < deadline:
    with urllib.request.urlopen(sys.argv[1] + "/_control/counters", timeout=10) as r:
        c = json.load(r)
    if c["requests"].get("POST /workspaces", 0) >= 60 and c["in_flight"] >= 4:
        print("t %d" % c["in_flight"])
        sys.exit(0)
    time.sleep(0.01)
print("f")
PY
)
ta_crash_primary
crashed=$?
sent=$(json_eval "$(ta_standin GET /_control/counters)" 'd["requests"].get("POST /workspaces", 0)')
tap_ok $([ "${mid%% *}" = t ] && [ "$crashed" -eq 0 ] && [ "$sent" -lt $N ]; echo $?) \
	"the primary was killed with SIGKILL mid-run ($sent of $N creates sent)"
# Those requests still arrive and take effect; their answers go nowhere.
echo "# creates in flight just before the crash: ${mid#* }"
for i in $(seq 1 100); do
	[ "$(json_eval "$(ta_standin GET /_control/counters)" 'd["in_flight"]')" -eq 0 ] && break
	sleep 0.1
done

ta_promote_standby
tap_ok $? "the standby is promoted"
export PGPORT=$TA_STANDBY_PORT
wait_for_worker 60 >/dev/null
tap_ok $? "the promoted standby's worker runs"

tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'fail-%' AND status = 'done') = $N" 240)" t \
	"the promoted standby finishes: all $N deliveries end done"
counters=$(ta_standin GET /_control/counters)
tap_is "$(exactly_once fail $N "$counters")" ok \
	"every tenant has exactly one workspace in Airbyte and one row"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'fail-%' AND status <> 'done'")" 0 \
	"nothing is left pending, in flight or dead"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE status = 'dead'" 2>&1)" 0 "no operation ends dead"
echo "# creates in all: $(json_eval "$counters" 'd["requests"].get("POST /workspaces", 0)'), list pages: $(json_eval "$counters" 'd["requests"].get("GET /workspaces", 0)')"

exit $((TAP_FAILED > 0))

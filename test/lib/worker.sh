# test/lib/worker.sh: helpers for the background worker's integration
# tests.  Source after test/lib/cluster.sh.
#
#   (TAP helpers: test/lib/tap.sh)
#   q SQL                      one value from the worker's database
#   wait_until SQL SECONDS     poll (inside the server, every 10 ms) until
#                              SQL is true or SECONDS pass; prints t or f
#   poll_until SQL SECONDS EVERY
#                              the same, polled from outside every EVERY
#                              seconds, each check a transaction of its own:
#                              for benchmarks, since wait_until's DO block
#                              holds one snapshot (and so the xmin horizon)
#                              until it ends, which keeps every row the
#                              worker updated meanwhile from being pruned
#   worker_pid                 the worker's pid, empty when it is not running
#   wait_for_worker SECONDS    until a worker is running; prints its pid
#   own_standin OFFSET NAME    for a test that stops Airbyte: a stand-in of
#                              its own on TA_STANDIN_PORT + OFFSET (log in
#                              $OWN_STANDIN_LOG), and at exit the cluster
#                              back on the shared one, settings in
#                              OWN_STANDIN_RESET reset

. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
WORKER_DB=${WORKER_DB:-postgres}

q()
{
	PGOPTIONS='-c client_min_messages=warning' \
		"$TA_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$WORKER_DB" -c "$1"
}

wait_until()
{
	local cond=$1 seconds=$2
	q "DO \$\$
		DECLARE deadline timestamptz := clock_timestamp() + interval '$seconds seconds';
		DECLARE met boolean;
		BEGIN
			LOOP
				EXECUTE \$q\$SELECT ($cond)\$q\$ INTO met;
				EXIT WHEN met OR clock_timestamp() > deadline;
				PERFORM pg_sleep(0.01);
			END LOOP;
			RAISE WARNING '%', coalesce(met, false);
		END \$\$" 2>&1 | sed -n 's/^WARNING:  \(.*\)$/\1/p' | sed 's/true/t/;s/false/f/'
}

poll_until()
{
	local cond=$1 seconds=$2 every=$3 deadline
	deadline=$(($(date +%s) + seconds))
	while [ "$(date +%s)" -le "$deadline" ]; do
		if [ "$(q "SELECT ($cond)")" = t ]; then
			echo t
			return 0
		fi
		sleep "$every"
	done
	echo f
}

worker_pid()
{
	q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'tenant_airbyte worker'"
}

wait_for_worker()
{
	local seconds=$1 i
	for i in $(seq 1 $((seconds * 10))); do
		local pid
		pid=$(worker_pid 2>/dev/null)
		if [ -n "$pid" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# json_eval JSON EXPR: evaluate a Python expression over the parsed JSON d,
# e.g. json_eval "$(ta_standin GET /_control/counters)" 'd["peak_in_flight"]'
json_eval()
{
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# set_setting NAME VALUE: ALTER SYSTEM + reload, for the worker's settings
set_setting()
{
	q "ALTER SYSTEM SET $1 = '$2'" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}

# reset_setting NAME
reset_setting()
{
	q "ALTER SYSTEM RESET $1" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}

# enqueue_created PREFIX N: N tenant.created deliveries for tenants
# PREFIX-1 .. PREFIX-N, in one transaction
enqueue_created()
{
	q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
	   SELECT 'tenant.created', '$1-' || g, 'Tenant $1 ' || g FROM generate_series(1, $2) g" >/dev/null
}

# exactly_once PREFIX N COUNTERS: "ok" when each of the N tenants has
# exactly one live workspace in the stand-in and one active row here,
# otherwise what is wrong
exactly_once()
{
	local prefix=$1 n=$2 counters=$3 rows
	rows=$(q "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE '$prefix-%' AND status = 'active'")
	python3 - "$prefix" "$n" "$rows" "$counters" <<'PY'
import json, sys
prefix, n, rows, counters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
live = {k: v for k, v in counters["live_workspaces_by_name"].items() if k.startswith("Tenant %s " % prefix)}
problems = []
if rows != n:
    problems.append("%d rows, want %d" % (rows, n))
if len(live) != n:
    problems.append("%d workspace names live in the stand-in, want %d" % (len(live), n))
dups = [k for k, v in live.items() if v != 1]
if dups:
    problems.append("%d names with more than one workspace, e.g. %s" % (len(dups), dups[:3]))
print("ok" if not problems else "; ".join(problems))
PY
}

# use_standin: point the worker at the stand-in test/run started (another
# suite may have changed tenant_airbyte.api_url or api_token meanwhile)
use_standin()
{
	q "ALTER SYSTEM SET tenant_airbyte.api_url = '$TA_STANDIN_URL/v1'" >/dev/null
	q "ALTER SYSTEM SET tenant_airbyte.api_token = '${TA_STANDIN_TOKEN:-standin-token}'" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}

own_standin()
{
	own_standin_url=$(q "SHOW tenant_airbyte.api_url")
	TA_STANDIN_PORT=$((${TA_STANDIN_PORT:-18080} + $1))
	OWN_STANDIN_LOG=$TA_WORKDIR/$2-standin.log
	OWN_STANDIN_RESET=${OWN_STANDIN_RESET:-}
	trap own_standin_finish EXIT
	ta_standin_start "$OWN_STANDIN_LOG"
}

own_standin_finish()
{
	local setting
	ta_standin_stop
	q "ALTER SYSTEM SET tenant_airbyte.api_url = '$own_standin_url'" >/dev/null
	for setting in $OWN_STANDIN_RESET; do
		q "ALTER SYSTEM RESET $setting" >/dev/null
	done
	q "SELECT pg_reload_conf()" >/dev/null
}

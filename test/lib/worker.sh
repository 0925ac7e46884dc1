# test/lib/worker.sh: helpers for the background worker's integration
# tests.  Source after test/lib/cluster.sh.
#
#   tap_plan N                 print the TAP plan
#   tap_ok COND NAME           "ok"/"not ok" for a shell condition's status
#   tap_is GOT WANT NAME       compare two strings, show both on failure
#   q SQL                      one value from the worker's database
#   wait_until SQL SECONDS     poll (inside the server, every 10 ms) until
#                              SQL is true or SECONDS pass; prints t or f
#   worker_pid                 the worker's pid, empty when it is not running
#   wait_for_worker SECONDS    until a worker is running; prints its pid

TAP_N=0
TAP_FAILED=0
WORKER_DB=${WORKER_DB:-postgres}

tap_plan() { echo "1..$1"; }

tap_ok()
{
	local status=$1 name=$2
	TAP_N=$((TAP_N + 1))
	if [ "$status" -eq 0 ]; then
		echo "ok $TAP_N - $name"
	else
		echo "not ok $TAP_N - $name"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

tap_is()
{
	local got=$1 want=$2 name=$3
	if [ "$got" = "$want" ]; then
		tap_ok 0 "$name"
	else
		tap_ok 1 "$name"
		echo "#   got:  '$got'"
		echo "#   want: '$want'"
	fi
}

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

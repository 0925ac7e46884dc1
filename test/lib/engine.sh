# test/lib/engine.sh: helpers for the tests of the operation engine (every
# Airbyte effect is an operation row that only the worker carries out).
# Source after test/lib/cluster.sh, test/lib/standin.sh and test/lib/worker.sh.
#
#   engine_setup               the extension in the worker's database, the
#                              worker running, pointed at the stand-in
#                              test/run started; exits when there is none
#   forget_tenants PATTERN     delete what earlier runs left for tenants
#                              whose id is LIKE PATTERN (rows and operations)
#   psql_bg OUTFILE APPNAME SQL...
#                              psql in the background, as postgres, each
#                              SQL its own -c; sets BG_PID
#   wait_requests N ROUTE PREFIX SECONDS
#                              until the stand-in received at least N
#                              requests on ROUTE whose body name starts with
#                              PREFIX ("" for any); t or f
#   request_times ROUTE PREFIX the arrival times (seconds, float) of those
#                              requests, one a line
#   created_count PREFIX       workspaces created in the stand-in (API
#                              requests) whose name starts with PREFIX
#   live_count PREFIX          live workspaces whose name starts with PREFIX
#   rolsuper ROLE              t or f

engine_setup()
{
	if [ -z "${TA_STANDIN_URL:-}" ]; then
		echo "# the stand-in is not running (test/run starts it)"
		exit 1
	fi
	q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
	wait_for_worker 30 >/dev/null || { echo "# the worker is not running"; exit 1; }
	use_standin
}

forget_tenants()
{
	q "DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE '$1'" >/dev/null 2>&1
	q "DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE '$1'" >/dev/null 2>&1
	q "DELETE FROM tenant_airbyte.operations WHERE tenant_id LIKE '$1'" >/dev/null 2>&1
	return 0
}

psql_bg()
{
	local out=$1 app=$2 args=() s
	shift 2
	for s in "$@"; do
		args+=(-c "$s")
	done
	PGAPPNAME=$app "$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" "${args[@]}" >"$out" 2>&1 &
	BG_PID=$!
}

# standin_requests ROUTE PREFIX: the stand-in's request log, filtered
standin_requests()
{
	curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/requests" \
		--data-urlencode "route=$1" ${2:+--data-urlencode "name_prefix=$2"}
}

wait_requests()
{
	local n=$1 route=$2 prefix=$3 seconds=$4 deadline
	deadline=$(($(date +%s) + seconds))
	while [ "$(date +%s)" -le "$deadline" ]; do
		if [ "$(json_eval "$(standin_requests "$route" "$prefix")" 'len(d["requests"])')" -ge "$n" ]; then
			echo t
			return 0
		fi
		sleep 0.1
	done
	echo f
}

request_times()
{
	json_eval "$(standin_requests "$1" "$2")" '"\n".join("%.6f" % (r["arrived_us"] / 1e6) for r in d["requests"])'
}

created_count()
{
	json_eval "$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=$1")" \
		'sum(d["workspaces_created_by_name"].values())'
}

live_count()
{
	json_eval "$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=$1")" \
		'sum(d["live_workspaces_by_name"].values())'
}

rolsuper()
{
	q "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) '$1'"
}

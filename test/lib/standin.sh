# test/lib/standin.sh: start and stop the Airbyte stand-in
# (test/airbyte_standin.py) and point the test cluster at it.  Source it
# after test/lib/cluster.sh.
#
#   ta_standin_start LOGFILE   start on 127.0.0.1:$TA_STANDIN_PORT (default
#                              18080), wait until it answers, export
#                              TA_STANDIN_URL and STANDIN_PID, and set
#                              tenant_airbyte.api_url / api_token with
#                              ALTER SYSTEM + pg_reload_conf()
#                              With TA_STANDIN_SERVER=fast it starts
#                              bench/fast_standin.js (Node.js) instead:
#                              the benchmarks' stand-in, which serves only
#                              provisioning's requests, far faster
#   ta_standin_stop            stop it
#   ta_standin METHOD PATH [JSON]
#                              one control or API call, prints the body;
#                              e.g. ta_standin POST /_control/reset
#
# The token the stand-in accepts is $TA_STANDIN_TOKEN (standin-token); its
# client credentials are standin-client / standin-secret.

TA_STANDIN_PORT=${TA_STANDIN_PORT:-18080}
TA_STANDIN_TOKEN=${TA_STANDIN_TOKEN:-standin-token}
export TA_STANDIN_PORT TA_STANDIN_TOKEN

ta_standin()
{
	local method=$1 path=$2 body=${3:-}
	if [ -n "$body" ]; then
		curl -sS --max-time 10 -X "$method" -H 'Content-Type: application/json' \
			--data "$body" "$TA_STANDIN_URL$path"
	else
		curl -sS --max-time 10 -X "$method" "$TA_STANDIN_URL$path"
	fi
}

ta_standin_start()
{
	local log=${1:-/dev/null} root i
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	export TA_STANDIN_URL="http://127.0.0.1:$TA_STANDIN_PORT"
	# Another stand-in (another run, another checkout) on this port would
	# answer our health check and then get reset by our tests: refuse.
	if curl -s -o /dev/null --max-time 1 "$TA_STANDIN_URL/_control/health" 2>/dev/null; then
		echo "ta_standin_start: something already listens on 127.0.0.1:$TA_STANDIN_PORT; set TA_STANDIN_PORT to a free port" >&2
		return 1
	fi
	# The stand-in checks request bodies with jsonschema: use a python3
	# that has it (the one on PATH, else Debian's python3-jsonschema).
	local python=python3
	python3 -c 'import jsonschema' 2>/dev/null || python=/usr/bin/python3
	if [ "${TA_STANDIN_SERVER:-}" = fast ]; then
		node "$root/bench/fast_standin.js" --port "$TA_STANDIN_PORT" >"$log" 2>&1 &
	else
		"$python" "$root/test/airbyte_standin.py" --port "$TA_STANDIN_PORT" >"$log" 2>&1 &
	fi
	STANDIN_PID=$!
	export STANDIN_PID
	for i in $(seq 1 100); do
		if curl -sf --max-time 1 "$TA_STANDIN_URL/_control/health" >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$STANDIN_PID" 2>/dev/null; then
			echo "ta_standin_start: the stand-in exited; see $log" >&2
			cat "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	curl -sf --max-time 1 "$TA_STANDIN_URL/_control/health" >/dev/null 2>&1 ||
		{ echo "ta_standin_start: no answer on $TA_STANDIN_URL" >&2; return 1; }
	kill -0 "$STANDIN_PID" 2>/dev/null ||
		{ echo "ta_standin_start: the stand-in exited (port taken?); see $log" >&2; return 1; }
	ta_psql -d postgres \
		-c "ALTER SYSTEM SET tenant_airbyte.api_url = '$TA_STANDIN_URL/v1'" \
		-c "ALTER SYSTEM SET tenant_airbyte.api_token = '$TA_STANDIN_TOKEN'" \
		-c "SELECT pg_reload_conf()" >/dev/null
}

ta_standin_stop()
{
	if [ -n "${STANDIN_PID:-}" ]; then
		kill "$STANDIN_PID" 2>/dev/null
		wait "$STANDIN_PID" 2>/dev/null
		STANDIN_PID=
	fi
}

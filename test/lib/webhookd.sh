# test/lib/webhookd.sh: start and stop tenant_airbyte_webhookd for tests,
# the demo and benchmarks.  Source test/lib/cluster.sh first.
#
#   ta_webhookd_start PORT [OPTION...]
#       Starts the shim on 127.0.0.1:PORT against the test cluster's
#       database $TA_WEBHOOKD_DB (default postgres), with any extra options,
#       and waits until it answers.  Sets TA_WEBHOOKD_PID, TA_WEBHOOKD_URL
#       and TA_WEBHOOKD_LOG ($TA_WORKDIR/webhookd-PORT.log).
#   ta_webhookd_stop
#       SIGTERM, then waits for it; returns the shim's exit status.

ta_webhookd_start()
{
	local port=$1
	shift
	local db=${TA_WEBHOOKD_DB:-postgres}
	local i

	TA_WEBHOOKD_LOG=$TA_WORKDIR/webhookd-$port.log
	TA_WEBHOOKD_URL=http://127.0.0.1:$port
	"$TA_BINDIR/tenant_airbyte_webhookd" --listen "127.0.0.1:$port" \
		--conninfo "host=127.0.0.1 port=$TA_PORT user=postgres dbname=$db" \
		--log-file "$TA_WEBHOOKD_LOG" "$@" 2>>"$TA_WEBHOOKD_LOG" &
	TA_WEBHOOKD_PID=$!
	export TA_WEBHOOKD_PID TA_WEBHOOKD_URL TA_WEBHOOKD_LOG
	for i in $(seq 1 100); do
		if curl -s -o /dev/null "$TA_WEBHOOKD_URL/metrics" 2>/dev/null; then
			return 0
		fi
		kill -0 "$TA_WEBHOOKD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "ta_webhookd_start: the shim did not come up on port $port; log:" >&2
	cat "$TA_WEBHOOKD_LOG" >&2
	return 1
}

ta_webhookd_stop()
{
	local rc

	[ -n "${TA_WEBHOOKD_PID:-}" ] || return 0
	kill -TERM "$TA_WEBHOOKD_PID" 2>/dev/null
	wait "$TA_WEBHOOKD_PID"
	rc=$?
	TA_WEBHOOKD_PID=
	return $rc
}

# ta_free_port: a TCP port on 127.0.0.1 that nobody listens on right now,
# from TA_PORT+1 to TA_PORT+50 (next to the test cluster's port, outside
# Linux's ephemeral range 32768-60999, where a port can be taken at any
# moment as the source port of an outgoing connection).  Successive calls
# give different ports.
TA_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ta_free_port()
{
	python3 "$TA_LIB_DIR/free_port.py"
}

# ta_webhookd_echo_database DB: a fresh database with only the echo stand-in
# (test/lib/webhookd_echo.sql), for tests of the shim alone.
ta_webhookd_echo_database()
{
	local db=$1 lib
	lib=$(dirname "${BASH_SOURCE[0]}")
	ta_psql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" &&
		ta_psql -d "$db" -f "$lib/webhookd_echo.sql"
}

# ta_webhookd_database DB: a fresh database with the extension.
ta_webhookd_database()
{
	local db=$1
	ta_psql -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" &&
		ta_psql -d "$db" -c 'CREATE EXTENSION tenant_airbyte'
}

# ta_base64url: stdin to unpadded base64url (RFC 7515), with openssl.
ta_base64url()
{
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# ta_frontegg_jwt SECRET [PAYLOAD_JSON]: what Frontegg puts in
# x-webhook-secret, an HS256 JWT signed with the secret's bytes, made with
# the openssl command line (independent of the extension's code).
ta_frontegg_jwt()
{
	local secret=$1 now payload header signing
	now=$(date +%s)
	payload=${2:-"{\"iat\":$now,\"exp\":$((now + 600))}"}
	header=$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | ta_base64url)
	payload=$(printf '%s' "$payload" | ta_base64url)
	signing="$header.$payload"
	printf '%s.%s' "$signing" \
		"$(printf '%s' "$signing" | openssl dgst -sha256 -hmac "$secret" -binary | ta_base64url)"
}

# test/lib/webhookd.sh: start and stop tenant_airbyte_webhookd for tests,
# the demo and benchmarks.  Source test/lib/cluster.sh first.
#
#   ta_webhookd_start PORT [OPTION...]
#       Starts the shim on 127.0.0.1:PORT against the test cluster's
#       database $TA_WEBHOOKD_DB (default postgres), with any extra options,
#       and waits until it answers.  Sets TA_WEBHOOKD_PID, TA_WEBHOOKD_URL
#       and TA_WEBHOOKD_LOG (default $TA_WORKDIR/webhookd-PORT.log).
#   ta_webhookd_stop
#       SIGTERM, then waits for it; returns the shim's exit status.

ta_webhookd_start()
{
	local port=$1
	shift
	local db=${TA_WEBHOOKD_DB:-postgres}
	local i

	TA_WEBHOOKD_LOG=${TA_WEBHOOKD_LOG:-$TA_WORKDIR/webhookd-$port.log}
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

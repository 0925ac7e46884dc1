#!/usr/bin/env bash
# webhookd_service.t: packaging/tenant_airbyte_webhookd.service is a unit
# systemd accepts without a single warning, with the hardening it
# promises (its own user, no capabilities, read-only system, ...), an
# overall exposure systemd-analyze rates "OK"; and the example
# environment file beside it starts the shim as the unit would.
# Without systemd-analyze on the machine the unit checks are skipped.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

UNIT=packaging/tenant_airbyte_webhookd.service
ENVFILE=packaging/tenant_airbyte_webhookd.env
W=$TA_WORKDIR/webhookd-service
rm -rf "$W"
mkdir -p "$W"

# The unit names Debian's path of the program; check it against ours.
sed "s|/usr/lib/postgresql/15/bin/tenant_airbyte_webhookd|$TA_BINDIR/tenant_airbyte_webhookd|" \
	"$UNIT" >"$W/tenant_airbyte_webhookd.service"

if command -v systemd-analyze >/dev/null; then
	(cd "$W" && systemd-analyze verify ./tenant_airbyte_webhookd.service) >"$W/verify" 2>&1
	rc=$?
	is "$rc $(cat "$W/verify")" "0 " "systemd-analyze verify accepts the unit without a warning"
	(cd "$W" && systemd-analyze security --offline=yes ./tenant_airbyte_webhookd.service) >"$W/security" 2>&1
	level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' "$W/security")
	ok $(awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }'; echo $?) \
		"systemd-analyze security rates its exposure at most 2.0 of 10 (${level:-?})"
else
	echo "ok 1 # SKIP systemd-analyze is not installed"
	echo "ok 2 # SKIP systemd-analyze is not installed"
	TAP_COUNT=2
fi

for directive in 'User=webhookd' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
	'PrivateTmp=yes' 'PrivateDevices=yes' 'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' \
	'ProtectControlGroups=yes' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
	'CapabilityBoundingSet=' 'Restart=on-failure' 'EnvironmentFile=/etc/tenant_airbyte/webhookd.env'; do
	grep -qx -- "$directive" "$UNIT"
	ok $? "the unit sets $directive"
done
! grep -q -- '--log-file' <(grep '^ExecStart=' "$UNIT")
ok $? "the unit logs to the journal by default (no --log-file on its command line)"

# Start the shim the way the unit does, with the example file's settings
# (its ports and database moved to the test's).
DB=ta_webhookd_service
ta_webhookd_echo_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }
PORT=$(ta_free_port)
MPORT=$(ta_free_port)
(
	set -a
	. "$ENVFILE"
	set +a
	WEBHOOKD_LISTEN=127.0.0.1:$PORT
	WEBHOOKD_OPTIONS=${WEBHOOKD_OPTIONS//127.0.0.1:9187/127.0.0.1:$MPORT}
	PGHOST=127.0.0.1 PGPORT=$TA_PORT PGUSER=postgres PGDATABASE=$DB
	# shellcheck disable=SC2086 # split like systemd's $WEBHOOKD_OPTIONS
	exec "$TA_BINDIR/tenant_airbyte_webhookd" --listen "$WEBHOOKD_LISTEN" $WEBHOOKD_OPTIONS
) 2>"$W/shim.log" &
SHIM=$!
up=1
for i in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ] && { up=0; break; }
	sleep 0.1
done
ok $up "the example environment file's options start the shim"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics")" 200 \
	"... with /metrics on its own address, as the example sets"
kill -TERM $SHIM
wait $SHIM
is "$?" 0 "... and SIGTERM (systemctl stop) exits 0"
grep -q 'listening on http://127.0.0.1:' "$W/shim.log"
ok $? "... having logged to stderr (the journal)"
ta_psql -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null

tap_done

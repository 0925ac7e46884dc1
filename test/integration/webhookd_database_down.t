#!/usr/bin/env bash
# webhookd_database_down.t: while the database is stopped every delivery is
# answered 503 with Retry-After (never 2xx, so Frontegg retries), the shim
# stays up, and once the database is back deliveries are accepted again
# without restarting the shim.  Every 2xx it gave is a committed row.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

DB=ta_webhookd_down
W=$TA_WORKDIR/webhookd-down
rm -rf "$W"
mkdir -p "$W"
ta_webhookd_echo_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }
PORT=$(ta_free_port)
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$PORT" --pool-size 4 ||
	{ echo "Bail out! the shim did not start"; exit 1; }
URL=$TA_WEBHOOKD_URL
SHIM_PID=$TA_WEBHOOKD_PID
trap 'ta_cluster_start >/dev/null 2>&1; ta_webhookd_stop' EXIT

# send LABEL: one delivery; appends "code delivery_id retry_after" to $W/answers.LABEL
send()
{
	curl -s -o /dev/null -D - -m 20 --data-binary "{\"n\":\"$1-$RANDOM$RANDOM\"}" \
		"$URL/api/webhooks/frontegg" |
		tr -d '\r' | tr '[:upper:]' '[:lower:]' | awk '
			/^http\// { code = $2 }
			/^x-delivery-id:/ { id = $2 }
			/^retry-after:/ { ra = $2 }
			END { print (code ? code : "000"), (id ? id : "-"), (ra ? ra : "-") }' >>"$W/answers.$2"
}

# senders LABEL: four senders in a loop until $W/stop exists
SENDERS=()
senders()
{
	local s
	SENDERS=()
	for s in 1 2 3 4; do
		(while [ ! -e "$W/stop" ]; do send "$1$s" "$1"; done) &
		SENDERS+=($!)
	done
}

for i in 1 2 3 4 5; do send before before; done
is "$(awk '{print $1}' "$W/answers.before" | sort -u | tr '\n' ' ')" "202 " "with the database up, deliveries are accepted"

# Stop the database while four senders keep delivering.
senders transition
sleep 1
ta_cluster_stop fast
sleep 1
touch "$W/stop"
wait "${SENDERS[@]}"
rm -f "$W/stop"
bad=$(awk '$1 != 202 && $1 != 503' "$W/answers.transition" | wc -l)
is "$bad" 0 "while the database stops, every answer is 202 or 503 ($(wc -l <"$W/answers.transition") answers)"
grep -q '^503 ' "$W/answers.transition" && grep -q '^202 ' "$W/answers.transition"
ok $? "... and the senders saw both, so the stop happened under load"

for i in $(seq 1 20); do send down down; done
is "$(awk '{print $1}' "$W/answers.down" | sort -u | tr '\n' ' ')" "503 " "with the database down, all 20 deliveries get 503"
is "$(awk '$3 == "-"' "$W/answers.down" | wc -l)" 0 "every 503 carries Retry-After"
is "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" 503 "/health is 503 while the database is down"
kill -0 "$SHIM_PID" 2>/dev/null
ok $? "the shim is still running"

# Bring the database back while senders keep delivering.
senders recovery
ta_cluster_start
accepted=0
for i in $(seq 1 60); do
	grep -q '^202 ' "$W/answers.recovery" 2>/dev/null && { accepted=1; break; }
	sleep 0.5
done
sleep 1
touch "$W/stop"
wait "${SENDERS[@]}"
ok $((1 - accepted)) "after the database is back, deliveries are accepted again"
bad=$(awk '$1 != 202 && $1 != 503' "$W/answers.recovery" | wc -l)
is "$bad" 0 "while the database comes back, every answer is 202 or 503"
is "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" 200 "/health is 200 again"
is "$TA_WEBHOOKD_PID" "$SHIM_PID" "... and it is the same shim process"
kill -0 "$SHIM_PID" 2>/dev/null
ok $? "the shim never exited"

# Every 2xx the shim gave names a committed row.
ids=$(cat "$W"/answers.* | awk '$1 ~ /^2/ { print $2 }' | sort -un | paste -sd, -)
n2xx=$(cat "$W"/answers.* | awk '$1 ~ /^2/' | wc -l)
found=$(ta_psql -d $DB -At -c "SELECT count(*) FROM tenant_airbyte.received WHERE delivery_id IN (${ids:-0})")
is "$found" "$n2xx" "each of the $n2xx answers 2xx names a committed row"

grep -q 'database unavailable' "$TA_WEBHOOKD_LOG" && grep -q 'database connection restored' "$TA_WEBHOOKD_LOG"
ok $? "the log says when the database went away and when it came back"

ta_webhookd_stop
is "$?" 0 "SIGTERM exits 0"
trap - EXIT
ta_psql -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
tap_done

#!/usr/bin/env bash
# webhookd_protocol.t: the shim hands each delivery to receive_webhook()
# exactly as it arrived (route's event, every header as jsonb, the raw body
# byte for byte) and answers exactly what the database returned; it refuses
# what it must refuse itself (404, 405, 413, 403) without touching the
# database; /health, /metrics, the log, SIGHUP and SIGTERM.
#
# Runs against the echo stand-in (test/lib/webhookd_echo.sql), so it tests
# the shim alone, whatever the extension's receive_webhook() does.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

DB=ta_webhookd_protocol
W=$TA_WORKDIR/webhookd-protocol
rm -rf "$W"
mkdir -p "$W"
ta_webhookd_echo_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }

PORT=$(ta_free_port)
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$PORT" --max-body 4096 ||
	{ echo "Bail out! the shim did not start"; exit 1; }
URL=$TA_WEBHOOKD_URL
SECRET_VALUE=never-log-this-$RANDOM$RANDOM

# req METHOD PATH [curl args...]: prints the status; headers in $W/h, body in $W/b
req()
{
	local method=$1 path=$2
	shift 2
	curl -s -o "$W/b" -D "$W/h" -w '%{http_code}' -X "$method" "$@" "$URL$path"
}
header() { tr -d '\r' <"$W/h" | sed -n "s/^$1: //Ip" | head -1; }
sql() { ta_psql -d $DB -At -c "$1"; }
rows() { sql 'SELECT count(*) FROM tenant_airbyte.received'; }

# --- each route passes its event ---------------------------------------
is "$(req POST /api/webhooks/frontegg/tenant-created --data-binary '{"n":1}')" 202 "tenant-created route answers 202 from the database"
id=$(header x-delivery-id)
is "$(sql "SELECT event FROM tenant_airbyte.received WHERE delivery_id = $id")" tenant-created "tenant-created route passes event 'tenant-created'"
is "$(cat "$W/b")" recorded "the answer's body is the database's message"
is "$(req POST /api/webhooks/frontegg/tenant-deleted --data-binary '{"n":2}')" 202 "tenant-deleted route answers 202"
id=$(header x-delivery-id)
is "$(sql "SELECT event FROM tenant_airbyte.received WHERE delivery_id = $id")" tenant-deleted "tenant-deleted route passes event 'tenant-deleted'"
is "$(req POST /api/webhooks/frontegg --data-binary '{"n":3}')" 202 "generic route answers 202"
id=$(header x-delivery-id)
is "$(sql "SELECT event IS NULL FROM tenant_airbyte.received WHERE delivery_id = $id")" t "generic route passes a NULL event (read from the body)"

# --- headers arrive as a jsonb object, untouched ------------------------
code=$(req POST /api/webhooks/frontegg -H "X-Webhook-Secret: $SECRET_VALUE" \
	-H 'X-Quote: a"b\c' -H 'X-Dup: one' -H 'X-Dup: two' -H 'Content-Type: application/json' \
	--data-binary '{"n":4}')
id=$(header x-delivery-id)
is "$code" 202 "a delivery with odd headers is accepted"
is "$(sql "SELECT headers->>'x-webhook-secret' FROM tenant_airbyte.received WHERE delivery_id = $id")" "$SECRET_VALUE" "the signature header reaches the database unchanged, its name lower-cased"
is "$(sql "SELECT headers->>'x-quote' FROM tenant_airbyte.received WHERE delivery_id = $id")" 'a"b\c' "quotes and backslashes in a header value survive"
is "$(sql "SELECT headers->>'x-dup' FROM tenant_airbyte.received WHERE delivery_id = $id")" "one, two" "a repeated header is joined with ', ' (RFC 9110)"
is "$(sql "SELECT headers->>'content-type' FROM tenant_airbyte.received WHERE delivery_id = $id")" application/json "standard headers are passed too"

# --- the body arrives byte for byte -------------------------------------
printf 'a\000b\377\376{"x":"\\u0000"}\r\n' >"$W/binary"
code=$(req POST /api/webhooks/frontegg --data-binary @"$W/binary")
id=$(header x-delivery-id)
is "$code" 202 "a body with NUL and invalid UTF-8 bytes is accepted"
is "$(sql "SELECT encode(body, 'hex') FROM tenant_airbyte.received WHERE delivery_id = $id")" "$(od -An -tx1 -v "$W/binary" | tr -d ' \n')" "the body is stored byte for byte"
code=$(req POST /api/webhooks/frontegg -H 'Content-Type:')
id=$(header x-delivery-id)
is "$(sql "SELECT length(body) FROM tenant_airbyte.received WHERE delivery_id = $id")" 0 "an empty body is passed as an empty bytea, not NULL"
head -c 4096 /dev/urandom >"$W/max"
is "$(req POST /api/webhooks/frontegg --data-binary @"$W/max")" 202 "a body of exactly --max-body bytes is accepted"

# --- the database's answer is relayed -----------------------------------
is "$(req POST /api/webhooks/frontegg -H 'x-test-status: 401' -d x)" 401 "a 401 from receive_webhook is relayed"
is "$(req POST /api/webhooks/frontegg -H 'x-test-status: 200' -d x)" 200 "a 200 (duplicate) from receive_webhook is relayed"
is "$(req POST /api/webhooks/frontegg -H 'x-test-status: 400' -d x)" 400 "a 400 from receive_webhook is relayed"
is "$(req POST /api/webhooks/frontegg -H 'x-test-status: 999' -d x)" 500 "a status that is not HTTP becomes 500"
is "$(req POST /api/webhooks/frontegg -H 'x-test-error: 40001' -d x)" 503 "a serialization failure becomes 503"
ok $([ -n "$(header retry-after)" ]; echo $?) "... with Retry-After"
is "$(req POST /api/webhooks/frontegg -H 'x-test-error: 42P01' -d x)" 500 "any other SQL error becomes 500"
printf 'X-Bad: \377\376\r\n' >"$W/badheader"
is "$(req POST /api/webhooks/frontegg -H @"$W/badheader" -d x)" 400 "a header that is not UTF-8 is refused with 400"

# --- what the shim refuses by itself, without touching the database -----
before=$(rows)
is "$(req GET /nowhere)" 404 "an unknown path is 404"
is "$(req POST /api/webhooks/frontegg/tenant-updated -d x)" 404 "an unknown event route is 404"
is "$(req GET /api/webhooks/frontegg)" 405 "GET on a webhook route is 405"
is "$(header allow)" POST "... with Allow: POST"
is "$(req DELETE /health)" 405 "DELETE /health is 405"
head -c 5000 /dev/zero >"$W/big"
is "$(req POST /api/webhooks/frontegg --data-binary @"$W/big")" 413 "a declared body over --max-body is 413"
is "$(req POST /api/webhooks/frontegg -H 'Transfer-Encoding: chunked' --data-binary @"$W/big")" 413 "a chunked body that grows over --max-body is 413"
is "$(rows)" "$before" "nothing refused by the shim reached the database"

# --- /health and /metrics -----------------------------------------------
is "$(req GET /health)" 200 "/health is 200 while the database answers"
is "$(req GET /metrics)" 200 "/metrics is 200"
grep -q '^tenant_airbyte_webhookd_requests_total{route="frontegg",code="202"} [1-9]' "$W/b"
ok $? "/metrics counts requests by route and status"
grep -q '^tenant_airbyte_webhookd_requests_total{route="frontegg",code="413"} 2$' "$W/b"
ok $? "/metrics counts the two 413s"
grep -q '^tenant_airbyte_webhookd_request_duration_seconds_bucket{route="frontegg",le="+Inf"} [1-9]' "$W/b"
ok $? "/metrics has a latency histogram"
grep -q '^tenant_airbyte_webhookd_database_errors_total{kind="query"} [1-9]' "$W/b"
ok $? "/metrics counts database errors"

# --- the log: one line per request, never a header value ----------------
grep -q "POST /api/webhooks/frontegg status=202 delivery_id=[0-9]* duration_ms=" "$TA_WEBHOOKD_LOG"
ok $? "the log has a line with method, path, status, delivery id and duration"
! grep -q "$SECRET_VALUE" "$TA_WEBHOOKD_LOG"
ok $? "the log never contains a header value"

mv "$TA_WEBHOOKD_LOG" "$W/rotated.log"
kill -HUP "$TA_WEBHOOKD_PID"
sleep 0.3
req GET /health >/dev/null
sleep 0.2
grep -q 'GET /health status=200' "$TA_WEBHOOKD_LOG" 2>/dev/null
ok $? "SIGHUP reopens the log file under its name"

# --- --allow ------------------------------------------------------------
SAVED_PID=$TA_WEBHOOKD_PID SAVED_URL=$URL SAVED_LOG=$TA_WEBHOOKD_LOG
P2=$(ta_free_port)
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$P2" --allow 99.81.198.187/32 --allow 10.0.0.0/8 --allow ::1/128
URL=$TA_WEBHOOKD_URL
before=$(rows)
is "$(req POST /api/webhooks/frontegg -d x)" 403 "a peer outside every --allow rule gets 403"
is "$(req GET /metrics)" 403 "... on every route"
is "$(rows)" "$before" "... and nothing reaches the database"
ta_webhookd_stop
P3=$(ta_free_port)
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$P3" --allow 10.0.0.0/8 --allow 127.0.0.0/8
URL=$TA_WEBHOOKD_URL
is "$(req POST /api/webhooks/frontegg -d x)" 202 "a peer inside an --allow rule is served"
ta_webhookd_stop
TA_WEBHOOKD_PID=$SAVED_PID URL=$SAVED_URL TA_WEBHOOKD_LOG=$SAVED_LOG

# --- SIGTERM: the request in flight is answered, then exit 0 ------------
curl -s -o "$W/slow" -w '%{http_code}' -H 'x-test-sleep: 1' -d slow "$URL/api/webhooks/frontegg" >"$W/slowcode" &
curl_pid=$!
sleep 0.4
kill -TERM "$TA_WEBHOOKD_PID"
wait "$TA_WEBHOOKD_PID"
rc=$?
TA_WEBHOOKD_PID=
wait $curl_pid
is "$rc" 0 "SIGTERM exits 0"
is "$(cat "$W/slowcode")" 202 "the request in flight at SIGTERM still got its 202"
is "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" 000 "after SIGTERM nothing listens"

# --- command line -------------------------------------------------------
"$TA_BINDIR/tenant_airbyte_webhookd" --help | grep -q -- '--max-body'
ok $? "--help describes the options"
for option in --tls-cert --tls-key --metrics-listen --request-timeout --max-connections-per-ip; do
	"$TA_BINDIR/tenant_airbyte_webhookd" --help | grep -q -- "^  $option "
	ok $? "... among them $option"
done
"$TA_BINDIR/tenant_airbyte_webhookd" --help | grep -q -- 'default 32; 0: no limit'
ok $? "... and the per-address limit's default, 32"
"$TA_BINDIR/tenant_airbyte_webhookd" --version | grep -q '^tenant_airbyte_webhookd [0-9]'
ok $? "--version prints the version"
"$TA_BINDIR/tenant_airbyte_webhookd" --allow 300.1.1.1/8 2>"$W/err"
is "$?" 2 "a bad --allow exits 2"
grep -q 'invalid --allow "300.1.1.1/8"' "$W/err"
ok $? "... saying which value is wrong"
"$TA_BINDIR/tenant_airbyte_webhookd" --listen "127.0.0.1:$P3" --max-body -1 2>/dev/null
is "$?" 2 "a negative --max-body exits 2"

ta_psql -d postgres -c "DROP DATABASE $DB WITH (FORCE)"
tap_done

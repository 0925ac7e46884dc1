#!/usr/bin/env bash
# webhookd_tls.t: the shim terminates HTTPS itself with --tls-cert and
# --tls-key.  A certificate for 127.0.0.1 is made here with openssl; curl
# trusts only it (--cacert).  A signed Frontegg delivery over HTTPS is
# accepted by the real receive_webhook(); plain HTTP to the HTTPS port
# gets no HTTP answer; a client that does not trust the certificate is
# refused; a bad or mismatched key, a missing file, or one of the two
# options alone stops the start with a message that names the problem.
# Also --metrics-listen: /metrics on its own address, not on the main one.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

DB=ta_webhookd_tls
SECRET="tls-test-secret-$RANDOM$RANDOM"
W=$TA_WORKDIR/webhookd-tls
BIN=$TA_BINDIR/tenant_airbyte_webhookd
CONNINFO="host=127.0.0.1 port=$TA_PORT user=postgres dbname=$DB"
rm -rf "$W"
mkdir -p "$W"

cleanup()
{
	[ -n "${SHIM:-}" ] && kill "$SHIM" 2>/dev/null && wait "$SHIM" 2>/dev/null
	ta_psql -d postgres -c 'ALTER SYSTEM RESET tenant_airbyte.webhook_secret' \
		-c 'SELECT pg_reload_conf()' >/dev/null 2>&1
	ta_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

ta_webhookd_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }
ta_psql -d postgres -c "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" \
	-c 'SELECT pg_reload_conf()' >/dev/null
sleep 0.3

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1,DNS:localhost \
	-keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null ||
	{ echo "Bail out! openssl could not make a certificate"; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other \
	-keyout "$W/other-key.pem" -out "$W/other-cert.pem" 2>/dev/null
printf -- '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n' >"$W/garbage-key.pem"

# wait_https PORT: until the shim answers /health over HTTPS
wait_https()
{
	local i
	for i in $(seq 1 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/cert.pem" "https://127.0.0.1:$1/health")" = 200 ] && return 0
		kill -0 "$SHIM" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

PORT=$(ta_free_port)
MPORT=$(ta_free_port)
"$BIN" --listen "127.0.0.1:$PORT" --tls-cert "$W/cert.pem" --tls-key "$W/key.pem" \
	--metrics-listen "127.0.0.1:$MPORT" --conninfo "$CONNINFO" --log-file "$W/shim.log" 2>>"$W/shim.log" &
SHIM=$!
wait_https "$PORT"
ok $? "the shim serves HTTPS with --tls-cert and --tls-key"

TENANT=tls-tenant-$RANDOM
BODY="{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$TENANT\"},\"tenant\":{\"name\":\"TLS $TENANT\"}}"
code=$(curl -s -o "$W/b" -D "$W/h" -w '%{http_code}' --cacert "$W/cert.pem" \
	-H 'Content-Type: application/json' -H "x-webhook-secret: $(ta_frontegg_jwt "$SECRET")" \
	--data-binary "$BODY" "https://127.0.0.1:$PORT/api/webhooks/frontegg")
is "$code" 202 "a signed delivery over HTTPS is accepted (202)"
is "$(ta_psql -d $DB -At -c "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = '$TENANT'")" 1 \
	"... and its inbox row is committed"

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT/health")
is "$code" 000 "plain HTTP to the HTTPS port gets no HTTP answer"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$W/other-cert.pem" "https://127.0.0.1:$PORT/health")
is "$code" 000 "a client that trusts another certificate refuses the connection"
is "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/cert.pem" "https://127.0.0.1:$PORT/metrics")" 404 \
	"with --metrics-listen, /metrics is not served on the main address"
is "$(curl -s -o "$W/metrics" -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics")" 200 \
	"... but on its own address"
grep -q '^tenant_airbyte_webhookd_requests_total{route="frontegg",code="202"} 1$' "$W/metrics"
ok $? "... counting the requests of the main address"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/health")" 404 \
	"the metrics address serves nothing else"
is "$(curl -s -o /dev/null -w '%{http_code}' -d x "http://127.0.0.1:$MPORT/api/webhooks/frontegg")" 404 \
	"... no webhook route either"
# The answer the shim writes in libmicrohttpd's place (request.c) also
# goes out over TLS, once.
python3 - "$PORT" "$W/cert.pem" >"$W/cl" 2>&1 <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10),
                     server_hostname="127.0.0.1") as s:
    s.sendall(b"POST /api/webhooks/frontegg HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"
              b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError):
        pass
print(data.count(b"HTTP/1.1 "), data[:12].decode("latin1"))
PY
is "$(cat "$W/cl")" "1 HTTP/1.1 400" "over HTTPS, Content-Length: -1 gets one 400 and nothing more"

kill -TERM "$SHIM"
wait "$SHIM"
is "$?" 0 "SIGTERM exits 0"
SHIM=

# start_fails NAME OPTIONS...: the shim must exit non-zero at once; its
# stderr and log in $W/err
start_fails()
{
	local port rc
	port=$(ta_free_port)
	: >"$W/err"
	timeout 20 "$BIN" --listen "127.0.0.1:$port" --conninfo "$CONNINFO" "$@" >>"$W/err" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
}

start_fails --tls-cert "$W/cert.pem" --tls-key "$W/garbage-key.pem"
ok $? "a key file that is not a key stops the start"
grep -q "could not start the HTTPS server .*garbage-key.pem\" is not a valid PEM pair" "$W/err"
ok $? "... with a message naming the files"
start_fails --tls-cert "$W/cert.pem" --tls-key "$W/other-key.pem"
ok $? "a key that does not match the certificate stops the start"
grep -q "do not match" "$W/err"
ok $? "... saying they do not match"
start_fails --tls-cert "$W/cert.pem" --tls-key "$W/missing.pem"
ok $? "a missing key file stops the start"
grep -q 'could not open --tls-key file ".*missing.pem": No such file' "$W/err"
ok $? "... naming the file"
start_fails --tls-cert "$W/cert.pem"
is "$?" 0 "--tls-cert without --tls-key stops the start"
grep -q -- '--tls-cert and --tls-key go together' "$W/err"
ok $? "... saying both are needed"
! grep -q "BEGIN\|bm90IGEga2V5" "$W/shim.log" "$W/err"
ok $? "no key material reaches the log"

tap_done

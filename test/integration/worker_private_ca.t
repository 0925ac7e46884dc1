#!/usr/bin/env bash
# worker_private_ca.t: a self-managed Airbyte behind a private certificate
# authority.  An HTTPS stand-in with a certificate from a CA made here by
# openssl is refused (by backends and by the worker) until
# tenant_airbyte.ca_file names that CA, and accepted then; verification
# stays on: the host name must still match the certificate.
#
# Uses TA_STANDIN_PORT + 11.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null

DIR=$TA_WORKDIR/private_ca
rm -rf "$DIR"
mkdir -p "$DIR"
TLS_PORT=$((${TA_STANDIN_PORT:-18080} + 11))
TLS_URL=https://127.0.0.1:$TLS_PORT

# A CA, and a certificate for 127.0.0.1 signed by it.
{
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tenant_airbyte test CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$DIR/ca.key" -out "$DIR/ca.pem" &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$DIR/server.key" -out "$DIR/server.csr" &&
	printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$DIR/server.ext" &&
	openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
		-days 2 -extfile "$DIR/server.ext" -out "$DIR/server.pem"
} >"$DIR/openssl.log" 2>&1 || { cat "$DIR/openssl.log"; echo "Bail out! openssl failed"; exit 1; }
chmod 644 "$DIR"/*.pem

shared_url=$(q "SHOW tenant_airbyte.api_url")
python3 test/airbyte_standin.py --port "$TLS_PORT" --tls-cert "$DIR/server.pem" --tls-key "$DIR/server.key" \
	>"$DIR/standin.log" 2>&1 &
tls_pid=$!
finish()
{
	kill "$tls_pid" 2>/dev/null
	q "ALTER SYSTEM SET tenant_airbyte.api_url = '$shared_url'" >/dev/null
	q "ALTER SYSTEM RESET tenant_airbyte.ca_file" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
}
trap finish EXIT
tls() { curl -sS --max-time 10 --cacert "$DIR/ca.pem" "$@"; }
for _ in $(seq 1 100); do
	tls -o /dev/null "$TLS_URL/_control/health" 2>/dev/null && break
	sleep 0.1
done
tls -o /dev/null "$TLS_URL/_control/health" || { cat "$DIR/standin.log"; echo "Bail out! no HTTPS stand-in"; exit 1; }
creates() { json_eval "$(tls "$TLS_URL/_control/counters")" 'd["requests"].get("POST /workspaces", 0)'; }

q "ALTER SYSTEM SET tenant_airbyte.api_url = '$TLS_URL/v1'" >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.api_token = '$TA_STANDIN_TOKEN'" >/dev/null
q "ALTER SYSTEM RESET tenant_airbyte.ca_file" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5

# 1-4. Without the setting: the system trust store does not know the CA.
out=$(q "SELECT tenant_airbyte.provision_tenant('privca-1', 'Private CA One')" 2>&1)
echo "$out" | grep -qi "certificate"
tap_ok $? "without tenant_airbyte.ca_file a backend's request is refused over the certificate"
echo "$out" | sed 's/^/#   /'
enqueue_created privca-w 1
tap_is "$(wait_until "(SELECT status IN ('failed', 'dead') FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'privca-w-1')" 60)" t \
	"... and so is the worker's: the delivery fails"
tap_is "$(q "SELECT last_error ILIKE '%certificate%' FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'privca-w-1'")" t \
	"... saying it was the certificate"
tap_is "$(creates)" 0 "... and no request reached Airbyte"

# 5-6. A relative path is refused.
out=$(q "ALTER SYSTEM SET tenant_airbyte.ca_file = 'ca.pem'" 2>&1)
tap_ok $([ $? -ne 0 ] && echo "$out" | grep -q "absolute path"; echo $?) \
	"a relative tenant_airbyte.ca_file is refused"
out=$(PGOPTIONS='-c client_min_messages=warning' "$TA_BINDIR/psql" -X -q -At -d "$WORKER_DB" \
	-c "SET tenant_airbyte.ca_file = '$DIR/ca.pem'" 2>&1)
tap_ok $([ $? -ne 0 ]; echo $?) "... and no session can set it for itself"

# 7-9. With the CA named: accepted.
set_setting tenant_airbyte.ca_file "$DIR/ca.pem"
tap_is "$(q "SELECT tenant_airbyte.provision_tenant('privca-1', 'Private CA One')->>'status'")" provisioned \
	"with tenant_airbyte.ca_file a backend provisions through the private CA"
delivery=$(q "SELECT delivery_id FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'privca-w-1'")
q "SELECT tenant_airbyte.requeue($delivery)" >/dev/null
tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $delivery) = 'done'" 60)" t \
	"... and so does the worker"
tap_is "$(creates)" 2 "... two creates, one each"

# 10-11. Verification is still on: a name the certificate does not carry.
q "ALTER SYSTEM SET tenant_airbyte.api_url = 'https://localhost:$TLS_PORT/v1'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
out=$(q "SELECT tenant_airbyte.provision_tenant('privca-2', 'Private CA Two')" 2>&1)
tap_ok $([ $? -ne 0 ]; echo $?) "with the CA trusted, a host name the certificate does not name is still refused"
echo "$out" | sed 's/^/#   /'
tap_is "$(creates)" 2 "... before any request is sent"

tap_done

#!/usr/bin/env bash
# webhookd_frontegg.t: Frontegg deliveries through the shim into the real
# receive_webhook(), with x-webhook-secret tokens made by the openssl
# command line.  The shim connects as a role that may only EXECUTE
# receive_webhook(), as the README recommends.  Each route and status:
# 202 accepted, 200 duplicate (same delivery id, one row), 200 ignored,
# 400 malformed, 401 forged / missing / alg none, 413 too large.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

DB=ta_webhookd_frontegg
ROLE=ta_webhookd_it
SECRET="shim-test-secret-$RANDOM$RANDOM"
W=$TA_WORKDIR/webhookd-frontegg
rm -rf "$W"
mkdir -p "$W"

cleanup()
{
	ta_webhookd_stop >/dev/null 2>&1
	ta_psql -d postgres -c 'ALTER SYSTEM RESET tenant_airbyte.webhook_secret' \
		-c 'SELECT pg_reload_conf()' >/dev/null 2>&1
	ta_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
		-c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
}
trap cleanup EXIT

ta_webhookd_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }
ta_psql -d postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $ROLE" -c "CREATE ROLE $ROLE LOGIN" \
	-c "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" \
	-c 'SELECT pg_reload_conf()' >/dev/null
ta_psql -d $DB -c "GRANT EXECUTE ON FUNCTION tenant_airbyte.receive_webhook(text, jsonb, bytea) TO $ROLE" >/dev/null
sleep 0.3

PORT=$(ta_free_port)
TA_WEBHOOKD_DB="$DB user=$ROLE" ta_webhookd_start "$PORT" ||
	{ echo "Bail out! the shim did not start"; exit 1; }
URL=$TA_WEBHOOKD_URL
TOKEN=$(ta_frontegg_jwt "$SECRET")

# deliver PATH BODY [curl args...]: prints the status; answer in $W/h, $W/b
deliver()
{
	local path=$1 body=$2
	shift 2
	curl -s -o "$W/b" -D "$W/h" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$body" "$@" "$URL$path"
}
delivery_id() { tr -d '\r' <"$W/h" | sed -n 's/^x-delivery-id: //Ip'; }
sql() { ta_psql -d $DB -At -c "$1"; }
tenant_body() { printf '{"eventKey":"%s","eventContext":{"tenantId":"%s"},"tenant":{"name":"Acme %s"}}' "$1" "$2" "$2"; }

T1=tenant-$RANDOM$RANDOM
is "$(deliver /api/webhooks/frontegg/tenant-created "$(tenant_body frontegg.tenant.created "$T1")" -H "X-Webhook-Secret: $TOKEN")" 202 \
	"a signed tenant.created delivery on its route is accepted (202)"
id=$(delivery_id)
is "$(sql "SELECT tenant_id || ' ' || status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = ${id:-0}")" "$T1 pending" \
	"... its committed inbox row is pending for the tenant"
is "$(deliver /api/webhooks/frontegg/tenant-created "$(tenant_body frontegg.tenant.created "$T1")" -H "X-Webhook-Secret: $TOKEN")" 200 \
	"the same delivery again is a duplicate (200)"
is "$(delivery_id)" "$id" "... answered with the first delivery's id"
is "$(sql "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = '$T1'")" 1 "... and still one inbox row"
is "$(sql "SELECT headers ? 'x-webhook-secret' FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $id")" f \
	"the signature header is not stored"

is "$(deliver /api/webhooks/frontegg/tenant-deleted "$(tenant_body frontegg.tenant.deleted "$T1")" -H "X-Webhook-Secret: $TOKEN")" 202 \
	"a signed tenant.deleted delivery on its route is accepted"
is "$(sql "SELECT event FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $(delivery_id)")" tenant.deleted "... as tenant.deleted work"
T2=tenant-$RANDOM$RANDOM
is "$(deliver /api/webhooks/frontegg "$(tenant_body frontegg.tenant.created "$T2")" -H "x-webhook-secret: $TOKEN")" 202 \
	"the generic route takes the event from eventKey"
is "$(sql "SELECT event FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $(delivery_id)")" tenant.created "... as tenant.created work"
is "$(deliver /api/webhooks/frontegg "$(tenant_body frontegg.user.created "$T2")" -H "x-webhook-secret: $TOKEN")" 200 \
	"a user event is recorded and ignored (200)"

rows=$(sql 'SELECT count(*) FROM tenant_airbyte.webhook_inbox')
FORGED=$(ta_frontegg_jwt "not-the-secret")
is "$(deliver /api/webhooks/frontegg/tenant-created "$(tenant_body frontegg.tenant.created forged-$RANDOM)" -H "x-webhook-secret: $FORGED")" 401 \
	"a token signed with another secret is refused (401)"
is "$(deliver /api/webhooks/frontegg/tenant-created "$(tenant_body frontegg.tenant.created missing-$RANDOM)")" 401 \
	"a delivery without x-webhook-secret is refused (401)"
NONE="$(printf '%s' '{"alg":"none","typ":"JWT"}' | ta_base64url).$(printf '{"iat":%s}' "$(date +%s)" | ta_base64url)."
is "$(deliver /api/webhooks/frontegg/tenant-created "$(tenant_body frontegg.tenant.created none-$RANDOM)" -H "x-webhook-secret: $NONE")" 401 \
	"an alg none token is refused (401)"
is "$(deliver /api/webhooks/frontegg/tenant-created 'not json' -H "x-webhook-secret: $TOKEN")" 400 \
	"a signed body that is not JSON is refused (400)"
is "$(deliver /api/webhooks/frontegg '{"eventContext":{"tenantId":"x"}}' -H "x-webhook-secret: $TOKEN")" 400 \
	"the generic route without eventKey is refused (400)"
is "$(sql 'SELECT count(*) FROM tenant_airbyte.webhook_inbox')" "$rows" "nothing refused left an inbox row"

head -c 1048577 /dev/zero | tr '\0' ' ' >"$W/big"
is "$(deliver /api/webhooks/frontegg/tenant-created @"$W/big" -H "x-webhook-secret: $TOKEN")" 413 \
	"a body over 1 MiB is refused by the shim (413)"

! grep -q "$TOKEN" "$TA_WEBHOOKD_LOG"
ok $? "the token never appears in the shim's log"
! grep -q "$TOKEN" "$TA_PGLOG"
ok $? "... nor in the server's log"

ta_webhookd_stop
is "$?" 0 "SIGTERM exits 0"
tap_done

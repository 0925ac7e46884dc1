#!/usr/bin/env bash
# webhook_intake.t: receive_webhook() as the shim will use it.  A role
# that holds only EXECUTE on receive_webhook() enqueues a delivery signed
# by the openssl command line (an implementation independent of the
# extension's), duplicates racing each other become exactly one inbox row,
# and a Frontegg HS256 token made with openssl is accepted.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

DB=ta_webhook_intake_it
ROLE=ta_it_webhookd
SECRET='it-secret-0123456789'
n=0
fail=0

ok()
{
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}

q()
{
	ta_psql -At -d "$DB" "$@"
}

reload()
{
	ta_psql -d postgres -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}

b64url()
{
	openssl base64 -A | tr '+/' '-_' | tr -d '='
}

cleanup()
{
	ta_psql -d postgres -c 'ALTER SYSTEM RESET tenant_airbyte.webhook_secret' \
		-c 'ALTER SYSTEM RESET tenant_airbyte.webhook_auth' >/dev/null 2>&1
	reload
	ta_psql -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
}
trap cleanup EXIT

echo "1..7"

ta_psql -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" \
	-c "DROP ROLE IF EXISTS $ROLE" -c "CREATE ROLE $ROLE LOGIN" >/dev/null
q -c 'CREATE EXTENSION tenant_airbyte' \
	-c "GRANT EXECUTE ON FUNCTION tenant_airbyte.receive_webhook(text, jsonb, bytea) TO $ROLE" >/dev/null
ta_psql -d postgres -c "ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'hmac-sha256'" \
	-c "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" >/dev/null
reload

# deliver AS_ROLE EVENT HEADERS_JSON BODY: prints status|delivery_id|message
deliver()
{
	ta_psql -At -d "$DB" -U "$1" -v event="$2" -v headers="$3" -v body="$4" <<'SQL'
SELECT http_status, delivery_id, message
  FROM tenant_airbyte.receive_webhook(nullif(:'event', ''), :'headers'::jsonb, convert_to(:'body', 'UTF8'));
SQL
}

body='{"eventKey": "frontegg.tenant.created", "eventContext": {"tenantId": "org-it-1"}, "tenant": {"name": "It One"}}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
headers="{\"X-Frontegg-Signature\": \"$sig\", \"Content-Type\": \"application/json\"}"

out=$(deliver "$ROLE" "" "$headers" "$body")
first_id=$(echo "$out" | cut -d'|' -f2)
[ "$(echo "$out" | cut -d'|' -f1)" = 202 ]
ok $? "a role with only EXECUTE on receive_webhook() enqueues an openssl-signed delivery ($out)"

row=$(q -c "SELECT event || ',' || tenant_id || ',' || tenant_name || ',' || status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $first_id")
[ "$row" = "tenant.created,org-it-1,It One,pending" ]
ok $? "the inbox row is pending work for the tenant ($row)"

out=$(deliver "$ROLE" "" "$headers" "$body")
[ "$out" = "200|$first_id|duplicate delivery: already received" ]
ok $? "the same delivery again answers 200 with the first delivery_id"

out=$(deliver "$ROLE" "" "{\"x-frontegg-signature\": \"$sig\"}" "$body ")
[ "$(echo "$out" | cut -d'|' -f1)" = 401 ]
ok $? "the signature does not cover a changed body ($out)"

# Eight identical deliveries at once: one row, one delivery_id for all.
body2='{"eventKey": "frontegg.tenant.created", "eventContext": {"tenantId": "org-it-race"}}'
sig2=$(printf '%s' "$body2" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
tmp=$(mktemp -d)
for i in 1 2 3 4 5 6 7 8; do
	deliver "$ROLE" "" "{\"x-frontegg-signature\": \"$sig2\"}" "$body2" >"$tmp/$i" 2>&1 &
done
wait
ids=$(cut -d'|' -f2 "$tmp"/* | sort -u | wc -l)
accepted=$(grep -c '^202|' "$tmp"/* | awk -F: '{s += $2} END {print s}')
rows=$(q -c "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-it-race'")
rm -rf "$tmp"
[ "$ids" = 1 ] && [ "$accepted" = 1 ] && [ "$rows" = 1 ]
ok $? "8 concurrent copies of a delivery: one 202, one row, one delivery_id (ids=$ids accepted=$accepted rows=$rows)"

# frontegg-jwt: an HS256 token made with openssl.
ta_psql -d postgres -c "ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'frontegg-jwt'" >/dev/null
reload
now=$(date +%s)
input="$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64url).$(printf '{"iat":%d,"exp":%d}' "$now" $((now + 300)) | b64url)"
token="$input.$(printf '%s' "$input" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)"
body3='{"tenantId": "org-it-jwt", "tenantName": "It Jwt"}'
out=$(deliver "$ROLE" "tenant-created" "{\"x-webhook-secret\": \"$token\"}" "$body3")
[ "$(echo "$out" | cut -d'|' -f1)" = 202 ]
ok $? "a Frontegg HS256 token made with openssl is accepted ($out)"

stored=$(q -c "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE headers::text LIKE '%' || split_part('$token', '.', 3) || '%' OR headers ? 'x-webhook-secret'")
[ "$stored" = 0 ]
ok $? "the token is not stored with the delivery"

exit $fail

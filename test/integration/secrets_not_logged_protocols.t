#!/usr/bin/env bash
# secrets_not_logged_protocols.t: no credential reaches the server log,
# with log_statement = all and, separately, with log_min_duration_statement
# = 0, whichever way the statement arrives: simple protocol (psql),
# extended protocol with unnamed and with named prepared statements
# (pgbench -M extended / -M prepared, which send :variables as bind
# parameters), SQL PREPARE / EXECUTE, and the shim's receive_webhook()
# call.  Covered: create_shopify_source() and create_source() credentials,
# authenticate() tokens, receive_webhook() headers (x-webhook-secret,
# Proxy-Authorization), and ALTER SYSTEM on a secret setting however its
# name is spelt (quoted, spaced, with a comment in it).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

DB=ta_log_redaction
W=$TA_WORKDIR/log-redaction
rm -rf "$W"
mkdir -p "$W"
chmod 755 "$W"
M="m$$x$RANDOM"				# every secret below contains it
PSQL=("$TA_BINDIR/psql" -X -q -At -h "$PGHOST" -p "$PGPORT" -U postgres)

cleanup()
{
	ta_webhookd_stop >/dev/null 2>&1
	"${PSQL[@]}" -d postgres -c "ALTER SYSTEM RESET log_statement" \
		-c "ALTER SYSTEM RESET log_min_duration_statement" \
		-c "ALTER SYSTEM RESET tenant_airbyte.client_id" \
		-c "ALTER SYSTEM RESET tenant_airbyte.client_secret" \
		-c "SELECT pg_reload_conf()" >/dev/null 2>&1
	"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -d $DB -c "SET client_min_messages = warning" -c "CREATE EXTENSION tenant_airbyte" >/dev/null

# pgbench SCRIPT MODE VAR=VALUE...: one transaction of SCRIPT, :VARs sent as
# bind parameters in MODE extended or prepared.
pgbench_run()
{
	local script=$1 mode=$2 args=() kv
	shift 2
	for kv in "$@"; do args+=(-D "$kv"); done
	"$TA_BINDIR/pgbench" -n -M "$mode" -t 1 -f "$script" "${args[@]}" \
		-h "$PGHOST" -p "$PGPORT" -U postgres $DB >/dev/null 2>&1
}

cat >"$W/shopify.sql" <<'SQL'
SELECT tenant_airbyte.create_shopify_source(:tenant, :shop, :token);
SQL
cat >"$W/authenticate.sql" <<'SQL'
SELECT tenant_airbyte.authenticate(:token);
SQL
cat >"$W/receive.sql" <<'SQL'
SELECT * FROM tenant_airbyte.receive_webhook('tenant-created', :headers::jsonb, convert_to(:body, 'UTF8'));
SQL

# every_way N: all the statements, secrets tagged with round N
every_way()
{
	local n=$1 cfg
	cfg="{\"shop\": \"acme\", \"credentials\": {\"auth_method\": \"api_password\", \"api_password\": \"shpat_${M}_${n}_cfg\"}}"
	# simple protocol
	"${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.create_shopify_source('no-such-tenant', 'acme', 'shpat_${M}_${n}_simple')" >/dev/null 2>&1
	"${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.authenticate('eyJ${M}_${n}_literal.x.y')" >/dev/null 2>&1
	# extended protocol, unnamed and named statements
	pgbench_run "$W/shopify.sql" extended tenant=no-such-tenant shop=acme "token=shpat_${M}_${n}_ext"
	pgbench_run "$W/shopify.sql" prepared tenant=no-such-tenant shop=acme "token=shpat_${M}_${n}_prep"
	pgbench_run "$W/authenticate.sql" extended "token=eyJ${M}_${n}_bind.x.y"
	pgbench_run "$W/receive.sql" extended \
		"headers={\"x-webhook-secret\": \"eyJ${M}_${n}_jwt.x.y\", \"proxy-authorization\": \"Basic ${M}_${n}_proxy\"}" \
		'body={"tenantId": "t"}'
	# SQL PREPARE / EXECUTE, a working and a failing one (bad JSON quoting the secret)
	"${PSQL[@]}" -d $DB >/dev/null 2>&1 <<SQL
PREPARE cs(text, text, text, jsonb) AS SELECT tenant_airbyte.create_source(\$1, \$2, \$3, \$4);
EXECUTE cs('no-such-tenant', 'shopify', 'n', '$cfg');
EXECUTE cs('no-such-tenant', 'shopify', 'n', '{"api_password": shpat_${M}_${n}_badjson}');
SQL
	# ALTER SYSTEM on secret settings, however the name is spelt
	"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET \"tenant_airbyte\".\"client_secret\" = 'cs_${M}_${n}_quoted'" >/dev/null 2>&1
	"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET tenant_airbyte . client_id = 'ci_${M}_${n}_spaced'" >/dev/null 2>&1
	"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET tenant_airbyte./**/client_secret = 'cs_${M}_${n}_comment'" >/dev/null 2>&1
	"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET TENANT_AIRBYTE.CLIENT_SECRET = 'cs_${M}_${n}_upper'" >/dev/null 2>&1
	# through the shim (extended protocol, its own prepared statement)
	curl -s -o /dev/null -H "x-webhook-secret: eyJ${M}_${n}_shim.x.y" \
		-H "Proxy-Authorization: Basic ${M}_${n}_shimproxy" -H 'Content-Type: application/json' \
		--data-binary '{"tenantId": "t"}' "$TA_WEBHOOKD_URL/api/webhooks/frontegg/tenant-created"
	"${PSQL[@]}" -d postgres -c "ALTER SYSTEM RESET tenant_airbyte.client_id" \
		-c "ALTER SYSTEM RESET tenant_airbyte.client_secret" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

PORT=$(ta_free_port)
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$PORT" || { echo "Bail out! the shim did not start"; exit 1; }

round()
{
	local n=$1 what=$2 offset log
	offset=$(($(stat -c %s "$TA_PGLOG") + 1))
	every_way "$n"
	log=$(tail -c +"$offset" "$TA_PGLOG")
	printf '%s\n' "$log" >"$W/log-$n"
	tap_ok $(grep -q "statement not logged" <<<"$log"; echo $?) \
		"with $what, the statements were logged, as notices that they were not"
	tap_is "$(grep -c "$M" <<<"$log")" 0 "with $what, no credential, token or secret is in the log"
	grep "$M" <<<"$log" | head -20 | sed 's/^/#   /'
}

"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
round 1 "log_statement = all"

"${PSQL[@]}" -d postgres -c "ALTER SYSTEM RESET log_statement" \
	-c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
round 2 "log_min_duration_statement = 0"

# A statement that names none of them is logged as usual.
offset=$(($(stat -c %s "$TA_PGLOG") + 1))
"${PSQL[@]}" -d $DB -c "SELECT 'ordinary-$M' AS plain" >/dev/null
sleep 0.3
tap_ok $(tail -c +"$offset" "$TA_PGLOG" | grep -q "ordinary-$M"; echo $?) \
	"an ordinary statement is still logged in full"

tap_done

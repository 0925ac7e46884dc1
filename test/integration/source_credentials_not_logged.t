#!/usr/bin/env bash
# source_credentials_not_logged: a source's credentials reach neither the
# server log nor an error: not through log_statement, not through the text
# of a failing statement (validation error or Airbyte error), not through
# Airbyte quoting the configuration back, and not into tenant_sources.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh

# In the database the worker serves: only the worker calls Airbyte.
DB=postgres
PSQL=("$TA_BINDIR/psql" -X -q -At -h "$PGHOST" -p "$PGPORT" -U postgres)
n=0
check()
{
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi
}

echo "1..7"
secret="shpat-$$-$RANDOM-sekrit"
"${PSQL[@]}" -d $DB -c "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
# Other suites may have changed the Airbyte settings: point at the stand-in.
"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET tenant_airbyte.api_url = '$TA_STANDIN_URL/v1'" \
	-c "ALTER SYSTEM SET tenant_airbyte.api_token = '$TA_STANDIN_TOKEN'" \
	-c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
python3 test/airbyte_standin.py ctl POST /_control/reset '{"echo_configuration": true}'
sleep 0.3
start_bytes=$(stat -c %s "$TA_PGLOG")

"${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.provision_tenant('creds-0001', 'Creds')" >/dev/null
ok_out=$("${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.create_shopify_source('creds-0001', 'acme', '$secret') ->> 'status'" 2>&1)
bad_out=$("${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.create_source('creds-0001', 'shopify', 'x',
	'{\"shop\": \"https://acme\", \"credentials\": {\"auth_method\": \"api_password\", \"api_password\": \"$secret\"}}')" 2>&1)
airbyte_out=$("${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.create_source('creds-0001', 'no-such-type', 'y',
	'{\"credentials\": {\"access_token\": \"$secret\"}}')" 2>&1)
table=$("${PSQL[@]}" -d $DB -c "SELECT t::text FROM tenant_airbyte.tenant_sources AS t")
sleep 0.3
new_log=$(tail -c +"$((start_bytes + 1))" "$TA_PGLOG")

check "the source was created ($ok_out)" '[ "$ok_out" = created ]'
check "the validation error names the field, not the value" \
	'grep -q "\"shop\" is the store name, not a URL" <<<"$bad_out" && ! grep -q "$secret" <<<"$bad_out"'
check "the Airbyte error quotes the configuration with the credential blanked" \
	'grep -q "\"access_token\": \"\*\*\*\"" <<<"$airbyte_out" && ! grep -q "$secret" <<<"$airbyte_out"'
check "the table holds the source but not the credential" \
	'grep -q "Shopify - acme" <<<"$table" && ! grep -q "$secret" <<<"$table"'
check "log_statement lines for create_*source are replaced" \
	'grep -q "statement not logged: it passes credentials to create_shopify_source()" <<<"$new_log"'
check "the failing statements' errors are still logged" \
	'grep -q "is the store name, not a URL" <<<"$new_log" && grep -q "Airbyte rejected the request" <<<"$new_log"'
check "the credential is nowhere in the server log" '! grep -q "$secret" <<<"$new_log"'

"${PSQL[@]}" -d postgres -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
python3 test/airbyte_standin.py ctl POST /_control/reset

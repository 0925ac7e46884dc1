#!/usr/bin/env bash
# template_secret_not_logged: the password in a pipeline template's
# destination reaches neither the server log nor an error message, not
# through log_statement, not through the text of a failing statement (a
# validation error, or a render that cannot complete), and a role that is
# not a superuser cannot read it back.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh

DB=tenant_airbyte_it_template_secret
PSQL=("$TA_BINDIR/psql" -X -q -At -h "$PGHOST" -p "$PGPORT" -U postgres)
n=0
check()
{
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi
}

echo "1..6"
secret="pg-$$-$RANDOM-sekrit"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
"${PSQL[@]}" -d $DB -c "CREATE EXTENSION tenant_airbyte" -c "CREATE ROLE it_template_app LOGIN" >/dev/null 2>&1
"${PSQL[@]}" -d postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
start_bytes=$(stat -c %s "$TA_PGLOG")

dest="{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db\", \"port\": 5432, \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"airbyte\", \"password\": \"$secret\"}}"
ok_out=$("${PSQL[@]}" -d $DB -c "SELECT 'stored' FROM tenant_airbyte.set_pipeline_template('default', '$dest')" 2>&1)
bad_out=$("${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.set_pipeline_template('default', '$dest', '{\"schedule\": \"hourly\"}')" 2>&1)
app_out=$("${PSQL[@]}" -d $DB -U it_template_app -c "SELECT destination FROM tenant_airbyte.pipeline_templates" 2>&1)
sleep 0.3
new_log=$(tail -c +"$((start_bytes + 1))" "$TA_PGLOG")

check "the template was stored ($ok_out)" '[ "$ok_out" = stored ]'
check "the validation error names the field, not the value" \
	'grep -q "connection.schedule must be" <<<"$bad_out" && ! grep -q "$secret" <<<"$bad_out"'
check "an application role cannot read the template" \
	'grep -q "permission denied" <<<"$app_out" && ! grep -q "$secret" <<<"$app_out"'
check "log_statement lines for set_pipeline_template are replaced" \
	'grep -q "statement not logged: it passes credentials to set_pipeline_template()" <<<"$new_log"'
check "the failing statement's error is still logged" 'grep -q "connection.schedule must be" <<<"$new_log"'
check "the password is nowhere in the server log" '! grep -q "$secret" <<<"$new_log"'

"${PSQL[@]}" -d postgres -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
"${PSQL[@]}" -d postgres -c "DROP DATABASE $DB" -c "DROP ROLE it_template_app" >/dev/null

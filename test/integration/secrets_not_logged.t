#!/usr/bin/env bash
# secrets_not_logged: the value of a secret setting never reaches the
# server log, neither through PostgreSQL's "parameter changed" line on
# reload, nor through a logged or failing ALTER SYSTEM statement.
set -u
. "$(dirname "$0")/../lib/cluster.sh"

echo "1..5"
n=0
check()
{
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi
}

secret="sekrit-$$-$RANDOM-value"
# Other suites rely on the cluster's api_token (the stand-in's): put it back.
saved_token=$(ta_psql -d postgres -At -c "SHOW tenant_airbyte.api_token")
restore_token()
{
	ta_psql -d postgres -v token="$saved_token" >/dev/null <<'SQL'
ALTER SYSTEM SET tenant_airbyte.api_token = :'token';
SELECT pg_reload_conf();
SQL
}
trap restore_token EXIT
start_bytes=$(stat -c %s "$TA_PGLOG")

ta_psql -d postgres -c "ALTER SYSTEM SET log_statement = 'ddl'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
ta_psql -d postgres -c "ALTER SYSTEM SET tenant_airbyte.api_token = '$secret'" \
	-c "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$secret-2'" \
	-c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
# A failing statement that carries a secret (ALTER SYSTEM refuses to run in
# the implicit transaction of a multi-statement string): the error is
# logged, the statement text is not.
ta_psql -d postgres -c "SELECT 1; ALTER SYSTEM SET tenant_airbyte.client_secret = '$secret-3'" >/dev/null 2>&1
sleep 0.3
new_log=$(tail -c +"$((start_bytes + 1))" "$TA_PGLOG")

check "the reload was logged" \
	'grep -q "parameter \"tenant_airbyte.api_token\" changed (value not logged)" <<<"$new_log"'
check "the new secret value is not in the log" \
	'! grep -q "$secret" <<<"$new_log"'
check "the ALTER SYSTEM statement was replaced by a notice that it was not logged" \
	'grep -q "statement not logged: it names the secret setting" <<<"$new_log"'
check "the failing statement's error is still logged" \
	'grep -q "ALTER SYSTEM cannot run inside a transaction block" <<<"$new_log"'

ta_psql -d postgres -c "ALTER SYSTEM RESET tenant_airbyte.webhook_secret" \
	-c "ALTER SYSTEM RESET tenant_airbyte.client_secret" \
	-c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
ordinary=$(tail -c +"$((start_bytes + 1))" "$TA_PGLOG")
check "the secret is still not in the log after reset" \
	'! grep -q "$secret" <<<"$ordinary"'

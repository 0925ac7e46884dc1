#!/usr/bin/env bash
# tenant_data_end_to_end: the seed's Test 7.2 through the real path.  Two
# tenants sign up through the shim (signed Frontegg deliveries): the worker
# provisions each one's workspace and, from the pipeline template, its
# Postgres destination, which logs in as the tenant's own loader into the
# tenant's data schema.  Each connects a Shopify store
# (create_shopify_source), which gets its connection; trigger_sync()
# starts a job in the stand-in, which, when the job succeeds, writes the
# tenant's orders the way Airbyte's Postgres destination does
# (test/standin_loader.py, logging in with the destination's credentials
# over SCRAM).  The application, after authenticate() with tenant A's
# Frontegg access token, sees A's orders through "FROM orders" and none of
# B's, also by B's qualified name.  Then A's loader password is rotated:
# Airbyte's destination is PATCHed with the new one, the old one no
# longer logs in, and the next sync still loads rows.  Purge takes the
# data along.
#
# The key and token are test/pgtap/authenticate_isolation.sql's
# (tenant tap-org-a, issuer https://tap.frontegg.test, expires in 2100).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/webhookd.sh
. test/lib/worker.sh

tap_plan 17
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

JWKS='{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"tap-key-1","n":"uL9DmFzD1UPWP2-i5s0SdKy0rc1XTxNdmlQS3Hp3vQJfrxxrpWCPFgE4iBgxfx4gJfl0OMc-DIlE7ghq4R2QbHqjlCmfxo6rB8XyHJbtHAacVxWP0mC_1Z1YN95TreAdzC6YeY3h60iLAamNj8gKYzyfSGhcKuL8wpG4cm157_-24ggelYuFF474OLgt3Ndz697kLe8sLa8LmgBhbOUcxI0O5dccOqgNTd6q8LVW7Pl-ONd8cjISvYcHxWjcd0oiKWAq0I30U-bZoqYjYK5FrpJufYilTwiQRSH9T3FC24b5Oc989yZw9_BRzKhZOQE60MNONTUlDfh_HAZ1_oVxfQ","e":"AQAB"}]}'
TOKEN_A='eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcC1rZXktMSJ9.eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYSIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWEiXSwicm9sZXMiOlsiYWRtaW4iXX0.GPIzg1s-5cv6Xv6aBdJ6aFYNYbMgBXiebJHzHqD5OuP0oSCq35lDeq_5ggTGfMT49T7varzuPEWwMgtPjoFZqgMYEv_bvFvshx_FdJBCQVcYzVRblDD7xyLox6J3ZFeDCIdvhVck4yPbqVMHG5VjOoKEk9O5uOY_VvI-O3g2DrPq-shoS4S-lgXKdel2oN2YCp-yJ9TvQzoOBEzkOjW4TOlgF0c-McI2cLjA5MK0YTb3AhdnSJVidQfDHnMXG_brbAsa-Lhc80MvHB1MZc2cUiyNImzaaTPYFgLPaFoq30PzkGku5f5KCA541qSWme3VxrVblKJP6zIIQrkss8cjRA'
A=tap-org-a
B=e2e-data-b-$RANDOM
APP=ta_e2e_data_app
SECRET=e2e-data-$RANDOM-$RANDOM

HBA=$TA_PGDATA/pg_hba.conf
cleanup()
{
	ta_webhookd_stop >/dev/null 2>&1
	if [ -f "$TA_WORKDIR/e2e-data-hba.conf" ]; then
		cat "$TA_WORKDIR/e2e-data-hba.conf" >"$HBA"
		rm -f "$TA_WORKDIR/e2e-data-hba.conf"
	fi
	q "DELETE FROM tenant_airbyte.operations WHERE tenant_id IN ('$A', '$B')" >/dev/null
	q "DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
	reset_setting tenant_airbyte.sync_poll_interval_s
	q "DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id IN ('$A', '$B')" >/dev/null
	q "SELECT tenant_airbyte.drop_tenant_data(t) FROM unnest(ARRAY['$A', '$B']) AS t" >/dev/null
	q "DELETE FROM tenant_airbyte.jwt_keys WHERE issuer = 'https://tap.frontegg.test'" >/dev/null
	q "ALTER DATABASE $WORKER_DB RESET tenant_airbyte.tenant_roles" >/dev/null
	q "ALTER SYSTEM RESET tenant_airbyte.webhook_secret" >/dev/null
	q "SELECT pg_reload_conf()" >/dev/null
	q "DO \$\$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP') THEN
		DROP OWNED BY $APP; DROP ROLE $APP; END IF; END \$\$" >/dev/null
}

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
cleanup
trap cleanup EXIT
wait_for_worker 30 >/dev/null
use_standin
q "CREATE ROLE $APP LOGIN" >/dev/null
q "GRANT EXECUTE ON FUNCTION tenant_airbyte.authenticate(text) TO $APP" >/dev/null
q "ALTER DATABASE $WORKER_DB SET tenant_airbyte.tenant_roles = '$APP'" >/dev/null
q "SELECT tenant_airbyte.load_jwks('$JWKS', 'https://tap.frontegg.test')" >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.sync_poll_interval_s = 1" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
ta_standin POST /_control/reset '{"job_pending_ms": 100, "job_running_ms": 300}' >/dev/null

# The loaders log in with their passwords (SCRAM), not by trust, so that a
# password Airbyte does not have cannot load anything.
cp "$HBA" "$TA_WORKDIR/e2e-data-hba.conf"
{
	echo "host all $(q "SELECT tenant_airbyte.loader_role_for('$A')"),$(q "SELECT tenant_airbyte.loader_role_for('$B')") 127.0.0.1/32 scram-sha-256"
	cat "$TA_WORKDIR/e2e-data-hba.conf"
} >"$HBA"
q "SELECT pg_reload_conf()" >/dev/null

# Each tenant's destination: Postgres, this database, the tenant's data
# schema for final and raw tables, the tenant's own loader.
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"127.0.0.1\", \"port\": $TA_PORT,
	  \"database\": \"$WORKER_DB\", \"schema\": \"{{tenant_schema}}\", \"raw_data_schema\": \"{{tenant_schema}}\",
	  \"username\": \"{{loader_user}}\", \"password\": \"{{loader_password}}\"}}',
	'{\"schedule\": \"manual\", \"namespaceDefinition\": \"destination\", \"syncMode\": \"incremental_append\",
	  \"streams\": [\"orders\"]}')" >/dev/null

port=$(ta_free_port)
TA_WEBHOOKD_DB=$WORKER_DB ta_webhookd_start "$port"
tap_ok $? "the shim is up"

signup()
{
	curl -s -o /dev/null -w '%{http_code}' -X POST "$TA_WEBHOOKD_URL/api/webhooks/frontegg/tenant-created" \
		-H 'Content-Type: application/json' -H "x-webhook-secret: $(ta_frontegg_jwt "$SECRET")" \
		--data-binary "{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$1\"},\"tenant\":{\"name\":\"$2\"},\"id\":\"$SECRET\"}"
}
tap_is "$(signup "$A" "Store A") $(signup "$B" "Store B")" "202 202" "both tenants sign up through the shim"
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id IN ('$A', '$B') AND status = 'active') = 2" 60)" t \
	"the worker provisions a workspace for each"

q "SELECT tenant_airbyte.create_shopify_source('$A', 'a-store.myshopify.com', 'shpat_a')" >/dev/null
q "SELECT tenant_airbyte.create_shopify_source('$B', 'b-store.myshopify.com', 'shpat_b')" >/dev/null
tap_is "$(q "SELECT string_agg(s.tenant_id || '=' || (s.airbyte_workspace_id = w.airbyte_workspace_id), ',' ORDER BY s.tenant_id)
	FROM tenant_airbyte.tenant_sources s JOIN tenant_airbyte.tenant_airbyte_workspaces w USING (tenant_id)
	WHERE s.tenant_id IN ('$A', '$B') AND s.source_type = 'shopify'")" "$B=true,$A=true" \
	"each tenant's Shopify source is in its own workspace"

tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.tenant_connections WHERE tenant_id IN ('$A', '$B')) = 2" 60)" t \
	"each tenant's destination is created from the template, and its source gets a connection to it"

# sync TENANT: trigger_sync() for the tenant's connection, then wait until
# the worker's poll records how the job ended; prints that status
sync()
{
	local job
	job=$(q "SELECT airbyte_job_id FROM tenant_airbyte.trigger_sync('$1')")
	[ -n "$job" ] || { echo "no job started"; return; }
	wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_syncs WHERE airbyte_job_id = $job
	            AND status IN ('succeeded', 'failed', 'cancelled'))" 90 >/dev/null
	q "SELECT status FROM tenant_airbyte.tenant_syncs WHERE airbyte_job_id = $job"
}
tap_is "$(sync "$A") $(sync "$B")" "succeeded succeeded" \
	"trigger_sync() starts each tenant's sync in Airbyte, and each job succeeds"

sa=$(q "SELECT data_schema FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$A'")
sb=$(q "SELECT data_schema FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$B'")
tap_is "$(q "SELECT count(*) FROM pg_class c WHERE c.relnamespace IN ('$sa'::regnamespace, '$sb'::regnamespace)
	AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity")" 4 \
	"final and raw tables of both tenants are under forced row-level security"

as_app()
{
	PGOPTIONS='-c client_min_messages=warning' "$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" -U "$APP" \
		-v token="$TOKEN_A" 2>&1
}
out=$(as_app <<SQL
BEGIN;
SELECT tenant_airbyte.authenticate(:'token') ->> 'tenantId';
SELECT string_agg(DISTINCT source, ',') || ' ' || count(*) FROM orders;
SELECT count(*) FROM $sb.orders;
SELECT count(*) FROM ${sb}.${sb}_raw__stream_orders;
COMMIT;
SQL
)
tap_is "$(echo "$out" | sed -n 1p)" "$A" "the application authenticates with tenant A's Frontegg token"
tap_is "$(echo "$out" | sed -n 2p)" "$sa 3" "SELECT ... FROM orders shows the orders A's sync wrote, all of them"
tap_is "$(echo "$out" | sed -n 3,4p | tr '\n' ' ')" "0 0 " "B's orders and raw rows, named in full, show nothing"

out=$(as_app <<'SQL'
SELECT count(*) FROM orders;
SQL
)
echo "$out" | grep -q 'relation "orders" does not exist'
tap_ok $? "after COMMIT the data schema is off the path again (no orders table to find)"

# --- the loader's password is rotated: Airbyte's destination follows ------------
dest_a=$(q "SELECT airbyte_destination_id FROM tenant_airbyte.tenant_destinations WHERE tenant_id = '$A'")
loader_a=$(q "SELECT tenant_airbyte.loader_role_for('$A')")
old_password=$(q "SELECT tenant_airbyte.loader_credentials('$A') ->> 'password'")
op=$(q "SELECT tenant_airbyte.rotate_loader_password('$A') ->> 'destination_update_operation'")
new_password=$(q "SELECT tenant_airbyte.loader_credentials('$A') ->> 'password'")
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE id = 0$op AND kind = 'update_destination' AND status = 'done')" 60)" t \
	"rotate_loader_password() records an update of A's destination, which the worker carries out"
held=$(ta_standin GET "/_control/destinations/$dest_a")
tap_is "$(json_eval "$held" 'd["patches"] >= 1 and d["configuration"]["password"] == "'"$new_password"'" and d["configuration"]["username"] == "'"$loader_a"'"')|$([ "$new_password" != "$old_password" ]; echo $?)|$(json_eval "$(ta_standin GET /_control/counters)" 'd["spec_violations"].get("PATCH /destinations/{id}", 0)')" \
	"True|0|0" "Airbyte's destination was PATCHed with the new password, a valid DestinationPatchRequest"
login=$(cd /tmp && PGPASSWORD=$old_password "$TA_BINDIR/psql" -X -At -h 127.0.0.1 -U "$loader_a" -d "$WORKER_DB" -c 'SELECT 1' 2>&1)
tap_ok "$(grep -q 'password authentication failed' <<<"$login"; echo $?)" \
	"the old password no longer logs in as A's loader ($login)"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE id = 0$op AND (params::text LIKE '%$new_password%' OR coalesce(outcome::text, '') LIKE '%$new_password%')")|$(grep -c -F -- "$new_password" "$TA_PGLOG")" \
	"0|0" "the new password is in neither the operation row nor the server log"
tap_is "$(sync "$A")|$(q "SELECT count(*) FROM $sa.orders")" "succeeded|6" \
	"after the rotation A's next sync still logs in and appends its rows"

# What purge does once Airbyte deleted the workspace: the row goes.
q "DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$A'" >/dev/null
tap_is "$(q "SELECT to_regnamespace('$sa') IS NULL AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${sa}_loader')")" t \
	"purging A's workspace row drops its data schema and loader"

exit $((TAP_FAILED > 0))

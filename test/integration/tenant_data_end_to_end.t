#!/usr/bin/env bash
# tenant_data_end_to_end: the seed's Test 7.2, as far as this branch goes.
# Two tenants sign up through the shim (signed Frontegg deliveries, the
# worker provisions their workspaces in the stand-in), each connects a
# Shopify store (create_shopify_source), each gets its data schema and
# loader (loader_credentials(), what the tenant's destination is created
# with), a sync lands each tenant's orders (test/standin_loader.py with the
# destination's credentials: what the stand-in runs when a sync job
# succeeds), and the application, after authenticate() with tenant A's
# Frontegg access token, sees A's orders through "FROM orders" and none of
# B's, also by B's qualified name.  Purge then takes the data along.
#
# The sync itself is started here by running the loader, not by a sync
# job: trigger_sync() and the jobs it follows belong to the pipeline.
#
# The key and token are test/pgtap/authenticate_isolation.sql's
# (tenant tap-org-a, issuer https://tap.frontegg.test, expires in 2100).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/webhookd.sh
. test/lib/worker.sh

tap_plan 11
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

JWKS='{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"tap-key-1","n":"uL9DmFzD1UPWP2-i5s0SdKy0rc1XTxNdmlQS3Hp3vQJfrxxrpWCPFgE4iBgxfx4gJfl0OMc-DIlE7ghq4R2QbHqjlCmfxo6rB8XyHJbtHAacVxWP0mC_1Z1YN95TreAdzC6YeY3h60iLAamNj8gKYzyfSGhcKuL8wpG4cm157_-24ggelYuFF474OLgt3Ndz697kLe8sLa8LmgBhbOUcxI0O5dccOqgNTd6q8LVW7Pl-ONd8cjISvYcHxWjcd0oiKWAq0I30U-bZoqYjYK5FrpJufYilTwiQRSH9T3FC24b5Oc989yZw9_BRzKhZOQE60MNONTUlDfh_HAZ1_oVxfQ","e":"AQAB"}]}'
TOKEN_A='eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcC1rZXktMSJ9.eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYSIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWEiXSwicm9sZXMiOlsiYWRtaW4iXX0.GPIzg1s-5cv6Xv6aBdJ6aFYNYbMgBXiebJHzHqD5OuP0oSCq35lDeq_5ggTGfMT49T7varzuPEWwMgtPjoFZqgMYEv_bvFvshx_FdJBCQVcYzVRblDD7xyLox6J3ZFeDCIdvhVck4yPbqVMHG5VjOoKEk9O5uOY_VvI-O3g2DrPq-shoS4S-lgXKdel2oN2YCp-yJ9TvQzoOBEzkOjW4TOlgF0c-McI2cLjA5MK0YTb3AhdnSJVidQfDHnMXG_brbAsa-Lhc80MvHB1MZc2cUiyNImzaaTPYFgLPaFoq30PzkGku5f5KCA541qSWme3VxrVblKJP6zIIQrkss8cjRA'
A=tap-org-a
B=e2e-data-b-$RANDOM
APP=ta_e2e_data_app
SECRET=e2e-data-$RANDOM-$RANDOM

cleanup()
{
	ta_webhookd_stop >/dev/null 2>&1
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
q "SELECT pg_reload_conf()" >/dev/null

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

# The destination each tenant's pipeline creates: its loader and schema.
destination()
{
	q "SELECT jsonb_build_object('host', '127.0.0.1', 'port', $TA_PORT, 'database', '$WORKER_DB',
		'schema', c ->> 'tenant_schema', 'raw_data_schema', c ->> 'tenant_schema',
		'username', c ->> 'user', 'password', c ->> 'password')
		FROM tenant_airbyte.loader_credentials('$1') AS c"
}
orders()
{
	local shop=$1 n=$2 i out="["
	for i in $(seq 1 "$n"); do
		out+="{\"id\": $i, \"shop\": \"$shop\", \"name\": \"#100$i\", \"total_price\": \"$i.50\"},"
	done
	echo "[{\"name\": \"orders\", \"records\": ${out%,}]}]"
}
sync_a=$(python3 test/standin_loader.py --config "$(destination "$A")" --streams "$(orders a-store.myshopify.com 3)" --mode incremental_append)
sync_b=$(python3 test/standin_loader.py --config "$(destination "$B")" --streams "$(orders b-store.myshopify.com 2)" --mode incremental_append)
tap_is "$(echo "$sync_a $sync_b" | grep -o '"recordsSynced": [0-9]*' | tr '\n' ' ')" '"recordsSynced": 3 "recordsSynced": 2 ' \
	"a sync lands each tenant's orders, written with its own loader's credentials"

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
SELECT string_agg(DISTINCT shop, ',') || ' ' || count(*) FROM orders;
SELECT count(*) FROM $sb.orders;
SELECT count(*) FROM ${sb}.${sb}_raw__stream_orders;
COMMIT;
SQL
)
tap_is "$(echo "$out" | sed -n 1p)" "$A" "the application authenticates with tenant A's Frontegg token"
tap_is "$(echo "$out" | sed -n 2p)" "a-store.myshopify.com 3" "SELECT ... FROM orders shows A's orders, all of them"
tap_is "$(echo "$out" | sed -n 3,4p | tr '\n' ' ')" "0 0 " "B's orders and raw rows, named in full, show nothing"

out=$(as_app <<'SQL'
SELECT count(*) FROM orders;
SQL
)
echo "$out" | grep -q 'relation "orders" does not exist'
tap_ok $? "after COMMIT the data schema is off the path again (no orders table to find)"

# What purge does once Airbyte deleted the workspace: the row goes.
q "DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$A'" >/dev/null
tap_is "$(q "SELECT to_regnamespace('$sa') IS NULL AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${sa}_loader')")" t \
	"purging A's workspace row drops its data schema and loader"

exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# without_preload.t: a server that does not preload tenant_airbyte still
# loads the library on first use, says plainly that there is no worker
# (functions that need one fail at once, with a hint), and still refuses a tenant context that an
# unprivileged role put into a placeholder before the library was loaded.
# Runs its own second throwaway cluster.
set -uo pipefail
cd "$(dirname "$0")/../.."
standin_url=${TA_STANDIN_URL:-}
export TA_PORT=$((${TA_PORT:-25432} + 1)) TA_WORKDIR=${TA_WORKDIR:-/tmp/tenant_airbyte_test}-nopreload
. test/lib/cluster.sh
. test/lib/tap.sh

tap_plan 7
[ -n "$standin_url" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

ta_cluster_init postgres >/dev/null || exit 1
sed -i "s/^shared_preload_libraries = 'tenant_airbyte'/shared_preload_libraries = ''/" "$TA_PGDATA/postgresql.conf"
ta_cluster_start || { cat "$TA_PGLOG"; exit 1; }
trap 'ta_cluster_stop immediate >/dev/null 2>&1; rm -rf "$TA_WORKDIR"' EXIT

sql() { "$TA_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }

sql -c "CREATE EXTENSION tenant_airbyte" -c "CREATE ROLE np_app LOGIN" \
	-c "GRANT SELECT ON tenant_airbyte.tenant_airbyte_workspaces TO np_app" >/dev/null
tap_ok $? "CREATE EXTENSION works without shared_preload_libraries"

# ALTER SYSTEM knows the settings only once the session loaded the library.
sql -v url="$standin_url/v1" >/dev/null <<'SQL'
LOAD 'tenant_airbyte';
ALTER SYSTEM SET tenant_airbyte.api_url = :'url';
ALTER SYSTEM SET tenant_airbyte.api_token = 'standin-token';
SELECT pg_reload_conf();
SQL
sleep 0.3
start=$(date +%s)
out=$(sql -c "SELECT tenant_airbyte.provision_tenant('np-org-1', 'No Preload')" 2>&1)
tap_ok $([ $(( $(date +%s) - start )) -lt 5 ] && echo "$out" | grep -q 'not in shared_preload_libraries' &&
	echo "$out" | grep -q 'HINT:  Add tenant_airbyte to shared_preload_libraries'; echo $?) \
	"provision_tenant() fails at once, saying there is no worker and how to get one"
tap_is "$(sql -c "SELECT state FROM tenant_airbyte.worker_status")" \
	"not running: tenant_airbyte is not in shared_preload_libraries" \
	"worker_status says there is no worker, and why"
sql -c "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'np-org-2', 'Queued')" >/dev/null
tap_ok $? "a delivery can still be queued (it waits for a worker)"
tap_is "$(sql -c "SHOW tenant_airbyte.database")" postgres "tenant_airbyte.database is still readable"

# An unprivileged role sets the tenant context before anything loaded the
# library in its session: a mere placeholder.  The first call of
# current_tenant() loads the library, whose PGC_SUSET definition drops it.
got=$(sql -U np_app 2>/dev/null <<'SQL'
SET tenant_airbyte.tenant_id = 'np-org-1';
SELECT coalesce(tenant_airbyte.current_tenant(), '(none)');
SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces;
SQL
)
tap_is "$(echo $got)" "(none) 0" \
	"a tenant context set by an unprivileged role before the library loaded is discarded"
tap_is "$(sql -U np_app -c "SELECT tenant_airbyte.current_tenant()" -c "SET tenant_airbyte.tenant_id = 'np-org-1'" 2>&1 | grep -c 'permission denied')" 1 \
	"... and once it is loaded, setting it is refused outright"

exit $((TAP_FAILED > 0))

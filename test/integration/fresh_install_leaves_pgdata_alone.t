#!/usr/bin/env bash
# fresh_install_leaves_pgdata_alone.t: the extension keeps every record
# in tables (WAL-logged, replicated, in pg_dump), never in files of its
# own under $PGDATA.  On a fresh cluster, after CREATE EXTENSION, a
# provision_tenant() call and a processed delivery, the data directory
# holds only PostgreSQL's own entries, and no pg_tenant_airbyte directory.
# Before the operation engine each provisioning left a marker file under
# $PGDATA/pg_tenant_airbyte, which a promoted standby does not have.
#
# Runs its own throwaway cluster on TA_PORT + 21, against the stand-in
# test/run started.
set -uo pipefail
cd "$(dirname "$0")/../.."
standin_url=${TA_STANDIN_URL:-}
export TA_PORT=$((${TA_PORT:-25432} + 21)) TA_WORKDIR=${TA_WORKDIR:-/tmp/tenant_airbyte_test}-fresh
. test/lib/cluster.sh
. test/lib/worker.sh

tap_plan 6
[ -n "$standin_url" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

ta_cluster_init postgres >/dev/null || exit 1
before=$(cd "$TA_PGDATA" && ls -A | sort)
ta_cluster_start || { cat "$TA_PGLOG"; exit 1; }
trap 'ta_cluster_stop immediate >/dev/null 2>&1; rm -rf "$TA_WORKDIR"' EXIT

q "ALTER SYSTEM SET tenant_airbyte.api_url = '$standin_url/v1'" >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.api_token = 'standin-token'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "CREATE EXTENSION tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
tap_ok $? "a fresh cluster runs the worker"

tap_is "$(q "SET statement_timeout = '60s'; SELECT tenant_airbyte.provision_tenant('fresh-org-1', 'Fresh One') ->> 'status'" 2>&1)" provisioned \
	"provision_tenant() provisions a tenant"
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'fresh-org-2', 'Fresh Two')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'fresh-org-2' AND status = 'done')" 60)" t \
	"a delivery is processed"
ta_cluster_stop fast

tap_ok $([ ! -e "$TA_PGDATA/pg_tenant_airbyte" ]; echo $?) "there is no \$PGDATA/pg_tenant_airbyte"
# PostgreSQL itself adds postmaster.opts at the first start.
after=$(cd "$TA_PGDATA" && ls -A | sort)
extra=$(comm -13 <(printf '%s\npostmaster.opts\n' "$before" | sort) <(echo "$after"))
tap_is "$extra" "" "the data directory holds no top-level entry besides PostgreSQL's own"
named=$(find "$TA_PGDATA" -iname '*tenant_airbyte*' -o -iname '*airbyte*' | sed "s|^$TA_PGDATA/||")
tap_is "$named" "" "no file or directory anywhere under it is named after the extension"

exit $((TAP_FAILED > 0))

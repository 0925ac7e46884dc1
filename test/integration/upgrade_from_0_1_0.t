#!/usr/bin/env bash
# upgrade_from_0_1_0.t: a database that ran release 0.1.0 is upgraded in
# place to the version in this tree and loses nothing.
#
#   1. Builds 0.1.0 from its commit (git archive; on 17 and 18 with the
#      portability patch below) and installs it into a private copy of the
#      PostgreSQL installation, so the suite's own install is never touched.
#   2. On a cluster of its own, fills a database the way users did: three
#      provisioned tenants, a source, a soft-deleted tenant, a JWT key, a
#      dead delivery, a backend's workspace create interrupted after Airbyte
#      made the workspace (its provisioning marker left behind), and
#      deliveries still pending or in flight when the server stops.
#   3. Stops, installs this tree over it, starts (the worker must wait for
#      the schema), ALTER EXTENSION tenant_airbyte UPDATE.
#   4. Every row is intact, the pending work is done exactly once, the
#      interrupted create is adopted rather than repeated, and the schema
#      equals a fresh install's (test/lib/extension_catalog.sql: a schema
#      change without its upgrade step fails here, with the difference).
#   5. pg_dump / pg_restore of the upgraded database keeps every row,
#      pending work and sequence included.
#
# Uses TA_PORT + 10 and TA_STANDIN_PORT + 10.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
RELEASE_0_1_0=0a3029c			# the commit released as 0.1.0 (tag v0.1.0)

ORIG_PG_CONFIG=${PG_CONFIG:-pg_config}

# Release 0.1.0 was made for PostgreSQL 15: its source does not build
# against 17 or 18 (five server API shapes changed), yet the upgrade
# script runs on those servers' catalogs and DDL too (18, for one, keeps
# NOT NULL constraints in pg_constraint).  So on 17 and 18 the
# release is built with test/lib/release-0.1.0-pg17-18.patch, which
# changes only those API calls (each behind PG_VERSION_NUM), not its SQL
# or behaviour; on 15 it is built exactly as tagged.
pg_major=$("$ORIG_PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
BASE=${TA_WORKDIR:-/tmp/tenant_airbyte_test}-upgrade
rm -rf "$BASE"
mkdir -p "$BASE"

. test/lib/tap.sh

bail()
{
	echo "Bail out! $*"
	[ -f "$BASE/step.log" ] && tail -30 "$BASE/step.log" | sed 's/^/# /'
	exit 1
}

# --- 1. a private PostgreSQL with 0.1.0 in it -------------------------------
# Its directories are copied under $BASE/pg at the same absolute paths, so
# the relocatable binaries find their share and lib directories there.
PGROOT=$BASE/pg
for dir in "$(dirname "$("$ORIG_PG_CONFIG" --bindir)")" "$("$ORIG_PG_CONFIG" --sharedir)" \
	"$("$ORIG_PG_CONFIG" --includedir)" "$("$ORIG_PG_CONFIG" --includedir-server)"; do
	mkdir -p "$PGROOT$(dirname "$dir")"
	[ -d "$PGROOT$dir" ] || cp -a "$dir" "$PGROOT$dir" || bail "could not copy $dir"
done
export PG_CONFIG=$PGROOT$("$ORIG_PG_CONFIG" --bindir)/pg_config
[ "$("$PG_CONFIG" --sharedir)" = "$PGROOT$("$ORIG_PG_CONFIG" --sharedir)" ] ||
	bail "the copy of PostgreSQL in $PGROOT is not relocatable"

git -C "$ROOT" cat-file -e "$RELEASE_0_1_0^{commit}" 2>/dev/null ||
	bail "commit $RELEASE_0_1_0 (release 0.1.0) is not in this clone; fetch the full history"
mkdir -p "$BASE/v0.1.0"
git -C "$ROOT" archive "$RELEASE_0_1_0" | tar -x -C "$BASE/v0.1.0"
if [ "$pg_major" != 15 ]; then
	(cd "$BASE/v0.1.0" && git apply "$ROOT/test/lib/release-0.1.0-pg17-18.patch") ||
		bail "could not apply test/lib/release-0.1.0-pg17-18.patch to 0.1.0"
fi
{ make -C "$BASE/v0.1.0" -s PG_CONFIG="$PG_CONFIG" &&
	make -C "$BASE/v0.1.0" -s PG_CONFIG="$PG_CONFIG" install; } >"$BASE/step.log" 2>&1 ||
	bail "could not build and install 0.1.0"

# --- the cluster and the stand-in -------------------------------------------
export TA_WORKDIR=$BASE/cluster TA_PORT=$((${TA_PORT:-25432} + 10))
export TA_STANDIN_PORT=$((${TA_STANDIN_PORT:-18080} + 10))
export WORKER_DB=ta_up
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

finish()
{
	ta_standin_stop
	ta_cluster_stop immediate >/dev/null 2>&1
}
trap finish EXIT

ta_cluster_init ta_up || bail "initdb failed"
echo "tenant_airbyte.lease_ms = 3000" >>"$TA_PGDATA/postgresql.conf"
ta_cluster_start || { cat "$TA_PGLOG"; bail "the 0.1.0 cluster did not start"; }
ta_standin_start "$BASE/standin.log" || bail "the stand-in did not start"

ta_psql -d postgres -c "CREATE DATABASE ta_up" -c "CREATE DATABASE ta_up_empty"
ta_psql -d ta_up -c "CREATE EXTENSION tenant_airbyte"
ta_psql -d ta_up_empty -c "CREATE EXTENSION tenant_airbyte"
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'tenant_airbyte'")" 0.1.0 \
	"release 0.1.0 is installed"

standin_count()
{
	json_eval "$(ta_standin GET /_control/counters)" "d['live_workspaces_by_name'].get('$1', 0)"
}

# --- 2. fill it as 0.1.0 ----------------------------------------------------
q "SELECT tenant_airbyte.provision_tenant('up-a', 'Alpha'),
		  tenant_airbyte.provision_tenant('up-b', 'Beta'),
		  tenant_airbyte.provision_tenant('up-c', 'Gamma')" >/dev/null
q "SELECT tenant_airbyte.create_source('up-a', 'shopify', 'Alpha shop',
	'{\"shop\": \"alpha\", \"credentials\": {\"auth_method\": \"api_password\", \"api_password\": \"pw\"}}')" >/dev/null
q "SELECT tenant_airbyte.deprovision_tenant('up-c')" >/dev/null
q "INSERT INTO tenant_airbyte.jwt_keys (kid, jwk, issuer)
   VALUES ('up-key', '{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}', 'https://example.frontegg.com')" >/dev/null

# A dead delivery: one attempt allowed, and Airbyte fails it.
set_setting tenant_airbyte.max_attempts 1
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "500"}' >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'up-dead', 'Dead')" >/dev/null
is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'up-dead') = 'dead'" 60)" t \
	"0.1.0: a delivery that exhausted its attempts is dead"
ta_standin DELETE /_control/faults >/dev/null
reset_setting tenant_airbyte.max_attempts

# A backend's create that Airbyte carried out, interrupted before its answer.
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "apply": true, "count": 1, "ms": 30000}' >/dev/null
PGAPPNAME=ta_upgrade_victim "$TA_BINDIR/psql" -X -q -d ta_up \
	-c "SELECT tenant_airbyte.provision_tenant('up-int', 'Interrupted')" >/dev/null 2>&1 &
victim=$!
for _ in $(seq 1 200); do
	[ "$(standin_count 'Interrupted - up-int')" = 1 ] && break
	sleep 0.1
done
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ta_upgrade_victim'" >/dev/null
wait "$victim" 2>/dev/null
ta_standin DELETE /_control/faults >/dev/null
markers=$(ls "$TA_PGDATA/pg_tenant_airbyte" 2>/dev/null | wc -l)
ok $([ "$(standin_count 'Interrupted - up-int')" = 1 ] && [ "$markers" -ge 1 ] &&
	[ "$(q "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'up-int'")" = 0 ]; echo $?) \
	"0.1.0: an interrupted create left a workspace in Airbyte, a marker and no row"

# Work still queued at the stop: with one request at a time and that one
# hanging, one delivery is in flight and the others wait behind it.
set_setting tenant_airbyte.max_concurrency 1
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "apply": true, "count": 1, "ms": 30000}' >/dev/null
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
   SELECT 'tenant.created', 'upp-' || g, 'Tenant upp ' || g FROM generate_series(1, 3) g;
   INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.deleted', 'up-b');" >/dev/null
is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE status = 'in_flight') = 1" 60)" t \
	"0.1.0: one delivery in flight"
queued=$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE status IN ('pending', 'in_flight')")
is "$queued" 4 "0.1.0: four deliveries unfinished at the stop"
q "ALTER SYSTEM RESET tenant_airbyte.max_concurrency" >/dev/null

# What must come through untouched: everything but the queued work, every
# column 0.1.0 had (the columns 0.2.0 adds are checked after the update;
# those of jwt_keys, fetched_from and removed_at, must come out NULL: a
# key of 0.1.0 was loaded by hand and is not retired).
finished=$(q "SELECT string_agg(delivery_id::text, ',') FROM tenant_airbyte.webhook_inbox WHERE status IN ('done', 'dead')")
snapshot()
{
	q "SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM (
		 SELECT (to_jsonb(w) - 'data_schema')::text AS x FROM tenant_airbyte.tenant_airbyte_workspaces AS w WHERE tenant_id IN ('up-a', 'up-c')
		 UNION ALL SELECT to_jsonb(s)::text FROM tenant_airbyte.tenant_sources AS s
		 UNION ALL SELECT jsonb_strip_nulls(to_jsonb(k))::text FROM tenant_airbyte.jwt_keys AS k
		 UNION ALL SELECT (to_jsonb(i) - 'operation_id')::text FROM tenant_airbyte.webhook_inbox AS i WHERE delivery_id IN ($finished)) AS rows"
}
before=$(snapshot)
ids_before=$(q "SELECT string_agg(delivery_id::text, ',' ORDER BY delivery_id) FROM tenant_airbyte.webhook_inbox")
ta_cluster_stop || bail "the 0.1.0 cluster did not stop"
ta_standin DELETE /_control/faults >/dev/null

# --- 3. install this tree, start, update ------------------------------------
{ make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" && make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" install; } >"$BASE/step.log" 2>&1 ||
	bail "could not build and install this tree"
NEW_VERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/tenant_airbyte.control")
ta_cluster_start || { cat "$TA_PGLOG"; bail "the cluster did not start with the new library"; }

# The new worker does not touch a schema it was not written for: once it
# says so in the log (a loaded machine may take a minute or more to start
# it), the queued work is still untouched.
for _ in $(seq 1 360); do
	grep -q "ALTER EXTENSION tenant_airbyte UPDATE" "$TA_PGLOG" && break
	sleep 0.5
done
grep -q "ALTER EXTENSION tenant_airbyte UPDATE" "$TA_PGLOG"
ok $? "before ALTER EXTENSION UPDATE the new worker says in the log what to run"
is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE status = 'done' AND tenant_id LIKE 'upp-%'")" 0 \
	"... and leaves the old schema alone"

ta_psql -d ta_up -c "ALTER EXTENSION tenant_airbyte UPDATE" >"$BASE/step.log" 2>&1
ok $? "ALTER EXTENSION tenant_airbyte UPDATE"
ta_psql -d ta_up_empty -c "ALTER EXTENSION tenant_airbyte UPDATE" >/dev/null 2>&1
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'tenant_airbyte'")" "$NEW_VERSION" \
	"the extension is at $NEW_VERSION"

# --- 4. nothing lost, nothing done twice ------------------------------------
is "$(snapshot)" "$before" "every workspace, source, key and finished delivery is intact"
is "$(q "SELECT string_agg(delivery_id::text, ',' ORDER BY delivery_id) FROM tenant_airbyte.webhook_inbox")" "$ids_before" \
	"every delivery is still there"
is "$(q "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces
		 WHERE data_schema IS DISTINCT FROM tenant_airbyte.data_schema_for(tenant_id)")" 0 \
	"every existing workspace row has its data_schema"
is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE status IN ('pending', 'in_flight')) = 0" 120)" t \
	"the work pending at the stop is finished after the update"
is "$(q "SELECT string_agg(status, ',' ORDER BY delivery_id) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'upp-%' OR event = 'tenant.deleted'")" \
	"done,done,done,done" "... every one of them done"
is "$(exactly_once upp 3 "$(ta_standin GET /_control/counters)")" ok \
	"... each queued tenant has exactly one workspace (the one in flight at the stop included)"
is "$(q "SELECT status FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'up-b'")" deleted \
	"... and the queued tenant.deleted soft-deleted its tenant"

adopted=$(q "SELECT tenant_airbyte.provision_tenant('up-int', 'Interrupted')->>'workspace_id'")
is "$(standin_count 'Interrupted - up-int')" 1 "the interrupted create is adopted, not repeated"
is "$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'up-int'")" "$adopted" \
	"... and recorded"

dead=$(q "SELECT delivery_id FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'up-dead'")
is "$(q "SELECT tenant_airbyte.requeue($dead)")" t "the dead delivery can be requeued"
is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $dead) = 'done'" 60)" t \
	"... and then succeeds"
is "$(standin_count 'Dead - up-dead')" 1 "... with one workspace"
is "$(ls "$TA_PGDATA/pg_tenant_airbyte" 2>/dev/null | wc -l | tr -d ' ')" 0 "no provisioning marker is left"
is "$(q "SELECT tenant_airbyte.provision_tenant('up-new', 'New')->>'status'")" provisioned \
	"a new tenant is provisioned after the upgrade"

# The upgraded schema is a fresh install's.
ta_psql -d postgres -c "CREATE DATABASE ta_fresh"
ta_psql -d ta_fresh -c "CREATE EXTENSION tenant_airbyte"
catalog() { "$TA_BINDIR/psql" -X -At -v ON_ERROR_STOP=1 -d "$1" -f "$ROOT/test/lib/extension_catalog.sql"; }
catalog ta_fresh >"$BASE/fresh.catalog"
catalog ta_up >"$BASE/upgraded.catalog"
if diff -u "$BASE/fresh.catalog" "$BASE/upgraded.catalog" >"$BASE/catalog.diff"; then
	ok 0 "the upgraded schema equals a fresh install of $NEW_VERSION ($(wc -l <"$BASE/fresh.catalog") catalog lines)"
else
	ok 1 "the upgraded schema equals a fresh install of $NEW_VERSION"
	echo "# '-' fresh install, '+' upgraded from 0.1.0; the upgrade script misses this:"
	head -200 "$BASE/catalog.diff" | sed 's/^/#   /'
fi
ok $([ -s "$BASE/fresh.catalog" ]; echo $?) "... (the catalog listing is not empty)"

# --- 5. pg_dump / pg_restore ------------------------------------------------
# Work scheduled for later is pending in the dump; the restored database is
# served by no worker, so it must come back exactly as dumped.
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name, next_attempt_at)
   VALUES ('tenant.created', 'up-later', 'Later', now() + interval '1 hour')" >/dev/null
"$TA_BINDIR/pg_dump" -Fc -d ta_up -f "$BASE/ta_up.dump" 2>"$BASE/step.log"
ok $? "pg_dump of the upgraded database"
ta_psql -d postgres -c "CREATE DATABASE ta_restored"
"$TA_BINDIR/pg_restore" --exit-on-error -d ta_restored "$BASE/ta_up.dump" 2>"$BASE/step.log"
ok $? "pg_restore into a new database"

# every table of the extension, whole rows, whatever tables a version adds
tables=$(q "SELECT string_agg(c.oid::regclass::text, ' ' ORDER BY c.relname)
			  FROM pg_class AS c
			 WHERE c.relnamespace = 'tenant_airbyte'::regnamespace AND c.relkind IN ('r', 'p')")
for t in $tables; do
	sql="SELECT count(*) || ' ' || md5(coalesce(string_agg(r::text, E'\n' ORDER BY r::text), '')) FROM $t AS r"
	is "$(WORKER_DB=ta_restored q "$sql")" "$(q "$sql")" "restored $t has every row"
done
is "$(WORKER_DB=ta_restored q "SELECT status FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'up-later'")" pending \
	"... the pending delivery included"
seq_sql="SELECT nextval(pg_get_serial_sequence('tenant_airbyte.webhook_inbox', 'delivery_id')) > max(delivery_id) FROM tenant_airbyte.webhook_inbox"
is "$(WORKER_DB=ta_restored q "$seq_sql")" t "... and new deliveries get new ids"
catalog ta_restored >"$BASE/restored.catalog"
diff -u "$BASE/upgraded.catalog" "$BASE/restored.catalog" >"$BASE/restored.diff"
ok $? "the restored schema equals the dumped one"
[ -s "$BASE/restored.diff" ] && head -50 "$BASE/restored.diff" | sed 's/^/#   /'

# The suite's pgTAP checks hold on an upgraded database: the empty one,
# as they expect, with the worker serving it (test/pgtap_worker's files
# hand it operations; nothing else writes there meanwhile).
if [ -n "$(ls "$("$PG_CONFIG" --sharedir)/extension/" | grep '^pgtap\.control$')" ] && command -v pg_prove >/dev/null; then
	ta_psql -d ta_up_empty -c "CREATE EXTENSION pgtap"
	q "ALTER SYSTEM SET tenant_airbyte.database = 'ta_up_empty'" >/dev/null
	ta_cluster_stop >/dev/null 2>&1
	ta_cluster_start || bail "the cluster did not restart"
	is "$(WORKER_DB=ta_up_empty wait_until "EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'tenant_airbyte worker' AND datname = 'ta_up_empty')" 180)" t \
		"the worker serves the upgraded empty database"
	pg_prove --dbname ta_up_empty --host "$PGHOST" --port "$PGPORT" --username postgres \
		"$ROOT"/test/pgtap/*.sql "$ROOT"/test/pgtap_worker/*.sql >"$BASE/pgtap.log" 2>&1
	rc=$?
	ok $rc "the pgTAP suite passes on a database upgraded from 0.1.0"
	[ $rc -eq 0 ] || tail -20 "$BASE/pgtap.log" | sed 's/^/# /'
else
	ok 0 "# SKIP pgTAP is not installed"
fi

tap_done

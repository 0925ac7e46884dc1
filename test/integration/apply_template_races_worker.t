#!/usr/bin/env bash
# apply_template_races_worker.t: apply_template() counts only what it
# really adds, even while the worker is committing the very operation it
# would add again.  The worker finishes a create_connection (or a
# create_destination) by marking it done and writing its row in one
# transaction; a session here does exactly that and holds the transaction
# open while apply_template() runs.  apply_template()'s check for the row
# saw the tenant without it, and its insert then waited for the worker's
# commit, after which nothing unfinished stood in its way: it recorded a
# second operation and counted it.  That is the race pipeline_lifecycle.t
# once lost in CI ("2|1" instead of "2|0").
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 6
engine_setup
T=at-race-$RANDOM
cleanup()
{
	[ -n "${BG_PID:-}" ] && wait "$BG_PID" 2>/dev/null
	forget_tenants 'at-race-%'
	q "DELETE FROM tenant_airbyte.pipeline_templates" >/dev/null
	q "SELECT tenant_airbyte.resume_worker()" >/dev/null 2>&1
}
trap cleanup EXIT
forget_tenants 'at-race-%'

# The worker must not take these operations: the session below plays it.
q "SELECT tenant_airbyte.pause_worker()" >/dev/null
tap_is "$(wait_until "(SELECT state FROM tenant_airbyte.worker_status) = 'paused'" 30)" t "the worker is paused"
q "SELECT tenant_airbyte.set_pipeline_template('default',
	'{\"destinationType\": \"postgres\", \"configuration\": {\"host\": \"db.internal\", \"port\": 5432,
	  \"database\": \"app\", \"schema\": \"{{tenant_schema}}\", \"username\": \"loader\"}}')" >/dev/null

WS=$(q "SELECT gen_random_uuid()")
DEST=$(q "SELECT gen_random_uuid()")
SRC=$(q "SELECT gen_random_uuid()")
# A tenant whose workspace the triggers gave a pending create_destination,
# and a source recorded with its pending create_connection.
q "INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
	VALUES ('$T', '$WS', 'Race - $T');
   INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)
	VALUES ('$T', '$WS', '$SRC', 'faker', 'Faker')" >/dev/null
tap_is "$(q "SELECT string_agg(kind, ',' ORDER BY id) FROM tenant_airbyte.operations WHERE tenant_id = '$T' AND status = 'pending'")" \
	"create_destination,create_connection" "the triggers recorded the destination and the connection"

# finish KIND SQL: a session that finishes the tenant's pending KIND
# operation and runs SQL in one transaction, then holds it open 3 s.
finish()
{
	psql_bg "$TA_WORKDIR/at-race.out" at-race-worker "BEGIN;
		UPDATE tenant_airbyte.operations SET status = 'done', finished_at = now(), outcome = '{\"status\": \"created\"}'
		 WHERE tenant_id = '$T' AND kind = '$1' AND status = 'pending';
		$2;
		SELECT pg_sleep(3);
		COMMIT;"
	wait_until "EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'at-race-worker' AND query LIKE '%pg_sleep%')" 30 >/dev/null
}

# --- the destination finishes while apply_template() runs --------------------
finish create_destination "INSERT INTO tenant_airbyte.tenant_destinations
	(tenant_id, airbyte_workspace_id, airbyte_destination_id, destination_type, name)
	VALUES ('$T', '$WS', '$DEST', 'postgres', 'Race destination')"
tap_is "$(q "SELECT tenant_airbyte.apply_template('$T')")" 0 \
	"apply_template() adds nothing while the destination and the connection are still under way"
wait "$BG_PID"; BG_PID=
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = '$T' AND kind = 'create_destination'")" 1 \
	"... and the destination the worker just created is not recorded again"

# --- the connection finishes while apply_template() runs ---------------------
finish create_connection "INSERT INTO tenant_airbyte.tenant_connections
	(tenant_id, airbyte_workspace_id, airbyte_source_id, airbyte_destination_id, airbyte_connection_id, name)
	VALUES ('$T', '$WS', '$SRC', '$DEST', gen_random_uuid(), 'Race connection')"
tap_is "$(q "SELECT tenant_airbyte.apply_template('$T')")" 0 \
	"apply_template() adds nothing while the worker commits the connection"
wait "$BG_PID"; BG_PID=
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = '$T' AND kind = 'create_connection'")" 1 \
	"... and the connection is not recorded again"

exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# launcher_refused_commands.t: only a command that will actually run may
# move the worker out of its database.  A login that does not own the
# database repeats DROP DATABASE and ALTER DATABASE ... RENAME (both
# refused) while deliveries are in flight; a superuser tries DROP DATABASE
# inside a transaction block (refused too).  The worker keeps its pid and
# every delivery ends done.  (A privileged DROP DATABASE still moves it:
# worker_lifecycle.t.)
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 7

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
pid=$(wait_for_worker 30)
use_standin
ta_standin POST /_control/reset '{"latency_ms": 300}' >/dev/null
q "DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%'" >/dev/null
q "DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'refused-%'" >/dev/null
q "DROP ROLE IF EXISTS ta_refused_app; CREATE ROLE ta_refused_app LOGIN NOCREATEDB" >/dev/null
finish()
{
	ta_standin POST /_control/reset >/dev/null
	q "DROP ROLE IF EXISTS ta_refused_app" >/dev/null
}
trap finish EXIT

as_app() { "$TA_BINDIR/psql" -X -q -U ta_refused_app -d template1 -c "$1" 2>&1; }

enqueue_created refused 60
tap_is "$(wait_until "(SELECT requests_in_flight FROM tenant_airbyte.worker_status) > 0" 30)" t \
	"deliveries are in flight"
moved=0
drop_err="" rename_err="" tx_err=""
for i in $(seq 1 25); do
	drop_err=$(as_app "DROP DATABASE $WORKER_DB")
	rename_err=$(as_app "ALTER DATABASE $WORKER_DB RENAME TO ta_refused_renamed")
	tx_err=$("$TA_BINDIR/psql" -X -q -d template1 -c "BEGIN" -c "DROP DATABASE $WORKER_DB" 2>&1)
	[ "$(worker_pid)" = "$pid" ] || moved=$((moved + 1))
done
tap_ok $(grep -q "must be owner of database $WORKER_DB" <<<"$drop_err"; echo $?) \
	"DROP DATABASE by a login that does not own it is refused ($drop_err)"
tap_ok $(grep -q "must be owner of database $WORKER_DB\|permission denied to rename database" <<<"$rename_err"; echo $?) \
	"ALTER DATABASE ... RENAME by that login is refused ($rename_err)"
tap_ok $(grep -q "cannot run inside a transaction block" <<<"$tx_err"; echo $?) \
	"DROP DATABASE inside a transaction block is refused"
tap_is "$moved" 0 "the worker kept its pid through 75 refused commands"
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%' AND status = 'done') = 60" 120)" t \
	"every delivery ends done"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'refused-%' AND attempts <> 1")" 0 \
	"each in one attempt: none was interrupted"

exit $((TAP_FAILED > 0))

#!/usr/bin/env bash
# worker_lifecycle.t: the worker waits quietly without the extension,
# returns interrupted claims at start-up (dead when they used their last
# attempt), sweeps expired leases, deletes old finished rows in batches,
# and never stands in the way of DROP EXTENSION or DROP DATABASE.
#
# Events used need no Airbyte call (frontegg.user.* is ignored).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/worker.sh

tap_plan 13

logged_since()
{
	tail -c +"$1" "$TA_PGLOG" | grep -c "$2"
}

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
pid=$(wait_for_worker 30)

# --- without the extension -------------------------------------------------
log_offset=$(($(stat -c %s "$TA_PGLOG") + 1))
q "DROP EXTENSION tenant_airbyte" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND query = 'tenant_airbyte: waiting for CREATE EXTENSION tenant_airbyte')" 10)" t \
	"after DROP EXTENSION the same worker waits for the extension"
sleep 6
tap_is "$(logged_since "$log_offset" 'tenant_airbyte worker cycle failed')" 0 \
	"and it waits quietly: no error in the log"
q "CREATE EXTENSION tenant_airbyte" >/dev/null
id=$(q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('frontegg.user.created', 'life-1') RETURNING delivery_id")
tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $id) = 'ignored'" 10)" t \
	"after CREATE EXTENSION it serves the inbox again"

# --- claims left by a crashed worker ---------------------------------------
max_attempts=$(q "SHOW tenant_airbyte.max_attempts")
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, status, attempts, lease_id, lease_expires_at)
   VALUES ('frontegg.user.created', 'orphan-1', 'in_flight', 1, gen_random_uuid(), now() + interval '1 hour'),
          ('frontegg.user.created', 'orphan-2', 'in_flight', $max_attempts, gen_random_uuid(), now() + interval '1 hour'),
          ('frontegg.user.created', 'expired-1', 'in_flight', 1, gen_random_uuid(), now() - interval '1 second')" >/dev/null
tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'expired-1') = 'ignored'" 5)" t \
	"a running worker returns an expired lease to the queue and finishes the delivery"
tap_is "$(q "SELECT string_agg(status, ',' ORDER BY tenant_id) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'orphan-%'")" \
	"in_flight,in_flight" "a running worker leaves unexpired leases alone"

# old finished rows for retention, and one recent
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, status, finished_at)
   SELECT 'frontegg.user.created', 'old-' || g, CASE WHEN g % 2 = 0 THEN 'done' ELSE 'ignored' END,
          now() - interval '30 days'
     FROM generate_series(1, 2500) g;
   INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, status, finished_at)
   VALUES ('frontegg.user.created', 'recent-1', 'done', now()),
          ('frontegg.user.created', 'old-dead', 'dead', now() - interval '30 days')" >/dev/null

q "SELECT pg_terminate_backend($pid)" >/dev/null
newpid=""
for i in $(seq 1 100); do
	newpid=$(worker_pid)
	[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && break
	sleep 0.1
done
tap_ok $([ -n "$newpid" ] && [ "$newpid" != "$pid" ]; echo $?) "the launcher starts a new worker after the old one stopped"
pid=$newpid

tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'orphan-1') = 'ignored'" 10)" t \
	"at start-up an interrupted claim returns to the queue and is finished"
tap_is "$(q "SELECT status || ' | ' || attempts || ' | ' || last_error FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'orphan-2'")" \
	"dead | $max_attempts | attempt $max_attempts of $max_attempts was interrupted (worker stopped or crashed); no attempts left" \
	"an interrupted claim on its last attempt ends dead, with the reason"
tap_is "$(wait_until "NOT EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'old-%' AND status IN ('done', 'ignored'))" 10)" t \
	"done and ignored rows older than inbox_retention_days are deleted (in batches)"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id IN ('recent-1', 'old-dead')")" 2 \
	"recent rows and dead rows are kept"

# --- DROP DATABASE ------------------------------------------------------------
"$TA_BINDIR/psql" -X -q -d template1 -c "DROP DATABASE $WORKER_DB" >/dev/null 2>"$TA_WORKDIR/dropdb.err"
tap_ok $? "DROP DATABASE of the worker's database succeeds while the worker runs"
cat "$TA_WORKDIR/dropdb.err" | sed 's/^/# /'
"$TA_BINDIR/psql" -X -q -d template1 -c "CREATE DATABASE $WORKER_DB" >/dev/null
q "CREATE EXTENSION tenant_airbyte" >/dev/null
newpid=$(wait_for_worker 30)
tap_ok $? "once the database exists again the worker comes back"
id=$(q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('frontegg.user.created', 'life-2') RETURNING delivery_id")
tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $id) = 'ignored'" 10)" t \
	"and serves the new database's inbox"

exit $((TAP_FAILED > 0))

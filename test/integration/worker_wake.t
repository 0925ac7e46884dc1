#!/usr/bin/env bash
# worker_wake.t: the background worker is woken by the commit of any
# transaction that put work in the inbox, once per commit, never by a
# rollback, and does not poll while idle.
#
# Uses an event that needs no Airbyte call (frontegg.user.created is
# recorded and ignored), so only the wake-up and the claim are tested.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/worker.sh

tap_plan 9

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
pid=$(wait_for_worker 30)
tap_ok $? "the worker is running"

tap_is "$(q "SELECT backend_type || ' | ' || application_name || ' | ' || (query LIKE 'tenant_airbyte: %')
              FROM pg_stat_activity WHERE pid = $pid")" \
	"tenant_airbyte worker | tenant_airbyte worker | true" \
	"pg_stat_activity names the worker and says what it does"

# a committed delivery is processed promptly
id=$(q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('frontegg.user.created', 'wake-1') RETURNING delivery_id")
tap_is "$(wait_until "(SELECT status FROM tenant_airbyte.webhook_inbox WHERE delivery_id = $id) = 'ignored'" 1)" t \
	"a committed delivery is processed within a second"

# one wake per commit, whatever the transaction held
before=$(q "SELECT commit_wakeups FROM tenant_airbyte.worker_status")
q "BEGIN;
   INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) SELECT 'frontegg.user.created', 'wake-2-' || g FROM generate_series(1, 50) g;
   INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('frontegg.user.created', 'wake-3');
   UPDATE tenant_airbyte.webhook_inbox SET tenant_name = 'x' WHERE tenant_id = 'wake-3';
   COMMIT;" >/dev/null
after=$(q "SELECT commit_wakeups FROM tenant_airbyte.worker_status")
tap_is "$((after - before))" 1 "a transaction with three statements and 51 rows wakes the worker once"
tap_is "$(wait_until "NOT EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'wake-%' AND status <> 'ignored')" 5)" t \
	"all 51 deliveries were processed"

# rollbacks wake nothing and leave nothing
before=$(q "SELECT commit_wakeups FROM tenant_airbyte.worker_status")
rows_before=$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox")
q "BEGIN; INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.created', 'aborted-1'); ROLLBACK;" >/dev/null
q "BEGIN; SAVEPOINT s; INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.created', 'aborted-2'); ROLLBACK TO SAVEPOINT s; COMMIT;" >/dev/null
"$TA_BINDIR/psql" -X -q -d "$WORKER_DB" -c "BEGIN; INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.created', 'aborted-3'); SELECT 1/0; COMMIT;" >/dev/null 2>&1
sleep 0.3
after=$(q "SELECT commit_wakeups FROM tenant_airbyte.worker_status")
tap_is "$((after - before))" 0 "a rollback, a rolled-back savepoint and a failed transaction wake nothing"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox")" "$rows_before" "and leave no row behind"

# a savepoint that is released keeps its wake
before=$(q "SELECT commit_wakeups FROM tenant_airbyte.worker_status")
q "BEGIN; SAVEPOINT s; INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('frontegg.user.created', 'released-1'); RELEASE SAVEPOINT s; COMMIT;" >/dev/null
after=$(q "SELECT commit_wakeups FROM tenant_airbyte.worker_status")
tap_is "$((after - before))" 1 "an insert under a released savepoint wakes the worker at commit"

# idle means asleep: the worker's activity does not change while nothing happens
wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE status IN ('pending', 'in_flight')) = 0" 5 >/dev/null
sleep 0.2
s1=$(q "SELECT state_change FROM pg_stat_activity WHERE pid = $pid")
sleep 2
s2=$(q "SELECT state_change FROM pg_stat_activity WHERE pid = $pid")
tap_is "$s2" "$s1" "an idle worker does not loop (no activity for 2 seconds)"

exit $((TAP_FAILED > 0))

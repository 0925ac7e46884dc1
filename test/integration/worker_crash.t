#!/usr/bin/env bash
# worker_crash.t: kill -9 of the worker at random moments during a
# 500-delivery run, several times, and one immediate shutdown of the whole
# cluster: afterwards every delivery is done and every tenant has exactly
# one workspace (nothing lost, nothing duplicated).
#
# kill -9 of a process attached to shared memory makes the postmaster
# reinitialise every process (crash recovery); the worker comes back by
# itself, returns the interrupted claims, and the provisioning marker
# makes each interrupted create reconcile instead of creating again.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 6

if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset '{"latency_ms": 150}' >/dev/null
set_setting tenant_airbyte.max_concurrency 16

enqueue_created crash 500

kills=0
for round in 1 2 3 4; do
	sleep "0.$((RANDOM % 9 + 1))"
	pid=$(worker_pid 2>/dev/null)
	if [ -n "$pid" ]; then
		kill -9 "$pid" && kills=$((kills + 1))
	fi
	# the postmaster restarts everything; wait for the worker to be back
	for i in $(seq 1 200); do
		newpid=$(worker_pid 2>/dev/null)
		[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && break
		sleep 0.1
	done
done
tap_ok $([ "$kills" -ge 3 ]; echo $?) "the worker was killed with SIGKILL $kills times mid-run"

sleep "0.$((RANDOM % 9 + 1))"
ta_cluster_stop immediate
ta_cluster_start
tap_ok $? "the cluster restarts after pg_ctl stop -m immediate"
wait_for_worker 30 >/dev/null

tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'crash-%' AND status = 'done') = 500" 120)" t \
	"all 500 deliveries end done"
tap_is "$(exactly_once crash 500 "$(ta_standin GET /_control/counters)")" ok \
	"every tenant has exactly one workspace, in Airbyte and in the table"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'crash-%' AND status <> 'done'")" 0 \
	"no delivery is left pending, in flight or dead"
tap_ok $([ "$(q "SELECT max(attempts) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'crash-%'")" -le "$(q "SHOW tenant_airbyte.max_attempts")" ]; echo $?) \
	"no delivery needed more than max_attempts attempts"

echo "# deliveries interrupted at least once: $(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'crash-%' AND attempts > 1")"

ta_standin POST /_control/reset >/dev/null
reset_setting tenant_airbyte.max_concurrency
exit $((TAP_FAILED > 0))

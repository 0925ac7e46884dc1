#!/usr/bin/env bash
# backfill_exactly_once.t: provision_tenants() of 2,000 existing tenants,
# with the worker killed (SIGKILL) twice mid-batch: every tenant ends with
# exactly one workspace in Airbyte and one row here, the batch's progress
# shows in worker_status, and webhook deliveries that arrive during the
# batch are not queued behind it (the batch holds at most
# tenant_airbyte.backfill_share of the window).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

N=2000
tap_plan 9
engine_setup
forget_tenants 'bf-%'
forget_tenants 'bfnow-%'
q "DELETE FROM tenant_airbyte.backfill_tenants" >/dev/null
q "DELETE FROM tenant_airbyte.backfill_batches" >/dev/null
ta_standin POST /_control/reset '{"latency_ms": 40}' >/dev/null
set_setting tenant_airbyte.max_concurrency 16
trap 'reset_setting tenant_airbyte.max_concurrency; ta_standin POST /_control/reset >/dev/null' EXIT

# a few tenants are provisioned already: the batch skips them
q "SELECT tenant_airbyte.provision_tenant('bf-' || g, 'Tenant bf ' || g) FROM generate_series(1, 5) g" >/dev/null

batch=$(q "SELECT tenant_airbyte.provision_tenants(
	(SELECT jsonb_agg(jsonb_build_object('tenantId', 'bf-' || g, 'name', 'Tenant bf ' || g) ORDER BY g)
	   FROM generate_series(1, $N) g, LATERAL (VALUES (1), (2)) AS twice(k)))")
tap_is "$(q "SELECT submitted || ' ' || queued FROM tenant_airbyte.backfill_batches WHERE id = $batch")" "$((2 * N)) $((N - 5))" \
	"provision_tenants() queued each tenant once, skipping the 5 already provisioned (batch $batch)"

# deliveries arriving while the batch runs are served beside it
tap_is "$(wait_until "(SELECT backfill_done FROM tenant_airbyte.worker_status) >= 100" 120)" t \
	"the batch is under way"
enqueue_created bfnow 5
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'bfnow-%' AND status = 'done') = 5" 60)" t \
	"5 deliveries that arrived during the batch are done ..."
tap_ok $([ "$(q "SELECT count(*) FROM tenant_airbyte.backfill_tenants WHERE status IN ('waiting', 'running')")" -gt 200 ]; echo $?) \
	"... long before the batch is (not queued behind the 2,000)"

kills=0
for at in 400 1000; do
	wait_until "(SELECT count(*) FROM tenant_airbyte.backfill_tenants WHERE status = 'done') >= $at" 180 >/dev/null
	pid=$(worker_pid 2>/dev/null)
	if [ -n "$pid" ]; then
		kill -9 "$pid" && kills=$((kills + 1))
	fi
	for i in $(seq 1 300); do
		newpid=$(worker_pid 2>/dev/null)
		[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && break
		sleep 0.1
	done
done
tap_is "$kills" 2 "the worker was killed with SIGKILL twice mid-batch"

tap_is "$(wait_until "(SELECT backfill_done FROM tenant_airbyte.worker_status) = $((N - 5))" 300)" t \
	"worker_status counts every queued tenant done"
tap_is "$(q "SELECT backfill_total || ' ' || backfill_failed FROM tenant_airbyte.worker_status")" "$((N - 5)) 0" \
	"... of $((N - 5)), none failed"
tap_is "$(exactly_once bf $N "$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Tenant bf ")")" ok \
	"every one of the $N tenants has exactly one workspace in Airbyte and one row"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id LIKE 'bf-%' AND kind = 'provision' AND status <> 'done'")" 0 \
	"no provision operation of the batch is left unfinished, failed or dead"

q "DELETE FROM tenant_airbyte.backfill_tenants" >/dev/null
q "DELETE FROM tenant_airbyte.backfill_batches" >/dev/null
exit $((TAP_FAILED > 0))

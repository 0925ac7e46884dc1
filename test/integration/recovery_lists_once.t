#!/usr/bin/env bash
# recovery_lists_once.t: one reconciliation pass serves every operation
# that needs one.  Airbyte holds about 20,000 workspaces (19,900 made by
# someone else); 32 provisionings are in flight when the worker is killed
# with SIGKILL: 16 creates that Airbyte carried out and 16 it never
# received, none answered.  Recovery must send at most one listing pass
# (at 100 a page: 200 pages for 19,932 workspaces) plus the 16 creates
# still needed, and leave exactly one workspace per tenant, all from the
# stand-in's counters.  Before the operation engine each interrupted
# create listed every workspace on its own: 32 x 200 pages.
#
# Runs its own cluster on TA_PORT + 24 and stand-in on TA_STANDIN_PORT + 24.
set -uo pipefail
cd "$(dirname "$0")/../.."
export TA_PORT=$((${TA_PORT:-25432} + 24)) TA_WORKDIR=${TA_WORKDIR:-/tmp/tenant_airbyte_test}-recovery
export TA_STANDIN_PORT=$((${TA_STANDIN_PORT:-18080} + 24))
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

SEEDED=19900
N=32
tap_plan 7

ta_cluster_init postgres >/dev/null || exit 1
echo "tenant_airbyte.max_concurrency = 64" >>"$TA_PGDATA/postgresql.conf"
ta_cluster_start || { cat "$TA_PGLOG"; exit 1; }
trap 'ta_standin_stop; ta_cluster_stop immediate >/dev/null 2>&1; cp "$TA_PGLOG" "$TA_WORKDIR-postgres.log" 2>/dev/null; rm -rf "$TA_WORKDIR"' EXIT
ta_standin_start "$TA_WORKDIR/standin.log" || { echo "# could not start the stand-in"; exit 1; }
q "CREATE EXTENSION tenant_airbyte" >/dev/null
pid=$(wait_for_worker 30) || { echo "# the worker did not start"; exit 1; }

ta_standin POST /_control/seed_workspaces "{\"count\": $SEEDED, \"prefix\": \"Someone else\"}" >/dev/null
# The first 16 creates take effect, the next 16 never arrive; none answers.
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "ms": 300000, "apply": true, "count": 16, "name_prefix": "Tenant rec "}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "ms": 300000, "count": 16, "name_prefix": "Tenant rec "}' >/dev/null

enqueue_created rec $N
arrived=f
for i in $(seq 1 1200); do
	c=$(curl -sS --max-time 10 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Tenant rec ")
	if [ "$(json_eval "$c" 'd["requests"].get("POST /workspaces", 0)')" -ge $N ] &&
		[ "$(json_eval "$c" 'd["live_workspaces"]')" -ge $((SEEDED + 16)) ]; then
		arrived=t
		break
	fi
	sleep 0.1
done
tap_is "$arrived" t "all $N creates are in flight, 16 carried out by Airbyte, none answered"

# From here on Airbyte answers; count only what recovery sends.
ta_standin DELETE /_control/faults >/dev/null
ta_standin POST /_control/reset_counters >/dev/null
kill -9 "$pid"
tap_ok $? "the worker is killed with SIGKILL"
for i in $(seq 1 600); do
	newpid=$(worker_pid 2>/dev/null)
	[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && break
	sleep 0.1
done

tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'rec-%' AND status = 'done') = $N" 300)" t \
	"after the crash all $N deliveries end done"
counters=$(curl -sS --max-time 10 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Tenant rec ")
tap_is "$(exactly_once rec $N "$counters")" ok "every tenant has exactly one workspace in Airbyte and one row"

live=$(json_eval "$counters" 'd["live_workspaces"]')
pages=$(json_eval "$counters" 'd["requests"].get("GET /workspaces", 0)')
creates=$(json_eval "$counters" 'd["requests"].get("POST /workspaces", 0)')
# One pass at limit=100 over W workspaces, stopping at the first page
# shorter than the limit: floor(W / 100) + 1 pages.
bound=$((live / 100 + 1))
echo "# recovery sent $pages list pages and $creates creates; $live workspaces in Airbyte"
tap_ok $([ "$pages" -le "$bound" ]; echo $?) "recovery lists at most one pass: $pages pages, at most $bound"
tap_ok $([ "$pages" -le 200 ]; echo $?) "... which is at most 200 pages"
tap_ok $([ "$creates" -le 16 ]; echo $?) "... and sends only the creates still needed: $creates, at most 16"

exit $((TAP_FAILED > 0))

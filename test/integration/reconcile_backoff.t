#!/usr/bin/env bash
# reconcile_backoff.t: the periodic reconciliation (reconcile_interval_s)
# backs off after a run that ended failed: the next run is due 10 s after
# it, then twice as long, never more than the interval, instead of at once
# (an Airbyte that refuses every listing was listed again every second);
# worker_status shows when the next run is due and how many failed in a
# row, also to pg_monitor; a run that succeeds ends the backoff.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 7
if [ -z "${TA_STANDIN_URL:-}" ]; then
	echo "# the stand-in is not running (test/run starts it)"
	exit 1
fi

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin

PERIODIC=tenant_airbyte.reconcile_periodic
INTERVAL=15
# Everything earlier tests left: a periodic run compares all rows with all
# of Airbyte and repairs, and the stand-in is reset below.
forget_all()
{
	q "DELETE FROM tenant_airbyte.webhook_inbox;
	   DELETE FROM tenant_airbyte.operations;
	   DELETE FROM tenant_airbyte.tenant_airbyte_workspaces;
	   DELETE FROM tenant_airbyte.tenant_templates;
	   DELETE FROM tenant_airbyte.pipeline_templates;
	   DELETE FROM tenant_airbyte.reconcile_findings;
	   DELETE FROM tenant_airbyte.reconcile_runs" >/dev/null
}
cleanup()
{
	reset_setting tenant_airbyte.reconcile_interval_s
	ta_standin DELETE /_control/faults >/dev/null
	ta_standin POST /_control/reset >/dev/null
	forget_all
}
trap cleanup EXIT
reset_setting tenant_airbyte.reconcile_interval_s
ta_standin POST /_control/reset >/dev/null
forget_all

# the scheduled periodic run after N failed ones: "gap failures" (seconds
# from the end of the last failed run to when the next is due)
next_after()
{
	wait_until "EXISTS (SELECT FROM tenant_airbyte.operations
	                     WHERE tenant_id = '$PERIODIC' AND status = 'pending'
	                       AND (params->>'failures')::int = $1)" 120 >/dev/null
	q "SELECT round(extract(epoch FROM p.next_attempt_at - f.finished_at))::int || ' ' || (p.params->>'failures')
	     FROM tenant_airbyte.operations p,
	          LATERAL (SELECT max(finished_at) AS finished_at FROM tenant_airbyte.operations
	                    WHERE tenant_id = '$PERIODIC' AND status IN ('failed', 'dead')) f
	    WHERE p.tenant_id = '$PERIODIC' AND p.status = 'pending'"
}

# Airbyte refuses every listing of workspaces (400: not worth retrying)
ta_standin POST /_control/fault '{"route": "GET /workspaces", "kind": "400"}' >/dev/null
set_setting tenant_airbyte.reconcile_interval_s $INTERVAL
started=$(date +%s)

got=$(next_after 1)
gap=${got% *}
tap_ok "$([ "$gap" -ge 9 ] && [ "$gap" -le 11 ]; echo $?)" \
	"after a periodic run failed, the next is due 10 s after it, not at once (gap ${gap} s)"
tap_is "$(q "SELECT reconcile_failures || ' ' || (reconcile_next_at = (SELECT next_attempt_at FROM tenant_airbyte.operations
                                                                            WHERE tenant_id = '$PERIODIC' AND status = 'pending'))
             FROM tenant_airbyte.worker_status")" "1 true" \
	"worker_status shows one failed run in a row and when the next is due"
tap_is "$(q "SET ROLE pg_monitor; SELECT reconcile_failures FROM tenant_airbyte.worker_status")" 1 \
	"... to pg_monitor too"

got=$(next_after 2)
gap=${got% *}
tap_ok "$([ "$gap" -ge 14 ] && [ "$gap" -le 16 ]; echo $?)" \
	"after a second failure the wait doubles, capped at the interval of $INTERVAL s (gap ${gap} s)"
elapsed=$(( $(date +%s) - started ))
failed=$(q "SELECT count(*) FROM tenant_airbyte.operations WHERE tenant_id = '$PERIODIC' AND status IN ('failed', 'dead')")
tap_is "$failed" 2 "two failed runs in ${elapsed} s, not one a second"

# Airbyte lists again: the next run succeeds and the backoff ends
ta_standin DELETE /_control/faults >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.reconcile_runs WHERE periodic)
                      AND EXISTS (SELECT FROM tenant_airbyte.operations
                                   WHERE tenant_id = '$PERIODIC' AND status = 'pending'
                                     AND coalesce((params->>'failures')::int, 0) = 0)" 120)" t \
	"once Airbyte answers, the periodic run succeeds"
tap_is "$(q "SELECT reconcile_failures || ' ' || round(extract(epoch FROM reconcile_next_at - reconcile_last_at))::int
             FROM tenant_airbyte.worker_status")" "0 $INTERVAL" \
	"... worker_status shows no failure in a row, and the next run is due an interval after it"

exit $((TAP_FAILED > 0))

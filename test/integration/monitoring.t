#!/usr/bin/env bash
# monitoring.t: a monitoring role (a member of pg_monitor) reads
# worker_status and tenant_airbyte.metrics(), the worker's metrics in
# Prometheus text format, and nothing else of the inbox; other roles get
# neither; request counters follow what the worker did; labels never carry
# what a sender chose; the shim's GET /metrics includes it all.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/webhookd.sh

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin

q "DROP ROLE IF EXISTS ta_monitor; DROP ROLE IF EXISTS ta_nobody;
   CREATE ROLE ta_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE ta_nobody LOGIN" >/dev/null
as_role()
{
	local role=$1
	shift
	PGOPTIONS='-c client_min_messages=warning' \
		"$TA_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -U "$role" -d "$WORKER_DB" -c "$1" 2>&1
}
cleanup()
{
	ta_webhookd_stop >/dev/null 2>&1
	q "DROP ROLE IF EXISTS ta_monitor; DROP ROLE IF EXISTS ta_nobody" >/dev/null
}
trap cleanup EXIT

# Work for the counters: two creates answered, one refused with a 500.
# (Tenant ids of this run only, so the file can run again on one cluster.)
P=mon$(date +%s)
enqueue_created "$P" 2
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE '$P-%' AND status = 'done') = 2" 60)" t \
	"two deliveries done"
# metric TEXT NAME{LABELS}: the value of one sample (0 when absent); label
# values may hold spaces, so the value is what follows the last one
metric() { echo "$1" | awk -v k="$2" '{ x = $NF; sub(/ [^ ]*$/, "") } $0 == k { v = x } END { print (v == "" ? 0 : v) }'; }
before=$(q "SELECT tenant_airbyte.metrics()")
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "500", "count": 1}' >/dev/null
q "SELECT tenant_airbyte.provision_tenant('$P-500', 'Mon 500')" >/dev/null 2>&1
q "SELECT tenant_airbyte.provision_tenant('$P-500', 'Mon 500')" >/dev/null
after=$(q "SELECT tenant_airbyte.metrics()")

# 2-4. pg_monitor: the view and the function, with the true counts.
tap_is "$(as_role ta_monitor "SELECT pending + in_flight + done + ignored + failed + dead FROM tenant_airbyte.worker_status")" \
	"$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox")" \
	"a pg_monitor member reads worker_status, with every inbox row counted"
tap_is "$(as_role ta_monitor "SELECT state <> '' AND pid IS NOT NULL FROM tenant_airbyte.worker_status")" t \
	"... and the worker's pid and state"
mon=$(as_role ta_monitor "SELECT tenant_airbyte.metrics()")
tap_is "$(metric "$mon" tenant_airbyte_worker_up)" 1 "a pg_monitor member reads metrics(): the worker is up"

# 5-6. but not the inbox's rows
out=$(as_role ta_monitor "SELECT body FROM tenant_airbyte.webhook_inbox LIMIT 1")
echo "$out" | grep -q "permission denied"
tap_ok $? "... yet cannot read a delivery's body"
out=$(as_role ta_monitor "SELECT tenant_id FROM tenant_airbyte.webhook_inbox LIMIT 1")
echo "$out" | grep -q "permission denied"
tap_ok $? "... nor its tenant id"

# 7-8. other roles get nothing
out=$(as_role ta_nobody "SELECT * FROM tenant_airbyte.worker_status")
echo "$out" | grep -q "permission denied"
tap_ok $? "a role outside pg_monitor cannot read worker_status"
out=$(as_role ta_nobody "SELECT tenant_airbyte.metrics()")
echo "$out" | grep -q "permission denied"
tap_ok $? "... nor metrics()"

# 9-12. the contents follow the work
done_created='tenant_airbyte_inbox_deliveries{event="tenant.created",status="done"}'
tap_is "$(metric "$mon" "$done_created")" \
	"$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE event = 'tenant.created' AND status = 'done'")" \
	"deliveries are counted by work and status"
ok2xx='tenant_airbyte_airbyte_requests_total{endpoint="POST /workspaces",outcome="2xx"}'
bad5xx='tenant_airbyte_airbyte_requests_total{endpoint="POST /workspaces",outcome="5xx"}'
tap_is "$(( $(metric "$after" "$ok2xx") - $(metric "$before" "$ok2xx") ))" 1 \
	"Airbyte requests are counted by endpoint and outcome: one more create answered"
tap_is "$(( $(metric "$after" "$bad5xx") - $(metric "$before" "$bad5xx") ))" 1 \
	"... and one more answered 500"
count=$(metric "$after" 'tenant_airbyte_airbyte_request_duration_seconds_count{endpoint="POST /workspaces"}')
inf=$(metric "$after" 'tenant_airbyte_airbyte_request_duration_seconds_bucket{endpoint="POST /workspaces",le="+Inf"}')
sum=$(echo "$after" | awk '/^tenant_airbyte_airbyte_requests_total\{endpoint="POST \/workspaces",/ { n += $NF } END { print n }')
tap_ok $([ -n "$count" ] && [ "$count" = "$inf" ] && [ "$count" = "$sum" ]; echo $?) \
	"the latency histogram counts every create ($count)"

# 13-14. a sender's event key never becomes a label
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, status, finished_at)
   VALUES (E'evil\"} 99\\nfake_metric 1', '$P-evil', 'ignored', now())" >/dev/null
mon=$(as_role ta_monitor "SELECT tenant_airbyte.metrics()")
echo "$mon" | grep -q "evil\|fake_metric"
tap_ok $([ $? -ne 0 ]; echo $?) "an ignored delivery's event key does not appear in metrics()"
tap_ok $([ "$(metric "$mon" 'tenant_airbyte_inbox_deliveries{event="other",status="ignored"}')" -ge 1 ]; echo $?) \
	"... it is counted as other"

# 15-18. the shim's /metrics, connected as the monitoring role
TA_WEBHOOKD_PORT=$((${TA_PORT:-25432} + 12))
"$TA_BINDIR/tenant_airbyte_webhookd" --listen "127.0.0.1:$TA_WEBHOOKD_PORT" \
	--conninfo "host=127.0.0.1 port=$TA_PORT user=ta_monitor dbname=$WORKER_DB" \
	--log-file "$TA_WORKDIR/monitoring-webhookd.log" 2>>"$TA_WORKDIR/monitoring-webhookd.log" &
TA_WEBHOOKD_PID=$!
for _ in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$TA_WEBHOOKD_PORT/health" && break
	sleep 0.1
done
shim=$(curl -s --max-time 20 "http://127.0.0.1:$TA_WEBHOOKD_PORT/metrics")
tap_is "$(metric "$shim" tenant_airbyte_webhookd_extension_metrics_up)" 1 \
	"the shim's /metrics reads metrics() as a pg_monitor member"
tap_is "$(metric "$shim" tenant_airbyte_worker_up)" 1 "... and shows the worker"
tap_ok $([ "$(metric "$shim" "$ok2xx")" -ge 1 ]; echo $?) "... and the Airbyte request counters"
echo "$shim" | grep -q '^tenant_airbyte_webhookd_requests_total'
tap_ok $? "... beside its own"
q "REVOKE pg_monitor FROM ta_monitor" >/dev/null
shim=$(curl -s --max-time 20 "http://127.0.0.1:$TA_WEBHOOKD_PORT/metrics")
tap_is "$(metric "$shim" tenant_airbyte_webhookd_extension_metrics_up)" 0 \
	"without pg_monitor the shim still serves its own metrics, and says the rest is missing"
tap_is "$(metric "$shim" 'tenant_airbyte_webhookd_database_errors_total{kind="query"}')" 0 \
	"... without counting that as a database error"

tap_done

#!/usr/bin/env bash
# end_to_end: a Frontegg delivery sent with curl to tenant_airbyte_webhookd
# becomes, through receive_webhook() and the background worker, one
# workspace in Airbyte (the stand-in) and one row in
# tenant_airbyte_workspaces; a tenant.deleted delivery soft-deletes it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/webhookd.sh
. test/lib/worker.sh

tap_plan 8
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

SECRET=e2e-$RANDOM-$RANDOM
TENANT=e2e-org-$RANDOM
q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
trap 'ta_webhookd_stop >/dev/null 2>&1; q "ALTER SYSTEM RESET tenant_airbyte.webhook_secret" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null' EXIT

port=$(ta_free_port)
TA_WEBHOOKD_DB=$WORKER_DB ta_webhookd_start "$port"
tap_ok $? "the shim is up"

post()
{
	curl -s -o "$TA_WORKDIR/e2e.body" -w '%{http_code}' -X POST "$TA_WEBHOOKD_URL$1" \
		-H 'Content-Type: application/json' \
		-H "x-webhook-secret: $(ta_frontegg_jwt "$SECRET")" --data-binary "$2"
}

status=$(post /api/webhooks/frontegg \
	"{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$TENANT\"},\"tenant\":{\"name\":\"End To End\"}}")
tap_is "$status" 202 "a signed tenant.created delivery is accepted with 202"

tap_is "$(wait_until "EXISTS (SELECT 1 FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$TENANT' AND status = 'active')" 30)" t \
	"the worker provisions the tenant: its row appears in tenant_airbyte_workspaces"
tap_is "$(q "SELECT status FROM tenant_airbyte.webhook_inbox WHERE tenant_id = '$TENANT' AND event = 'tenant.created'")" done \
	"the delivery ends done"

name=$(q "SELECT airbyte_workspace_name FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$TENANT'")
tap_is "$(ta_standin GET /_control/counters | python3 -c "import json,sys; print(json.load(sys.stdin)['workspaces_created_by_name'].get(sys.argv[1], 0))" "$name")" 1 \
	"Airbyte got exactly one workspace, named '$name'"

status=$(post /api/webhooks/frontegg/tenant-created \
	"{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$TENANT\"},\"tenant\":{\"name\":\"End To End\"}}")
tap_is "$status" 200 "the same delivery again is a duplicate (200) and enqueues nothing"

status=$(post /api/webhooks/frontegg/tenant-deleted "{\"tenantId\":\"$TENANT\"}")
tap_is "$status" 202 "a signed tenant.deleted delivery is accepted with 202"
tap_is "$(wait_until "EXISTS (SELECT 1 FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$TENANT' AND status = 'deleted')" 30)" t \
	"the worker soft-deletes the tenant"

exit $((TAP_FAILED > 0))

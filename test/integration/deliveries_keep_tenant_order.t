#!/usr/bin/env bash
# deliveries_keep_tenant_order.t: a tenant's deliveries become operations
# in the order they arrived, even when one of them must wait.  While the
# tenant's first tenant.created is still being carried out (the stand-in
# holds its create 3 s), a second tenant.created and then a tenant.updated
# arrive together, with another tenant's signup between them.  The second
# signup cannot be recorded yet (one unfinished operation per tenant and
# kind), so the rename behind it must wait too: recorded before it, the
# rename would run first.  The other tenant is not held up.  And the
# waiting ones go as soon as the first is done: the second signup finds
# its workspace without asking Airbyte, and the rename behind it used to
# wait for the worker's next timed look (60 s) instead.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 5
engine_setup
T=ord-$RANDOM
cleanup()
{
	ta_standin DELETE /_control/faults >/dev/null
	forget_tenants 'ord-%'
}
trap cleanup EXIT
forget_tenants 'ord-%'
ta_standin DELETE /_control/faults >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "ms": 3000, "name_prefix": "Order Shop"}' >/dev/null

q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', '$T', 'Order Shop')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id = '$T' AND kind = 'provision' AND status = 'in_flight')" 30)" t \
	"the first signup is in flight"
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES
	('tenant.created', '$T', 'Order Shop'),
	('tenant.created', '$T-other', 'Other Shop'),
	('tenant.updated', '$T', 'Order Renamed')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$T-other')
	AND EXISTS (SELECT FROM tenant_airbyte.operations WHERE tenant_id = '$T' AND kind = 'provision' AND status = 'in_flight')" 30)" t \
	"the other tenant is provisioned while the first signup still waits for Airbyte"
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'ord-%' AND status = 'done') = 4" 20)" t \
	"every delivery ends done, soon after the first signup's answer"
tap_is "$(q "SELECT string_agg(o.kind, ',' ORDER BY o.id) FROM tenant_airbyte.operations AS o WHERE o.tenant_id = '$T'")" \
	"provision,provision,rename" "the tenant's operations were recorded in the order its deliveries arrived"
tap_is "$(q "SELECT airbyte_workspace_name FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$T'")" \
	"Order Renamed - ${T:0:8}" "so the rename, which came last, is what the workspace is called"

exit $((TAP_FAILED > 0))

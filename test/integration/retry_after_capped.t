#!/usr/bin/env bash
# retry_after_capped.t: a 429 whose Retry-After asks for a year does not
# park the delivery for a year.  The wait is capped by
# tenant_airbyte.max_retry_after_s, last_error says it was capped, and the
# delivery is done once the cap has passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 4

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
q "DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'capped-%'" >/dev/null
q "DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'capped-%'" >/dev/null
finish()
{
	ta_standin POST /_control/reset >/dev/null
	q "ALTER SYSTEM RESET tenant_airbyte.max_retry_after_s" >/dev/null 2>&1
	q "SELECT pg_reload_conf()" >/dev/null
}
trap finish EXIT
set_setting tenant_airbyte.max_retry_after_s 5

ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "429", "count": 1, "retry_after": "31536000"}' >/dev/null
enqueue_created capped 1
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'capped-1' AND status = 'pending' AND attempts = 1)" 60)" t \
	"the 429 ends the first attempt"
wait_s=$(q "SELECT round(extract(epoch FROM next_attempt_at - updated_at)) FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'capped-1'")
tap_ok $([ -n "$wait_s" ] && [ "$wait_s" -le 6 ]; echo $?) \
	"the next attempt is due within max_retry_after_s (5 s), not a year later (waits ${wait_s:-?} s)"
error=$(q "SELECT last_error FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'capped-1'")
tap_ok $(grep -q "Retry-After of 31536000 s capped at 5 s (tenant_airbyte.max_retry_after_s)" <<<"$error"; echo $?) \
	"last_error says the server's Retry-After was capped"
[ "${TAP_FAILED}" -gt 0 ] && echo "#   last_error: $error"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'capped-1' AND status = 'done')" 60)" t \
	"the delivery is done after the capped wait"

exit $((TAP_FAILED > 0))

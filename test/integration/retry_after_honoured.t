#!/usr/bin/env bash
# retry_after_honoured.t: a 429 with "Retry-After: 3" is retried no sooner
# than 3 s after it was answered, on the worker's path (a delivery) and on
# the waiting function's path (provision_tenant()), measured from the
# stand-in's own request times.  A retry that ignored the header came
# after about 0.06 s (the first backoff window is 200 ms).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 8
engine_setup
forget_tenants 'later-org-%'
ta_standin POST /_control/reset >/dev/null
trap 'forget_tenants "later-org-%"; ta_standin POST /_control/reset >/dev/null' EXIT
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "429", "retry_after": "3", "count": 1, "name_prefix": "Later Delivery"}' >/dev/null
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "429", "retry_after": "3", "count": 1, "name_prefix": "Later Call"}' >/dev/null

# gap PREFIX: seconds from the 429's answer to the next create's arrival
gap()
{
	json_eval "$(standin_requests 'POST /workspaces' "$1")" '
"%.3f" % ((d["requests"][1]["arrived_us"] - d["requests"][0]["answered_us"]) / 1e6) if len(d["requests"]) >= 2 and d["requests"][0]["status"] == 429 else "none"'
}

# --- the worker's path ------------------------------------------------------------------
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'later-org-1', 'Later Delivery')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'later-org-1' AND status = 'done')" 60)" t \
	"a delivery whose first create got 429 with Retry-After: 3 ends done"
tap_is "$(json_eval "$(standin_requests 'POST /workspaces' 'Later Delivery')" '",".join(str(r["status"]) for r in d["requests"])')" "429,200" \
	"... after exactly one retry"
g=$(gap 'Later Delivery')
tap_ok $(python3 -c "import sys; sys.exit(0 if '$g' != 'none' and float('$g') >= 3.0 else 1)"; echo $?) \
	"... sent no sooner than 3 s after the 429 (${g} s)"
tap_ok $(python3 -c "import sys; sys.exit(0 if '$g' != 'none' and float('$g') < 20.0 else 1)"; echo $?) \
	"... and not long after (${g} s)"

# --- the waiting function's path --------------------------------------------------------
got=$(q "SET statement_timeout = '60s'; SELECT tenant_airbyte.provision_tenant('later-org-2', 'Later Call') ->> 'status'" 2>&1)
tap_is "$got" provisioned "provision_tenant() whose first create got 429 with Retry-After: 3 answers provisioned"
tap_is "$(json_eval "$(standin_requests 'POST /workspaces' 'Later Call')" '",".join(str(r["status"]) for r in d["requests"])')" "429,200" \
	"... after exactly one retry"
g=$(gap 'Later Call')
tap_ok $(python3 -c "import sys; sys.exit(0 if '$g' != 'none' and float('$g') >= 3.0 else 1)"; echo $?) \
	"... sent no sooner than 3 s after the 429 (${g} s)"
tap_ok $(python3 -c "import sys; sys.exit(0 if '$g' != 'none' and float('$g') < 20.0 else 1)"; echo $?) \
	"... and not long after (${g} s)"

exit $((TAP_FAILED > 0))

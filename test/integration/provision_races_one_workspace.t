#!/usr/bin/env bash
# provision_races_one_workspace.t: exactly one workspace per tenant when
# calls race.  50 concurrent provision_tenant() calls for one tenant; at
# the same time a tenant.created delivery and a direct call for a second
# tenant, and a delivery for a third.  All three tenants are named "Race"
# and their ids share their first 8 characters, so the default name rule
# (<name> - <first 8 characters of the id>) gives them the same name: the
# names must be made unique, each tenant must get its own workspace, and
# Airbyte must hold exactly three.  Before the operation engine all three
# were named "Race - race-org", one name held by three workspaces.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

tap_plan 11
engine_setup
forget_tenants 'race-org-%'
ta_standin POST /_control/reset >/dev/null
# Every create of these tenants takes 300 ms, so the calls overlap.
ta_standin POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "ms": 300, "name_prefix": "Race"}' >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"; forget_tenants "race-org-%"; ta_standin POST /_control/reset >/dev/null' EXIT

pids=()
for i in $(seq 1 50); do
	psql_bg "$out/call-$i" ta_race "SET statement_timeout = '120s'" \
		"SELECT tenant_airbyte.provision_tenant('race-org-1', 'Race')"
	pids+=("$BG_PID")
done
q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
   VALUES ('tenant.created', 'race-org-2', 'Race'), ('tenant.created', 'race-org-3', 'Race')" >/dev/null
psql_bg "$out/direct-2" ta_race "SET statement_timeout = '120s'" \
	"SELECT tenant_airbyte.provision_tenant('race-org-2', 'Race')"
pids+=("$BG_PID")
wait "${pids[@]}"

statuses=$(cat "$out"/call-* | python3 -c '
import json, sys
out = {"ok": 0, "provisioned": 0, "already_exists": 0, "ids": set(), "errors": []}
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        d = json.loads(line)
    except ValueError:
        out["errors"].append(line)
        continue
    out["ok"] += 1
    out[d["status"]] = out.get(d["status"], 0) + 1
    out["ids"].add(d["workspace_id"])
print("%d %d %d %d" % (out["ok"], out["provisioned"], out["already_exists"], len(out["ids"])))
for e in out["errors"][:3]:
    print("# " + e)
')
echo "$statuses" | grep '^#'
read -r calls_ok provisioned existed ids <<<"$(echo "$statuses" | head -1)"
tap_is "$calls_ok" 50 "all 50 racing calls for one tenant succeed"
tap_is "$provisioned|$existed" "1|49" "... exactly one says provisioned, 49 say already_exists"
tap_is "$ids" 1 "... all with the same workspace"
ws1=$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'race-org-1'")
tap_is "$(json_eval "$(head -1 "$out/call-1")" 'd["workspace_id"]' 2>/dev/null)" "$ws1" "... the one recorded for the tenant"

direct=$(grep -v '^$' "$out/direct-2" | tail -1)
tap_ok $(json_eval "$direct" 'd["status"] in ("provisioned", "already_exists")' 2>/dev/null | grep -q True; echo $?) \
	"a direct call racing a delivery for the same tenant succeeds (got $direct)"
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id IN ('race-org-2', 'race-org-3') AND status = 'done') = 2" 60)" t \
	"the racing deliveries end done"
tap_is "$(json_eval "$direct" 'd["workspace_id"]' 2>/dev/null)" "$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'race-org-2'")" \
	"the direct call returned the workspace recorded for its tenant"

tap_is "$(q "SELECT count(*) || '|' || count(DISTINCT airbyte_workspace_id) || '|' || count(DISTINCT airbyte_workspace_name)
             FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'race-org-%' AND status = 'active'")" "3|3|3" \
	"three tenants, three rows, three different workspaces with three different names"
counters=$(curl -sS --max-time 30 -G "$TA_STANDIN_URL/_control/counters" --data-urlencode "name_prefix=Race")
tap_is "$(json_eval "$counters" 'sum(d["live_workspaces_by_name"].values())')" 3 "Airbyte holds exactly three workspaces for them"
tap_is "$(json_eval "$counters" 'max(d["live_workspaces_by_name"].values() or [0])')" 1 "... and no two share a name"
tap_is "$(json_eval "$counters" 'sum(d["workspaces_created_by_name"].values())')" 3 "... and was asked to create exactly three"
q "SELECT tenant_id || ': ' || airbyte_workspace_name FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'race-org-%' ORDER BY 1" | sed 's/^/# /'

exit $((TAP_FAILED > 0))

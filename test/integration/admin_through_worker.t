#!/usr/bin/env bash
# admin_through_worker.t: the superuser airbyte_* wrappers are carried out
# by the background worker, so they hold what its other operations hold:
#   - a list is read to its end whatever its length: 20,000 workspaces are
#     200 full pages (and the empty page after them), every one returned;
#   - a create is done exactly once across a kill -9 of the worker while
#     its POST is on the way and Airbyte carried it out: after the restart
#     the worker finds the workspace (or the source) by its exact name and
#     creates no second one;
#   - a source create whose request never reached Airbyte when the worker
#     died fails with "call again": its configuration was in the worker's
#     memory only, never in a row.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh

tap_plan 12
[ -n "${TA_STANDIN_URL:-}" ] || { echo "# the stand-in is not running (test/run starts it)"; exit 1; }

q "CREATE EXTENSION IF NOT EXISTS tenant_airbyte" >/dev/null
wait_for_worker 30 >/dev/null
use_standin
ta_standin POST /_control/reset >/dev/null
trap 'ta_standin POST /_control/reset >/dev/null' EXIT
# this file's names are its own; earlier runs' operations are forgotten
q "DELETE FROM tenant_airbyte.operations WHERE kind LIKE 'admin\_%'
     AND intended_name IN ('Killed Admin Create', 'Killed Source', 'Never Sent')" >/dev/null

# (the stand-in's client reads the counters itself: with 20,000 workspaces
# they are too long for a command line)
requests() { python3 test/airbyte_standin.py counter requests "$1"; }
created_named() { python3 test/airbyte_standin.py counter workspaces_created_by_name "$1"; }

# --- 20,000 workspaces -------------------------------------------------------
# The page count below is the stand-in's count of every list request: let
# what earlier suites left to the worker (a retry that reconciles by name
# lists workspaces too) finish first, so that the count is this list's.
[ "$(wait_until "NOT EXISTS (SELECT 1 FROM tenant_airbyte.operations
                         WHERE status IN ('pending', 'in_flight')
                           AND tenant_id <> '(administration)'
                           AND tenant_id NOT LIKE 'tenant\_airbyte.%')" 180)" = t ] ||
	echo "# operations left by earlier files are still unfinished: the page count may include theirs"
ta_standin POST /_control/reset >/dev/null
python3 - "$TA_STANDIN_URL" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
for i in range(20000):
    for attempt in range(5):
        try:
            c.request("POST", "/_control/workspaces", json.dumps({"name": "Many %05d" % i}),
                      {"Content-Type": "application/json"})
            c.getresponse().read()
            break
        except Exception:
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port)
PY
got=$(q "SELECT count(*) || ' ' || count(DISTINCT w->>'workspaceId') || ' ' || (min(w->>'name') = 'Many 00000' AND max(w->>'name') = 'Many 19999')
           FROM tenant_airbyte.airbyte_list_workspaces() AS w")
tap_is "$got" "20000 20000 true" "airbyte_list_workspaces() returns all 20,000 workspaces, each once"
tap_is "$(requests 'GET /workspaces')" 201 "... read as 200 full pages of 100 and the empty one after them"
tap_is "$(q "SELECT outcome FROM tenant_airbyte.operations WHERE kind = 'admin_list_workspaces' ORDER BY id DESC LIMIT 1")" \
	'{"listed": 20000}' "... by one operation, whose outcome holds a count, not the workspaces"
ta_standin POST /_control/reset >/dev/null

# kill_worker_while ROUTE APPLY SQL: run SQL (a wrapper call) in the
# background, and kill -9 the worker while ROUTE's request hangs in the
# stand-in (APPLY true: Airbyte carried it out before hanging)
kill_worker_while()
{
	local route=$1 apply=$2 sql=$3 pid i
	ta_standin POST /_control/fault "{\"route\": \"$route\", \"kind\": \"hang\", \"ms\": 20000, \"count\": 1, \"apply\": $apply}" >/dev/null
	local before
	before=$(requests "$route")
	q "$sql" >/dev/null 2>&1 &
	for i in $(seq 1 300); do
		[ "$(requests "$route")" -gt "$before" ] && break
		sleep 0.1
	done
	pid=$(worker_pid)
	kill -9 "$pid"
	wait
	for i in $(seq 1 300); do
		q "SELECT 1" >/dev/null 2>&1 && [ -n "$(worker_pid 2>/dev/null)" ] && [ "$(worker_pid 2>/dev/null)" != "$pid" ] && break
		sleep 0.2
	done
	ta_standin DELETE /_control/faults >/dev/null
}

# --- a workspace create, Airbyte did it, the worker died ----------------------
kill_worker_while "POST /workspaces" true "SELECT tenant_airbyte.airbyte_create_workspace('Killed Admin Create')"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'admin_create_workspace'
          AND intended_name = 'Killed Admin Create' AND status IN ('done', 'failed', 'dead'))" 120)" t \
	"after the restart the interrupted workspace create finishes"
tap_is "$(q "SELECT status || ' ' || attempts FROM tenant_airbyte.operations WHERE kind = 'admin_create_workspace' AND intended_name = 'Killed Admin Create'")" \
	"done 2" "... done, on its second attempt"
tap_is "$(created_named 'Killed Admin Create') $(requests 'POST /workspaces')" "1 1" \
	"... Airbyte holds exactly one workspace of that name, and was asked once"
ws=$(q "SELECT w->>'workspaceId' FROM tenant_airbyte.airbyte_list_workspaces() AS w WHERE w->>'name' = 'Killed Admin Create'")
tap_is "$(q "SELECT outcome->>'workspace_id' FROM tenant_airbyte.operations WHERE kind = 'admin_create_workspace' AND intended_name = 'Killed Admin Create'")" \
	"$ws" "... and the operation adopted that one"

# --- a source create, Airbyte did it, the worker died -------------------------
config='{"sourceType": "shopify", "shop": "killed-shop", "credentials": {"auth_method": "api_password", "api_password": "shpat_killed_admin_0001"}}'
kill_worker_while "POST /sources" true "SELECT tenant_airbyte.airbyte_create_source('$ws', 'Killed Source', '$config')"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'admin_create_source'
          AND intended_name = 'Killed Source' AND status IN ('done', 'failed', 'dead'))" 120)" t \
	"the interrupted source create finishes after the restart ..."
tap_is "$(q "SELECT o.status || ' ' || (SELECT count(*) FROM tenant_airbyte.airbyte_list_sources('$ws') AS s WHERE s->>'name' = 'Killed Source')
           FROM tenant_airbyte.operations AS o WHERE o.kind = 'admin_create_source' AND o.intended_name = 'Killed Source'")" \
	"done 1" "... done, adopting the one source Airbyte made, without its configuration in memory"

# --- a source create that never reached Airbyte ------------------------------
kill_worker_while "POST /sources" false "SELECT tenant_airbyte.airbyte_create_source('$ws', 'Never Sent', '$config')"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.operations WHERE kind = 'admin_create_source'
          AND intended_name = 'Never Sent' AND status IN ('done', 'failed', 'dead'))" 120)" t \
	"a source create whose request was lost with the worker ends ..."
tap_is "$(q "SELECT o.status || ' ' || (o.outcome->>'hint') || ' ' || (SELECT count(*) FROM tenant_airbyte.airbyte_list_sources('$ws') AS s WHERE s->>'name' = 'Never Sent')
           FROM tenant_airbyte.operations AS o WHERE o.kind = 'admin_create_source' AND o.intended_name = 'Never Sent'")" \
	"failed Call airbyte_create_source() again. 0" "... failed, saying to call again, with no source made"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.operations AS o WHERE o::text LIKE '%shpat_killed%'")" 0 \
	"the configuration is in no operation row"

exit $((TAP_FAILED > 0))

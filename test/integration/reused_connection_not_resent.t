#!/usr/bin/env bash
# reused_connection_not_resent.t: the worker keeps its connections to
# Airbyte open between requests (a new TCP connection per create cost a
# third of the throughput), and a create whose answer is lost on a reused
# connection still happens exactly once.  libcurl would re-send such a
# request by itself on a fresh connection, creating a second workspace
# nobody records; src/airbyte/http_client.c hands it the body in a way it
# cannot send twice, so the engine hears "no answer" and reconciles by
# name instead.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh
. test/lib/tap.sh

tap_plan 7
engine_setup
forget_tenants 'reuse-%'
ta_standin POST /_control/reset >/dev/null

# A first tenant: the token request and its create open a connection.
is "$(q "SELECT tenant_airbyte.provision_tenant('reuse-a', 'Reuse A') ->> 'status'")" provisioned \
	"a first tenant is provisioned"

# The second tenant's create is carried out, and its answer lost: the
# stand-in closes the connection without a word.
ta_standin POST /_control/fault \
	'{"route": "POST /workspaces", "kind": "drop", "apply": true, "count": 1, "name_prefix": "Reuse B"}' >/dev/null
b=$(q "SELECT r ->> 'status' || ' ' || (r ->> 'workspace_id') FROM tenant_airbyte.provision_tenant('reuse-b', 'Reuse B') AS r")
is "${b%% *}" provisioned "the second tenant is provisioned although its create's answer was lost"

log=$(standin_requests "POST /workspaces" "Reuse B")
first_on=$(json_eval "$log" 'd["requests"][0]["on_connection"]')
ok "$([ "${first_on:-0}" -ge 2 ]; echo $?)" \
	"the lost create went on a connection already used (request $first_on on it)"
is "$(json_eval "$log" 'd["requests"][0]["status"]')" None "... and got no answer"
is "$(json_eval "$log" 'len(d["requests"])')" 1 "libcurl did not send it again: one POST /workspaces for the tenant"
is "$(created_count 'Reuse B')" 1 "Airbyte holds one workspace for the tenant"
is "$(live_count 'Reuse B')/$(q "SELECT airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'reuse-b'")" \
	"1/${b#* }" "... and it is the one recorded and answered"

ta_standin DELETE /_control/faults >/dev/null
forget_tenants 'reuse-%'

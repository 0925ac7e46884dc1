#!/usr/bin/env bash
# drop_extension.t: what README.md ("Removing it") says DROP EXTENSION
# does: every object and row goes (an empty schema stays), nothing is
# sent to Airbyte (the
# tenant's workspace stays there), and the worker lives on.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
WORKER_DB=tenant_airbyte_it_drop
. test/lib/worker.sh

ta_psql -d postgres -c "DROP DATABASE IF EXISTS $WORKER_DB" -c "CREATE DATABASE $WORKER_DB"
q "CREATE EXTENSION tenant_airbyte" >/dev/null
use_standin
P=drop$(date +%s)
# The worker serves another database, so provision_tenant() refuses here:
# make the tenant's workspace in the stand-in and record it by hand, as a
# provisioning would have.
ws=$(curl -sS --max-time 10 -X POST -H 'Content-Type: application/json' \
	-H "Authorization: Bearer $TA_STANDIN_TOKEN" \
	-d "{\"name\": \"Dropped $P - ${P:0:8}\"}" "$TA_STANDIN_URL/v1/workspaces" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["workspaceId"])')
tap_is "$(q "INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
			 VALUES ('$P', '$ws', 'Dropped $P - ${P:0:8}') RETURNING status")" active "a tenant is recorded with its workspace"
live() { json_eval "$(ta_standin GET /_control/counters)" "d['live_workspaces_by_name'].get('Dropped $P - ${P:0:8}', 0)"; }
requests() { json_eval "$(ta_standin GET /_control/counters)" "sum(d['requests'].values())"; }
tap_is "$(live)" 1 "... with its workspace in Airbyte"
before=$(requests)
worker=$(WORKER_DB=postgres worker_pid)

q "DROP EXTENSION tenant_airbyte" >/dev/null
tap_ok $? "DROP EXTENSION tenant_airbyte"
tap_is "$(q "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'tenant_airbyte'::regnamespace)
			 + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant_airbyte'::regnamespace)")" 0 \
	"every table, view and function of the extension is gone"
# CREATE EXTENSION made the schema for the control file's "schema =", so it
# is not a member: it stays, empty, until dropped by hand
q "DROP SCHEMA tenant_airbyte" >/dev/null
tap_ok $? "the empty schema stays and can be dropped by hand"
tap_is "$(requests)" "$before" "nothing was sent to Airbyte"
tap_is "$(live)" 1 "the workspace stays in Airbyte"
tap_is "$(WORKER_DB=postgres worker_pid)" "$worker" "the worker is undisturbed"

ta_psql -d postgres -c "DROP DATABASE $WORKER_DB"
tap_done

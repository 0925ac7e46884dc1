#!/usr/bin/env bash
# provision_exactly_once: one Airbyte workspace per tenant when 50 calls
# race, when the caller rolls back after Airbyte created the workspace,
# and when the backend is terminated in the middle of the create.  The
# worker carries out the operation, so neither a rollback nor a dead
# caller undoes it.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh

# In the database the worker serves: only the worker calls Airbyte.
DB=postgres
PSQL=("$TA_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1)
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
is() { [ "$1" = "$2" ]; ok $? "$3 (got '$1', want '$2')"; }
counter() { python3 test/airbyte_standin.py counter "$@"; }

echo "1..12"
"${PSQL[@]}" -d $DB -c "CREATE EXTENSION IF NOT EXISTS tenant_airbyte"
python3 test/airbyte_standin.py ctl POST /_control/reset

# 1. Fifty concurrent calls for one tenant; the create is slow (300 ms).
python3 test/airbyte_standin.py ctl POST /_control/fault \
	'{"route": "POST /workspaces", "kind": "latency", "ms": 300}'
out=$(mktemp -d)
for i in $(seq 1 50); do
	"${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.provision_tenant('race-0001', 'Race') ->> 'status'" \
		>"$out/$i" 2>&1 &
done
wait
is "$(cat "$out"/* | grep -c '^provisioned$')" 1 "50 racing calls: exactly one says provisioned"
is "$(cat "$out"/* | grep -c '^already_exists$')" 49 "... and 49 say already_exists"
is "$(counter workspaces_created_by_name 'Race - race-000')" 1 "... and Airbyte holds exactly one workspace"
is "$("${PSQL[@]}" -d $DB -c "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'race-0001'")" 1 \
	"... and one row records it"
rm -rf "$out"
python3 test/airbyte_standin.py ctl DELETE /_control/faults

# 2. The caller rolls back after Airbyte created the workspace: the
#    operation was the worker's, committed by it (like nextval).
first=$("${PSQL[@]}" -d $DB -c "BEGIN" \
	-c "SELECT tenant_airbyte.provision_tenant('rollback-0001', 'Rollback') ->> 'workspace_id'" \
	-c "ROLLBACK")
is "$("${PSQL[@]}" -d $DB -c "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'rollback-0001'")" 1 \
	"after ROLLBACK the workspace stays recorded, once"
second=$("${PSQL[@]}" -d $DB -c "SELECT r ->> 'status' || ' ' || (r ->> 'workspace_id') FROM tenant_airbyte.provision_tenant('rollback-0001', 'Rollback') AS r")
is "$second" "already_exists $first" "calling again answers already_exists with that workspace"
is "$(counter workspaces_created_by_name 'Rollback - rollback')" 1 "... so Airbyte still holds exactly one"

# 3. The backend is terminated while its create is in flight; Airbyte
#    finishes creating the workspace after the backend is gone.
python3 test/airbyte_standin.py ctl POST /_control/fault \
	'{"route": "POST /workspaces", "kind": "latency", "ms": 3000, "count": 1}'
PGAPPNAME=ta_kill_me "${PSQL[@]}" -d $DB \
	-c "SELECT tenant_airbyte.provision_tenant('killed-0001', 'Killed')" >/dev/null 2>&1 &
victim=$!
# until the create is on its way (its step is committed before it is sent)
"${PSQL[@]}" -d $DB -c "DO \$\$ BEGIN
	FOR i IN 1..1000 LOOP
		EXIT WHEN EXISTS (SELECT FROM tenant_airbyte.operations
						   WHERE tenant_id = 'killed-0001' AND step = 'create' AND status = 'in_flight');
		PERFORM pg_sleep(0.01);
	END LOOP; END \$\$" >/dev/null
"${PSQL[@]}" -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ta_kill_me'" >/dev/null
wait $victim
ok $([ $? -ne 0 ]; echo $?) "the terminated call failed"
for i in $(seq 1 100); do
	[ "$(counter workspaces_created_by_name 'Killed - killed-0')" -ge 1 ] && [ "$(counter in_flight)" -eq 0 ] && break
	sleep 0.05
done
is "$(counter workspaces_created_by_name 'Killed - killed-0')" 1 "Airbyte created the workspace after the backend died"
status=$("${PSQL[@]}" -d $DB -c "SELECT tenant_airbyte.provision_tenant('killed-0001', 'Killed') ->> 'status'")
is "$status" already_exists "calling again finds the workspace the operation recorded without its caller ..."
is "$(counter workspaces_created_by_name 'Killed - killed-0')" 1 "... and Airbyte holds no second one"
is "$("${PSQL[@]}" -d $DB -c "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'killed-0001'")" 1 \
	"... recorded once"

python3 test/airbyte_standin.py ctl POST /_control/reset

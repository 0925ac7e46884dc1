#!/usr/bin/env bash
# airbyte_call_interrupts: a backend waiting on Airbyte answers query
# cancel and statement_timeout promptly (not after the HTTP timeout), and
# the session stays usable afterwards.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh

# In the database the worker serves: only the worker calls Airbyte.
DB=postgres
PSQL=("$TA_BINDIR/psql" -X -q -At)
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
counter() { python3 test/airbyte_standin.py counter "$@"; }

echo "1..6"
"${PSQL[@]}" -d $DB -c "CREATE EXTENSION IF NOT EXISTS tenant_airbyte"
python3 test/airbyte_standin.py ctl POST /_control/reset
# Every create hangs for a minute, twice the default HTTP timeout.
python3 test/airbyte_standin.py ctl POST /_control/fault \
	'{"route": "POST /workspaces", "kind": "hang", "ms": 60000}'

# 1-3. pg_cancel_backend during the hanging call: the wait ends, the
#      operation does not (its outcome lands in tenant_airbyte.operations).
out=$(mktemp)
PGAPPNAME=ta_cancel_me "${PSQL[@]}" -d $DB \
	-c "SELECT tenant_airbyte.provision_tenant('cancel-0001', 'Cancel')" >"$out" 2>&1 &
victim=$!
for i in $(seq 1 100); do
	[ "$(counter in_flight)" -ge 1 ] && break
	sleep 0.05
done
"${PSQL[@]}" -d postgres -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'ta_cancel_me'" >/dev/null
ended=1
for i in $(seq 1 100); do   # up to 10 s, against a 30 s HTTP timeout
	if ! kill -0 $victim 2>/dev/null; then ended=0; break; fi
	sleep 0.1
done
ok $ended "a cancelled call returns long before the HTTP timeout"
wait $victim 2>/dev/null
grep -q "canceling statement due to user request" "$out"
ok $? "... with the usual cancel error"
state=$("${PSQL[@]}" -d $DB -c "SELECT status FROM tenant_airbyte.operations WHERE tenant_id = 'cancel-0001'")
[ "$state" = in_flight ] || [ "$state" = pending ]
ok $? "... and the operation goes on without the caller (got '$state')"

# 4-6. statement_timeout in the same session; the session then goes on.
"${PSQL[@]}" -d $DB -c "SET statement_timeout = '1s'" \
	-c "SELECT tenant_airbyte.provision_tenant('timeout-0001', 'Timeout')" \
	-c "RESET statement_timeout" -c "SELECT 'still here'" >"$out" 2>&1 &
victim=$!
ended=1
for i in $(seq 1 100); do
	if ! kill -0 $victim 2>/dev/null; then ended=0; break; fi
	sleep 0.1
done
ok $ended "statement_timeout ends a hanging call long before the HTTP timeout"
wait $victim 2>/dev/null
grep -q "canceling statement due to statement timeout" "$out"
ok $? "... with the statement timeout error"
grep -q "still here" "$out"
ok $? "... and the session is still usable"

rm -f "$out"
python3 test/airbyte_standin.py ctl POST /_control/reset

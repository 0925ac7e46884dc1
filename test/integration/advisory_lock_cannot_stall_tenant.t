#!/usr/bin/env bash
# advisory_lock_cannot_stall_tenant.t: an unprivileged login that holds
# the advisory locks the old provisioning took
# (pg_advisory_lock(hashtextextended('tenant_airbyte.tenant:<id>', 0)))
# neither stalls nor kills that tenant's work: a superuser's
# provision_tenant() returns, and a tenant.created delivery ends done.
# Before the operation engine the call blocked until the lock went away
# and the delivery was retried until it ended dead.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

ROLE=ta_it_lock_holder
tap_plan 6
engine_setup
forget_tenants 'org-delta%'
forget_tenants 'org-echo%'
ta_standin POST /_control/reset >/dev/null
q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
q "CREATE ROLE $ROLE LOGIN" >/dev/null

holder=
cleanup()
{
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	wait 2>/dev/null
	forget_tenants 'org-delta%'
	forget_tenants 'org-echo%'
	q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
	ta_standin POST /_control/reset >/dev/null
}
trap cleanup EXIT

# The attacker: an ordinary login, no grants at all, holding the locks.
PGAPPNAME=ta_lock_holder "$TA_BINDIR/psql" -X -q -d "$WORKER_DB" -U $ROLE \
	-c "SELECT pg_advisory_lock(hashtextextended('tenant_airbyte.tenant:org-delta', 0)),
	           pg_advisory_lock(hashtextextended('tenant_airbyte.tenant:org-echo', 0))" \
	-c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
holder=$!
tap_is "$(wait_until "(SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'ta_lock_holder') = 2" 30)" t \
	"an unprivileged login holds both tenants' advisory locks"

got=$(q "SET statement_timeout = '60s'; SELECT tenant_airbyte.provision_tenant('org-echo', 'Echo') ->> 'status'" 2>&1)
tap_is "$got" provisioned "a superuser's provision_tenant() for the locked tenant returns, provisioned"

q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'org-delta', 'Delta')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-delta' AND status = 'done')" 60)" t \
	"a tenant.created delivery for the locked tenant ends done"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id IN ('org-delta', 'org-echo') AND status = 'dead'")" 0 \
	"... and nothing ends dead"
tap_is "$(q "SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id IN ('org-delta', 'org-echo') AND status = 'active'")" 2 \
	"both tenants are recorded"
tap_is "$(live_count 'Delta')|$(live_count 'Echo')" "1|1" "each has exactly one workspace in Airbyte"

exit $((TAP_FAILED > 0))

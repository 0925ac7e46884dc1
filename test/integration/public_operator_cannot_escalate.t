#!/usr/bin/env bash
# public_operator_cannot_escalate.t: a role with CREATE on schema public
# defines public.=(varchar, text), an operator whose function makes that
# role superuser whenever a superuser runs it.  Unqualified SQL such as
# "tenant_id = $1" (tenant_id is varchar) resolves to it under a search
# path that holds public.  After a tenant.created and a tenant.updated
# delivery, a provision_tenant() call by a superuser with the default
# search path, and a tenant.deleted delivery, the role is still not a
# superuser.  Before the operation engine the worker ran as the bootstrap
# superuser with search_path "$user", public, and the first tenant.updated
# made the role superuser.
#
# Each step is judged on its own: the role is demoted again after a step
# that promoted it, so the report says which path is open.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

ROLE=ta_it_op_attacker
tap_plan 7
engine_setup

# While the operator exists, this test's own superuser session must not
# resolve to it: every query here runs with public off the search path.
q()
{
	PGOPTIONS='-c client_min_messages=warning -c search_path=pg_catalog,pg_temp' \
		"$TA_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$WORKER_DB" -c "$1"
}

cleanup()
{
	q "DROP OPERATOR IF EXISTS public.= (varchar, text)" >/dev/null 2>&1
	q "DROP FUNCTION IF EXISTS public.ta_it_escalating_eq(varchar, text)" >/dev/null 2>&1
	q "REVOKE CREATE ON SCHEMA public FROM $ROLE" >/dev/null 2>&1
	q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
	forget_tenants 'op-org-%'
	ta_standin POST /_control/reset >/dev/null
}
cleanup
trap cleanup EXIT
q "CREATE ROLE $ROLE LOGIN" >/dev/null
q "GRANT CREATE ON SCHEMA public TO $ROLE" >/dev/null

# The attack, as the role itself.
"$TA_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$WORKER_DB" -U $ROLE >/dev/null <<SQL
CREATE FUNCTION public.ta_it_escalating_eq(a varchar, b text) RETURNS boolean
LANGUAGE plpgsql AS \$\$
BEGIN
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		EXECUTE 'ALTER ROLE $ROLE SUPERUSER';
	END IF;
	RETURN a::text OPERATOR(pg_catalog.=) b;
END
\$\$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = text, FUNCTION = public.ta_it_escalating_eq);
SQL
tap_ok $? "a role with CREATE on public defines public.=(varchar, text)"

# step DESCRIPTION: judge the step, then demote the role for the next one
step()
{
	tap_is "$(rolsuper $ROLE)" f "$1"
	q "ALTER ROLE $ROLE NOSUPERUSER" >/dev/null
}

q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.created', 'op-org-1', 'Operator One')" >/dev/null
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id OPERATOR(pg_catalog.~~) 'op-org-1' AND status::text OPERATOR(pg_catalog.=) 'done')" 60)" t \
	"a tenant.created delivery ends done"
step "... and the role is not a superuser afterwards"

q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name) VALUES ('tenant.updated', 'op-org-1', 'Operator One Renamed')" >/dev/null
wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id OPERATOR(pg_catalog.~~) 'op-org-1' AND status::text OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'dead', 'failed'])) OPERATOR(pg_catalog.=) 2" 60 >/dev/null
step "after a tenant.updated delivery the role is not a superuser"

"$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" \
	-c "SELECT tenant_airbyte.provision_tenant('op-org-2', 'Operator Two')" >/dev/null 2>&1
step "after a superuser's provision_tenant() with the default search_path the role is not a superuser"

q "INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.deleted', 'op-org-1')" >/dev/null
wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id OPERATOR(pg_catalog.~~) 'op-org-1' AND status::text OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'dead', 'failed'])) OPERATOR(pg_catalog.=) 3" 60 >/dev/null
step "after a tenant.deleted delivery the role is not a superuser"

tap_is "$(q "SELECT string_agg(status::text, ',' ORDER BY delivery_id) FROM tenant_airbyte.webhook_inbox WHERE tenant_id OPERATOR(pg_catalog.~~) 'op-org-1'")" \
	"done,done,done" "the three deliveries did their work (the operator did not break them)"

exit $((TAP_FAILED > 0))

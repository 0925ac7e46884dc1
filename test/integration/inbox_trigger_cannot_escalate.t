#!/usr/bin/env bash
# inbox_trigger_cannot_escalate.t: an administrator granted
# ALL ON ALL TABLES IN SCHEMA tenant_airbyte (as README.md used to advise)
# tries to put a trigger on every table of the schema, webhook_inbox
# first, whose function makes it superuser whenever a superuser fires it.
# After deliveries it enqueued itself are processed, and after a delivery
# that came in through receive_webhook(), it is still not a superuser:
# either the triggers cannot be created, or they run without privilege.
# Before the operation engine the worker, running as the bootstrap
# superuser, fired the trigger and the role made itself superuser.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/standin.sh
. test/lib/worker.sh
. test/lib/engine.sh

ROLE=ta_it_trigger_admin
INTAKE=ta_it_trigger_intake
SECRET='it-trigger-secret-0123456789'
tap_plan 6
engine_setup

cleanup()
{
	q "DROP SCHEMA IF EXISTS $ROLE CASCADE" >/dev/null 2>&1
	q "DROP OWNED BY $ROLE" >/dev/null 2>&1
	q "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
	q "DROP OWNED BY $INTAKE" >/dev/null 2>&1
	q "DROP ROLE IF EXISTS $INTAKE" >/dev/null 2>&1
	q "ALTER SYSTEM RESET tenant_airbyte.webhook_auth" >/dev/null 2>&1
	q "ALTER SYSTEM RESET tenant_airbyte.webhook_secret" >/dev/null 2>&1
	q "SELECT pg_reload_conf()" >/dev/null 2>&1
	forget_tenants 'trig-org-%'
	ta_standin POST /_control/reset >/dev/null
}
cleanup
trap cleanup EXIT

# The administrator of README.md: BYPASSRLS, every table right, and (to
# hold its trigger function) a schema of its own.
q "CREATE ROLE $ROLE LOGIN BYPASSRLS" >/dev/null
q "GRANT USAGE ON SCHEMA tenant_airbyte TO $ROLE" >/dev/null
q "GRANT ALL ON ALL TABLES IN SCHEMA tenant_airbyte TO $ROLE" >/dev/null
q "GRANT USAGE ON ALL SEQUENCES IN SCHEMA tenant_airbyte TO $ROLE" >/dev/null
q "CREATE SCHEMA $ROLE AUTHORIZATION $ROLE" >/dev/null

created=$("$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" -U $ROLE 2>&1 <<SQL
CREATE FUNCTION $ROLE.escalate() RETURNS trigger
LANGUAGE plpgsql AS \$\$
BEGIN
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
		EXECUTE 'ALTER ROLE $ROLE SUPERUSER';
	END IF;
	RETURN NULL;
END
\$\$;
DO \$\$
DECLARE
	t record;
	made int := 0;
BEGIN
	FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
	          WHERE c.relnamespace OPERATOR(pg_catalog.=) 'tenant_airbyte'::regnamespace AND c.relkind OPERATOR(pg_catalog.=) 'r'
	          ORDER BY c.relname OPERATOR(pg_catalog.<>) 'webhook_inbox', c.relname
	LOOP
		BEGIN
			EXECUTE format('CREATE TRIGGER ta_it_escalate AFTER INSERT OR UPDATE OR DELETE ON tenant_airbyte.%I
			                FOR EACH ROW EXECUTE FUNCTION $ROLE.escalate()', t.relname);
			made := made + 1;
			RAISE NOTICE 'trigger on %', t.relname;
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE 'no trigger on %: %', t.relname, SQLERRM;
		END;
	END LOOP;
	RAISE NOTICE 'triggers created: %', made;
END
\$\$;
SQL
)
echo "$created" | sed 's/^/# /'
tap_ok 0 "the administrator tried to put a trigger on every table of the schema"

# 1. Deliveries the administrator enqueues by hand, as README.md shows
#    (this test's own superuser session never writes to a table with the
#    trigger: that would fire it as superuser, proving nothing).
"$TA_BINDIR/psql" -X -q -d "$WORKER_DB" -U $ROLE -c \
	"INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
	 VALUES ('tenant.created', 'trig-org-1', 'Trigger One'), ('tenant.created', 'trig-org-2', 'Trigger Two')" >/dev/null 2>&1
tap_is "$(wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'trig-org-%' AND status = 'done') = 2" 60)" t \
	"the deliveries it enqueued end done"
"$TA_BINDIR/psql" -X -q -d "$WORKER_DB" -U $ROLE -c \
	"INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name)
	 VALUES ('tenant.updated', 'trig-org-1', 'Trigger One Renamed')" >/dev/null 2>&1
wait_until "(SELECT count(*) FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'trig-org-%' AND status IN ('done', 'dead', 'failed')) = 3" 60 >/dev/null
tap_is "$(rolsuper $ROLE)" f "after the worker processed them the administrator is not a superuser"
q "ALTER ROLE $ROLE NOSUPERUSER" >/dev/null

# 2. A delivery through receive_webhook(), as the shim makes it: a role
#    that holds only EXECUTE on it, the hmac-sha256 scheme.
q "CREATE ROLE $INTAKE LOGIN" >/dev/null
q "GRANT EXECUTE ON FUNCTION tenant_airbyte.receive_webhook(text, jsonb, bytea) TO $INTAKE" >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'hmac-sha256'" >/dev/null
q "ALTER SYSTEM SET tenant_airbyte.webhook_secret = '$SECRET'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
body='{"eventKey": "frontegg.tenant.created", "eventContext": {"tenantId": "trig-org-3"}, "tenant": {"name": "Trigger Three"}}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
got=$("$TA_BINDIR/psql" -X -q -A -t -d "$WORKER_DB" -U $INTAKE \
	-v body="$body" -v sig="$sig" 2>&1 <<'SQL'
SELECT http_status FROM tenant_airbyte.receive_webhook(NULL,
	jsonb_build_object('content-type', 'application/json', 'x-frontegg-signature', :'sig'),
	convert_to(:'body', 'UTF8'));
SQL
)
tap_is "$got" 202 "a signed delivery through receive_webhook() is accepted"
tap_is "$(wait_until "EXISTS (SELECT FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'trig-org-3' AND status = 'done')" 60)" t \
	"... and ends done"
tap_is "$(rolsuper $ROLE)" f "after it the administrator is not a superuser"

exit $((TAP_FAILED > 0))

--
-- airbyte_admin: the superuser-only workspace and source wrappers, carried
-- out by the background worker (operations of the admin_* kinds), listing
-- across pages, exactly once when an answer is lost or the caller stops
-- waiting, invisible to other roles, and authentication (static token,
-- client credentials with a cached token refreshed before expiry and
-- refetched once on a 401).  Every wrapper works with the guard on that
-- refuses an Airbyte request from any process but the worker.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set SHOW_CONTEXT never
\! python3 test/airbyte_standin.py ctl POST /_control/reset

-- create, get, rename, delete.
SELECT w->>'name' AS name, w ? 'workspaceId' AS has_id
  FROM tenant_airbyte.airbyte_create_workspace('Admin Made') AS w;
SELECT (w->>'workspaceId')::uuid AS made FROM tenant_airbyte.airbyte_list_workspaces() AS w \gset
SELECT tenant_airbyte.airbyte_get_workspace(:'made')->>'name' AS name;
SELECT tenant_airbyte.airbyte_rename_workspace(:'made', 'Admin Renamed')->>'name' AS name;
SELECT tenant_airbyte.airbyte_get_workspace(:'made')->>'name' AS name;
SELECT tenant_airbyte.airbyte_delete_workspace(:'made') AS deleted;
SELECT tenant_airbyte.airbyte_delete_workspace(:'made') AS deleted_again;
SELECT tenant_airbyte.airbyte_get_workspace('00000000-0000-4000-8000-000000000099');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.airbyte_create_workspace('');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS deleted_included FROM tenant_airbyte.airbyte_list_workspaces(true);

-- Every page: 250 workspaces are 3 pages of 100 (the last one short,
-- although Airbyte still sends a "next" link).
\! python3 test/airbyte_standin.py ctl POST /_control/reset
SELECT count(*) AS created
  FROM generate_series(1, 250) AS g,
       LATERAL tenant_airbyte.airbyte_create_workspace('Bulk ' || g) AS w;
SELECT count(*) AS listed, count(DISTINCT w->>'workspaceId') AS distinct_ids
  FROM tenant_airbyte.airbyte_list_workspaces() AS w;
\! python3 test/airbyte_standin.py counter requests "GET /workspaces"

-- Sources in an administrator's workspace: create (its configuration never
-- comes back), get, list, consent URL, delete twice.
SELECT (tenant_airbyte.airbyte_create_workspace('Admin Sources')->>'workspaceId')::uuid AS aws \gset
SELECT s->>'name' AS name, s ? 'configuration' AS has_configuration, s->>'workspaceId' = :'aws' AS in_workspace
  FROM tenant_airbyte.airbyte_create_source(:'aws', 'Admin Shop',
         '{"sourceType": "shopify", "shop": "admin-shop", "credentials": {"auth_method": "api_password", "api_password": "shpat_admin_secret_0001"}}') AS s;
SELECT (s->>'sourceId')::uuid AS asrc FROM tenant_airbyte.airbyte_list_sources(:'aws') AS s \gset
SELECT tenant_airbyte.airbyte_get_source(:'asrc')->>'name' AS name;
SELECT count(*) AS listed, bool_or(s::text LIKE '%shpat_admin%') AS secret_shown
  FROM tenant_airbyte.airbyte_list_sources(:'aws') AS s;
SELECT tenant_airbyte.airbyte_initiate_oauth(:'aws', 'facebook-marketing', 'https://app.example/cb') LIKE 'http%' AS consent_url;
\! python3 test/airbyte_standin.py ctl POST /_control/config '{"oauth": "501"}'
SELECT tenant_airbyte.airbyte_initiate_oauth(:'aws', 'facebook-marketing', 'https://app.example/cb');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.airbyte_delete_source(:'asrc') AS deleted;
SELECT tenant_airbyte.airbyte_delete_source(:'asrc') AS deleted_again;
-- The configuration went to the worker in memory: not in any row.
SELECT count(*) AS rows_with_secret FROM tenant_airbyte.operations AS o
 WHERE o::text LIKE '%shpat_admin%';

-- A create whose answer is lost (Airbyte made it, the connection dropped):
-- the worker finds it by its exact name instead of creating a second one.
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "drop", "apply": true, "count": 1}'
SELECT w->>'name' AS name FROM tenant_airbyte.airbyte_create_workspace('Answer Lost') AS w;
\! python3 test/airbyte_standin.py counter workspaces_created_by_name "Answer Lost"
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /sources", "kind": "drop", "apply": true, "count": 1}'
SELECT s->>'name' AS name FROM tenant_airbyte.airbyte_create_source(:'aws', 'Source Lost',
         '{"sourceType": "shopify", "shop": "lost-shop", "credentials": {"auth_method": "api_password", "api_password": "shpat_admin_secret_0002"}}') AS s;
SELECT count(*) AS sources_named_lost FROM tenant_airbyte.airbyte_list_sources(:'aws') AS s
 WHERE s->>'name' = 'Source Lost';

-- A caller that stops waiting (statement_timeout) leaves the operation
-- running to its end: the workspace is made once, recorded as done.
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "ms": 1500, "count": 1}'
SELECT set_config('ta_test.before_id', coalesce(max(id), 0)::text, false) AS before_id
  FROM tenant_airbyte.operations \gset
SET statement_timeout = '300ms';
SELECT tenant_airbyte.airbyte_create_workspace('Caller Gone');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET statement_timeout;
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN EXISTS (SELECT FROM tenant_airbyte.operations
						   WHERE kind = 'admin_create_workspace' AND intended_name = 'Caller Gone'
							 AND status = 'done' AND id > current_setting('ta_test.before_id')::bigint);
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT status, outcome ? 'workspace_id' AS has_id FROM tenant_airbyte.operations
 WHERE kind = 'admin_create_workspace' AND intended_name = 'Caller Gone' AND id > :before_id;
\! python3 test/airbyte_standin.py counter workspaces_created_by_name "Caller Gone"

-- What Airbyte answered is in admin_results, not in the outcome.
SELECT kind, tenant_id, outcome ? 'name' AS outcome_has_workspace,
       (SELECT r.item ? 'name' FROM tenant_airbyte.admin_results AS r
         WHERE r.operation_id = o.id) AS result_has_workspace
  FROM tenant_airbyte.operations AS o
 WHERE kind = 'admin_get_workspace' AND status = 'done' ORDER BY id DESC LIMIT 1;

-- Administration operations are hidden from roles under row-level
-- security, even one whose tenant context is the reserved id; a BYPASSRLS
-- administrator with the documented grants sees that they ran but cannot
-- read their results, and no one but the worker may record one (a row
-- inserted by hand would make the worker delete a workspace).
CREATE ROLE airbyte_admin_tenant_role;
CREATE ROLE airbyte_admin_bypass_role BYPASSRLS;
GRANT SELECT, INSERT, UPDATE ON tenant_airbyte.operations TO airbyte_admin_tenant_role, airbyte_admin_bypass_role;
GRANT SET ON PARAMETER tenant_airbyte.tenant_id TO airbyte_admin_tenant_role;
SET ROLE airbyte_admin_tenant_role;
SET tenant_airbyte.tenant_id = '(administration)';
SELECT count(*) AS admin_operations_seen FROM tenant_airbyte.operations;
INSERT INTO tenant_airbyte.operations (kind, tenant_id, params)
VALUES ('admin_delete_workspace', '(administration)', jsonb_build_object('workspace_id', :'aws'));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET tenant_airbyte.tenant_id;
RESET ROLE;
SET ROLE airbyte_admin_bypass_role;
SELECT count(*) > 0 AS admin_operations_seen FROM tenant_airbyte.operations WHERE tenant_id = '(administration)';
SELECT count(*) FROM tenant_airbyte.admin_results;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO tenant_airbyte.operations (kind, tenant_id, params)
VALUES ('admin_delete_workspace', '(administration)', jsonb_build_object('workspace_id', :'aws'));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE tenant_airbyte.operations SET status = 'pending', step = ''
 WHERE kind = 'admin_delete_workspace';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenant_airbyte.airbyte_get_workspace(:'aws')->>'name' AS still_there;
REVOKE ALL ON tenant_airbyte.operations FROM airbyte_admin_tenant_role, airbyte_admin_bypass_role;
REVOKE SET ON PARAMETER tenant_airbyte.tenant_id FROM airbyte_admin_tenant_role;
DROP ROLE airbyte_admin_tenant_role;
DROP ROLE airbyte_admin_bypass_role;
\! python3 test/airbyte_standin.py ctl POST /_control/reset

-- Only superusers, even if EXECUTE were granted by mistake.
CREATE ROLE airbyte_admin_test_role;
GRANT EXECUTE ON FUNCTION tenant_airbyte.airbyte_list_workspaces(boolean) TO airbyte_admin_test_role;
SET ROLE airbyte_admin_test_role;
SELECT count(*) FROM tenant_airbyte.airbyte_list_workspaces();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.provision_tenant('org-x', 'X');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP OWNED BY airbyte_admin_test_role;
DROP ROLE airbyte_admin_test_role;

-- Client credentials: no static token; a token is fetched once, cached,
-- refreshed before expires_in runs out (6 s here: refreshed at half-life, 3 s), and
-- fetched again once when Airbyte answers 401.
\! python3 test/airbyte_standin.py ctl POST /_control/reset '{"token_expires_in": 6}'
SELECT current_setting('tenant_airbyte.api_token') AS saved_token \gset
ALTER SYSTEM SET tenant_airbyte.api_token = '';
ALTER SYSTEM SET tenant_airbyte.client_id = 'standin-client';
ALTER SYSTEM SET tenant_airbyte.client_secret = 'standin-secret';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT count(*) AS listed FROM tenant_airbyte.airbyte_list_workspaces();
SELECT count(*) AS listed FROM tenant_airbyte.airbyte_list_workspaces();
\! python3 test/airbyte_standin.py counter tokens_issued
SELECT pg_sleep(3.5);
\! python3 test/airbyte_standin.py ctl POST /_control/config '{"token_expires_in": 900}'
SELECT count(*) AS listed FROM tenant_airbyte.airbyte_list_workspaces();
\! python3 test/airbyte_standin.py counter tokens_issued
\! python3 test/airbyte_standin.py ctl POST /_control/revoke_tokens
SELECT count(*) AS listed FROM tenant_airbyte.airbyte_list_workspaces();
\! python3 test/airbyte_standin.py counter tokens_issued
\! python3 test/airbyte_standin.py counter auth_failures
-- A wrong secret: a clear error that never shows the secret.
ALTER SYSTEM SET tenant_airbyte.client_secret = 'wrong-secret-value';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT count(*) FROM tenant_airbyte.airbyte_list_workspaces();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- No credentials at all.
ALTER SYSTEM SET tenant_airbyte.client_secret = '';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT count(*) FROM tenant_airbyte.airbyte_list_workspaces();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A static token Airbyte refuses is not retried.
ALTER SYSTEM SET tenant_airbyte.api_token = 'not-the-token';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT count(*) FROM tenant_airbyte.airbyte_list_workspaces();
\echo SQLSTATE :LAST_ERROR_SQLSTATE

ALTER SYSTEM SET tenant_airbyte.api_token = :'saved_token';
ALTER SYSTEM RESET tenant_airbyte.client_id;
ALTER SYSTEM RESET tenant_airbyte.client_secret;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
\! python3 test/airbyte_standin.py ctl POST /_control/reset

--
-- airbyte_admin: the superuser-only workspace wrappers, listing across
-- pages, and authentication (static token, client credentials with a
-- cached token refreshed before expiry and refetched once on a 401).
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

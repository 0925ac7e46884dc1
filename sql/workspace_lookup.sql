--
-- workspace_lookup: get_workspace_for_tenant() and active_workspaces()
-- return active rows only, and refuse bad tenant ids with a clear error.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;

INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name, status, deleted_at)
VALUES
	('org-aaa', '11111111-1111-4111-8111-111111111111', 'Acme - org-aaa', 'active', NULL),
	('org-bbb', '22222222-2222-4222-8222-222222222222', 'Beta - org-bbb', 'active', NULL),
	('org-ccc', '33333333-3333-4333-8333-333333333333', 'Gone - org-ccc', 'deleted', now()),
	('org-ddd', '44444444-4444-4444-8444-444444444444', 'Late - org-ddd', 'suspended', NULL);

SELECT tenant_id, airbyte_workspace_id, airbyte_workspace_name, status
  FROM tenant_airbyte.get_workspace_for_tenant('org-aaa');

-- Not found, deleted and suspended tenants have no active workspace.
SELECT tenant_airbyte.get_workspace_for_tenant('org-zzz') IS NULL AS unknown_is_null;
SELECT tenant_airbyte.get_workspace_for_tenant('org-ccc') IS NULL AS deleted_is_null;
SELECT tenant_airbyte.get_workspace_for_tenant('org-ddd') IS NULL AS suspended_is_null;

SELECT tenant_id, status FROM tenant_airbyte.active_workspaces();

-- Bad input: NULL, empty, blank and 256-character ids.
\set SHOW_CONTEXT never
SELECT tenant_airbyte.get_workspace_for_tenant(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.get_workspace_for_tenant('');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.get_workspace_for_tenant('   ');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.get_workspace_for_tenant(repeat('x', 256));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- 255 characters is the limit, not an error.
SELECT tenant_airbyte.get_workspace_for_tenant(repeat('x', 255)) IS NULL AS longest_is_fine;
-- The engine's pseudo tenants are no tenant's id: a tenant called so would
-- share the rows and policies of the engine's own operations.
SELECT tenant_airbyte.get_workspace_for_tenant('(administration)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.get_workspace_for_tenant('tenant_airbyte.sync_poll');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- and the tenant map refuses them whichever way a row is written (terse:
-- the failing row's detail holds a generated id and timestamps)
\set VERBOSITY terse
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('tenant_airbyte.reconcile_periodic', '00000000-0000-4000-8000-0000000000aa', 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- A hostile id is a value, never SQL.
SELECT tenant_airbyte.get_workspace_for_tenant('org-aaa'' OR ''1''=''1') IS NULL AS injection_is_a_value;

DELETE FROM tenant_airbyte.tenant_airbyte_workspaces;

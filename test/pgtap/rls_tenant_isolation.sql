--
-- rls_tenant_isolation: the row-level security matrix of doc/security.md
-- for tenant_airbyte_workspaces.  Two tenants; a tenant-scoped role that
-- sees only its tenant and cannot change its context; a BYPASSRLS admin.
-- Everything happens in one transaction that is rolled back.
--
BEGIN;
SELECT plan(22);

CREATE ROLE tap_tenant_app;
CREATE ROLE tap_tenant_trusted;
CREATE ROLE tap_admin BYPASSRLS;
-- The tenant role may even write the table: row-level security is what
-- stops it, not a missing privilege.
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_airbyte.tenant_airbyte_workspaces
	TO tap_tenant_app, tap_tenant_trusted, tap_admin;
GRANT SET ON PARAMETER tenant_airbyte.tenant_id TO tap_tenant_trusted;

INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('tap-org-a', 'aaaaaaaa-0000-4000-8000-000000000001', 'Tenant A - tap-org-'),
       ('tap-org-b', 'bbbbbbbb-0000-4000-8000-000000000001', 'Tenant B - tap-org-');

-- A trusted layer (a superuser here) sets the context, then hands over.
SET LOCAL tenant_airbyte.tenant_id = 'tap-org-a';
SET LOCAL ROLE tap_tenant_app;

SELECT results_eq(
	'SELECT tenant_id::text FROM tenant_airbyte.tenant_airbyte_workspaces',
	ARRAY['tap-org-a'],
	'the tenant role sees only its own row');
SELECT is(tenant_airbyte.get_workspace_for_tenant('tap-org-b'), NULL,
	'get_workspace_for_tenant() finds no other tenant');
SELECT is((tenant_airbyte.get_workspace_for_tenant('tap-org-a')).airbyte_workspace_id,
	'aaaaaaaa-0000-4000-8000-000000000001'::uuid,
	'get_workspace_for_tenant() finds its own tenant');
SELECT results_eq(
	'SELECT tenant_id::text FROM tenant_airbyte.active_workspaces()',
	ARRAY['tap-org-a'],
	'active_workspaces() lists only its own tenant');

SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
		(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
	  VALUES ('tap-org-b', 'bbbbbbbb-0000-4000-8000-000000000002', 'forged')$$,
	'42501', NULL,
	'the tenant role cannot insert a row for another tenant');
SELECT throws_ok(
	$$UPDATE tenant_airbyte.tenant_airbyte_workspaces SET tenant_id = 'tap-org-b'$$,
	'42501', NULL,
	'the tenant role cannot move its row to another tenant');
SELECT lives_ok(
	$$UPDATE tenant_airbyte.tenant_airbyte_workspaces SET airbyte_workspace_name = 'hijacked'
	   WHERE tenant_id = 'tap-org-b'$$,
	'an UPDATE aimed at another tenant runs ...');
SELECT lives_ok(
	$$DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'tap-org-b'$$,
	'... and so does a DELETE ...');

SELECT throws_ok($$SET tenant_airbyte.tenant_id = 'tap-org-b'$$, '42501', NULL,
	'the tenant role cannot SET its tenant context');
SELECT throws_ok($$SELECT set_config('tenant_airbyte.tenant_id', 'tap-org-b', true)$$, '42501', NULL,
	'the tenant role cannot set_config() its tenant context');
SELECT throws_ok($$RESET tenant_airbyte.tenant_id$$, '42501', NULL,
	'the tenant role cannot RESET its tenant context');
SELECT is(tenant_airbyte.current_tenant(), 'tap-org-a', 'the context is unchanged');

SELECT throws_ok($$SHOW tenant_airbyte.api_token$$, '42501', NULL,
	'the tenant role cannot SHOW the API token');
SELECT throws_ok($$SELECT current_setting('tenant_airbyte.client_secret')$$, '42501', NULL,
	'the tenant role cannot read the client secret with current_setting()');
SELECT throws_ok($$SELECT current_setting('tenant_airbyte.webhook_secret', true)$$, '42501', NULL,
	'... not even with missing_ok');
SELECT is_empty(
	$$SELECT name FROM pg_settings WHERE name IN ('tenant_airbyte.api_token',
	   'tenant_airbyte.client_id', 'tenant_airbyte.client_secret', 'tenant_airbyte.webhook_secret')$$,
	'the tenant role finds no secret in pg_settings');

RESET ROLE;
SELECT results_eq(
	$$SELECT tenant_id::text || ':' || airbyte_workspace_name
	    FROM tenant_airbyte.tenant_airbyte_workspaces ORDER BY tenant_id$$,
	ARRAY['tap-org-a:Tenant A - tap-org-', 'tap-org-b:Tenant B - tap-org-'],
	'... but neither touched the other tenant''s row');

-- Without any context a tenant role sees nothing at all.
RESET tenant_airbyte.tenant_id;
SET LOCAL ROLE tap_tenant_app;
SELECT is_empty('SELECT 1 FROM tenant_airbyte.tenant_airbyte_workspaces',
	'with no tenant context the tenant role sees no row');
SELECT is_empty('SELECT 1 FROM tenant_airbyte.active_workspaces()',
	'... and active_workspaces() returns nothing');
RESET ROLE;

-- GRANT SET ON PARAMETER is how a deployment lets a trusted role choose.
SET LOCAL ROLE tap_tenant_trusted;
SELECT lives_ok($$SET LOCAL tenant_airbyte.tenant_id = 'tap-org-b'$$,
	'a role granted SET ON PARAMETER can set the tenant context');
SELECT results_eq(
	'SELECT tenant_id::text FROM tenant_airbyte.tenant_airbyte_workspaces',
	ARRAY['tap-org-b'],
	'... and then sees that tenant''s row only');
RESET ROLE;

-- A BYPASSRLS administrator sees every tenant.
RESET tenant_airbyte.tenant_id;
SET LOCAL ROLE tap_admin;
SELECT is((SELECT count(*)::int FROM tenant_airbyte.tenant_airbyte_workspaces), 2,
	'the BYPASSRLS admin sees every tenant');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

--
-- source_isolation: source isolation between tenants, in SQL.  It runs in
-- the database the worker serves, because provision_tenant() and the
-- source functions hand their work to the worker.  Tenants A and B, a
-- source for A; B's tenant-scoped application role lists none of A's
-- sources, cannot delete A's, cannot create one in A's workspace by passing
-- A's tenant id, and cannot start OAuth there; a role without a tenant
-- context can do nothing; the Airbyte stand-in confirms that every source
-- was created in its own tenant's workspace.  One transaction, rolled back;
-- what the worker committed outlives it (the two workspace rows and what
-- the stand-in created), so every check reads only tenants tap-src-a and
-- tap-src-b.
--
BEGIN;
SELECT plan(24);

CREATE ROLE tap_src_app;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.create_source(text, text, text, jsonb),
	tenant_airbyte.delete_source(text, uuid),
	tenant_airbyte.initiate_oauth(text, text, text),
	tenant_airbyte.create_shopify_source(text, text, text, text, date)
	TO tap_src_app;

SELECT is(tenant_airbyte.provision_tenant('tap-src-a', 'Tap Sources A') ->> 'status', 'provisioned',
	'tenant A is provisioned');
SELECT is(tenant_airbyte.provision_tenant('tap-src-b', 'Tap Sources B') ->> 'status', 'provisioned',
	'tenant B is provisioned');
CREATE TEMP TABLE ws ON COMMIT DROP AS
	SELECT tenant_id::text, airbyte_workspace_id FROM tenant_airbyte.tenant_airbyte_workspaces
	 WHERE tenant_id IN ('tap-src-a', 'tap-src-b');
GRANT SELECT ON ws TO tap_src_app;
CREATE TEMP TABLE made (tenant_id text, source_id uuid) ON COMMIT DROP;
GRANT SELECT, INSERT ON made TO tap_src_app;

-- As A's application: create a Shopify source.
SET LOCAL tenant_airbyte.tenant_id = 'tap-src-a';
SET LOCAL ROLE tap_src_app;
INSERT INTO made
	SELECT 'tap-src-a', (tenant_airbyte.create_shopify_source('tap-src-a', 'store-a.myshopify.com', 'token-a') ->> 'source_id')::uuid;
SELECT is((SELECT count(*)::int FROM tenant_airbyte.list_sources('tap-src-a')), 1,
	'A''s role lists its own source');
RESET ROLE;

-- As B's application.
SET LOCAL tenant_airbyte.tenant_id = 'tap-src-b';
SET LOCAL ROLE tap_src_app;
INSERT INTO made
	SELECT 'tap-src-b', (tenant_airbyte.create_shopify_source('tap-src-b', 'store-b.myshopify.com', 'token-b') ->> 'source_id')::uuid;
SELECT is_empty($$SELECT * FROM tenant_airbyte.list_sources('tap-src-a')$$,
	'B''s role lists none of A''s sources by A''s tenant id');
SELECT results_eq($$SELECT airbyte_source_id FROM tenant_airbyte.list_sources('tap-src-b')$$,
	$$SELECT source_id FROM made WHERE tenant_id = 'tap-src-b'$$,
	'B''s role lists exactly its own source');
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'tap-src-a'$$,
	'B''s role reads none of A''s rows from the table');
SELECT ok(NOT EXISTS (SELECT 1 FROM tenant_airbyte.tenant_sources s JOIN made m ON m.source_id = s.airbyte_source_id
	WHERE m.tenant_id = 'tap-src-a'), 'A''s source id is not visible to B at all');
SELECT throws_ok(
	format($$SELECT tenant_airbyte.delete_source('tap-src-a', %L)$$,
		   (SELECT source_id FROM made WHERE tenant_id = 'tap-src-a')),
	'42501', 'permission denied for tenant "tap-src-a"',
	'B''s role cannot delete A''s source by passing A''s tenant id');
SELECT is(tenant_airbyte.delete_source('tap-src-b', (SELECT source_id FROM made WHERE tenant_id = 'tap-src-a')),
	false, '... nor by passing its own tenant id with A''s source id');
SELECT throws_ok(
	$$SELECT tenant_airbyte.create_source('tap-src-a', 'shopify', 'Planted',
		'{"shop": "planted", "credentials": {"auth_method": "api_password", "api_password": "x-token"}}')$$,
	'42501', 'permission denied for tenant "tap-src-a"',
	'B''s role cannot create a source in A''s workspace by passing A''s tenant id');
SELECT throws_ok(
	$$SELECT tenant_airbyte.create_shopify_source('tap-src-a', 'planted', 'x-token')$$,
	'42501', NULL, '... nor through the Shopify wrapper');
SELECT throws_ok(
	$$SELECT tenant_airbyte.initiate_oauth('tap-src-a', 'google-ads', 'https://app.example/cb')$$,
	'42501', NULL, 'B''s role cannot start OAuth in A''s workspace');
SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)
	  SELECT 'tap-src-a', airbyte_workspace_id, gen_random_uuid(), 'shopify', 'forged' FROM ws WHERE tenant_id = 'tap-src-a'$$,
	'42501', NULL, 'B''s role cannot write tenant_sources directly');
SELECT throws_ok(
	$$SELECT tenant_airbyte.airbyte_create_source((SELECT airbyte_workspace_id FROM ws WHERE tenant_id = 'tap-src-a'),
		'direct', '{"sourceType": "faker"}')$$,
	'42501', NULL, 'B''s role cannot call the Airbyte wrapper directly');
SELECT throws_ok($$SET tenant_airbyte.tenant_id = 'tap-src-a'$$, '42501', NULL,
	'B''s role cannot switch its context to A');
RESET ROLE;

-- A role without any tenant context.
SET LOCAL tenant_airbyte.tenant_id = '';
SET LOCAL ROLE tap_src_app;
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_sources$$,
	'without a context the role sees no source');
SELECT throws_ok($$SELECT tenant_airbyte.create_shopify_source('tap-src-b', 'x', 'x-token')$$,
	'42501', NULL, 'without a context the role creates nothing, even for B');
SELECT throws_ok(
	format($$SELECT tenant_airbyte.delete_source('tap-src-b', %L)$$,
		   (SELECT source_id FROM made WHERE tenant_id = 'tap-src-b')),
	'42501', NULL, 'without a context the role deletes nothing');
RESET ROLE;

-- The stand-in: each source in its own tenant's workspace, and A's still there.
SELECT is((SELECT tenant_airbyte.airbyte_get_source(m.source_id) ->> 'workspaceId' FROM made m WHERE m.tenant_id = 'tap-src-a'),
	(SELECT airbyte_workspace_id::text FROM ws WHERE tenant_id = 'tap-src-a'),
	'Airbyte holds A''s source in A''s workspace');
SELECT is((SELECT tenant_airbyte.airbyte_get_source(m.source_id) ->> 'workspaceId' FROM made m WHERE m.tenant_id = 'tap-src-b'),
	(SELECT airbyte_workspace_id::text FROM ws WHERE tenant_id = 'tap-src-b'),
	'Airbyte holds B''s source in B''s workspace');
SELECT is((SELECT count(*)::int FROM tenant_airbyte.airbyte_list_sources(
		(SELECT airbyte_workspace_id FROM ws WHERE tenant_id = 'tap-src-a'))), 1,
	'A''s workspace holds exactly one source: nothing planted by B');
SELECT is((SELECT count(*)::int FROM tenant_airbyte.airbyte_list_sources(
		(SELECT airbyte_workspace_id FROM ws WHERE tenant_id = 'tap-src-b'))), 1,
	'B''s workspace holds exactly one source');
SELECT is((SELECT count(*)::int FROM tenant_airbyte.tenant_sources s
	JOIN ws ON ws.tenant_id = s.tenant_id AND ws.airbyte_workspace_id = s.airbyte_workspace_id
	WHERE s.tenant_id IN ('tap-src-a', 'tap-src-b')), 2,
	'each recorded source names its own tenant''s workspace');

-- A, in its own context, deletes its own source.
SET LOCAL tenant_airbyte.tenant_id = 'tap-src-a';
SET LOCAL ROLE tap_src_app;
SELECT is(tenant_airbyte.delete_source('tap-src-a', (SELECT source_id FROM made WHERE tenant_id = 'tap-src-a')),
	true, 'A''s role deletes its own source');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

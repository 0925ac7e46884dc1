--
-- tenant_data_lifecycle: reading as a tenant and what happens to a
-- tenant's data over its life.
--   * authenticate() puts the tenant's data schema on the transaction's
--     search_path (pg_catalog still first), so "SELECT * FROM orders"
--     reads the tenant's synced table; a second authenticate() in the
--     same transaction replaces the schema rather than stacking another;
--     rolling back removes it with the tenant context.
--   * soft delete and restore keep the tenant's data; purge (the workspace
--     row deleted) drops its schema and loader, unless
--     tenant_airbyte.keep_data_on_purge.
--   * rotate_loader_password() changes the role's verifier and the stored
--     password together.
--   * a role or schema of a loader's name that this database did not
--     create is refused, not adopted.
-- The key and token are authenticate_isolation.sql's (tap-org-a, 2100).
-- Everything happens in one transaction that is rolled back.
--
\set jwks '{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"tap-key-1","n":"uL9DmFzD1UPWP2-i5s0SdKy0rc1XTxNdmlQS3Hp3vQJfrxxrpWCPFgE4iBgxfx4gJfl0OMc-DIlE7ghq4R2QbHqjlCmfxo6rB8XyHJbtHAacVxWP0mC_1Z1YN95TreAdzC6YeY3h60iLAamNj8gKYzyfSGhcKuL8wpG4cm157_-24ggelYuFF474OLgt3Ndz697kLe8sLa8LmgBhbOUcxI0O5dccOqgNTd6q8LVW7Pl-ONd8cjISvYcHxWjcd0oiKWAq0I30U-bZoqYjYK5FrpJufYilTwiQRSH9T3FC24b5Oc989yZw9_BRzKhZOQE60MNONTUlDfh_HAZ1_oVxfQ","e":"AQAB"}]}'
\set token_a 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcC1rZXktMSJ9.eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYSIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWEiXSwicm9sZXMiOlsiYWRtaW4iXX0.GPIzg1s-5cv6Xv6aBdJ6aFYNYbMgBXiebJHzHqD5OuP0oSCq35lDeq_5ggTGfMT49T7varzuPEWwMgtPjoFZqgMYEv_bvFvshx_FdJBCQVcYzVRblDD7xyLox6J3ZFeDCIdvhVck4yPbqVMHG5VjOoKEk9O5uOY_VvI-O3g2DrPq-shoS4S-lgXKdel2oN2YCp-yJ9TvQzoOBEzkOjW4TOlgF0c-McI2cLjA5MK0YTb3AhdnSJVidQfDHnMXG_brbAsa-Lhc80MvHB1MZc2cUiyNImzaaTPYFgLPaFoq30PzkGku5f5KCA541qSWme3VxrVblKJP6zIIQrkss8cjRA'

BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(25);

CREATE ROLE tap_life_app;
GRANT EXECUTE ON FUNCTION tenant_airbyte.authenticate(text) TO tap_life_app;
SET LOCAL tenant_airbyte.tenant_roles = 'tap_life_app';
SELECT is(tenant_airbyte.load_jwks(:'jwks', 'https://tap.frontegg.test'), 1, 'keys loaded');

INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('tap-org-a', 'aaaaaaaa-0000-4000-8000-0000000000a7', 'Tenant A - tap-org-'),
	   ('tap-org-b', 'bbbbbbbb-0000-4000-8000-0000000000b7', 'Tenant B - tap-org-');
SELECT is(data_schema, tenant_airbyte.data_schema_for('tap-org-a'),
		  'the workspace row records the tenant''s data schema')
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'tap-org-a';

SELECT tenant_airbyte.ensure_tenant_data('tap-org-a') ->> 'data_schema' AS sa,
	   tenant_airbyte.ensure_tenant_data('tap-org-b') ->> 'data_schema' AS sb,
	   tenant_airbyte.loader_role_for('tap-org-a') AS la
\gset
SET SESSION AUTHORIZATION :la;
CREATE TABLE :sa.orders (id int, total numeric);
INSERT INTO :sa.orders VALUES (1, 10), (2, 20);
RESET SESSION AUTHORIZATION;
CREATE TABLE :sb.orders (id int, total numeric);
INSERT INTO :sb.orders VALUES (3, 30);

-- Reading as a tenant.
SET LOCAL search_path = public;
SET LOCAL ROLE tap_life_app;
SAVEPOINT before_authenticate;
SELECT lives_ok(format('SELECT tenant_airbyte.authenticate(%L)', :'token_a'), 'tenant a authenticates');
SELECT is(current_setting('search_path'), format('pg_catalog, %s, public', :'sa'),
		  'search_path is pg_catalog, the tenant''s data schema, then the path before');
SELECT results_eq('SELECT id FROM orders ORDER BY id', ARRAY[1, 2],
		  'an unqualified name reads the tenant''s own synced table');
SELECT is((SELECT count(*) FROM :sb.orders), 0::bigint,
		  'another tenant''s table, named in full, shows no row');
SELECT lives_ok(format('SELECT tenant_airbyte.authenticate(%L)', :'token_a'), 'authenticating again');
SELECT is(current_setting('search_path'), format('pg_catalog, %s, public', :'sa'),
		  '... replaces the data schema on the path instead of adding another');
ROLLBACK TO SAVEPOINT before_authenticate;
SELECT is(current_setting('search_path'), 'public',
		  'rolling back the authenticate() call restores the path');
SELECT throws_ok('SELECT count(*) FROM orders', '42P01', NULL,
		  '... and without it there is no orders table to find');
RESET ROLE;

-- Soft delete and restore keep the data.
-- (This file runs in one transaction, which the worker cannot see: the
-- row changes a deprovisioning and a restore make are made here directly.)
UPDATE tenant_airbyte.tenant_airbyte_workspaces SET status = 'deleted', deleted_at = now()
 WHERE tenant_id = 'tap-org-a';
SELECT is((SELECT status::text FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'tap-org-a'),
		  'deleted', 'tenant a is soft-deleted');
SELECT ok(to_regclass(:'sa' || '.orders') IS NOT NULL, '... and its synced table stays');
UPDATE tenant_airbyte.tenant_airbyte_workspaces SET status = 'active', deleted_at = NULL
 WHERE tenant_id = 'tap-org-a';
SELECT is((SELECT status::text FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'tap-org-a'),
		  'active', 'tenant a signs up again within the retention period');
SELECT is((SELECT count(*) FROM :sa.orders), 2::bigint, '... and finds its rows where they were');

-- Rotation.
SELECT tenant_airbyte.loader_credentials('tap-org-a') ->> 'password' AS old_password,
	   (SELECT rolpassword FROM pg_authid WHERE rolname = :'la') AS old_verifier
\gset
SELECT is(tenant_airbyte.rotate_loader_password('tap-org-a') ->> 'loader_user', :'la', 'the loader password is rotated');
SELECT ok(tenant_airbyte.loader_credentials('tap-org-a') ->> 'password' <> :'old_password'
		  AND (SELECT rolpassword <> :'old_verifier' FROM pg_authid WHERE rolname = :'la'),
		  '... the stored password and the role''s verifier both changed');

-- Purge: the workspace row goes, and the data with it.
SET LOCAL tenant_airbyte.keep_data_on_purge = on;
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'tap-org-b';
SELECT ok(to_regnamespace(:'sb') IS NOT NULL, 'with keep_data_on_purge a purged tenant''s schema stays');
SELECT ok(tenant_airbyte.is_data_schema(:'sb'), '... still bound to its tenant');
SET LOCAL tenant_airbyte.keep_data_on_purge = off;
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'tap-org-a';
SELECT ok(to_regnamespace(:'sa') IS NULL, 'purging tenant a drops its data schema');
SELECT ok(NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'la'), '... and its loader role');
SELECT is(tenant_airbyte.drop_tenant_data('tap-org-a'), false, 'dropping it again finds nothing');

-- A destination rendered for a tenant without data gets it made first.
SELECT is(tenant_airbyte.loader_credentials('tap-org-new') ->> 'user', tenant_airbyte.loader_role_for('tap-org-new'),
		  'loader_credentials() of a tenant without data creates its loader')
 WHERE to_regnamespace(tenant_airbyte.data_schema_for('tap-org-new')) IS NULL;
SELECT ok(tenant_airbyte.is_data_schema(tenant_airbyte.data_schema_for('tap-org-new')), '... and its schema');

-- Names that are taken are refused, never adopted.
CREATE ROLE :"la" SUPERUSER;
SELECT throws_ok($$SELECT tenant_airbyte.ensure_tenant_data('tap-org-a')$$, '42710', NULL,
		  'a role of the loader''s name this database did not create is refused (it could be anyone''s)');
DROP ROLE :"la";
CREATE SCHEMA :"sa";
SELECT throws_ok($$SELECT tenant_airbyte.ensure_tenant_data('tap-org-a')$$, '42P06', NULL,
		  'so is a schema of the data schema''s name');

SELECT * FROM finish();
ROLLBACK;

--
-- pipeline_isolation: the row-level security matrix for a tenant's
-- pipeline: tenant_destinations, tenant_connections, tenant_syncs, the
-- sync_status view and tenant_templates.  Tenants A and B each have a
-- destination, a connection and two jobs.  A's application role, even when
-- granted every write on the tables (as an administrator might grant "ALL
-- ON ALL TABLES"), reads only A's rows, writes none of B's, and cannot move
-- a row to B; a role without context sees nothing; pipeline templates stay
-- unreadable to it.  One transaction, rolled back.
--
BEGIN;
SELECT plan(27);

CREATE ROLE tap_pipe_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON
	tenant_airbyte.tenant_destinations, tenant_airbyte.tenant_connections,
	tenant_airbyte.tenant_syncs, tenant_airbyte.tenant_templates, tenant_airbyte.pipeline_templates
	TO tap_pipe_app;
GRANT SELECT ON tenant_airbyte.sync_status TO tap_pipe_app;

-- As a superuser: two tenants with a full pipeline each.
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'Pipe A - tap-pipe'),
       ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'Pipe B - tap-pipe');
INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)
VALUES ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-0000000000a2', 'shopify', 'Shop A'),
       ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-0000000000a5', 'google-ads', 'Ads A'),
       ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'bbbbbbbb-0000-4000-8000-0000000000b2', 'shopify', 'Shop B');
INSERT INTO tenant_airbyte.tenant_destinations (tenant_id, airbyte_workspace_id, airbyte_destination_id, destination_type, name)
VALUES ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-0000000000a3', 'postgres', 'A data'),
       ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'bbbbbbbb-0000-4000-8000-0000000000b3', 'postgres', 'B data');
INSERT INTO tenant_airbyte.tenant_connections (tenant_id, airbyte_workspace_id, airbyte_source_id,
	airbyte_destination_id, airbyte_connection_id, name)
VALUES ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-0000000000a2',
        'aaaaaaaa-0000-4000-8000-0000000000a3', 'aaaaaaaa-0000-4000-8000-0000000000a4', 'Shop A → A data'),
       ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'bbbbbbbb-0000-4000-8000-0000000000b2',
        'bbbbbbbb-0000-4000-8000-0000000000b3', 'bbbbbbbb-0000-4000-8000-0000000000b4', 'Shop B → B data');
INSERT INTO tenant_airbyte.tenant_syncs (tenant_id, airbyte_connection_id, airbyte_job_id, status, started_at)
VALUES ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a4', 9001, 'succeeded', now() - interval '1 hour'),
       ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a4', 9002, 'running', now()),
       ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b4', 9101, 'succeeded', now() - interval '1 hour'),
       ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b4', 9102, 'running', now());
SELECT tenant_airbyte.set_pipeline_template('default',
	'{"destinationType": "postgres", "configuration": {"host": "db", "port": 5432, "database": "app",
	  "schema": "{{tenant_schema}}", "username": "airbyte", "password": "tap-template-secret"}}');
SELECT tenant_airbyte.assign_template('tap-pipe-b', 'default');

-- As A's application.
SET LOCAL tenant_airbyte.tenant_id = 'tap-pipe-a';
SET LOCAL ROLE tap_pipe_app;

SELECT results_eq('SELECT tenant_id::text FROM tenant_airbyte.tenant_destinations',
	ARRAY['tap-pipe-a'], 'A reads only its own destination');
SELECT results_eq('SELECT tenant_id::text FROM tenant_airbyte.tenant_connections',
	ARRAY['tap-pipe-a'], 'A reads only its own connection');
SELECT results_eq('SELECT airbyte_job_id FROM tenant_airbyte.tenant_syncs ORDER BY 1',
	ARRAY[9001::bigint, 9002], 'A reads only its own jobs');
SELECT results_eq('SELECT tenant_id::text, airbyte_job_id FROM tenant_airbyte.sync_status',
	$$VALUES ('tap-pipe-a', 9002::bigint)$$, 'sync_status shows A its own latest job only');
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_syncs WHERE airbyte_job_id = 9102$$,
	'A cannot see B''s job by its id');
SELECT is_empty($$SELECT * FROM tenant_airbyte.sync_status WHERE tenant_id = 'tap-pipe-b'$$,
	'nor B''s status by B''s tenant id');
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_templates$$,
	'A does not see B''s template assignment');

SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.tenant_destinations (tenant_id, airbyte_workspace_id, airbyte_destination_id, destination_type, name)
	  VALUES ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b1', gen_random_uuid(), 'postgres', 'planted')$$,
	'42501', NULL, 'A cannot plant a destination in B''s workspace');
SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.tenant_syncs (tenant_id, airbyte_connection_id, airbyte_job_id, status)
	  VALUES ('tap-pipe-b', 'bbbbbbbb-0000-4000-8000-0000000000b4', 9199, 'succeeded')$$,
	'42501', NULL, 'A cannot record a job for B');
SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.tenant_templates (tenant_id, template) VALUES ('tap-pipe-b', 'default')$$,
	'42501', NULL, 'A cannot assign B a template');
SELECT throws_ok(
	$$UPDATE tenant_airbyte.tenant_syncs SET tenant_id = 'tap-pipe-b' WHERE airbyte_job_id = 9002$$,
	'42501', NULL, 'A cannot hand its job to B');
SELECT throws_ok(
	$$UPDATE tenant_airbyte.tenant_connections SET tenant_id = 'tap-pipe-b'$$,
	'42501', NULL, 'A cannot hand its connection to B');
SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.tenant_connections (tenant_id, airbyte_workspace_id, airbyte_source_id,
		airbyte_destination_id, airbyte_connection_id, name)
	  VALUES ('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'aaaaaaaa-0000-4000-8000-0000000000a5',
		'bbbbbbbb-0000-4000-8000-0000000000b3', gen_random_uuid(), 'A into B')$$,
	'23503', NULL, 'A cannot connect its source to B''s destination');

UPDATE tenant_airbyte.tenant_syncs SET status = 'cancelled' WHERE airbyte_job_id = 9102;
DELETE FROM tenant_airbyte.tenant_syncs WHERE airbyte_job_id = 9101;
DELETE FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'tap-pipe-b';
DELETE FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'tap-pipe-b';
SELECT is_empty($$SELECT * FROM tenant_airbyte.pipeline_templates$$,
	'even granted SELECT, A reads no pipeline template (and so no destination password)');
SELECT throws_ok($$SELECT tenant_airbyte.pipeline_destination_request('tap-pipe-a', 'aaaaaaaa-0000-4000-8000-0000000000a1')$$,
	'42501', NULL, 'nor the rendered destination request');
SELECT throws_ok($$SELECT tenant_airbyte.set_pipeline_template('default', '{"destinationType": "dev-null", "configuration": {}}')$$,
	'42501', NULL, 'nor replace the template');
SELECT throws_ok($$SET tenant_airbyte.tenant_id = 'tap-pipe-b'$$, '42501', NULL,
	'A cannot switch its context to B');
RESET ROLE;

-- A role without any tenant context.
SET LOCAL tenant_airbyte.tenant_id = '';
SET LOCAL ROLE tap_pipe_app;
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_destinations$$, 'without a context: no destination');
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_connections$$, 'without a context: no connection');
SELECT is_empty($$SELECT * FROM tenant_airbyte.tenant_syncs$$, 'without a context: no job');
SELECT is_empty($$SELECT * FROM tenant_airbyte.sync_status$$, 'without a context: no status');
RESET ROLE;

-- Back as a superuser: B's rows are untouched by everything A tried.
SELECT results_eq($$SELECT airbyte_job_id, status::text FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'tap-pipe-b' ORDER BY 1$$,
	$$VALUES (9101::bigint, 'succeeded'), (9102::bigint, 'running')$$, 'B''s jobs are unchanged and none was added');
SELECT is((SELECT count(*)::int FROM tenant_airbyte.tenant_connections WHERE tenant_id = 'tap-pipe-b'), 1,
	'B''s connection is still there');
SELECT is((SELECT count(*)::int FROM tenant_airbyte.tenant_destinations WHERE tenant_id = 'tap-pipe-b'), 1,
	'B''s destination is still there');
SELECT is((SELECT template FROM tenant_airbyte.tenant_templates WHERE tenant_id = 'tap-pipe-b'), 'default',
	'B''s template assignment is unchanged');
SELECT is((SELECT count(*)::int FROM tenant_airbyte.tenant_syncs WHERE tenant_id = 'tap-pipe-a'), 2,
	'A''s own jobs are all there');
SELECT is((SELECT destination #>> '{configuration,password}' FROM tenant_airbyte.pipeline_templates WHERE name = 'default'),
	'tap-template-secret', 'a superuser reads the template''s password (the worker needs it)');

SELECT * FROM finish();
ROLLBACK;

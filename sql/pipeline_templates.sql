--
-- pipeline_templates: set_pipeline_template() refuses, naming the field and
-- the values Airbyte allows, every template Airbyte would refuse for every
-- tenant; assign_template() picks a tenant's template; placeholders render
-- per tenant ({{tenant_schema}} always a plain identifier); the request
-- bodies built from a template validate against the Airbyte API's request
-- schemas; templates and their secrets are for superusers only; sync_status
-- shows each connection's latest job.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- Two provisioned tenants, recorded directly: no Airbyte call is needed.
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('pipe-0001', '11111111-1111-4111-8111-000000000001', 'Pipes One - pipe-000'),
       ('pipe-0002', '11111111-1111-4111-8111-000000000002', 'Pipes Two - pipe-000');

\set pg '{"destinationType": "postgres", "configuration": {"host": "db.internal", "port": 5432, "database": "app", "schema": "{{tenant_schema}}", "username": "airbyte", "password": "pg-s3cret"}}'

-- The template name.
SELECT tenant_airbyte.set_pipeline_template('Default', :'pg');
SELECT tenant_airbyte.set_pipeline_template('default', NULL);

-- The destination part.  No error quotes a value: the password never shows.
SELECT tenant_airbyte.set_pipeline_template('default', '[]');
SELECT tenant_airbyte.set_pipeline_template('default', '{"type": "postgres", "configuration": {}}');
SELECT tenant_airbyte.set_pipeline_template('default', '{"configuration": {}}');
SELECT tenant_airbyte.set_pipeline_template('default', '{"destinationType": "Postgres!", "configuration": {}}');
SELECT tenant_airbyte.set_pipeline_template('default', '{"definitionId": "postgres", "configuration": {}}');
SELECT tenant_airbyte.set_pipeline_template('default', '{"destinationType": "postgres"}');
SELECT tenant_airbyte.set_pipeline_template('default', '{"destinationType": "postgres", "configuration": "host=db"}');
SELECT tenant_airbyte.set_pipeline_template('default', jsonb_set(:'pg', '{configuration}', (:'pg'::jsonb -> 'configuration') - 'host'));
SELECT tenant_airbyte.set_pipeline_template('default', jsonb_set(:'pg', '{configuration,port}', '"5432"'));
SELECT tenant_airbyte.set_pipeline_template('default', jsonb_set(:'pg', '{configuration,port}', '70000'));
SELECT tenant_airbyte.set_pipeline_template('default', jsonb_set(:'pg', '{configuration,destinationType}', '"bigquery"'));
SELECT tenant_airbyte.set_pipeline_template('default', jsonb_set(:'pg', '{configuration,schema}', '"{{tenant}}"'));
SELECT tenant_airbyte.set_pipeline_template('default', jsonb_set(:'pg', '{name}', '"  "'));

-- The connection defaults: each enum names the spec's values.
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"schedul": "manual"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"schedule": "hourly"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"schedule": "0 * * * *"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"schedule": {"scheduleType": "basic"}}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"schedule": {"scheduleType": "cron"}}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"namespaceDefinition": "custom"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"namespaceDefinition": "custom_format"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"namespaceFormat": 7}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"nonBreakingSchemaUpdatesBehavior": "propagate"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"syncMode": "overwrite"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"streams": "orders"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"streams": ["orders", {"syncMode": "incremental_append"}]}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"streams": [{"name": "orders", "syncMode": "incremental"}]}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"streams": [{"name": "orders", "mode": "x"}]}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"sync_on_create": "yes"}');

-- The workspace settings.
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{}', '{"regionId": "eu-west-1"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{}', '{"dataResidency": "eu"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{}', '{"notifications": {"onFailure": {}}}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{}', '{"notifications": {"failure": {"slack": {}}}}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{}', '{"notifications": {"failure": {"email": {"enabled": "yes"}}}}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{}', '{"notifications": {"success": {"webhook": {"url": 1}}}}');

-- Nothing was stored by any of those.
SELECT count(*) AS templates FROM tenant_airbyte.pipeline_templates;

-- Two good templates; setting one again replaces it.
SELECT tenant_airbyte.set_pipeline_template('default', :'pg', '{"schedule": "manual"}');
SELECT tenant_airbyte.set_pipeline_template('default', :'pg',
	'{"schedule": "0 0 */6 * * ?", "namespaceDefinition": "custom_format", "namespaceFormat": "{{tenant_schema}}",
	  "prefix": "shop_", "nonBreakingSchemaUpdatesBehavior": "propagate_columns", "syncMode": "incremental_append",
	  "streams": ["orders", {"name": "customers", "syncMode": "full_refresh_overwrite"}], "sync_on_create": true}',
	'{"regionId": "8a1f0c1e-1111-4111-8111-111111111111", "notifications": {"failure": {"email": {"enabled": true}, "webhook": {"enabled": true, "url": "https://hooks.example/{{tenant_id}}"}}}}');
SELECT tenant_airbyte.set_pipeline_template('eu', '{"destinationType": "postgres", "name": "EU warehouse",
	"configuration": {"host": "eu.db.internal", "port": 5432, "database": "app", "schema": "t_{{tenant_id}}", "username": "{{loader_user}}", "password": "{{loader_password}}"}}');
SELECT name, connection ->> 'schedule' AS schedule, workspace ? 'regionId' AS region
  FROM tenant_airbyte.pipeline_templates ORDER BY name;

-- Assignment.
SELECT tenant_airbyte.assign_template('pipe-0002', 'us');
SELECT tenant_airbyte.assign_template('', 'eu');
SELECT tenant_airbyte.assign_template('pipe-0002', 'eu');
SELECT tenant_airbyte.template_for_tenant('pipe-0001') AS one, tenant_airbyte.template_for_tenant('pipe-0002') AS two,
       tenant_airbyte.template_for_tenant('pipe-9999') AS unknown_tenant;
SELECT tenant_airbyte.assign_template('pipe-0002', NULL);
SELECT tenant_airbyte.template_for_tenant('pipe-0002') AS two_again;
SELECT tenant_airbyte.assign_template('pipe-0002', 'eu');

-- {{tenant_schema}}: a plain lower-case identifier for any id, distinct for
-- ids that fold to the same letters, at most 63 bytes.
SELECT left(id, 30) AS id, s ~ '^[a-z0-9_]+$' AS plain, octet_length(s) <= 63 AS fits, s = quote_ident(s) AS needs_no_quotes
  FROM (VALUES ('org-1'), ('ORG_1'), ('o''; DROP SCHEMA public; --'), ('Ünïcødé 組織'), (repeat('x', 255))) AS v(id),
       LATERAL tenant_airbyte.tenant_schema_for(v.id) AS s;
SELECT tenant_airbyte.tenant_schema_for('org-1') AS org_1, tenant_airbyte.tenant_schema_for('ORG_1') AS upper_org_1;

-- The request bodies, rendered for pipe-0001 (template default).
SELECT jsonb_pretty(tenant_airbyte.pipeline_workspace_fields('pipe-0001')) AS workspace_fields;
SELECT jsonb_pretty(tenant_airbyte.pipeline_destination_request('pipe-0001', '11111111-1111-4111-8111-000000000001')) AS destination_request;
SELECT jsonb_pretty(tenant_airbyte.pipeline_connection_request('pipe-0001', '22222222-2222-4222-8222-000000000001',
	'Shopify - acme', '33333333-3333-4333-8333-000000000001')) AS connection_request;
SELECT tenant_airbyte.pipeline_sync_on_create('pipe-0001') AS one_syncs_on_create,
       tenant_airbyte.pipeline_sync_on_create('pipe-0002') AS two_syncs_on_create;
-- Two sources with one name get two connection names.
SELECT tenant_airbyte.pipeline_connection_request('pipe-0001', '22222222-2222-4222-8222-000000000001', 'Shop', NULL) ->> 'name'
    <> tenant_airbyte.pipeline_connection_request('pipe-0001', '44444444-2222-4222-8222-000000000001', 'Shop', NULL) ->> 'name'
       AS names_differ;

-- Every body is what the Airbyte API's request schema takes.
\pset tuples_only on
\pset format unaligned
\o results/pipeline_destination_request.json
SELECT tenant_airbyte.pipeline_destination_request('pipe-0001', '11111111-1111-4111-8111-000000000001');
\o results/pipeline_connection_request.json
SELECT tenant_airbyte.pipeline_connection_request('pipe-0001', '22222222-2222-4222-8222-000000000001',
	'Shopify - acme', '33333333-3333-4333-8333-000000000001');
\o results/pipeline_workspace_request.json
SELECT jsonb_build_object('name', 'Pipes One - pipe-000') || tenant_airbyte.pipeline_workspace_fields('pipe-0001');
\o
\pset tuples_only off
\pset format aligned
\! python3 test/airbyte/request_check.py 'POST /destinations' < results/pipeline_destination_request.json
\! python3 test/airbyte/request_check.py 'POST /connections' < results/pipeline_connection_request.json
\! python3 test/airbyte/request_check.py 'POST /workspaces' < results/pipeline_workspace_request.json
-- ... and the check would catch a wrong one.
\! echo '{"sourceId": "22222222-2222-4222-8222-000000000001", "destinationId": "x", "schedule": {"scheduleType": "hourly"}}' | python3 test/airbyte/request_check.py 'POST /connections'

-- pipe-0002 follows "eu", whose loader placeholders are the tenant's own
-- loader: rendering creates its data schema and loader first, and the body
-- carries the generated password (shown here masked, compared in full).
SELECT jsonb_set(r, '{configuration,password}', '"(generated)"') AS eu_request,
       r #>> '{configuration,password}' = tenant_airbyte.loader_credentials('pipe-0002') ->> 'password' AS carries_loader_password,
       r #>> '{configuration,username}' = tenant_airbyte.loader_role_for('pipe-0002') AS as_loader
  FROM tenant_airbyte.pipeline_destination_request('pipe-0002', '11111111-1111-4111-8111-000000000002') AS r;

-- Templates are for superusers: an application role can neither read nor
-- set them, and even a role granted SELECT on the table reads no row.
CREATE ROLE pipe_app;
SET ROLE pipe_app;
SELECT count(*) FROM tenant_airbyte.pipeline_templates;
SELECT tenant_airbyte.set_pipeline_template('default', :'pg');
SELECT tenant_airbyte.assign_template('pipe-0001', 'eu');
SELECT tenant_airbyte.pipeline_destination_request('pipe-0001', '11111111-1111-4111-8111-000000000001');
RESET ROLE;
GRANT SELECT ON tenant_airbyte.pipeline_templates TO pipe_app;
SET ROLE pipe_app;
SELECT count(*) AS templates_seen FROM tenant_airbyte.pipeline_templates;
RESET ROLE;
REVOKE SELECT ON tenant_airbyte.pipeline_templates FROM pipe_app;

-- sync_status: the latest job of each connection, NULLs before the first.
INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)
VALUES ('pipe-0001', '11111111-1111-4111-8111-000000000001', '22222222-2222-4222-8222-000000000001', 'shopify', 'Shopify - acme'),
       ('pipe-0001', '11111111-1111-4111-8111-000000000001', '22222222-2222-4222-8222-000000000002', 'google-ads', 'Ads');
INSERT INTO tenant_airbyte.tenant_destinations (tenant_id, airbyte_workspace_id, airbyte_destination_id, destination_type, name, template)
VALUES ('pipe-0001', '11111111-1111-4111-8111-000000000001', '33333333-3333-4333-8333-000000000001', 'postgres',
        tenant_airbyte.pipeline_destination_name('pipe-0001'), 'default');
INSERT INTO tenant_airbyte.tenant_connections (tenant_id, airbyte_workspace_id, airbyte_source_id, airbyte_destination_id,
	airbyte_connection_id, name, schedule)
VALUES ('pipe-0001', '11111111-1111-4111-8111-000000000001', '22222222-2222-4222-8222-000000000001',
        '33333333-3333-4333-8333-000000000001', '55555555-5555-4555-8555-000000000001', 'Shop → data', '0 0 */6 * * ?'),
       ('pipe-0001', '11111111-1111-4111-8111-000000000001', '22222222-2222-4222-8222-000000000002',
        '33333333-3333-4333-8333-000000000001', '55555555-5555-4555-8555-000000000002', 'Ads → data', 'manual');
INSERT INTO tenant_airbyte.tenant_syncs (tenant_id, airbyte_connection_id, airbyte_job_id, status, rows_synced, started_at)
VALUES ('pipe-0001', '55555555-5555-4555-8555-000000000001', 101, 'succeeded', 300, '2026-01-01 00:00+00'),
       ('pipe-0001', '55555555-5555-4555-8555-000000000001', 102, 'running', NULL, '2026-01-01 06:00+00');
SELECT connection_name, connection_status, schedule, airbyte_job_id, status, rows_synced
  FROM tenant_airbyte.sync_status ORDER BY connection_name;
-- A connection cannot point at another tenant's destination, nor a job at another tenant's connection.
INSERT INTO tenant_airbyte.tenant_connections (tenant_id, airbyte_workspace_id, airbyte_source_id, airbyte_destination_id,
	airbyte_connection_id, name)
VALUES ('pipe-0002', '11111111-1111-4111-8111-000000000002', '22222222-2222-4222-8222-000000000001',
        '33333333-3333-4333-8333-000000000001', '55555555-5555-4555-8555-000000000003', 'Stolen');
INSERT INTO tenant_airbyte.tenant_syncs (tenant_id, airbyte_connection_id, airbyte_job_id, status)
VALUES ('pipe-0002', '55555555-5555-4555-8555-000000000001', 103, 'running');
-- Bad status values are refused.
\set VERBOSITY terse
UPDATE tenant_airbyte.tenant_syncs SET status = 'done' WHERE airbyte_job_id = 102;
UPDATE tenant_airbyte.tenant_connections SET status = 'paused' WHERE name = 'Ads → data';
\set VERBOSITY default

-- Purging a workspace takes its pipeline rows along.
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'pipe-0001';
SELECT (SELECT count(*) FROM tenant_airbyte.tenant_destinations) AS destinations,
       (SELECT count(*) FROM tenant_airbyte.tenant_connections) AS connections,
       (SELECT count(*) FROM tenant_airbyte.tenant_syncs) AS syncs;

-- Clean up.
DROP ROLE pipe_app;
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'pipe-%';
DELETE FROM tenant_airbyte.tenant_templates;
DELETE FROM tenant_airbyte.pipeline_templates;

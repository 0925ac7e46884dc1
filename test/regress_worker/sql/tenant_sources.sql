--
-- tenant_sources: create_source() validates the three product sources'
-- required configuration before calling Airbyte, creates every source in
-- the tenant's own workspace (the stand-in confirms it), records it
-- without credentials, turns each Airbyte failure into a clear error that
-- quotes no credential, and list/delete/initiate_oauth do what they say.
-- Runs against the Airbyte stand-in that test/run starts.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set SHOW_CONTEXT never
\! python3 test/airbyte_standin.py ctl POST /_control/reset

SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('src-0001', 'Sources One') AS r;
SELECT airbyte_workspace_id AS ws1 FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'src-0001' \gset

-- Validation: each error names the field, before any call to Airbyte.
SELECT tenant_airbyte.create_source('src-0001', '', 'x', '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'postgres', ' ', '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'postgres', 'x', '[1, 2]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"sourceType": "stripe"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"credentials": {"auth_method": "api_password", "api_password": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme", "credentials": "s3cr3t-pw"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme", "credentials": {"api_password": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme", "credentials": {"auth_method": "access_token", "access_token": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme", "credentials": {"auth_method": "api_password"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme", "credentials": {"auth_method": "oauth2.0", "access_token": ""}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "acme", "credentials": {"auth_method": "oauth2.0", "client_id": "id-1"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'shopify', 'x', '{"shop": "https://acme.myshopify.com", "credentials": {"auth_method": "oauth2.0", "access_token": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_shopify_source('src-0001', 'acme', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'facebook-marketing', 'x', '{"credentials": {"auth_type": "Service", "access_token": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'facebook-marketing', 'x', '{"account_ids": [], "credentials": {"auth_type": "Service", "access_token": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'facebook-marketing', 'x', '{"account_ids": ["111"], "credentials": {"access_token": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'facebook-marketing', 'x', '{"account_ids": ["111"], "credentials": {"auth_type": "User", "access_token": "s3cr3t-pw"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'facebook-marketing', 'x', '{"account_ids": ["111"], "credentials": {"auth_type": "Service"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'facebook-marketing', 'x', '{"account_ids": ["111"], "credentials": {"auth_type": "Client", "client_id": "id-1"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'google-ads', 'x', '{"customer_id": "123"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'google-ads', 'x', '{"credentials": {"client_id": "id-1", "client_secret": "s3cr3t-pw", "refresh_token": "s3cr3t-rt"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_google_ads_source('src-0001', '123', 'dev-token', 'id-1', 's3cr3t-pw', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source(NULL, 'postgres', 'x', '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py counter requests "POST /sources"

-- No workspace: provision the tenant first (never provisioned, or deprovisioned).
SELECT tenant_airbyte.create_source('src-nobody', 'postgres', 'x', '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The three product sources and two pass-throughs (a sourceType, a definition id).
SELECT r - 'source_id' - 'workspace_id' AS created
  FROM tenant_airbyte.create_shopify_source('src-0001', 'acme', 'shpat-s3cr3t-token', start_date => '2024-01-01') AS r;
SELECT r - 'source_id' - 'workspace_id' AS created
  FROM tenant_airbyte.create_facebook_marketing_source('src-0001', ARRAY['111', '222'], 'EAAB-s3cr3t-token') AS r;
SELECT r - 'source_id' - 'workspace_id' AS created
  FROM tenant_airbyte.create_google_ads_source('src-0001', '1234567890', 'dev-s3cr3t-token',
       'client-id-1', 'client-s3cr3t', '1//refresh-s3cr3t-token') AS r;
SELECT r - 'source_id' - 'workspace_id' AS created
  FROM tenant_airbyte.create_source('src-0001', 'stripe', 'Stripe', '{"account_id": "acct_1", "client_secret": "sk_live_s3cr3t"}') AS r;
SELECT r - 'source_id' - 'workspace_id' AS created
  FROM tenant_airbyte.create_source('src-0001', 'decd338e-5647-4c0b-adf4-da0e75f5a750', 'By definition', '{"host": "db"}') AS r;
SELECT (r ->> 'workspace_id')::uuid = :'ws1' AS in_own_workspace
  FROM tenant_airbyte.create_source('src-0001', 'faker', 'Faker', NULL) AS r;

SELECT tenant_id, source_type, name, airbyte_workspace_id = :'ws1' AS in_own_workspace
  FROM tenant_airbyte.list_sources('src-0001');

-- The stand-in holds each source in the tenant's workspace ...
SELECT s.name, tenant_airbyte.airbyte_get_source(s.airbyte_source_id) ->> 'workspaceId' = :'ws1' AS airbyte_says_own_workspace
  FROM tenant_airbyte.tenant_sources AS s WHERE s.tenant_id = 'src-0001' ORDER BY s.name;
SELECT count(*) AS sources_in_airbyte FROM tenant_airbyte.airbyte_list_sources(:'ws1');
-- ... and the answers we pass on carry no configuration.
SELECT bool_and(NOT (j ? 'configuration')) AS no_configuration
  FROM tenant_airbyte.airbyte_list_sources(:'ws1') AS j;

-- No credential is stored: not in the table, not in any column.
SELECT count(*) AS rows_with_a_credential
  FROM tenant_airbyte.tenant_sources AS s WHERE s::text ~ 's3cr3t|dev-token|client-id-1';

-- Airbyte failures, with the stand-in quoting the configuration back in
-- every 400, as verbose validators do: the credentials are blanked.
\! python3 test/airbyte_standin.py ctl POST /_control/config '{"echo_configuration": true}'
SELECT tenant_airbyte.create_source('src-0001', 'no-such-source', 'Unknown',
	'{"api_key": "key-s3cr3t-value", "password": "pw\"s3cr3t", "host": "db.internal.example"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.create_source('src-0001', 'no-such-source', 'Unknown',
	'{"shop": "acme", "credentials": {"auth_type": "Client", "client_id": "id-1", "client_secret": "s3cr3t"}, "refresh": "1//04-long-refresh-s3cr3t-token"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /sources", "kind": "403", "count": 1}'
SELECT tenant_airbyte.create_shopify_source('src-0001', 'forbidden', 'shpat-s3cr3t-token');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /sources", "kind": "503"}'
SELECT tenant_airbyte.create_shopify_source('src-0001', 'unavailable', 'shpat-s3cr3t-token');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py ctl DELETE /_control/faults
SELECT count(*) AS sources_recorded FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'src-0001';

-- OAuth: a consent URL for the tenant's workspace; Shopify and bad
-- redirects refused; 501 from an open-source server is a clear error.
-- The consent page the URL opens names the workspace it was asked for.
SELECT url AS consent_url, url LIKE 'http://127.0.0.1:%/oauth/consent?ticket=%' AS consent_on_standin
  FROM tenant_airbyte.initiate_oauth('src-0001', 'facebook-marketing', 'https://app.example/oauth/done') AS url \gset
\echo consent_on_standin :consent_on_standin
\setenv CONSENT_URL :consent_url
\setenv WORKSPACE :ws1
\! curl -fsS "$CONSENT_URL" | grep -c "consent screen for workspace $WORKSPACE\."
SELECT tenant_airbyte.initiate_oauth('src-0001', 'shopify', 'https://app.example/oauth/done');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.initiate_oauth('src-0001', 'google-ads', 'app.example/oauth/done');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.initiate_oauth('src-nobody', 'google-ads', 'https://app.example/oauth/done');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py ctl POST /_control/config '{"oauth": "501"}'
SELECT tenant_airbyte.initiate_oauth('src-0001', 'google-ads', 'https://app.example/oauth/done');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- delete_source: gone from Airbyte and the table; again: false; a source
-- Airbyte lost already still goes from the table.
SELECT airbyte_source_id AS stripe FROM tenant_airbyte.tenant_sources WHERE name = 'Stripe' \gset
SELECT airbyte_source_id AS faker FROM tenant_airbyte.tenant_sources WHERE name = 'Faker' \gset
SELECT tenant_airbyte.delete_source('src-0001', :'stripe') AS deleted;
SELECT tenant_airbyte.delete_source('src-0001', :'stripe') AS deleted_again;
SELECT tenant_airbyte.airbyte_delete_source(:'faker') AS deleted_behind_our_back;
SELECT tenant_airbyte.delete_source('src-0001', :'faker') AS deleted;
SELECT count(*) AS sources_in_airbyte FROM tenant_airbyte.airbyte_list_sources(:'ws1');
SELECT count(*) AS sources_recorded FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'src-0001';

-- The workspace gone from Airbyte: 404, nothing recorded.
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('src-0002', 'Sources Two') AS r;
SELECT airbyte_workspace_id AS ws2 FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'src-0002' \gset
SELECT tenant_airbyte.airbyte_delete_workspace(:'ws2') AS deleted_behind_our_back;
\set VERBOSITY terse
SELECT tenant_airbyte.create_shopify_source('src-0002', 'acme', 'shpat-s3cr3t-token');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) AS sources_recorded FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'src-0002';

-- Deprovisioning cancels the tenant's running jobs (the stand-in counts
-- them); its sources stay with the soft-deleted workspace, but no new one
-- can be made; purging the workspace takes their rows along.
\! python3 test/airbyte_standin.py ctl POST /_control/reset '{"echo_configuration": false}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('src-0003', 'Sources Three') AS r;
SELECT airbyte_workspace_id AS ws3 FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'src-0003' \gset
SELECT r->>'status' AS status FROM tenant_airbyte.create_shopify_source('src-0003', 'three', 'shpat-s3cr3t-token') AS r;
\setenv WS3 :ws3
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$WS3\"}"
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$WS3\"}"
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$WS3\", \"status\": \"succeeded\"}"
SELECT r->>'status' AS status, r->>'cancelled_jobs' AS cancelled_jobs
  FROM tenant_airbyte.deprovision_tenant('src-0003') AS r;
\! python3 test/airbyte_standin.py counter cancelled_jobs
SELECT count(*) AS sources_kept FROM tenant_airbyte.list_sources('src-0003');
SELECT tenant_airbyte.create_shopify_source('src-0003', 'again', 'shpat-s3cr3t-token');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET deleted_at = now() - interval '31 days' WHERE tenant_id = 'src-0003';
SELECT tenant_airbyte.purge_deleted_tenants() >= 1 AS purged;
SELECT count(*) AS sources_left FROM tenant_airbyte.tenant_sources WHERE tenant_id = 'src-0003';

-- Clean up.
DELETE FROM tenant_airbyte.tenant_sources WHERE tenant_id LIKE 'src-%';
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'src-%';
\! python3 test/airbyte_standin.py ctl POST /_control/reset

--
-- frontegg_fetch: verify by fetch's lookup against the stand-in's Frontegg
-- emulation (test/airbyte_standin.py): a vendor token from POST
-- /auth/vendor/ with the client id and API key, cached, then GET
-- /tenants/resources/tenants/v1/{tenantId}.  What Frontegg says decides:
-- exists (with its name) or gone.  Off until all three settings are set;
-- the key and client id are hidden like the other secrets.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;


\! python3 test/airbyte_standin.py ctl POST /_control/reset
SELECT regexp_replace(current_setting('tenant_airbyte.api_url'), '/v1$', '') AS standin \gset

-- Off by default.
SHOW tenant_airbyte.frontegg_api_url;
SELECT tenant_airbyte.frontegg_tenant('fe-1');

-- The secrets are invisible to other roles.
CREATE ROLE ta_fetch_reader;
SET ROLE ta_fetch_reader;
SELECT name FROM pg_settings WHERE name LIKE 'tenant_airbyte.frontegg%' ORDER BY name;
-- Refused with insufficient_privilege; PostgreSQL 16 reworded the message.
\set VERBOSITY sqlstate
SHOW tenant_airbyte.frontegg_api_key;
\set VERBOSITY default
RESET ROLE;
DROP ROLE ta_fetch_reader;

-- A URL must be http(s).
ALTER SYSTEM SET tenant_airbyte.frontegg_api_url = 'file:///etc/passwd';

-- Wrong credentials: Frontegg refuses the vendor authentication.
ALTER SYSTEM SET tenant_airbyte.frontegg_api_url = :'standin';
ALTER SYSTEM SET tenant_airbyte.frontegg_client_id = 'standin-frontegg-client';
ALTER SYSTEM SET tenant_airbyte.frontegg_api_key = 'not-the-key';
SELECT pg_reload_conf(), pg_sleep(0.3) \gset
SELECT tenant_airbyte.frontegg_tenant('fe-1');

-- Right credentials.  Frontegg knows fe-1 (and a tenant id that needs
-- escaping in the URL), not fe-2.
ALTER SYSTEM SET tenant_airbyte.frontegg_api_key = 'standin-frontegg-key';
SELECT pg_reload_conf(), pg_sleep(0.3) \gset
\! python3 test/airbyte_standin.py ctl POST /_control/frontegg_tenants '{"tenantId": "fe-1", "name": "Acme Frontegg"}'
\! python3 test/airbyte_standin.py ctl POST /_control/frontegg_tenants '{"tenantId": "fe/odd id?&x", "name": "Odd"}'
SELECT tenant_airbyte.frontegg_tenant('fe-1') AS fe_1,
       tenant_airbyte.frontegg_tenant('fe-2') AS fe_2,
       tenant_airbyte.frontegg_tenant('fe/odd id?&x') AS odd,
       tenant_airbyte.frontegg_tenant('fe') AS prefix_of_odd;

-- The vendor token is cached: four lookups, one authentication (plus the
-- refused one above).
\! python3 test/airbyte_standin.py counter requests "POST /auth/vendor"
\! python3 test/airbyte_standin.py counter requests "GET /frontegg/tenants/{id}"

-- Deleted in Frontegg: gone.
\! python3 test/airbyte_standin.py ctl DELETE /_control/frontegg_tenants/fe-1
SELECT tenant_airbyte.frontegg_tenant('fe-1');

-- A token Frontegg no longer accepts is replaced once, without an error.
\! python3 test/airbyte_standin.py ctl POST /_control/reset
\! python3 test/airbyte_standin.py ctl POST /_control/frontegg_tenants '{"tenantId": "fe-3", "name": "Renamed In Frontegg"}'
SELECT tenant_airbyte.frontegg_tenant('fe-3');
\! python3 test/airbyte_standin.py counter requests "POST /auth/vendor"

-- Frontegg unavailable: an error that says so, nothing guessed.
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "GET /frontegg/tenants/{id}", "kind": "503", "count": 1}'
SELECT tenant_airbyte.frontegg_tenant('fe-3');

-- Not for PUBLIC.
SELECT has_function_privilege('public', 'tenant_airbyte.frontegg_tenant(text)', 'EXECUTE') AS public_may_call;

\! python3 test/airbyte_standin.py ctl POST /_control/reset
ALTER SYSTEM RESET tenant_airbyte.frontegg_api_url;
ALTER SYSTEM RESET tenant_airbyte.frontegg_client_id;
ALTER SYSTEM RESET tenant_airbyte.frontegg_api_key;
SELECT pg_reload_conf(), pg_sleep(0.3) \gset

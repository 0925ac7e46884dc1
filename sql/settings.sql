--
-- settings: every setting exists with its documented default, context and
-- bounds; secrets are invisible to roles that are not superusers.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;

-- test/run points the cluster at the Airbyte stand-in; show the defaults
-- here, and put the stand-in back at the end.
SELECT current_setting('tenant_airbyte.api_url') AS saved_api_url,
       current_setting('tenant_airbyte.api_token') AS saved_api_token \gset
ALTER SYSTEM RESET tenant_airbyte.api_url;
ALTER SYSTEM RESET tenant_airbyte.api_token;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);

-- All settings, as a superuser sees them (secrets included).
SELECT name, setting, unit, context, vartype, min_val, max_val, enumvals
  FROM pg_settings
 WHERE name LIKE 'tenant\_airbyte.%'
 ORDER BY name;

-- The secrets are hidden from SHOW ALL and pg_settings (GUC_NO_SHOW_ALL),
-- even for a superuser; every other setting is listed there.
SELECT n AS name, n IN (SELECT name FROM pg_settings) AS in_pg_settings
  FROM unnest(ARRAY['tenant_airbyte.api_token', 'tenant_airbyte.client_id',
                    'tenant_airbyte.client_secret', 'tenant_airbyte.webhook_secret']) AS n
 ORDER BY 1;
SHOW tenant_airbyte.api_token;

-- The prefix is reserved: a misspelt setting is an error, not a placeholder.
SET tenant_airbyte.no_such_setting = 'x';

-- Bounds are enforced.
ALTER SYSTEM SET tenant_airbyte.max_concurrency = 0;
ALTER SYSTEM SET tenant_airbyte.max_concurrency = 1025;
ALTER SYSTEM SET tenant_airbyte.max_attempts = 0;
-- PostgreSQL 16 and later add the unit to the range in this message: the
-- SQLSTATE (invalid_parameter_value) is what every version agrees on.
\set VERBOSITY sqlstate
ALTER SYSTEM SET tenant_airbyte.http_timeout_ms = 99;
\set VERBOSITY default
ALTER SYSTEM SET tenant_airbyte.retention_days = -1;
ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'none';
ALTER SYSTEM SET tenant_airbyte.api_url = 'file:///etc/passwd';
-- Plain http:// would carry the token in clear: only to this host.
ALTER SYSTEM SET tenant_airbyte.api_url = 'http://airbyte.example.com/api/public/v1';
ALTER SYSTEM SET tenant_airbyte.api_url = 'http://127.0.0.1.example.com/v1';
ALTER SYSTEM SET tenant_airbyte.api_url = 'http://localhost@airbyte.example.com/v1';
SELECT repeat('x', 256) AS too_long \gset
SET tenant_airbyte.tenant_id = :'too_long';
-- Settings that only the server configuration may change.
SET tenant_airbyte.api_token = 'from-a-session';
SET tenant_airbyte.database = 'other';

-- A superuser may set the tenant context for its session.
SET tenant_airbyte.tenant_id = 'org-123';
SELECT tenant_airbyte.current_tenant();
SET tenant_airbyte.tenant_id = '';
SELECT tenant_airbyte.current_tenant() IS NULL AS empty_is_null;
RESET tenant_airbyte.tenant_id;
SELECT tenant_airbyte.current_tenant() IS NULL AS unset_is_null;

-- A role that is not a superuser can read no secret and set no context.
ALTER SYSTEM SET tenant_airbyte.api_token = 'regress-token-value';
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'regress-webhook-secret';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW tenant_airbyte.api_token;
CREATE ROLE regress_settings_user;
SET ROLE regress_settings_user;
-- Refused with insufficient_privilege; PostgreSQL 16 reworded the message.
\set VERBOSITY sqlstate
SHOW tenant_airbyte.api_token;
SHOW tenant_airbyte.client_secret;
SHOW tenant_airbyte.webhook_secret;
SELECT current_setting('tenant_airbyte.api_token');
\set VERBOSITY default
SELECT count(*) AS visible_secrets FROM pg_settings
 WHERE name IN ('tenant_airbyte.api_token', 'tenant_airbyte.client_id',
                'tenant_airbyte.client_secret', 'tenant_airbyte.webhook_secret');
SET tenant_airbyte.tenant_id = 'org-123';
SELECT set_config('tenant_airbyte.tenant_id', 'org-123', true);
SHOW tenant_airbyte.api_url;
RESET ROLE;
DROP ROLE regress_settings_user;
ALTER SYSTEM RESET tenant_airbyte.webhook_secret;
-- https:// anywhere, http:// on this host.
ALTER SYSTEM SET tenant_airbyte.api_url = 'https://airbyte.example.com/api/public/v1';
ALTER SYSTEM SET tenant_airbyte.api_url = 'http://localhost:8000/api/public/v1';
ALTER SYSTEM SET tenant_airbyte.api_url = 'HTTP://127.0.0.2:8000/v1';
ALTER SYSTEM SET tenant_airbyte.api_url = 'http://[::1]:8000/v1';
ALTER SYSTEM SET tenant_airbyte.api_url = :'saved_api_url';
ALTER SYSTEM SET tenant_airbyte.api_token = :'saved_api_token';
SELECT pg_reload_conf();

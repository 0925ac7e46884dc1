--
-- airbyte_admin_needs_worker: the superuser airbyte_* wrappers hand their
-- work to the background worker, which alone talks to Airbyte.  In a
-- database the worker does not serve (this one: it serves "postgres")
-- each fails at once with an error that says so and what to do, sends
-- nothing, and records nothing; it never waits for a worker that will not
-- come.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set SHOW_CONTEXT never
\! python3 test/airbyte_standin.py ctl POST /_control/reset

-- The refusal, without its DETAIL (which says whether the worker serves
-- its own database yet, and that depends on what ran before).
CREATE FUNCTION pg_temp.refusal(statement text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE statement;
	message := 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END
$$;
SET statement_timeout = '20s';
SELECT r.* FROM pg_temp.refusal($$SELECT tenant_airbyte.airbyte_create_workspace('Nobody Serves')$$) AS r;
SELECT f, r.code, r.message = 'tenant_airbyte''s background worker does not serve this database' AS refused
  FROM unnest(ARRAY[
	$$SELECT tenant_airbyte.airbyte_get_workspace('00000000-0000-4000-8000-000000000001')$$,
	$$SELECT count(*) FROM tenant_airbyte.airbyte_list_workspaces()$$,
	$$SELECT tenant_airbyte.airbyte_rename_workspace('00000000-0000-4000-8000-000000000001', 'X')$$,
	$$SELECT tenant_airbyte.airbyte_delete_workspace('00000000-0000-4000-8000-000000000001')$$,
	$$SELECT tenant_airbyte.airbyte_create_source('00000000-0000-4000-8000-000000000001', 'S',
	   '{"sourceType": "shopify", "shop": "s", "credentials": {"auth_method": "api_password", "api_password": "shpat_needs_worker"}}')$$,
	$$SELECT tenant_airbyte.airbyte_get_source('00000000-0000-4000-8000-000000000002')$$,
	$$SELECT count(*) FROM tenant_airbyte.airbyte_list_sources('00000000-0000-4000-8000-000000000001')$$,
	$$SELECT tenant_airbyte.airbyte_delete_source('00000000-0000-4000-8000-000000000002')$$,
	$$SELECT tenant_airbyte.airbyte_initiate_oauth('00000000-0000-4000-8000-000000000001', 'google-ads', 'https://app.example/cb')$$
  ]) WITH ORDINALITY AS s(statement, f),
	   LATERAL pg_temp.refusal(s.statement) AS r
 ORDER BY f;
RESET statement_timeout;

-- Argument errors come first, before any hand-off.
SELECT tenant_airbyte.airbyte_create_workspace('');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Nothing reached Airbyte, nothing was recorded.
\! python3 test/airbyte_standin.py counter requests
SELECT count(*) AS operations FROM tenant_airbyte.operations;

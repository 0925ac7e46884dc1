--
-- tenant_data_schema_name: the name of each tenant's data schema.
-- Deterministic, a valid identifier that needs no quoting, at most 55
-- bytes (so "<schema>_loader" fits in 63), readable for plain ids, and
-- different for ids that differ only in what an identifier cannot hold.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;

SELECT t AS tenant_id, tenant_airbyte.data_schema_for(t) AS data_schema,
	   tenant_airbyte.loader_role_for(t) AS loader
  FROM unnest(ARRAY['org-123', 'ORG-123', 'org_123', 'org.123', '9f1c2a8e-5b7d-4c3e-9a21-0d6f4b8e7c15']) AS t;

-- Hostile ids: quotes, unicode, only punctuation, the longest allowed.
SELECT left(t, 24) AS tenant_id,
	   octet_length(tenant_airbyte.data_schema_for(t)) AS bytes,
	   quote_ident(tenant_airbyte.data_schema_for(t)) = tenant_airbyte.data_schema_for(t) AS needs_no_quotes,
	   octet_length(tenant_airbyte.loader_role_for(t)) <= 63 AS loader_fits
  FROM unnest(ARRAY[$$o'; DROP TABLE x; --$$, 'Ünïcødé テナント', '---', repeat('x', 255)]) AS t;

-- 10,000 ids that differ only in case and punctuation: no two share a schema.
SELECT count(DISTINCT tenant_airbyte.data_schema_for(id)) AS distinct_schemas
  FROM (SELECT CASE i % 4 WHEN 0 THEN 'Org-' WHEN 1 THEN 'org-' WHEN 2 THEN 'org.' ELSE 'ORG_' END
			   || (i / 4) AS id
		  FROM generate_series(0, 9999) AS i) AS ids;

-- IMMUTABLE, so the workspace row can carry it as a generated column.
SELECT provolatile FROM pg_proc WHERE oid = 'tenant_airbyte.data_schema_for(text)'::regprocedure;

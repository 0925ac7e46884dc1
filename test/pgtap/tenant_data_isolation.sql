--
-- tenant_data_isolation: the synced tables of three tenants, written the
-- way Airbyte's Postgres destination writes them (a final table appended
-- to twice, a raw table, and a table replaced by the overwrite swap:
-- fill <stream>_airbyte_tmp, DROP, RENAME), each by its own tenant's
-- loader logged in as itself (SET SESSION AUTHORIZATION, so session_user
-- is the loader as it is for Airbyte).  Then:
--   * each tenant context sees exactly its own rows in every schema, by
--     qualified names; no context sees none;
--   * tenant contexts and another tenant's loader cannot INSERT, UPDATE,
--     DELETE or CREATE in a tenant's schema;
--   * a table made by hand, by CREATE TABLE AS, SELECT INTO or SET SCHEMA,
--     is protected at once, and follows a move into another tenant's
--     schema or out of all of them;
--   * a view (even a superuser's) or a SECURITY DEFINER function in a data
--     schema gives no way around it; a loader cannot turn RLS off, add a
--     policy, a function, a materialized view or a schema of its own.
-- Everything happens in one transaction that is rolled back.
--
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT plan(52);

CREATE ROLE tap_data_app;
SET LOCAL tenant_airbyte.tenant_roles = 'tap_data_app';

SELECT is(tenant_airbyte.ensure_tenant_data(t) ->> 'created', 'true',
		  'ensure_tenant_data() creates the data of ' || t)
  FROM unnest(ARRAY['tap-data-a', 'tap-data-b', 'tap-data-c']) AS t;

SELECT tenant_airbyte.data_schema_for('tap-data-a') AS sa,
	   tenant_airbyte.data_schema_for('tap-data-b') AS sb,
	   tenant_airbyte.data_schema_for('tap-data-c') AS sc,
	   tenant_airbyte.loader_role_for('tap-data-a') AS la,
	   tenant_airbyte.loader_role_for('tap-data-b') AS lb,
	   tenant_airbyte.loader_role_for('tap-data-c') AS lc
\gset

-- What Airbyte's destination does for one sync of two streams, orders
-- (append) and customers (overwrite), with the destination's schema and
-- raw_data_schema both the tenant's schema and namespace "shop".
CREATE FUNCTION pg_temp.sync(s text, orders integer, customers integer, generation integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I.shop_raw__stream_orders (
		_airbyte_raw_id uuid PRIMARY KEY, _airbyte_data jsonb NOT NULL,
		_airbyte_extracted_at timestamptz NOT NULL DEFAULT now(),
		_airbyte_loaded_at timestamptz, _airbyte_meta jsonb,
		_airbyte_generation_id bigint)', s);
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I.orders (
		_airbyte_raw_id uuid PRIMARY KEY, _airbyte_extracted_at timestamptz NOT NULL,
		_airbyte_meta jsonb NOT NULL, _airbyte_generation_id bigint,
		id bigint, total numeric)', s);
	EXECUTE format('INSERT INTO %I.shop_raw__stream_orders (_airbyte_raw_id, _airbyte_data, _airbyte_generation_id)
		SELECT gen_random_uuid(), jsonb_build_object(''id'', i, ''total'', i * 10), $1
		  FROM generate_series(1, $2) AS i', s) USING generation, orders;
	-- typing and deduping reads the destination table (all of it) first
	EXECUTE format('INSERT INTO %I.orders
		SELECT r._airbyte_raw_id, r._airbyte_extracted_at, ''{"changes": []}'', r._airbyte_generation_id,
			   (r._airbyte_data ->> ''id'')::bigint, (r._airbyte_data ->> ''total'')::numeric
		  FROM %I.shop_raw__stream_orders AS r
		 WHERE NOT EXISTS (SELECT FROM %I.orders AS o WHERE o._airbyte_raw_id = r._airbyte_raw_id)',
		s, s, s);
	EXECUTE format('CREATE TABLE %I.customers_airbyte_tmp (
		_airbyte_raw_id uuid, _airbyte_extracted_at timestamptz, _airbyte_meta jsonb,
		_airbyte_generation_id bigint, id bigint, email text)', s);
	EXECUTE format('INSERT INTO %I.customers_airbyte_tmp
		SELECT gen_random_uuid(), now(), ''{}'', $1, i, ''c'' || i || ''@example.com''
		  FROM generate_series(1, $2) AS i', s) USING generation, customers;
	EXECUTE format('DROP TABLE IF EXISTS %I.customers', s);
	EXECUTE format('ALTER TABLE %I.customers_airbyte_tmp RENAME TO customers', s);
END;
$$;

-- Counts of every synced table of the three tenants, by qualified name.
CREATE FUNCTION pg_temp.counts()
RETURNS TABLE (tenant text, orders bigint, raw_orders bigint, customers bigint)
LANGUAGE plpgsql AS $$
DECLARE
	t text;
	s text;
BEGIN
	FOREACH t IN ARRAY ARRAY['a', 'b', 'c'] LOOP
		s := tenant_airbyte.data_schema_for('tap-data-' || t);
		tenant := t;
		EXECUTE format('SELECT (SELECT count(*) FROM %I.orders), (SELECT count(*) FROM %I.shop_raw__stream_orders),
						(SELECT count(*) FROM %I.customers)', s, s, s)
		   INTO orders, raw_orders, customers;
		RETURN NEXT;
	END LOOP;
END;
$$;

-- Two syncs per tenant: the second appends orders and replaces customers.
SET SESSION AUTHORIZATION :la;
SELECT pg_temp.sync(:'sa', 2, 5, 1), pg_temp.sync(:'sa', 1, 2, 2);
SELECT is((SELECT count(*) FROM :sa.orders), 3::bigint,
		  'the loader reads every row of its own table (Airbyte deduplicates by reading it)');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :lb;
SELECT pg_temp.sync(:'sb', 1, 4, 1), pg_temp.sync(:'sb', 1, 1, 2);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION :lc;
SELECT pg_temp.sync(:'sc', 1, 3, 1);
RESET SESSION AUTHORIZATION;

SELECT is((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname IN (:'sa', :'sb', :'sc') AND c.relkind = 'r'), 9::bigint,
		  'three tables per tenant were synced');
SELECT is_empty(format($$SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				 WHERE n.nspname IN (%L, %L, %L) AND c.relkind = 'r'
				   AND NOT (c.relrowsecurity AND c.relforcerowsecurity
							AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = n.nspname))$$,
				 :'sa', :'sb', :'sc'),
		  'every one, the swapped-in customers too, has forced RLS and its tenant''s policy');

-- The matrix: each tenant context, through the application role.
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-a';
SET LOCAL ROLE tap_data_app;
SELECT results_eq('SELECT * FROM pg_temp.counts()',
	$$VALUES ('a', 3::bigint, 3::bigint, 2::bigint), ('b', 0, 0, 0), ('c', 0, 0, 0)$$,
	'tenant a sees its rows (final, raw, after the swap) and nothing of b or c');
RESET ROLE;
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-b';
SET LOCAL ROLE tap_data_app;
SELECT results_eq('SELECT * FROM pg_temp.counts()',
	$$VALUES ('a', 0::bigint, 0::bigint, 0::bigint), ('b', 2, 2, 1), ('c', 0, 0, 0)$$,
	'tenant b sees its rows and nothing of a or c');
RESET ROLE;
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-c';
SET LOCAL ROLE tap_data_app;
SELECT results_eq('SELECT * FROM pg_temp.counts()',
	$$VALUES ('a', 0::bigint, 0::bigint, 0::bigint), ('b', 0, 0, 0), ('c', 1, 1, 3)$$,
	'tenant c sees its rows and nothing of a or b');
RESET ROLE;
SET LOCAL tenant_airbyte.tenant_id = '';
SET LOCAL ROLE tap_data_app;
SELECT results_eq('SELECT * FROM pg_temp.counts()',
	$$VALUES ('a', 0::bigint, 0::bigint, 0::bigint), ('b', 0, 0, 0), ('c', 0, 0, 0)$$,
	'with no tenant context nothing is visible');
RESET ROLE;

-- Tenant contexts write nothing and create nothing, in any data schema.
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-a';
SET LOCAL ROLE tap_data_app;
SELECT throws_ok(format('INSERT INTO %I.orders (_airbyte_raw_id, _airbyte_extracted_at, _airbyte_meta) VALUES (gen_random_uuid(), now(), ''{}'')', :'sa'),
	'42501', NULL, 'a tenant context cannot INSERT even into its own synced table');
SELECT throws_ok(format('INSERT INTO %I.orders (_airbyte_raw_id, _airbyte_extracted_at, _airbyte_meta) VALUES (gen_random_uuid(), now(), ''{}'')', :'sb'),
	'42501', NULL, 'a tenant context cannot INSERT into another tenant''s table');
SELECT throws_ok(format('UPDATE %I.orders SET total = 0', :'sb'),
	'42501', NULL, 'a tenant context cannot UPDATE another tenant''s table');
SELECT throws_ok(format('DELETE FROM %I.shop_raw__stream_orders', :'sc'),
	'42501', NULL, 'a tenant context cannot DELETE from another tenant''s raw table');
SELECT throws_ok(format('CREATE TABLE %I.mine (i int)', :'sb'),
	'42501', NULL, 'a tenant context cannot CREATE in another tenant''s schema');
SELECT throws_ok(format('CREATE TABLE %I.mine (i int)', :'sa'),
	'42501', NULL, 'a tenant role cannot CREATE in its own data schema either');
SELECT throws_ok(format('ALTER TABLE %I.orders ADD COLUMN x int', :'sa'),
	'42501', NULL, 'a tenant role cannot ALTER a synced table');
SELECT throws_ok(format('DROP TABLE %I.orders', :'sa'),
	'42501', NULL, 'a tenant role cannot DROP a synced table');
SELECT throws_ok('SELECT * FROM tenant_airbyte.tenant_data',
	'42501', NULL, 'a tenant role cannot read the loaders'' passwords');
SELECT throws_ok($$SELECT * FROM tenant_airbyte.loader_credentials('tap-data-a')$$,
	'42501', NULL, 'a tenant role cannot ask for loader credentials');
RESET ROLE;

-- Another tenant's loader: no way into a's schema.
SET SESSION AUTHORIZATION :lb;
SELECT throws_ok(format('SELECT count(*) FROM %I.orders', :'sa'),
	'42501', NULL, 'b''s loader cannot read a''s table');
SELECT throws_ok(format('INSERT INTO %I.orders (_airbyte_raw_id, _airbyte_extracted_at, _airbyte_meta) VALUES (gen_random_uuid(), now(), ''{}'')', :'sa'),
	'42501', NULL, 'b''s loader cannot INSERT into a''s table');
SELECT throws_ok(format('UPDATE %I.orders SET total = 0', :'sa'),
	'42501', NULL, 'b''s loader cannot UPDATE a''s table');
SELECT throws_ok(format('DELETE FROM %I.orders', :'sa'),
	'42501', NULL, 'b''s loader cannot DELETE from a''s table');
SELECT throws_ok(format('CREATE TABLE %I.planted (i int)', :'sa'),
	'42501', NULL, 'b''s loader cannot CREATE in a''s schema');
SELECT throws_ok($$SET tenant_airbyte.tenant_id = 'tap-data-a'$$,
	'42501', NULL, 'a loader cannot give itself a tenant context');
SELECT throws_ok('SELECT * FROM tenant_airbyte.tenant_data',
	'42501', NULL, 'a loader cannot read the loaders'' passwords');
SELECT is((SELECT count(*) FROM :sb.orders), 2::bigint, 'b''s loader sees its own rows');
RESET SESSION AUTHORIZATION;

-- a's loader cannot undo the binding of its own tables.
SET SESSION AUTHORIZATION :la;
SELECT throws_ok(format('ALTER TABLE %I.orders DISABLE ROW LEVEL SECURITY', :'sa'),
	'42501', NULL, 'a loader cannot disable row-level security of its table');
SELECT throws_ok(format('ALTER TABLE %I.orders NO FORCE ROW LEVEL SECURITY', :'sa'),
	'42501', NULL, 'a loader cannot stop forcing it');
SELECT throws_ok(format('CREATE POLICY open ON %I.orders USING (true)', :'sa'),
	'42501', NULL, 'a loader cannot add a permissive policy');
SELECT throws_ok(format('CREATE FUNCTION %I.f() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS ''SELECT count(*) FROM %I.orders''', :'sa', :'sa'),
	'42501', NULL, 'a loader cannot create a function in its schema');
SELECT throws_ok(format('CREATE MATERIALIZED VIEW %I.mv AS SELECT * FROM %I.orders', :'sa', :'sa'),
	'42501', NULL, 'a loader cannot create a materialized view (RLS cannot cover one)');
SELECT throws_ok('CREATE SCHEMA tap_data_loader_own',
	'42501', NULL, 'a loader cannot create a schema of its own');
SELECT lives_ok(format('CREATE SCHEMA IF NOT EXISTS %I', :'sa'),
	'CREATE SCHEMA IF NOT EXISTS on its own schema (what Airbyte runs) works');
-- A view asking for owner rights gets security_invoker anyway.
CREATE VIEW :sa.all_orders WITH (security_invoker = false) AS SELECT * FROM :sa.orders;
RESET SESSION AUTHORIZATION;

SELECT ok((SELECT 'security_invoker=true' = ANY (reloptions) FROM pg_class
			WHERE oid = format('%I.all_orders', :'sa')::regclass),
		  'a view created in a data schema is made security_invoker');
-- A superuser's view would bypass RLS as its owner: it is made security_invoker too.
CREATE VIEW :sa.admin_orders AS SELECT * FROM :sa.orders;
-- A SECURITY DEFINER function placed there by a superuser, owned by a's loader.
SELECT format('CREATE FUNCTION %I.count_orders() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp AS %L', :'sa', format('SELECT count(*) FROM %I.orders', :'sa'))
\gexec
ALTER FUNCTION :sa.count_orders() OWNER TO :la;
GRANT EXECUTE ON FUNCTION :sa.count_orders() TO tap_data_app;

SET LOCAL tenant_airbyte.tenant_id = 'tap-data-b';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM :sa.all_orders), 0::bigint,
	'b sees nothing of a through a''s loader''s view');
SELECT is((SELECT count(*) FROM :sa.admin_orders), 0::bigint,
	'b sees nothing of a through a superuser''s view');
SELECT is(:sa.count_orders(), 0::bigint,
	'b sees nothing of a through a SECURITY DEFINER function owned by a''s loader');
RESET ROLE;
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-a';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM :sa.all_orders) + (SELECT count(*) FROM :sa.admin_orders)
		  + :sa.count_orders(), 9::bigint,
	'a sees its 3 orders through each of the three');
RESET ROLE;

-- Tables that appear by hand: CREATE TABLE AS, SELECT INTO, SET SCHEMA.
CREATE TABLE :sa.by_hand AS SELECT i FROM generate_series(1, 4) AS i;
SELECT * INTO :sa.selected FROM generate_series(1, 2) AS i;
CREATE TABLE public.tap_data_moved AS SELECT i FROM generate_series(1, 5) AS i;
ALTER TABLE public.tap_data_moved SET SCHEMA :sa;
SELECT is_empty(format($$SELECT c.relname FROM pg_class c
				 WHERE c.oid IN (%L::regclass, %L::regclass, %L::regclass)
				   AND NOT (c.relrowsecurity AND c.relforcerowsecurity
							AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %L))$$,
				 :'sa' || '.by_hand', :'sa' || '.selected', :'sa' || '.tap_data_moved', :'sa'),
		  'CREATE TABLE AS, SELECT INTO and SET SCHEMA into a data schema bind the table at once');

SET LOCAL tenant_airbyte.tenant_id = 'tap-data-b';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM :sa.by_hand) + (SELECT count(*) FROM :sa.selected)
		  + (SELECT count(*) FROM :sa.tap_data_moved), 0::bigint,
	'b sees none of the rows of tables made by hand in a''s schema');
RESET ROLE;
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-a';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM :sa.by_hand) + (SELECT count(*) FROM :sa.selected)
		  + (SELECT count(*) FROM :sa.tap_data_moved), 11::bigint,
	'a sees all of them');
RESET ROLE;

-- Moved on into b's schema: now b's, no longer a's.
ALTER TABLE :sa.tap_data_moved SET SCHEMA :sb;
SELECT is(ARRAY(SELECT polname::text FROM pg_policy WHERE polrelid = format('%I.tap_data_moved', :'sb')::regclass),
		  ARRAY[:'sb'], 'a table moved into b''s schema carries b''s policy only');
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-a';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM :sb.tap_data_moved), 0::bigint, 'a no longer sees it');
RESET ROLE;
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-b';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM :sb.tap_data_moved), 5::bigint, 'b does');
RESET ROLE;

-- Moved out of every data schema: still forced, still b's only.
ALTER TABLE :sb.tap_data_moved SET SCHEMA public;
SELECT ok((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class
			WHERE oid = 'public.tap_data_moved'::regclass),
		  'a table moved out of the data schemas keeps forced row-level security');
SET LOCAL tenant_airbyte.tenant_id = 'tap-data-a';
SET LOCAL ROLE tap_data_app;
SELECT is((SELECT count(*) FROM public.tap_data_moved), 0::bigint,
	'and its rows stay hidden from other tenants');
RESET ROLE;

-- The loader's login and privileges.
SELECT is((SELECT row(rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication)::text
			 FROM pg_roles WHERE rolname = :'la'),
		  '(t,f,f,f,f,f)', 'a loader logs in and holds no other attribute');
SELECT alike((SELECT rolpassword FROM pg_authid WHERE rolname = :'la'), 'SCRAM-SHA-256$4096:%',
		  'its password is stored as a SCRAM verifier');
SELECT is((tenant_airbyte.loader_credentials('tap-data-a') ->> 'password') ~ '^[0-9a-f]{64}$',
		  true, 'its password is 64 random hex digits, readable by a superuser');
SELECT ok(NOT has_schema_privilege(:'la', :'sb', 'USAGE')
		  AND NOT has_schema_privilege(:'la', 'public', 'CREATE')
		  AND NOT has_table_privilege(:'la', 'tenant_airbyte.webhook_inbox', 'SELECT'),
		  'a loader has no access to other schemas or the extension''s tables');

SELECT * FROM finish();
ROLLBACK;

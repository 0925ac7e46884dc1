--
-- schema: CREATE EXTENSION gives exactly the documented objects, with
-- row-level security enabled and forced, and nothing granted to PUBLIC
-- beyond what a tenant-scoped role needs.
--
SET client_min_messages TO warning;
DROP EXTENSION IF EXISTS tenant_airbyte CASCADE;
CREATE EXTENSION tenant_airbyte;
RESET client_min_messages;

-- The extension lives in its own schema and cannot be moved.
SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable
  FROM pg_extension WHERE extname = 'tenant_airbyte';

-- Every object that belongs to the extension.
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tenant_airbyte')
   AND deptype = 'e'
 ORDER BY 1;

-- The workspace table: the seed's columns, timestamptz timestamps, deleted_at.
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull,
       pg_get_expr(adbin, adrelid) AS default
  FROM pg_attribute
  LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
 WHERE attrelid = 'tenant_airbyte.tenant_airbyte_workspaces'::regclass
   AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;

SELECT conname, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE conrelid = 'tenant_airbyte.tenant_airbyte_workspaces'::regclass
 ORDER BY conname;

SELECT indexname, indexdef
  FROM pg_indexes
 WHERE schemaname = 'tenant_airbyte' AND tablename = 'tenant_airbyte_workspaces'
 ORDER BY indexname;

-- Every column is documented.
SELECT attname
  FROM pg_attribute
 WHERE attrelid = 'tenant_airbyte.tenant_airbyte_workspaces'::regclass
   AND attnum > 0 AND NOT attisdropped
   AND col_description(attrelid, attnum) IS NULL;

-- Row-level security is enabled and forced on every table of the schema.
SELECT relname, relrowsecurity, relforcerowsecurity, relpersistence
  FROM pg_class
 WHERE relnamespace = 'tenant_airbyte'::regnamespace AND relkind = 'r'
 ORDER BY relname;

SELECT tablename, policyname, cmd, roles, qual, with_check
  FROM pg_policies
 WHERE schemaname = 'tenant_airbyte'
 ORDER BY tablename, policyname;

-- Every SECURITY DEFINER function pins its search_path, so no object a
-- caller creates can be substituted for one it uses.
SELECT p.oid::regprocedure AS definer_without_fixed_search_path
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant_airbyte'::regnamespace AND p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);

-- current_tenant() is cheap enough for a policy: C, STABLE, parallel safe.
SELECT proname, l.lanname, provolatile, proparallel, prosecdef
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE pronamespace = 'tenant_airbyte'::regnamespace
 ORDER BY proname;

-- What PUBLIC may do, and nothing more.
SELECT 'table' AS kind, c.relname AS name, a.privilege_type
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'tenant_airbyte'::regnamespace AND a.grantee = 0
UNION ALL
SELECT 'function', p.oid::regprocedure::text, a.privilege_type
  FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'tenant_airbyte'::regnamespace AND a.grantee = 0
UNION ALL
SELECT 'schema', n.nspname, a.privilege_type
  FROM pg_namespace n, aclexplode(n.nspacl) a
 WHERE n.nspname = 'tenant_airbyte' AND a.grantee = 0
 ORDER BY 1, 2, 3;

-- updated_at follows every change; deleted_at goes with status 'deleted'.
\set VERBOSITY terse
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name, updated_at)
VALUES ('org-schema', '00000000-0000-4000-8000-000000000001', 'Schema - org-sche',
        '2000-01-01');
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET status = 'suspended' WHERE tenant_id = 'org-schema';
SELECT status, updated_at > '2000-01-02' AS updated_at_moved, created_at <= updated_at AS ordered
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'org-schema';
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET status = 'deleted' WHERE tenant_id = 'org-schema';
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET status = 'deleted', deleted_at = now() WHERE tenant_id = 'org-schema';
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET status = 'archived' WHERE tenant_id = 'org-schema';
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('org-schema', '00000000-0000-4000-8000-000000000002', 'duplicate tenant');
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('org-other', '00000000-0000-4000-8000-000000000001', 'duplicate workspace');
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('  ', '00000000-0000-4000-8000-000000000003', 'blank tenant');
\set VERBOSITY default
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'org-schema';

-- The background worker's role: not a superuser, BYPASSRLS, no password,
-- owner of nothing, rights only on the extension's own tables.
SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb,
       rolpassword IS NULL AS no_password
  FROM pg_authid WHERE rolname = 'tenant_airbyte_worker';
SELECT count(*) AS objects_owned FROM pg_class
 WHERE relowner = 'tenant_airbyte_worker'::regrole;
SELECT c.relname, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS worker_may
  FROM pg_class AS c, aclexplode(c.relacl) AS a
 WHERE c.relnamespace = 'tenant_airbyte'::regnamespace
   AND a.grantee = 'tenant_airbyte_worker'::regrole
 GROUP BY c.relname ORDER BY c.relname;
-- The triggers that must fire for the worker's writes (it runs with
-- session_replication_role = replica) are ENABLE ALWAYS ('A').
SELECT tgrelid::regclass AS table_name, tgname, tgenabled
  FROM pg_trigger
 WHERE tgrelid::regclass::text LIKE 'tenant_airbyte.%' AND NOT tgisinternal
 ORDER BY 1, 2;
SELECT count(*) FILTER (WHERE tgenabled <> 'A') AS internal_not_always
  FROM pg_trigger
 WHERE tgrelid::regclass::text LIKE 'tenant_airbyte.%' AND tgisinternal;

-- Dropping the extension removes everything it created.  (The schema
-- itself stays: PostgreSQL creates it for the control file and does not
-- make it a member of the extension.)
DROP EXTENSION tenant_airbyte;
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'tenant_airbyte'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant_airbyte'::regnamespace)
       AS objects_left;

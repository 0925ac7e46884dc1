-- test/lib/extension_catalog.sql: the tenant_airbyte extension's objects,
-- one line each with its full definition, in a stable order.
--
--   psql -X -At -d DB -f test/lib/extension_catalog.sql
--
-- Two databases whose outputs are equal have the same extension schema.
-- test/integration/upgrade_from_0_1_0.t compares a database upgraded from
-- 0.1.0 with a fresh install this way, so that a schema change made in
-- sql/tenant_airbyte--<new>.sql without the same step in the upgrade
-- script fails loudly; the difference it prints is the missing step.
-- (pg_dump cannot do this: it dumps an extension as CREATE EXTENSION.)
--
-- Nothing here depends on OIDs, attnums of dropped columns or creation
-- order; everything a user or the code can observe is covered: members
-- and their comments and privileges, columns in order, defaults,
-- constraints, indexes, policies, triggers, view and function bodies,
-- sequences, and which tables pg_dump saves.

WITH ext AS (
	SELECT e.oid, e.extname, e.extversion, e.extconfig, e.extcondition
	  FROM pg_catalog.pg_extension AS e
	 WHERE e.extname = 'tenant_airbyte'
),
members AS (
	SELECT d.classid, d.objid, d.objsubid
	  FROM pg_catalog.pg_depend AS d, ext
	 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
	   AND d.refobjid = ext.oid
	   AND d.deptype = 'e'
),
rels AS (
	SELECT c.oid, c.relname, c.relkind::text
	  FROM pg_catalog.pg_class AS c
	 WHERE c.relnamespace = 'tenant_airbyte'::pg_catalog.regnamespace
),
lines(line) AS (
	-- every member object, what it is, its comment and its owner
	SELECT 'member ' || pg_catalog.pg_describe_object(m.classid, m.objid, m.objsubid)
		   || ' comment=' || coalesce(pg_catalog.obj_description(m.objid, c.relname), '')
	  FROM members AS m
	  JOIN pg_catalog.pg_class AS c ON c.oid = m.classid
	UNION ALL
	-- tables, views, sequences, indexes: kind, persistence, RLS, options, ACL
	SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text
		   || ' persistence=' || c.relpersistence::text
		   || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
		   || ' options=' || coalesce(c.reloptions::text, '')
		   || ' acl=' || coalesce(c.relacl::text, '')
		   || ' owner=' || pg_catalog.pg_get_userbyid(c.relowner)
	  FROM pg_catalog.pg_class AS c
	 WHERE c.relnamespace = 'tenant_airbyte'::pg_catalog.regnamespace
	   AND c.relkind <> 'c'
	UNION ALL
	-- columns, numbered by their order among the live ones
	SELECT 'column ' || r.relname || '.'
		   || pg_catalog.lpad((pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum))::text, 3, '0')
		   || ' ' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		   || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		   || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
		   || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
		   || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END
		   || coalesce(' collate ' || co.collname, '')
		   || ' acl=' || coalesce(a.attacl::text, '')
		   || ' comment=' || coalesce(pg_catalog.col_description(a.attrelid, a.attnum), '')
	  FROM rels AS r
	  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = r.oid
	  LEFT JOIN pg_catalog.pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	  LEFT JOIN pg_catalog.pg_collation AS co
			 ON co.oid = a.attcollation AND a.attcollation <> 0
			AND co.collname <> 'default'
	 WHERE a.attnum > 0 AND NOT a.attisdropped AND r.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
	UNION ALL
	SELECT 'constraint ' || r.relname || ' ' || k.conname || ' ' || pg_catalog.pg_get_constraintdef(k.oid)
		   || CASE WHEN k.condeferrable THEN ' deferrable' ELSE '' END
	  FROM pg_catalog.pg_constraint AS k
	  JOIN rels AS r ON r.oid = k.conrelid
	UNION ALL
	SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
		   || ' comment=' || coalesce(pg_catalog.obj_description(i.indexrelid, 'pg_class'), '')
	  FROM pg_catalog.pg_index AS i
	  JOIN rels AS r ON r.oid = i.indrelid
	UNION ALL
	SELECT 'policy ' || r.relname || ' ' || p.polname || ' cmd=' || p.polcmd::text
		   || ' permissive=' || p.polpermissive
		   || ' roles=' || (SELECT pg_catalog.string_agg(CASE WHEN x = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(x) END, ',' ORDER BY 1)
							  FROM pg_catalog.unnest(p.polroles) AS x)
		   || ' using=' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
		   || ' check=' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
	  FROM pg_catalog.pg_policy AS p
	  JOIN rels AS r ON r.oid = p.polrelid
	UNION ALL
	SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
	  FROM pg_catalog.pg_trigger AS t
	  JOIN rels AS r ON r.oid = t.tgrelid
	 WHERE NOT t.tgisinternal
	UNION ALL
	SELECT 'rule ' || pg_catalog.pg_get_ruledef(w.oid)
	  FROM pg_catalog.pg_rewrite AS w
	  JOIN rels AS r ON r.oid = w.ev_class
	 WHERE w.rulename <> '_RETURN'
	UNION ALL
	SELECT 'view ' || r.relname || ' ' || pg_catalog.pg_get_viewdef(r.oid)
	  FROM rels AS r
	 WHERE r.relkind IN ('v', 'm')
	UNION ALL
	SELECT 'sequence ' || r.relname || ' ' || pg_catalog.format_type(s.seqtypid, NULL)
		   || ' start=' || s.seqstart || ' inc=' || s.seqincrement
		   || ' min=' || s.seqmin || ' max=' || s.seqmax || ' cache=' || s.seqcache
		   || ' cycle=' || s.seqcycle
	  FROM pg_catalog.pg_sequence AS s
	  JOIN rels AS r ON r.oid = s.seqrelid
	UNION ALL
	-- functions: whole definition (body, volatility, security, SET
	-- search_path ...) and who may execute them
	SELECT 'function ' || p.oid::pg_catalog.regprocedure::text
		   || ' acl=' || coalesce(p.proacl::text, '')
		   || ' owner=' || pg_catalog.pg_get_userbyid(p.proowner)
		   || ' comment=' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
		   || E'\n' || CASE WHEN p.prokind = 'a' THEN 'aggregate'
							ELSE pg_catalog.pg_get_functiondef(p.oid) END
	  FROM pg_catalog.pg_proc AS p
	 WHERE p.pronamespace = 'tenant_airbyte'::pg_catalog.regnamespace
	UNION ALL
	SELECT 'type ' || t.oid::pg_catalog.regtype::text || ' kind=' || t.typtype::text
		   || coalesce(' labels=' || (SELECT pg_catalog.string_agg(l.enumlabel, ',' ORDER BY l.enumsortorder)
										 FROM pg_catalog.pg_enum AS l WHERE l.enumtypid = t.oid), '')
		   || ' comment=' || coalesce(pg_catalog.obj_description(t.oid, 'pg_type'), '')
	  FROM pg_catalog.pg_type AS t
	 WHERE t.typnamespace = 'tenant_airbyte'::pg_catalog.regnamespace
	   AND t.typtype <> 'c' AND t.typelem = 0
	UNION ALL
	SELECT 'event trigger ' || et.evtname || ' on ' || et.evtevent
		   || ' function=' || et.evtfoid::pg_catalog.regproc::text
		   || ' tags=' || coalesce(et.evttags::text, '') || ' enabled=' || et.evtenabled::text
	  FROM pg_catalog.pg_event_trigger AS et
	  JOIN members AS m ON m.classid = 'pg_catalog.pg_event_trigger'::pg_catalog.regclass
					   AND m.objid = et.oid
	UNION ALL
	SELECT 'schema tenant_airbyte acl=' || coalesce(n.nspacl::text, '')
		   || ' owner=' || pg_catalog.pg_get_userbyid(n.nspowner)
		   || ' comment=' || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '')
	  FROM pg_catalog.pg_namespace AS n
	 WHERE n.nspname = 'tenant_airbyte'
	UNION ALL
	-- which tables (and with which filter) pg_dump saves the rows of
	SELECT 'config_dump ' || c.oid::pg_catalog.regclass::text || ' where=' || coalesce(cond, '')
	  FROM ext,
		   unnest(ext.extconfig, ext.extcondition) AS u(cfg, cond)
	  JOIN pg_catalog.pg_class AS c ON c.oid = u.cfg
	UNION ALL
	SELECT 'extension ' || ext.extname || ' ' || ext.extversion
	  FROM ext
)
SELECT line FROM lines ORDER BY line COLLATE "C";

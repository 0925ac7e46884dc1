/*-------------------------------------------------------------------------
 *
 * tenant_airbyte--0.1.0--0.2.0.sql
 *	  ALTER EXTENSION tenant_airbyte UPDATE from release 0.1.0 to 0.2.0.
 *
 * Every schema difference between tenant_airbyte--0.1.0.sql and
 * tenant_airbyte--0.2.0.sql has its step here, so that a database upgraded
 * from 0.1.0 ends with exactly the objects a fresh 0.2.0 install has.
 * test/integration/upgrade_from_0_1_0.t proves it by comparing the two
 * (test/lib/extension_catalog.sql) and prints any difference; see
 * doc/upgrading.md for how to add a step.
 *
 * Rows are kept: only additive or in-place changes (CREATE, CREATE OR
 * REPLACE, ALTER ... ADD) belong here.  Tables with data must stay in
 * pg_extension_config_dump(), so pg_dump keeps their rows.
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tenant_airbyte UPDATE" to load this file. \quit

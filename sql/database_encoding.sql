--
-- database_encoding: the extension installs only into a UTF8 database, and
-- refuses any other with an error that says what to do, leaving nothing
-- behind.  Tenant names are Unicode and Frontegg and Airbyte speak UTF-8.
--
SET client_min_messages = warning;
SELECT current_database() AS regress_db \gset
DROP DATABASE IF EXISTS ta_encoding_sql_ascii;
DROP DATABASE IF EXISTS ta_encoding_latin1;
CREATE DATABASE ta_encoding_sql_ascii ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0;
CREATE DATABASE ta_encoding_latin1 ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0;

-- SQL_ASCII: what initdb makes where no locale is set.
\c ta_encoding_sql_ascii
-- The error's CONTEXT differs between versions (18 quotes the whole
-- statement of the install script): message, detail and hint are the point.
\set SHOW_CONTEXT never
SELECT getdatabaseencoding();
CREATE EXTENSION tenant_airbyte;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'tenant_airbyte';
SELECT count(*) AS extensions_left FROM pg_extension WHERE extname = 'tenant_airbyte';

-- LATIN1: a single-byte encoding that cannot hold most tenant names.
\c ta_encoding_latin1
SELECT getdatabaseencoding();
CREATE EXTENSION tenant_airbyte;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'tenant_airbyte';

-- UTF8 (this suite's database): installs, and keeps a Unicode name intact.
\c :regress_db
SET client_min_messages = warning;
SELECT getdatabaseencoding();
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
SELECT extname FROM pg_extension WHERE extname = 'tenant_airbyte';
SELECT tenant_airbyte.validate_tenant_id('org-Zürich-東京') AS tenant_id,
       length(tenant_airbyte.validate_tenant_id('org-Zürich-東京')) AS characters;

DROP DATABASE ta_encoding_sql_ascii;
DROP DATABASE ta_encoding_latin1;

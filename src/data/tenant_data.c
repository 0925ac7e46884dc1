/*-------------------------------------------------------------------------
 *
 * tenant_data.c
 *	  The C half of tenant data schemas: the name of a tenant's data schema,
 *	  the settings that decide who reads synced data, and the loader role's
 *	  generated password.
 *
 * Each tenant's synced tables live in a schema of their own, written by a
 * login role of their own (the "loader" Airbyte's Postgres destination
 * logs in as).  The SQL side (section 6 of the install script) creates
 * them and binds every table that appears there to its tenant; what needs
 * C is here:
 *
 *	- data_schema_for(): a deterministic, valid identifier for any tenant
 *	  id, used by SQL and by authenticate() (which puts the schema on the
 *	  transaction's search_path);
 *	- the settings tenant_airbyte.tenant_roles and
 *	  tenant_airbyte.keep_data_on_purge, read through functions so that a
 *	  value set before the library was loaded is never trusted;
 *	- new_loader_secret(): a random password and its SCRAM-SHA-256 verifier.
 *	  Only the verifier ever appears in a statement (ALTER ROLE ... PASSWORD
 *	  'SCRAM-SHA-256$...'), so log_statement = ddl or an error context can
 *	  show nothing that logs in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "tenant_data.h"

/*
 * From libpq/scram.h, declared here because that header includes
 * libpq-be.h and with it the GSSAPI headers, which a server built with
 * GSSAPI requires of every extension that includes it.
 */
extern char *pg_be_scram_build_secret(const char *password);

/* Bytes of the tenant id's SHA-256 kept in the schema name (16 hex digits). */
#define SCHEMA_HASH_BYTES 8

/* Longest sanitized prefix of the tenant id kept in the schema name. */
#define SCHEMA_PREFIX_MAX 36

/* Random bytes in a loader password (hex encoded: 64 characters). */
#define LOADER_SECRET_BYTES 32

char	   *tenant_airbyte_tenant_roles = NULL;
bool		tenant_airbyte_keep_data_on_purge = false;

PG_FUNCTION_INFO_V1(tenant_airbyte_data_schema_for);
PG_FUNCTION_INFO_V1(tenant_airbyte_data_tenant_roles);
PG_FUNCTION_INFO_V1(tenant_airbyte_data_keep_on_purge);
PG_FUNCTION_INFO_V1(tenant_airbyte_new_loader_secret);

/*
 * tenant_data_define_settings
 *		The settings of tenant data schemas.  Both are PGC_SUSET: a loader or
 *		an application role must not be able to widen who is granted synced
 *		tables, nor keep a purged tenant's data.
 */
void
tenant_data_define_settings(void)
{
	DefineCustomStringVariable("tenant_airbyte.tenant_roles",
							   "Roles granted SELECT on every table in tenant data schemas.",
							   "Comma-separated role names: the application roles that read synced "
							   "data under a tenant context. Row-level security still shows each "
							   "of them only the rows of the tenant in tenant_airbyte.tenant_id.",
							   &tenant_airbyte_tenant_roles, "",
							   PGC_SUSET, GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("tenant_airbyte.keep_data_on_purge",
							 "Keep a purged tenant's data schema and loader role.",
							 "By default purging a tenant (deleting its workspace row) drops its "
							 "data schema with every synced table and its loader role.",
							 &tenant_airbyte_keep_data_on_purge, false,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/*
 * tenant_data_schema_name
 *		"t_" + the tenant id lowercased with every byte that is not [a-z0-9]
 *		turned into "_" (at most 36 bytes) + "_" + 16 hex digits of the
 *		SHA-256 of the exact id.  At most 55 bytes, so "<schema>_loader" fits
 *		in NAMEDATALEN too; needs no quoting; and two ids that sanitize alike
 *		("Acme" and "acme", "a.b" and "a-b") still get different names.
 */
char *
tenant_data_schema_name(const char *tenant_id)
{
	size_t		len = strlen(tenant_id);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *ctx;
	StringInfoData name;
	size_t		i;
	size_t		kept = 0;
	bool		last_was_underscore = true;

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) tenant_id, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256 of a tenant id");
	pg_cryptohash_free(ctx);

	initStringInfo(&name);
	appendStringInfoString(&name, "t_");
	for (i = 0; i < len && kept < SCHEMA_PREFIX_MAX; i++)
	{
		char		c = tenant_id[i];

		if (c >= 'A' && c <= 'Z')
			c = c - 'A' + 'a';
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		{
			appendStringInfoChar(&name, c);
			last_was_underscore = false;
			kept++;
		}
		else if (!last_was_underscore)
		{
			/* runs of other bytes become one "_", which reads better */
			appendStringInfoChar(&name, '_');
			last_was_underscore = true;
			kept++;
		}
	}
	if (!last_was_underscore)
		appendStringInfoChar(&name, '_');
	for (i = 0; i < SCHEMA_HASH_BYTES; i++)
		appendStringInfo(&name, "%02x", digest[i]);

	Assert(name.len < NAMEDATALEN - 7);
	return name.data;
}

/*
 * tenant_airbyte_data_schema_for
 *		data_schema_for(tenant_id text) returns text.
 */
Datum
tenant_airbyte_data_schema_for(PG_FUNCTION_ARGS)
{
	char	   *tenant_id = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(cstring_to_text(tenant_data_schema_name(tenant_id)));
}

/*
 * tenant_airbyte_data_tenant_roles
 *		data_tenant_roles() returns text[]: the role names of
 *		tenant_airbyte.tenant_roles, parsed like any identifier list (so a
 *		quoted name keeps its case).  A malformed list is an error rather
 *		than a silently shorter list.
 */
Datum
tenant_airbyte_data_tenant_roles(PG_FUNCTION_ARGS)
{
	char	   *raw = pstrdup(tenant_airbyte_tenant_roles ? tenant_airbyte_tenant_roles : "");
	List	   *names;
	ListCell   *lc;
	Datum	   *elems;
	int			n = 0;

	if (!SplitIdentifierString(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant_airbyte.tenant_roles is not a list of role names"),
				 errhint("Set it to comma-separated role names, e.g. 'app_reader, analytics'.")));

	elems = palloc(sizeof(Datum) * (list_length(names) + 1));
	foreach(lc, names)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));

	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * tenant_airbyte_data_keep_on_purge
 *		data_keep_on_purge() returns boolean: tenant_airbyte.keep_data_on_purge.
 */
Datum
tenant_airbyte_data_keep_on_purge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(tenant_airbyte_keep_data_on_purge);
}

/*
 * tenant_airbyte_new_loader_secret
 *		new_loader_secret(out password text, out verifier text): 32 bytes from
 *		pg_strong_random() as hex, and the SCRAM-SHA-256 verifier PostgreSQL
 *		would store for it.  ALTER ROLE given a verifier stores it as it is,
 *		so the password itself never has to appear in a statement.
 */
Datum
tenant_airbyte_new_loader_secret(PG_FUNCTION_ARGS)
{
	uint8		random_bytes[LOADER_SECRET_BYTES];
	char		password[LOADER_SECRET_BYTES * 2 + 1];
	char	   *verifier;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int			i;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "new_loader_secret must return a record");

	if (!pg_strong_random(random_bytes, sizeof(random_bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random loader password")));
	for (i = 0; i < LOADER_SECRET_BYTES; i++)
		snprintf(password + 2 * i, 3, "%02x", random_bytes[i]);

	verifier = pg_be_scram_build_secret(password);

	values[0] = CStringGetTextDatum(password);
	values[1] = CStringGetTextDatum(verifier);
	explicit_bzero(random_bytes, sizeof(random_bytes));
	explicit_bzero(password, sizeof(password));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

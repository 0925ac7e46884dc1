/*-------------------------------------------------------------------------
 *
 * provision.c
 *	  provision_tenant(), deprovision_tenant(), purge_deleted_tenants():
 *	  the SQL face of the provision, deprovision and purge operations.
 *
 * Each checks its arguments, hands an operation to the background worker
 * and waits for its outcome (engine.h): only the worker calls Airbyte,
 * and the operation's record does not depend on the caller's
 * transaction.  The steps are in kind_provision.c, kind_deprovision.c and
 * kind_purge.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "airbyte_api.h"
#include "engine.h"
#include "tenant_airbyte.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_provision_tenant);
PG_FUNCTION_INFO_V1(tenant_airbyte_deprovision_tenant);
PG_FUNCTION_INFO_V1(tenant_airbyte_purge_deleted_tenants);
PG_FUNCTION_INFO_V1(tenant_airbyte_run_operation);

/* The tenant id argument, checked by validate_tenant_id() (22023 when bad). */
static char *
tenant_id_arg(FunctionCallInfo fcinfo, int n)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {' '};
	char	   *id = PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
	int			rc;

	values[0] = id ? CStringGetTextDatum(id) : (Datum) 0;
	if (id == NULL)
		nulls[0] = 'n';
	SPI_connect();
	rc = SPI_execute_with_args("SELECT tenant_airbyte.validate_tenant_id($1)",
							   1, types, values, nulls, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	return id;
}

Datum
tenant_airbyte_provision_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant_id = tenant_id_arg(fcinfo, 0);
	char	   *tenant_name = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_JSONB_P(engine_run("provision", tenant_id,
								 airbyte_json_object(1, "tenant_name", tenant_name),
								 "", NULL));
}

Datum
tenant_airbyte_deprovision_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant_id = tenant_id_arg(fcinfo, 0);

	PG_RETURN_JSONB_P(engine_run("deprovision", tenant_id, NULL, "", NULL));
}

/*
 * purge_deleted_tenants
 *		One purge operation per tenant soft-deleted longer than
 *		retention_days ago, one after the other; a tenant Airbyte fails for
 *		is kept, with a WARNING, for the next run.
 */
Datum
tenant_airbyte_purge_deleted_tenants(PG_FUNCTION_ARGS)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	List	   *tenants = NIL;
	ListCell   *lc;
	int			purged = 0;
	int			rc;

	engine_require_worker();
	values[0] = Int32GetDatum(tenant_airbyte_retention_days);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT w.tenant_id::text"
							   "  FROM tenant_airbyte.tenant_airbyte_workspaces AS w"
							   " WHERE w.status OPERATOR(pg_catalog.=) 'deleted'"
							   "   AND w.deleted_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
							   "       OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => $1))"
							   " ORDER BY w.deleted_at",
							   1, types, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *t = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		tenants = lappend(tenants, MemoryContextStrdup(TopTransactionContext, t));
	}
	SPI_finish();

	foreach(lc, tenants)
	{
		const char *tenant_id = (const char *) lfirst(lc);
		const char *status;
		int64		operation_id;
		Jsonb	   *outcome = engine_run_status("purge", tenant_id, NULL, "", NULL,
												&status, &operation_id);
		char	   *result = outcome ? airbyte_string_field(outcome, "status") : NULL;

		if (strcmp(status, "done") == 0)
		{
			if (result != NULL && strcmp(result, "purged") == 0)
				purged++;
			continue;
		}
		ereport(WARNING,
				(errmsg("could not delete the Airbyte workspace of tenant \"%s\"; kept for the next purge",
						tenant_id),
				 errdetail("%s", outcome && airbyte_string_field(outcome, "message") ?
						   airbyte_string_field(outcome, "message") : status)));
	}
	PG_RETURN_INT32(purged);
}

/*
 * run_operation(kind, tenant_id, params, subject, secret) returns jsonb
 *		The SQL door to engine_run() for the SECURITY DEFINER functions of
 *		the install script (create_source(), ...), after their checks.
 *		Superusers only: it acts on any tenant.
 */
Datum
tenant_airbyte_run_operation(PG_FUNCTION_ARGS)
{
	char	   *kind;
	char	   *tenant_id;
	Jsonb	   *params = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	char	   *subject = PG_ARGISNULL(3) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *secret = NULL;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function run_operation"),
				 errhint("Call the function for what you want done, e.g. create_source().")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("operation kind and tenant id must not be NULL")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tenant_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(4))
	{
		Jsonb	   *s = PG_GETARG_JSONB_P(4);

		secret = JsonbToCString(NULL, &s->root, VARSIZE(s));
	}
	PG_RETURN_JSONB_P(engine_run(kind, tenant_id, params, subject, secret));
}

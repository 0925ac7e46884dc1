/*-------------------------------------------------------------------------
 *
 * pipelines.c
 *	  pipeline_run(): how the pipeline's SQL functions (trigger_sync(),
 *	  cancel_sync(), in section 7 of the install script) hand an operation
 *	  to the background worker and wait for its outcome.
 *
 * The SQL functions check who is calling and for which tenant; this one
 * only records and waits (engine_run(): the operation does not depend on
 * the caller's transaction, and a cancelled wait leaves it running to its
 * end).  Granted to no one: the SQL functions are SECURITY DEFINER.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "engine.h"
#include "tenant_airbyte.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_pipeline_run);

/*
 * pipeline_run(kind text, tenant_id text, params jsonb, subject text)
 *		returns jsonb: the outcome of a done operation; raises the recorded
 *		error (Airbyte's title and detail) of a failed one.
 */
Datum
tenant_airbyte_pipeline_run(PG_FUNCTION_ARGS)
{
	char	   *kind;
	char	   *tenant_id;
	char	   *subject;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline_run() needs a kind and a tenant id")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tenant_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	subject = PG_ARGISNULL(3) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(3));

	PG_RETURN_JSONB_P(engine_run(kind, tenant_id,
								 PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
								 subject, NULL));
}

/*-------------------------------------------------------------------------
 *
 * airbyte_sql.c
 *	  SQL-callable Airbyte workspace administration for superusers: create,
 *	  get, list (every page), rename and delete a workspace.
 *
 * Thin wrappers over airbyte_api.c: they add the superuser check and turn
 * SQL types into requests.  They do not touch tenant_airbyte_workspaces;
 * provisioning (provision.c) is the way to give a tenant a workspace.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "airbyte_api.h"
#include "tenant_airbyte.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_create_workspace);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_get_workspace);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_list_workspaces);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_rename_workspace);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_delete_workspace);

/*
 * require_superuser
 *		These functions spend the deployment's Airbyte credentials, so they
 *		are for superusers even if someone grants EXECUTE by mistake.
 */
static void
require_superuser(const char *function)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", function),
				 errdetail("Only superusers may call the Airbyte administration functions.")));
}

static char *
uuid_arg(FunctionCallInfo fcinfo, int n)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(n)));
}

static char *
nonempty_text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(n));

	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	return s;
}

/* airbyte_create_workspace(name text, organization_id uuid) returns jsonb */
Datum
tenant_airbyte_airbyte_create_workspace(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *org = NULL;
	Jsonb	   *body;

	require_superuser("airbyte_create_workspace");
	name = nonempty_text_arg(fcinfo, 0, "workspace name");
	if (!PG_ARGISNULL(1))
		org = uuid_arg(fcinfo, 1);
	body = airbyte_call_or_error(HTTP_POST, "/workspaces",
								 airbyte_json_object(2, "name", name, "organizationId", org),
								 false, psprintf("create workspace \"%s\"", name));
	PG_RETURN_JSONB_P(body);
}

/* airbyte_get_workspace(workspace_id uuid) returns jsonb */
Datum
tenant_airbyte_airbyte_get_workspace(PG_FUNCTION_ARGS)
{
	char	   *id;

	require_superuser("airbyte_get_workspace");
	id = uuid_arg(fcinfo, 0);
	PG_RETURN_JSONB_P(airbyte_call_or_error(HTTP_GET, psprintf("/workspaces/%s", id),
											NULL, true,
											psprintf("get workspace %s", id)));
}

/* airbyte_list_workspaces(include_deleted boolean) returns setof jsonb */
Datum
tenant_airbyte_airbyte_list_workspaces(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		include_deleted;
	List	   *items;
	ListCell   *lc;

	require_superuser("airbyte_list_workspaces");
	include_deleted = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	items = airbyte_list_all(include_deleted ? "/workspaces?includeDeleted=true"
							 : "/workspaces?includeDeleted=false",
							 "list workspaces");
	foreach(lc, items)
	{
		Datum		value = JsonbPGetDatum((Jsonb *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/* airbyte_rename_workspace(workspace_id uuid, name text) returns jsonb */
Datum
tenant_airbyte_airbyte_rename_workspace(PG_FUNCTION_ARGS)
{
	char	   *id;
	char	   *name;

	require_superuser("airbyte_rename_workspace");
	id = uuid_arg(fcinfo, 0);
	name = nonempty_text_arg(fcinfo, 1, "workspace name");
	/* PATCH with the same name twice is harmless: idempotent */
	PG_RETURN_JSONB_P(airbyte_call_or_error(HTTP_PATCH, psprintf("/workspaces/%s", id),
											airbyte_json_object(1, "name", name), true,
											psprintf("rename workspace %s", id)));
}

/*
 * airbyte_delete_workspace(workspace_id uuid) returns boolean
 *		True when deleted, false when Airbyte did not know it (already gone).
 */
Datum
tenant_airbyte_airbyte_delete_workspace(PG_FUNCTION_ARGS)
{
	char	   *id;
	AirbyteResponse resp;

	require_superuser("airbyte_delete_workspace");
	id = uuid_arg(fcinfo, 0);
	airbyte_call(HTTP_DELETE, psprintf("/workspaces/%s", id), NULL, true, &resp);
	if (resp.outcome == AIRBYTE_NOT_FOUND)
		PG_RETURN_BOOL(false);
	if (resp.outcome != AIRBYTE_OK)
		airbyte_report_error(&resp, psprintf("delete workspace %s", id));
	PG_RETURN_BOOL(true);
}

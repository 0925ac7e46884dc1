/*-------------------------------------------------------------------------
 *
 * airbyte_sql.c
 *	  SQL-callable Airbyte workspace administration for superusers: create,
 *	  get, list (every page), rename and delete a workspace.
 *
 * Thin wrappers: they check the caller and the arguments, hand an
 * admin_*_workspace operation to the background worker, which alone talks
 * to Airbyte (src/operations/kind_admin_workspaces.c), and return what it
 * stored in admin_results (src/operations/admin.c).  They do not touch
 * tenant_airbyte_workspaces; provisioning (provision.c) is the way to give
 * a tenant a workspace.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "admin.h"
#include "airbyte_api.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_create_workspace);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_get_workspace);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_list_workspaces);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_rename_workspace);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_delete_workspace);

/* The workspace an operation stored; an answer always has one. */
static Jsonb *
stored_workspace(int64 operation_id)
{
	Jsonb	   *result = admin_result(operation_id);

	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("operation " INT64_FORMAT " is done but left no result", operation_id)));
	return result;
}

/*
 * airbyte_create_workspace(name text, organization_id uuid) returns jsonb
 *		POST /workspaces.  The name is the operation's intended name: a
 *		create whose answer was lost adopts the workspace of that name.
 */
Datum
tenant_airbyte_airbyte_create_workspace(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *org = NULL;
	int64		operation_id;

	admin_require_superuser("airbyte_create_workspace", NULL);
	name = admin_text_arg(fcinfo, 0, "workspace name");
	if (!PG_ARGISNULL(1))
		org = admin_uuid_arg(fcinfo, 1, "organization id");
	(void) admin_run("admin_create_workspace",
					 airbyte_json_object(2, "name", name, "organization_id", org),
					 name, NULL, &operation_id);
	PG_RETURN_JSONB_P(stored_workspace(operation_id));
}

/* airbyte_get_workspace(workspace_id uuid) returns jsonb */
Datum
tenant_airbyte_airbyte_get_workspace(PG_FUNCTION_ARGS)
{
	char	   *id;
	int64		operation_id;

	admin_require_superuser("airbyte_get_workspace", NULL);
	id = admin_uuid_arg(fcinfo, 0, "workspace id");
	(void) admin_run("admin_get_workspace", airbyte_json_object(1, "workspace_id", id),
					 admin_unique_subject(), NULL, &operation_id);
	PG_RETURN_JSONB_P(stored_workspace(operation_id));
}

/*
 * airbyte_list_workspaces(include_deleted boolean) returns setof jsonb
 *		Every page, however many: the worker stores each page as it comes.
 */
Datum
tenant_airbyte_airbyte_list_workspaces(PG_FUNCTION_ARGS)
{
	bool		include_deleted;
	int64		operation_id;

	admin_require_superuser("airbyte_list_workspaces", NULL);
	include_deleted = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	(void) admin_run("admin_list_workspaces",
					 airbyte_json_object(1, "include_deleted", include_deleted ? "true" : "false"),
					 admin_unique_subject(), NULL, &operation_id);
	admin_results_to_srf(operation_id, fcinfo);
	return (Datum) 0;
}

/*
 * airbyte_rename_workspace(workspace_id uuid, name text) returns jsonb
 *		PATCH with the same name twice is harmless, so a rename interrupted
 *		by a crash is simply sent again.
 */
Datum
tenant_airbyte_airbyte_rename_workspace(PG_FUNCTION_ARGS)
{
	char	   *id;
	char	   *name;
	int64		operation_id;

	admin_require_superuser("airbyte_rename_workspace", NULL);
	id = admin_uuid_arg(fcinfo, 0, "workspace id");
	name = admin_text_arg(fcinfo, 1, "workspace name");
	(void) admin_run("admin_rename_workspace",
					 airbyte_json_object(2, "workspace_id", id, "name", name),
					 id, NULL, &operation_id);
	PG_RETURN_JSONB_P(stored_workspace(operation_id));
}

/*
 * airbyte_delete_workspace(workspace_id uuid) returns boolean
 *		True when deleted, false when Airbyte did not know it (already gone).
 */
Datum
tenant_airbyte_airbyte_delete_workspace(PG_FUNCTION_ARGS)
{
	char	   *id;
	int64		operation_id;
	Jsonb	   *outcome;

	admin_require_superuser("airbyte_delete_workspace", NULL);
	id = admin_uuid_arg(fcinfo, 0, "workspace id");
	outcome = admin_run("admin_delete_workspace", airbyte_json_object(1, "workspace_id", id),
						id, NULL, &operation_id);
	PG_RETURN_BOOL(admin_outcome_true(outcome, "deleted"));
}

/*-------------------------------------------------------------------------
 *
 * provision.c
 *	  provision_tenant(), deprovision_tenant(), purge_deleted_tenants():
 *	  one Airbyte workspace per tenant, created, soft-deleted and purged.
 *
 * EXACTLY ONE WORKSPACE PER TENANT
 *
 * Airbyte's POST /workspaces has no idempotency key and workspaces cannot
 * be looked up by name; the only way to find a workspace whose creation we
 * did not record is to list them all.  The design therefore records, before
 * a create can be sent, that one may be, and reconciles (lists, adopts)
 * only when such a record is left over:
 *
 *	 1. provision_begin() (SQL, step 1) takes transaction-level advisory
 *		locks on the tenant and on its workspace name (tenant first), so all
 *		provisioning of one tenant is serialised; concurrent callers wait
 *		and then find the row: already_exists.  With a row it answers
 *		already_exists / restored (soft-deleted within retention_days) /
 *		purge (deleted longer ago: delete that workspace, forget the row,
 *		start again).  Without one it sets the tenant's MARKER and returns
 *		"create", with reconcile = whether the marker was already set.
 *
 *	 2. The marker (provision_marker.c) is a file,
 *		$PGDATA/pg_tenant_airbyte/<hash of tenant id>,
 *		fsynced.  It is deliberately not a table row: a row written in the
 *		caller's transaction would vanish with a rollback or a killed
 *		backend, exactly when Airbyte may hold a workspace we did not
 *		record.  The file survives both; it is removed only when a
 *		transaction that recorded the tenant's workspace COMMITs (an
 *		XactCallback; a subtransaction that aborts takes its removal back).
 *		Its existence is the record: the file and its directory entry are
 *		fsynced before "create" is returned, or, in the background worker
 *		(provision_defer_marker_sync), all the markers its transaction set
 *		are fsynced together, with one directory fsync, just before that
 *		transaction commits, which is before any create is sent.  The
 *		tenant id written into the file afterwards is only for people
 *		looking at the directory; a crash may leave the file empty.
 *
 *	 3. HTTP.  With reconcile, every page of GET /workspaces is read and a
 *		workspace with the tenant's name that no row maps yet is adopted.
 *		Otherwise, or when there is none, POST /workspaces.  A create whose
 *		outcome is unknown (timeout, dropped connection, 5xx, unreadable
 *		2xx) is never re-sent blindly: the next attempt reconciles first.
 *
 *	 4. provision_finish() (SQL, step 3) takes the locks again and inserts
 *		the row, unless the tenant has one by now (the background worker
 *		and a direct call raced): then the caller's workspace is returned as
 *		an orphan and, if the caller created it, deleted.
 *
 * provision_tenant() runs 1-4 in the caller's transaction (the advisory
 * locks are held until it ends, which is what serialises 50 concurrent
 * calls).  The background worker runs step 1 with nowait in one short
 * transaction ("busy" means: try later), the HTTP of step 3 outside any
 * transaction with airbyte_api.h's builders, and step 4 in another short
 * transaction; a worker killed anywhere leaves the marker, so its retry
 * reconciles.  Convergence: whichever path commits first wins, every other
 * path either adopts the same workspace (found by name) or deletes the one
 * it made.  Known limit: a tenant whose *name* changes between a lost
 * create and its retry leaves the first workspace behind, because
 * reconciliation matches the exact name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "airbyte_api.h"
#include "provision.h"
#include "retry.h"
#include "tenant_airbyte.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_provision_tenant);
PG_FUNCTION_INFO_V1(tenant_airbyte_deprovision_tenant);
PG_FUNCTION_INFO_V1(tenant_airbyte_purge_deleted_tenants);

/* ------------------------------------------------------------------------
 * SPI helpers
 * ------------------------------------------------------------------------ */

/* First column of the first row of a query with text arguments, or NULL. */
static Datum
spi_value(const char *sql, int nargs, const char **args, Oid result_type,
		  bool *isnull)
{
	Oid			types[4];
	Datum		values[4];
	char		nulls[4];
	int			rc;

	Assert(nargs <= 4);
	for (int i = 0; i < nargs; i++)
	{
		types[i] = TEXTOID;
		values[i] = args[i] ? CStringGetTextDatum(args[i]) : (Datum) 0;
		nulls[i] = args[i] ? ' ' : 'n';
	}
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 1);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	Assert(SPI_tuptable->tupdesc->attrs[0].atttypid == result_type);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

static Jsonb *
spi_jsonb(const char *sql, int nargs, const char **args)
{
	bool		isnull;
	Datum		d = spi_value(sql, nargs, args, JSONBOID, &isnull);

	return isnull ? NULL : DatumGetJsonbP(d);
}

/* Jsonb result copied into the caller's context, which outlives SPI. */
static Datum
return_jsonb(MemoryContext caller, Jsonb *value)
{
	MemoryContext old = MemoryContextSwitchTo(caller);
	Jsonb	   *copy = palloc(VARSIZE(value));

	memcpy(copy, value, VARSIZE(value));
	MemoryContextSwitchTo(old);
	return JsonbPGetDatum(copy);
}

/* A field of an object, as a Jsonb of its own, or NULL. */
static Jsonb *
object_field_jsonb(Jsonb *object, const char *key)
{
	JsonbValue *v = airbyte_object_field(&object->root, key);

	return v ? JsonbValueToJsonb(v) : NULL;
}

static bool
jsonb_bool_field(Jsonb *object, const char *key)
{
	JsonbValue *v = airbyte_object_field(&object->root, key);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

static bool
looks_like_uuid(const char *s)
{
	if (s == NULL || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * provision_tenant
 * ------------------------------------------------------------------------ */

/*
 * find_adoptable
 *		A workspace named exactly name that no row maps yet, or NULL.
 */
static char *
find_adoptable(const char *name)
{
	List	   *items = airbyte_list_all("/workspaces?includeDeleted=false",
										 psprintf("list workspaces to reconcile \"%s\"", name));
	ListCell   *lc;

	foreach(lc, items)
	{
		Jsonb	   *item = (Jsonb *) lfirst(lc);
		char	   *item_name = airbyte_string_field(item, "name");
		char	   *id = airbyte_workspace_id(item);
		const char *args[1];
		bool		isnull;
		Datum		mapped;

		if (item_name == NULL || strcmp(item_name, name) != 0 || !looks_like_uuid(id))
			continue;
		args[0] = id;
		mapped = spi_value("SELECT EXISTS (SELECT 1 FROM tenant_airbyte.tenant_airbyte_workspaces"
						   " WHERE airbyte_workspace_id = $1::uuid)",
						   1, args, BOOLOID, &isnull);
		if (!DatumGetBool(mapped))
			return id;
	}
	return NULL;
}

/*
 * obtain_workspace
 *		Step 3: adopt (when reconciling) or create the workspace called name.
 *		Sets *created when this call made it.
 */
static char *
obtain_workspace(const char *name, bool reconcile, bool *created)
{
	int			max_attempts = Max(tenant_airbyte_max_attempts, 1);
	char	   *action = psprintf("create workspace \"%s\"", name);

	*created = false;
	for (int attempt = 1;; attempt++)
	{
		AirbyteResponse resp;
		char	   *id;

		if (reconcile)
		{
			id = find_adoptable(name);
			if (id != NULL)
			{
				elog(DEBUG1, "tenant_airbyte: adopting workspace %s named \"%s\"", id, name);
				return id;
			}
		}

		airbyte_call(HTTP_POST, "/workspaces",
					 airbyte_json_object(1, "name", name), false, &resp);
		if (resp.outcome == AIRBYTE_OK)
		{
			id = airbyte_workspace_id(resp.body);
			if (looks_like_uuid(id))
			{
				*created = true;
				return id;
			}
			resp.outcome = AIRBYTE_BAD_RESPONSE;
			resp.message = "the answer has no workspaceId";
		}

		/* Unknown outcome: find out before sending the create again. */
		if ((resp.outcome == AIRBYTE_TRANSIENT || resp.outcome == AIRBYTE_BAD_RESPONSE) &&
			resp.may_have_taken_effect && attempt < max_attempts)
		{
			reconcile = true;
			airbyte_sleep_ms(retry_backoff_ms(attempt, RETRY_BASE_MS, 2000,
											  pg_prng_double(&pg_global_prng_state)));
			continue;
		}
		resp.attempts = Max(resp.attempts, attempt);
		airbyte_report_error(&resp, action);
	}
}

/* Deletes a workspace, tolerating that it is already gone; false on failure. */
static bool
delete_workspace(const char *id, AirbyteResponse *resp)
{
	airbyte_call(HTTP_DELETE, psprintf("/workspaces/%s", id), NULL, true, resp);
	return resp->outcome == AIRBYTE_OK || resp->outcome == AIRBYTE_NOT_FOUND;
}

Datum
tenant_airbyte_provision_tenant(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	const char *args[3];
	Jsonb	   *decision;
	char	   *action;
	char	   *name;
	char	   *workspace_id;
	char	   *orphan;
	bool		reconcile;
	bool		created;
	Jsonb	   *result;

	args[0] = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	args[1] = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));

	SPI_connect();
	for (int round = 0;; round++)
	{
		decision = spi_jsonb("SELECT tenant_airbyte.provision_begin($1, $2, false)", 2, args);
		action = airbyte_string_field(decision, "action");
		if (action != NULL && strcmp(action, "done") == 0)
		{
			result = DatumGetJsonbP(return_jsonb(caller, object_field_jsonb(decision, "result")));
			SPI_finish();
			PG_RETURN_JSONB_P(result);
		}
		if (action != NULL && strcmp(action, "purge") == 0 && round < 2)
		{
			AirbyteResponse resp;
			const char *fargs[2];

			fargs[0] = args[0];
			fargs[1] = airbyte_string_field(decision, "workspace_id");
			if (!delete_workspace(fargs[1], &resp))
				airbyte_report_error(&resp, psprintf("delete expired workspace %s", fargs[1]));
			spi_value("SELECT tenant_airbyte.provision_forget($1, $2::uuid)", 2, fargs,
					  BOOLOID, &created);
			continue;
		}
		if (action == NULL || strcmp(action, "create") != 0)
			elog(ERROR, "unexpected provisioning decision: %s",
				 JsonbToCString(NULL, &decision->root, VARSIZE(decision)));
		break;
	}

	name = airbyte_string_field(decision, "workspace_name");
	reconcile = jsonb_bool_field(decision, "reconcile");
	workspace_id = obtain_workspace(name, reconcile, &created);

	args[2] = workspace_id;
	result = spi_jsonb("SELECT tenant_airbyte.provision_finish($1, $2, $3::uuid)", 3, args);
	orphan = airbyte_string_field(result, "orphan_workspace_id");
	if (orphan != NULL)
	{
		AirbyteResponse resp;

		if (created && !delete_workspace(orphan, &resp))
			ereport(WARNING,
					(errmsg("could not delete duplicate Airbyte workspace %s", orphan),
					 errdetail("%s", resp.message),
					 errhint("Delete it with tenant_airbyte.airbyte_delete_workspace('%s').", orphan)));
		result = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(result),
													CStringGetTextDatum("orphan_workspace_id")));
	}
	result = DatumGetJsonbP(return_jsonb(caller, result));
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

/* ------------------------------------------------------------------------
 * deprovision_tenant, purge_deleted_tenants
 * ------------------------------------------------------------------------ */

/*
 * cancel_running_jobs
 *		GET /jobs?workspaceIds=..&status=running (every page), then DELETE
 *		each; a job that finished meanwhile (404) needs no cancelling.
 */
static int
cancel_running_jobs(const char *workspace_id)
{
	char	   *list_path = psprintf("/jobs?workspaceIds=%s&status=running", workspace_id);
	List	   *jobs = airbyte_list_all(list_path,
										psprintf("list running jobs of workspace %s", workspace_id));
	ListCell   *lc;
	int			cancelled = 0;

	foreach(lc, jobs)
	{
		Jsonb	   *job = (Jsonb *) lfirst(lc);
		JsonbValue *id = airbyte_object_field(&job->root, "jobId");
		char	   *id_text;
		AirbyteResponse resp;

		if (id == NULL || id->type != jbvNumeric)
			continue;
		id_text = DatumGetCString(DirectFunctionCall1(numeric_out,
													  NumericGetDatum(id->val.numeric)));
		airbyte_call(HTTP_DELETE, psprintf("/jobs/%s", id_text), NULL, true, &resp);
		if (resp.outcome == AIRBYTE_OK)
			cancelled++;
		else if (resp.outcome != AIRBYTE_NOT_FOUND)
			airbyte_report_error(&resp, psprintf("cancel job %s", id_text));
	}
	return cancelled;
}

Datum
tenant_airbyte_deprovision_tenant(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	const char *args[2];
	Jsonb	   *result;
	char	   *status;

	args[0] = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	SPI_connect();
	result = spi_jsonb("SELECT tenant_airbyte.deprovision_mark($1)", 1, args);
	status = airbyte_string_field(result, "status");
	if (status != NULL && strcmp(status, "deprovisioned") == 0)
	{
		int			cancelled = cancel_running_jobs(airbyte_string_field(result, "workspace_id"));

		args[0] = JsonbToCString(NULL, &result->root, VARSIZE(result));
		args[1] = psprintf("%d", cancelled);
		result = spi_jsonb("SELECT $1::jsonb || pg_catalog.jsonb_build_object('cancelled_jobs', $2::integer)",
						   2, args);
	}
	result = DatumGetJsonbP(return_jsonb(caller, result));
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

Datum
tenant_airbyte_purge_deleted_tenants(PG_FUNCTION_ARGS)
{
	int			rc;
	uint64		n;
	List	   *tenants = NIL;
	List	   *workspaces = NIL;
	ListCell   *lt,
			   *lw;
	int			purged = 0;
	Oid			argtypes[1] = {INT4OID};
	Datum		argvalues[1];

	argvalues[0] = Int32GetDatum(tenant_airbyte_retention_days);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT tenant_id::text, airbyte_workspace_id::text"
							   "  FROM tenant_airbyte.tenant_airbyte_workspaces"
							   " WHERE status = 'deleted'"
							   "   AND deleted_at < pg_catalog.now() - pg_catalog.make_interval(days => $1)"
							   " ORDER BY deleted_at"
							   "   FOR UPDATE SKIP LOCKED",
							   1, argtypes, argvalues, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		tenants = lappend(tenants, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		workspaces = lappend(workspaces, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
	}

	forboth(lt, tenants, lw, workspaces)
	{
		AirbyteResponse resp;
		const char *args[2];
		bool		isnull;

		args[0] = lfirst(lt);
		args[1] = lfirst(lw);
		if (!delete_workspace(args[1], &resp))
		{
			ereport(WARNING,
					(errmsg("could not delete the Airbyte workspace of tenant \"%s\"; kept for the next purge",
							args[0]),
					 errdetail("Workspace %s: %s", args[1], resp.message)));
			continue;
		}
		spi_value("SELECT tenant_airbyte.provision_forget($1, $2::uuid)", 2, args,
				  BOOLOID, &isnull);
		purged++;
	}
	SPI_finish();
	PG_RETURN_INT32(purged);
}

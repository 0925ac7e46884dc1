/*-------------------------------------------------------------------------
 *
 * kind_drift_repair.c
 *	  drift_repair: one repair that reconcile(dry_run => false), or the
 *	  periodic reconciliation, decided (kind_reconcile.c).  Its params say
 *	  what: action, object (workspace, source, destination, connection),
 *	  airbyte_id, and the recorded name or status.
 *
 *	  step		request						answer leads to
 *	  start		-							adopt: drift_adopt() records the
 *											object as the tenant's row, done;
 *											recreate: find if a create may
 *											have been sent, else create;
 *											the others: send
 *	  send		PATCH /<object>s/{id}		rename_back {name}, set_status
 *				DELETE /<object>s/{id}		{status}, delete: done; 404: done
 *											(the next reconciliation sees)
 *	  find		GET /workspaces page		a live workspace named exactly
 *											the recorded name that no row
 *											maps: rebind, done; none: create
 *	  create	POST /workspaces			the workspace again, under the
 *											recorded name: rebind, done
 *
 * Exactly once: a PATCH of a name or status and a DELETE are idempotent,
 * so a lost answer needs no reconciliation; the next attempt sends them
 * again.  Re-creating a workspace is a create: its step is committed
 * before the request goes out, and an attempt that finds it looks for the
 * workspace by its recorded name first, the way provision does.  The
 * operations of one tenant run one at a time, so nothing renames the
 * workspace between a lost create and its retry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"

typedef struct RepairState
{
	int			offset;
	Jsonb	   *create_body;
} RepairState;

static RepairState *
state_of(Operation *op)
{
	if (op->state == NULL)
		op->state = MemoryContextAllocZero(op->context, sizeof(RepairState));
	return (RepairState *) op->state;
}

static bool
is_action(Operation *op, const char *action)
{
	const char *a = op_param(op, "action");

	return a != NULL && strcmp(a, action) == 0;
}

static StepResult
repaired(Operation *op, const char *status)
{
	return op_done(op, "{\"status\": %s, \"action\": %s, \"object\": %s, \"airbyte_id\": %s}",
				   op_json_string(status), op_json_string(op_param(op, "action")),
				   op_json_string(op_param(op, "object")),
				   op_json_string(op_param(op, "airbyte_id")));
}

/* The object's path: /workspaces/{id}, /sources/{id}, ... */
static char *
object_path(Operation *op)
{
	const char *object = op_param(op, "object");
	const char *id = op_param(op, "airbyte_id");

	if (object == NULL || id == NULL ||
		(strcmp(object, "workspace") != 0 && strcmp(object, "source") != 0 &&
		 strcmp(object, "destination") != 0 && strcmp(object, "connection") != 0))
		elog(ERROR, "drift_repair operation " INT64_FORMAT " names no object", op->id);
	return psprintf("/%ss/%s", object, id);
}

static StepResult
start(Operation *op, AirbyteResponse *resp)
{
	if (is_action(op, "adopt"))
	{
		Datum		values[2];
		Oid			types[2] = {TEXTOID, TEXTOID};

		values[0] = CStringGetTextDatum(op->tenant_id);
		values[1] = CStringGetTextDatum(JsonbToCString(NULL, &op->params->root, VARSIZE(op->params)));
		if (op_spi("SELECT tenant_airbyte.drift_adopt($1, $2::jsonb)",
				   2, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not adopt the object");
		return repaired(op, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	}
	if (is_action(op, "recreate"))
	{
		Datum		values[2];
		Oid			types[2] = {TEXTOID, TEXTOID};
		bool		isnull;

		/* the name, and what the tenant's template sets for its workspace */
		values[0] = CStringGetTextDatum(op->tenant_id);
		values[1] = CStringGetTextDatum(op_param(op, "name") ? op_param(op, "name") : "");
		if (op_spi("SELECT pg_catalog.jsonb_build_object('name', $2)"
				   "       OPERATOR(pg_catalog.||) tenant_airbyte.pipeline_workspace_fields($1)",
				   2, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not build the workspace's create request");
		state_of(op)->create_body =
			DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (op->intended_name == NULL)
			op_set_intended_name(op, op_param(op, "name"));
		if (strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "find") == 0)
		{
			state_of(op)->offset = 0;
			return op_goto(op, "find");
		}
		return op_goto(op, "create");
	}
	if (is_action(op, "rename_back") || is_action(op, "set_status") || is_action(op, "delete"))
		return op_goto(op, "send");
	return op_fail(op, ERRCODE_FEATURE_NOT_SUPPORTED,
				   psprintf("unknown drift repair \"%s\"", op_param(op, "action") ? op_param(op, "action") : ""),
				   NULL, NULL);
}

static HttpRequest *
build_send(Operation *op)
{
	if (is_action(op, "delete"))
		return airbyte_prepare(HTTP_DELETE, object_path(op), NULL);
	if (is_action(op, "set_status"))
		return airbyte_prepare(HTTP_PATCH, object_path(op),
							   airbyte_json_object(1, "status", op_param(op, "status")));
	return airbyte_prepare(HTTP_PATCH, object_path(op),
						   airbyte_json_object(1, "name", op_param(op, "name")));
}

static StepResult
sent(Operation *op, AirbyteResponse *resp)
{
	if (resp->outcome == AIRBYTE_NOT_FOUND)
		return repaired(op, "gone");
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, psprintf("%s %s %s", op_param(op, "action"),
											op_param(op, "object"), op_param(op, "airbyte_id")));
	return repaired(op, "repaired");
}

/* The row moves to the workspace created (or found) again. */
static StepResult
rebind(Operation *op, const char *workspace_id)
{
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(op_param(op, "airbyte_id"));
	values[2] = CStringGetTextDatum(workspace_id);
	if (op_spi("SELECT tenant_airbyte.drift_rebind_workspace($1, $2::uuid, $3::uuid)",
			   3, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not record the workspace created again");
	return op_done(op, "{\"status\": \"recreated\", \"action\": \"recreate\", \"object\": \"workspace\","
				   " \"airbyte_id\": %s, \"workspace_id\": %s}",
				   op_json_string(op_param(op, "airbyte_id")), op_json_string(workspace_id));
}

static HttpRequest *
build_find(Operation *op)
{
	return airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, state_of(op)->offset, false);
}

static StepResult
found(Operation *op, AirbyteResponse *resp)
{
	ListCell   *lc;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list workspaces to find one created again");
	foreach(lc, airbyte_page_named(resp->body, op->intended_name, "workspaceId",
								   NULL, NULL))
	{
		AirbyteNamedObject *named = (AirbyteNamedObject *) lfirst(lc);
		Datum		values[1];
		Oid			types[1] = {TEXTOID};

		values[0] = CStringGetTextDatum(named->id);
		if (op_spi("SELECT FROM tenant_airbyte.tenant_airbyte_workspaces AS w"
				   " WHERE w.airbyte_workspace_id OPERATOR(pg_catalog.=) $1::uuid",
				   1, types, values, NULL, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up a workspace");
		if (SPI_processed == 0)
			return rebind(op, named->id);
	}
	if (airbyte_page_length(resp->body) >= AIRBYTE_PAGE_LIMIT)
	{
		state_of(op)->offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	return op_goto(op, "create");
}

static HttpRequest *
build_create(Operation *op)
{
	return kind_workspace_create_request(state_of(op)->create_body);
}

/* rebound, done; an unknown outcome retries, finding first (kinds.c) */
static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	return kind_workspace_created(op, resp, true, rebind);
}

static const OperationStep drift_repair_steps[] = {
	{"start", NULL, start, 0},
	{"send", build_send, sent, 0},
	{"find", build_find, found, 0},
	{"create", build_create, created, STEP_CREATES},
};

const OperationKind drift_repair_kind = {
	"drift_repair", drift_repair_steps, lengthof_steps(drift_repair_steps), NULL
};

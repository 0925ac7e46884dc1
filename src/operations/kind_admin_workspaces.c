/*-------------------------------------------------------------------------
 *
 * kind_admin_workspaces.c
 *	  The workspace administration kinds behind the superuser wrappers of
 *	  airbyte_sql.c.  Every one runs under ADMIN_TENANT (admin.h) and
 *	  leaves what Airbyte answered in admin_results, never in the outcome.
 *
 * admin_create_workspace (subject: the name; params name, organization_id)
 *	  step		request					answer leads to
 *	  decide	-						a create may have been sent before:
 *										reconcile; else create
 *	  create	POST /workspaces		the workspace stored, done; unknown
 *										outcome: retry (reconciles)
 *	  reconcile	GET /workspaces page	a workspace named exactly the name
 *										that no tenant row maps and no other
 *										admin create answered: fetch; none
 *										on any page: create
 *	  fetch		GET /workspaces/{id}	stored, done
 *
 * admin_get_workspace (params workspace_id)
 *	  get		GET /workspaces/{id}	stored, done; 404: failed (TA003)
 *
 * admin_list_workspaces (params include_deleted)
 *	  list		GET /workspaces page	each page stored as it comes, the
 *										next one sent until a short page;
 *										done with the count
 *
 * admin_rename_workspace (subject: the workspace id; params name)
 *	  rename	PATCH /workspaces/{id}	stored, done (sending it twice is
 *										harmless)
 *
 * admin_delete_workspace (subject: the workspace id)
 *	  delete	DELETE /workspaces/{id}	done, deleted true; 404: deleted false
 *
 * The reads and the idempotent writes need no reconciliation: an attempt
 * that a crash interrupted is simply sent again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "admin.h"
#include "kinds.h"

typedef struct AdminWorkspaceState
{
	int			page_offset;
	char	   *adopt_id;
} AdminWorkspaceState;

static AdminWorkspaceState *
state_of(Operation *op)
{
	if (op->state == NULL)
		op->state = MemoryContextAllocZero(op->context, sizeof(AdminWorkspaceState));
	return (AdminWorkspaceState *) op->state;
}

/* Stores a single answer's body and ends the operation. */
static StepResult
store_one(Operation *op, AirbyteResponse *resp, const char *action)
{
	char	   *id;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, action);
	id = airbyte_workspace_id(resp->body);
	if (id == NULL)
	{
		resp->outcome = AIRBYTE_BAD_RESPONSE;
		resp->message = "the answer has no workspaceId";
		return op_failed(op, resp, action);
	}
	admin_results_store(op, 0, resp->body, false);
	return op_done(op, "{\"workspace_id\": %s}", op_json_string(id));
}

/* ---- admin_create_workspace ---- */

static StepResult
create_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	if (op->intended_name == NULL)
		op_set_intended_name(op, op_param(op, "name"));
	if (strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "reconcile") == 0)
		return op_goto(op, "reconcile");
	return op_goto(op, "create");
}

static HttpRequest *
build_create(Operation *op)
{
	return airbyte_prepare_create_workspace(op->intended_name, op_param(op, "organization_id"));
}

static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	char	   *action = psprintf("create workspace \"%s\"", op->intended_name);

	/* an answer we cannot read may hide a created workspace: reconcile */
	if (resp->outcome == AIRBYTE_BAD_RESPONSE ||
		(resp->outcome == AIRBYTE_OK && airbyte_workspace_id(resp->body) == NULL))
		return op_retry(op, psprintf("%s: %s", action,
									 resp->message ? resp->message : "no workspaceId in the answer"));
	return store_one(op, resp, action);
}

static HttpRequest *
build_list_for_reconcile(Operation *op)
{
	return airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, state_of(op)->page_offset, false);
}

/* Whether a workspace is already someone's: recorded, or another create's. */
#define WORKSPACE_TAKEN_SQL \
	"SELECT FROM tenant_airbyte.tenant_airbyte_workspaces AS w" \
	" WHERE w.airbyte_workspace_id OPERATOR(pg_catalog.=) $1::uuid" \
	" UNION ALL" \
	" SELECT FROM tenant_airbyte.operations AS o" \
	" WHERE o.kind OPERATOR(pg_catalog.=) 'admin_create_workspace'" \
	"   AND o.status OPERATOR(pg_catalog.=) 'done'" \
	"   AND o.id OPERATOR(pg_catalog.<>) $2" \
	"   AND (o.outcome OPERATOR(pg_catalog.->>) 'workspace_id'::text) OPERATOR(pg_catalog.=) $1"

static StepResult
reconciled(Operation *op, AirbyteResponse *resp)
{
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list workspaces to reconcile");
	switch (admin_adopt_from_page(op, resp->body, "workspaceId", WORKSPACE_TAKEN_SQL,
								  &state_of(op)->adopt_id, &state_of(op)->page_offset))
	{
		case ADMIN_ADOPT_FOUND:
			return op_goto(op, "fetch");
		case ADMIN_ADOPT_NEXT_PAGE:
			return op_send(op);
		case ADMIN_ADOPT_NONE:
			break;
	}
	return op_goto(op, "create");
}

static HttpRequest *
build_fetch(Operation *op)
{
	return airbyte_prepare_get_workspace(state_of(op)->adopt_id);
}

static StepResult
fetched(Operation *op, AirbyteResponse *resp)
{
	return store_one(op, resp, psprintf("get workspace %s", state_of(op)->adopt_id));
}

static const OperationStep admin_create_workspace_steps[] = {
	{"decide", NULL, create_decide, 0},
	{"create", build_create, created, STEP_CREATES},
	{"reconcile", build_list_for_reconcile, reconciled, 0},
	{"fetch", build_fetch, fetched, 0},
};

const OperationKind admin_create_workspace_kind = {
	"admin_create_workspace", admin_create_workspace_steps,
	lengthof_steps(admin_create_workspace_steps), admin_results_tidy
};

/* ---- admin_get_workspace ---- */

static HttpRequest *
build_get(Operation *op)
{
	return airbyte_prepare_get_workspace(op_param(op, "workspace_id"));
}

static StepResult
got(Operation *op, AirbyteResponse *resp)
{
	return store_one(op, resp, psprintf("get workspace %s", op_param(op, "workspace_id")));
}

static StepResult
get_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	return op_goto(op, "get");
}

static const OperationStep admin_get_workspace_steps[] = {
	{"decide", NULL, get_decide, 0},
	{"get", build_get, got, 0},
};

const OperationKind admin_get_workspace_kind = {
	"admin_get_workspace", admin_get_workspace_steps, lengthof_steps(admin_get_workspace_steps)
};

/* ---- admin_list_workspaces ---- */

static StepResult
list_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	state_of(op)->page_offset = 0;
	return op_goto(op, "list");
}

static HttpRequest *
build_list(Operation *op)
{
	const char *deleted = op_param(op, "include_deleted");

	return airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, state_of(op)->page_offset,
										   deleted != NULL && strcmp(deleted, "true") == 0);
}

static StepResult
listed(Operation *op, AirbyteResponse *resp)
{
	AdminWorkspaceState *state = state_of(op);
	int			page_length;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list workspaces");
	page_length = admin_results_store_page(op, state->page_offset, resp->body, false);
	if (page_length < 0)
	{
		resp->outcome = AIRBYTE_BAD_RESPONSE;
		resp->message = "the answer has no data array";
		return op_failed(op, resp, "list workspaces");
	}
	if (airbyte_page_may_continue(page_length))
	{
		state->page_offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	return op_done(op, "{\"listed\": %d}", state->page_offset + page_length);
}

static const OperationStep admin_list_workspaces_steps[] = {
	{"decide", NULL, list_decide, 0},
	{"list", build_list, listed, 0},
};

const OperationKind admin_list_workspaces_kind = {
	"admin_list_workspaces", admin_list_workspaces_steps,
	lengthof_steps(admin_list_workspaces_steps)
};

/* ---- admin_rename_workspace ---- */

static StepResult
rename_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	return op_goto(op, "rename");
}

static HttpRequest *
build_rename(Operation *op)
{
	return airbyte_prepare_rename_workspace(op_param(op, "workspace_id"), op_param(op, "name"));
}

static StepResult
renamed(Operation *op, AirbyteResponse *resp)
{
	return store_one(op, resp, psprintf("rename workspace %s", op_param(op, "workspace_id")));
}

static const OperationStep admin_rename_workspace_steps[] = {
	{"decide", NULL, rename_decide, 0},
	{"rename", build_rename, renamed, 0},
};

const OperationKind admin_rename_workspace_kind = {
	"admin_rename_workspace", admin_rename_workspace_steps,
	lengthof_steps(admin_rename_workspace_steps)
};

/* ---- admin_delete_workspace ---- */

static HttpRequest *
build_delete(Operation *op)
{
	return airbyte_prepare_delete_workspace(op_param(op, "workspace_id"));
}

static StepResult
deleted(Operation *op, AirbyteResponse *resp)
{
	if (resp->outcome == AIRBYTE_NOT_FOUND)
		return op_done(op, "{\"deleted\": false}");
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, psprintf("delete workspace %s", op_param(op, "workspace_id")));
	return op_done(op, "{\"deleted\": true}");
}

static StepResult
delete_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	return op_goto(op, "delete");
}

static const OperationStep admin_delete_workspace_steps[] = {
	{"decide", NULL, delete_decide, 0},
	{"delete", build_delete, deleted, 0},
};

const OperationKind admin_delete_workspace_kind = {
	"admin_delete_workspace", admin_delete_workspace_steps,
	lengthof_steps(admin_delete_workspace_steps)
};

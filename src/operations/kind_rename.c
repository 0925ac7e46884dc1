/*-------------------------------------------------------------------------
 *
 * kind_rename.c
 *	  rename: the tenant's workspace follows its new name (tenant.updated).
 *
 *	  step		request					answer leads to
 *	  decide	-						no active workspace, or no name:
 *										nothing to do; same name: done
 *										(unchanged); else rename
 *	  rename	PATCH /workspaces/{id}	row renamed, done (renamed)
 *
 * The new name follows the same rule as provisioning, unique across
 * tenants (kinds.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "kinds.h"

typedef struct RenameState
{
	char	   *workspace_id;
	char	   *new_name;
} RenameState;

static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	TenantWorkspace ws;
	const char *tenant_name = op_param(op, "tenant_name");
	RenameState *state;
	char	   *new_name;

	if (!kind_tenant_workspace(op->tenant_id, &ws) || strcmp(ws.status, "active") != 0)
		return op_nothing_to_do(op, "{\"status\": \"not_found\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));
	if (tenant_name == NULL || tenant_name[0] == '\0')
		return op_nothing_to_do(op, "{\"status\": \"unchanged\", \"reason\": \"no tenant name was given\"}");

	new_name = kind_unique_workspace_name(op->tenant_id, tenant_name);
	if (strcmp(new_name, ws.workspace_name) == 0)
		return op_done(op, "{\"status\": \"unchanged\", \"workspace_id\": %s, \"workspace_name\": %s}",
					   op_json_string(ws.workspace_id), op_json_string(new_name));

	op_set_intended_name(op, new_name);
	state = MemoryContextAllocZero(op->context, sizeof(RenameState));
	state->workspace_id = ws.workspace_id;
	state->new_name = new_name;
	op->state = state;
	return op_goto(op, "rename");
}

static HttpRequest *
build_rename(Operation *op)
{
	RenameState *state = (RenameState *) op->state;

	return airbyte_prepare_rename_workspace(state->workspace_id, state->new_name);
}

static StepResult
renamed(Operation *op, AirbyteResponse *resp)
{
	RenameState *state = (RenameState *) op->state;
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "rename workspace");

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->workspace_id);
	values[2] = CStringGetTextDatum(state->new_name);
	if (op_spi("UPDATE tenant_airbyte.tenant_airbyte_workspaces"
			   "   SET airbyte_workspace_name = $3"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_workspace_id OPERATOR(pg_catalog.=) $2::uuid",
			   3, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the workspace's new name");

	return op_done(op, "{\"status\": \"renamed\", \"tenant_id\": %s, \"workspace_id\": %s, \"workspace_name\": %s}",
				   op_json_string(op->tenant_id), op_json_string(state->workspace_id),
				   op_json_string(state->new_name));
}

static const OperationStep rename_steps[] = {
	{"decide", NULL, decide, 0},
	{"rename", build_rename, renamed, 0},
};

const OperationKind rename_kind = {
	"rename", rename_steps, lengthof_steps(rename_steps)
};

/*-------------------------------------------------------------------------
 *
 * kind_purge.c
 *	  purge: delete the Airbyte workspace of a tenant soft-deleted more
 *	  than retention_days ago, then its row (purge_deleted_tenants()).
 *
 *	  step		request					answer leads to
 *	  decide	-						not (or no longer) expired: nothing
 *										to do; else delete
 *	  delete	DELETE /workspaces/{id}	row deleted (its sources go with
 *										it), done (purged); 404 counts as
 *										deleted
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "kinds.h"

static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	TenantWorkspace ws;

	if (!kind_tenant_workspace(op->tenant_id, &ws) || !ws.expired)
		return op_nothing_to_do(op, "{\"status\": \"not_expired\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));
	op->state = MemoryContextStrdup(op->context, ws.workspace_id);
	return op_goto(op, "delete");
}

static HttpRequest *
build_delete(Operation *op)
{
	return airbyte_prepare_delete_workspace((const char *) op->state);
}

static StepResult
deleted(Operation *op, AirbyteResponse *resp)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
		return op_failed(op, resp, psprintf("delete workspace %s", (const char *) op->state));

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum((const char *) op->state);
	if (op_spi("DELETE FROM tenant_airbyte.tenant_airbyte_workspaces"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_workspace_id OPERATOR(pg_catalog.=) $2::uuid"
			   "   AND status OPERATOR(pg_catalog.=) 'deleted'",
			   2, types, values, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the purged tenant's row");
	return op_done(op, "{\"status\": \"purged\", \"tenant_id\": %s, \"workspace_id\": %s}",
				   op_json_string(op->tenant_id), op_json_string((const char *) op->state));
}

static const OperationStep purge_steps[] = {
	{"decide", NULL, decide, 0},
	{"delete", build_delete, deleted, 0},
};

const OperationKind purge_kind = {
	"purge", purge_steps, lengthof_steps(purge_steps)
};

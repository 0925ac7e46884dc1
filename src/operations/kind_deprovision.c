/*-------------------------------------------------------------------------
 *
 * kind_deprovision.c
 *	  deprovision: soft-delete a tenant (tenant.deleted,
 *	  deprovision_tenant()).  The workspace itself stays until
 *	  retention_days have passed (kind_purge.c).
 *
 *	  step		request						answer leads to
 *	  decide	-							no row: done (not_found); else
 *											list_jobs
 *	  list_jobs	GET /jobs?status=running	next page, or cancel
 *	  cancel	DELETE /jobs/{id}			next job (404: it ended by
 *											itself), then mark
 *	  mark		-							row deleted (deleted_at kept if
 *											set), done (deprovisioned)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "kinds.h"

typedef struct DeprovisionState
{
	char	   *workspace_id;
	int			page_offset;
	List	   *job_ids;		/* decimal job ids still to cancel */
	int			cancelled;
} DeprovisionState;

static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	TenantWorkspace ws;
	DeprovisionState *state;

	if (!kind_tenant_workspace(op->tenant_id, &ws))
		return op_done(op, "{\"status\": \"not_found\", \"tenant_id\": %s}",
					   op_json_string(op->tenant_id));
	state = MemoryContextAllocZero(op->context, sizeof(DeprovisionState));
	state->workspace_id = ws.workspace_id;
	op->state = state;
	return op_goto(op, "list_jobs");
}

static HttpRequest *
build_list_jobs(Operation *op)
{
	DeprovisionState *state = (DeprovisionState *) op->state;

	return airbyte_prepare_list_jobs(state->workspace_id, "running",
									 AIRBYTE_PAGE_LIMIT, state->page_offset);
}

static StepResult
jobs_listed(Operation *op, AirbyteResponse *resp)
{
	DeprovisionState *state = (DeprovisionState *) op->state;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list running jobs");
	state->job_ids = list_concat(state->job_ids, airbyte_page_job_ids(resp->body));
	if (airbyte_page_length(resp->body) >= AIRBYTE_PAGE_LIMIT)
	{
		state->page_offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	return op_goto(op, state->job_ids != NIL ? "cancel" : "mark");
}

static HttpRequest *
build_cancel(Operation *op)
{
	DeprovisionState *state = (DeprovisionState *) op->state;

	return airbyte_prepare_cancel_job(pg_strtoint64((char *) linitial(state->job_ids)));
}

static StepResult
cancelled(Operation *op, AirbyteResponse *resp)
{
	DeprovisionState *state = (DeprovisionState *) op->state;

	if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
		return op_failed(op, resp, "cancel job");
	if (resp->outcome == AIRBYTE_OK)
		state->cancelled++;
	state->job_ids = list_delete_first(state->job_ids);
	return state->job_ids != NIL ? op_send(op) : op_goto(op, "mark");
}

static StepResult
mark(Operation *op, AirbyteResponse *resp)
{
	DeprovisionState *state = (DeprovisionState *) op->state;
	Datum		values[1];
	Oid			types[1] = {TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	if (op_spi("UPDATE tenant_airbyte.tenant_airbyte_workspaces AS w"
			   "   SET status = 'deleted', deleted_at = COALESCE(w.deleted_at, pg_catalog.now())"
			   " WHERE w.tenant_id OPERATOR(pg_catalog.=) $1",
			   1, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark the tenant deleted");

	return op_done(op, "{\"status\": \"deprovisioned\", \"action\": \"soft_deleted\", \"retention_days\": %d, "
				   "\"tenant_id\": %s, \"workspace_id\": %s, \"cancelled_jobs\": %d}",
				   tenant_airbyte_retention_days, op_json_string(op->tenant_id),
				   op_json_string(state->workspace_id), state->cancelled);
}

static const OperationStep deprovision_steps[] = {
	{"decide", NULL, decide, 0},
	{"list_jobs", build_list_jobs, jobs_listed, 0},
	{"cancel", build_cancel, cancelled, 0},
	{"mark", NULL, mark, 0},
};

const OperationKind deprovision_kind = {
	"deprovision", deprovision_steps, lengthof_steps(deprovision_steps)
};

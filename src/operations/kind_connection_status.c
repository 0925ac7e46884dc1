/*-------------------------------------------------------------------------
 *
 * kind_connection_status.c
 *	  pause_connections and resume_connections: every connection of a
 *	  tenant becomes inactive (tenant.deleted, deprovision_tenant()) or
 *	  active again (the tenant restored within retention_days), in Airbyte
 *	  and in tenant_connections.  Nothing is deleted.
 *
 *	  step		request						answer leads to
 *	  next		-							the tenant's next connection not
 *											yet in the wanted status: patch;
 *											none left: done
 *	  patch		PATCH /connections/{id}		row updated, next; 404 (Airbyte
 *				{status}					no longer has it): row updated,
 *											next
 *
 * Recorded by a trigger on tenant_airbyte_workspaces when a workspace's
 * status goes from active to deleted or back (section 7 of the install
 * script), in the transaction that changes it.  A PATCH of a status is
 * idempotent, so a lost answer needs no reconciliation: the next attempt
 * sends it again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "kinds.h"

typedef struct StatusState
{
	const char *wanted;			/* active or inactive */
	char	   *connection_id;	/* the one being patched */
} StatusState;

static StepResult
next_connection(Operation *op, const char *wanted)
{
	StatusState *state = (StatusState *) op->state;
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	if (state == NULL)
	{
		state = MemoryContextAllocZero(op->context, sizeof(StatusState));
		state->wanted = wanted;
		op->state = state;
	}
	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->wanted);
	if (op_spi("SELECT c.airbyte_connection_id::text FROM tenant_airbyte.tenant_connections AS c"
			   " WHERE c.tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND c.status OPERATOR(pg_catalog.<>) $2"
			   " ORDER BY c.created_at, c.airbyte_connection_id LIMIT 1",
			   2, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the tenant's connections");
	if (SPI_processed == 0)
		return op_done(op, "{\"status\": \"%s\", \"tenant_id\": %s}",
					   strcmp(state->wanted, "active") == 0 ? "resumed" : "paused",
					   op_json_string(op->tenant_id));
	state->connection_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return op_goto(op, "patch");
}

static StepResult
next_to_pause(Operation *op, AirbyteResponse *resp)
{
	return next_connection(op, "inactive");
}

static StepResult
next_to_resume(Operation *op, AirbyteResponse *resp)
{
	return next_connection(op, "active");
}

static HttpRequest *
build_patch(Operation *op)
{
	StatusState *state = (StatusState *) op->state;

	return airbyte_prepare(HTTP_PATCH, psprintf("/connections/%s", state->connection_id),
						   airbyte_json_object(1, "status", state->wanted));
}

static StepResult
patched(Operation *op, AirbyteResponse *resp)
{
	StatusState *state = (StatusState *) op->state;
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
		return op_failed(op, resp, strcmp(state->wanted, "active") == 0
						 ? "resume a connection" : "pause a connection");
	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->connection_id);
	values[2] = CStringGetTextDatum(state->wanted);
	if (op_spi("UPDATE tenant_airbyte.tenant_connections SET status = $3"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_connection_id OPERATOR(pg_catalog.=) $2::uuid",
			   3, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the connection's status");
	return op_goto(op, "next");
}

static const OperationStep pause_steps[] = {
	{"next", NULL, next_to_pause, 0},
	{"patch", build_patch, patched, 0},
};

static const OperationStep resume_steps[] = {
	{"next", NULL, next_to_resume, 0},
	{"patch", build_patch, patched, 0},
};

const OperationKind pause_connections_kind = {
	"pause_connections", pause_steps, lengthof_steps(pause_steps)
};

const OperationKind resume_connections_kind = {
	"resume_connections", resume_steps, lengthof_steps(resume_steps)
};

/*-------------------------------------------------------------------------
 *
 * kind_syncs.c
 *	  trigger_sync and cancel_sync: start a sync of each of a tenant's
 *	  active connections (or of one source's), or cancel one of its jobs,
 *	  and record what Airbyte answers in tenant_syncs.
 *
 *	  trigger_sync
 *	  step		request						answer leads to
 *	  next		-							the next connection to start: start;
 *											none left: done (the job ids)
 *	  start		POST /jobs {connectionId,	job recorded, next; 409 (a job of
 *				jobType: sync}				the connection is already running):
 *											next, nothing started
 *
 *	  cancel_sync
 *	  cancel	DELETE /jobs/{jobId}		the job's status recorded, done
 *
 * Both are called by trigger_sync() and cancel_sync() (section 7 of the
 * install script), which check the caller's tenant first and wait for the
 * outcome.  A POST /jobs whose answer was lost is safe to send again:
 * Airbyte refuses a second job while one runs (409), which is what the
 * retry then sees.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"

typedef struct SyncState
{
	List	   *connections;	/* char *, still to start */
	char	   *current;
	StringInfoData job_ids;		/* JSON array elements so far */
} SyncState;

static StepResult
next_connection(Operation *op, AirbyteResponse *resp)
{
	SyncState  *state = (SyncState *) op->state;

	if (state == NULL)
	{
		const char *source_id = op_param(op, "source_id");
		Datum		values[2];
		char		nulls[2] = {' ', ' '};
		Oid			types[2] = {TEXTOID, TEXTOID};

		state = MemoryContextAllocZero(op->context, sizeof(SyncState));
		initStringInfo(&state->job_ids);
		op->state = state;
		values[0] = CStringGetTextDatum(op->tenant_id);
		values[1] = source_id ? CStringGetTextDatum(source_id) : (Datum) 0;
		if (source_id == NULL)
			nulls[1] = 'n';
		if (op_spi("SELECT c.airbyte_connection_id::text FROM tenant_airbyte.tenant_connections AS c"
				   " WHERE c.tenant_id OPERATOR(pg_catalog.=) $1"
				   "   AND c.status OPERATOR(pg_catalog.=) 'active'"
				   "   AND ($2::uuid IS NULL OR c.airbyte_source_id OPERATOR(pg_catalog.=) $2::uuid)"
				   " ORDER BY c.created_at, c.airbyte_connection_id",
				   2, types, values, nulls, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the tenant's connections");
		for (uint64 i = 0; i < SPI_processed; i++)
			state->connections = lappend(state->connections,
										 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	if (state->connections == NIL)
		return op_done(op, "{\"status\": \"started\", \"tenant_id\": %s, \"job_ids\": [%s]}",
					   op_json_string(op->tenant_id), state->job_ids.data);
	state->current = linitial(state->connections);
	state->connections = list_delete_first(state->connections);
	return op_goto(op, "start");
}

static HttpRequest *
build_start(Operation *op)
{
	SyncState  *state = (SyncState *) op->state;

	return airbyte_prepare(HTTP_POST, "/jobs",
						   airbyte_json_object(2, "connectionId", state->current, "jobType", "sync"));
}

/* The job id of a JobResponse, as decimal text, or NULL. */
static char *
job_id_of(Jsonb *body)
{
	JsonbValue *id = body ? airbyte_object_field(&body->root, "jobId") : NULL;

	if (id == NULL || id->type != jbvNumeric)
		return NULL;
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(id->val.numeric)));
}

static StepResult
started(Operation *op, AirbyteResponse *resp)
{
	SyncState  *state = (SyncState *) op->state;
	char	   *job_id;
	char	   *status;
	Datum		values[4];
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK && resp->http_status == 409)
		return op_goto(op, "next");
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "start a sync");
	job_id = job_id_of(resp->body);
	if (job_id == NULL)
		return op_failed(op, resp, "start a sync");
	status = airbyte_string_field(resp->body, "status");

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->current);
	values[2] = CStringGetTextDatum(job_id);
	values[3] = CStringGetTextDatum(status ? status : "pending");
	if (op_spi("INSERT INTO tenant_airbyte.tenant_syncs AS s"
			   "  (tenant_id, airbyte_connection_id, airbyte_job_id, job_type, status)"
			   " VALUES ($1, $2::uuid, $3::bigint, 'sync', $4)"
			   " ON CONFLICT DO NOTHING",
			   4, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the sync");
	appendStringInfo(&state->job_ids, "%s%s", state->job_ids.len > 0 ? ", " : "", job_id);
	return op_goto(op, "next");
}

static HttpRequest *
build_cancel(Operation *op)
{
	return airbyte_prepare(HTTP_DELETE, psprintf("/jobs/%s", op_param(op, "job_id")), NULL);
}

static StepResult
cancelled(Operation *op, AirbyteResponse *resp)
{
	char	   *status;
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "cancel a sync");
	status = airbyte_string_field(resp->body, "status");
	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(op_param(op, "job_id"));
	values[2] = CStringGetTextDatum(status ? status : "cancelled");
	if (op_spi("UPDATE tenant_airbyte.tenant_syncs SET status = $3"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_job_id OPERATOR(pg_catalog.=) $2::bigint",
			   3, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the cancelled sync");
	return op_done(op, "{\"status\": %s, \"tenant_id\": %s, \"job_id\": %s}",
				   op_json_string(status ? status : "cancelled"), op_json_string(op->tenant_id),
				   op_param(op, "job_id"));
}

static const OperationStep trigger_sync_steps[] = {
	{"next", NULL, next_connection, 0},
	{"start", build_start, started, 0},
};

static const OperationStep cancel_sync_steps[] = {
	{"cancel", build_cancel, cancelled, 0},
};

const OperationKind trigger_sync_kind = {
	"trigger_sync", trigger_sync_steps, lengthof_steps(trigger_sync_steps)
};

const OperationKind cancel_sync_kind = {
	"cancel_sync", cancel_sync_steps, lengthof_steps(cancel_sync_steps)
};

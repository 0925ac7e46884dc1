/*-------------------------------------------------------------------------
 *
 * kind_create_connection.c
 *	  create_connection: a tenant source's connection to the tenant's
 *	  destination, from its pipeline template, exactly once; with the
 *	  template's sync_on_create, its first sync.
 *
 *	  step		request						answer leads to
 *	  decide	-							source or destination missing, or
 *											no template: nothing to do;
 *											recorded already: done; a create
 *											may have been sent: find; else
 *											create
 *	  find		GET /connections			the intended name on this page:
 *				?workspaceIds=&offset=		record it; a short page: create;
 *											else the next page
 *	  create	POST /connections			record it; then sync or done
 *	  find_job	GET /jobs?connectionId=		a job of the connection: record
 *				&jobType=sync				it, done (adopted); none: sync
 *	  sync		POST /jobs {sync}			record the job, done; 409 (a job
 *											already runs: Airbyte or a lost
 *											answer started it): done, the
 *											poll records that job
 *
 * Recorded by a trigger on tenant_sources (section 7 of the install
 * script) when a source of a tenant with a template is recorded; the
 * worker claims it after the operation that recorded the source.  The
 * subject is the source id, so connections of several sources of one
 * tenant are told apart.  The name (pipeline_connection_name()) is unique
 * in the workspace, which is what lets "find" adopt a connection whose
 * create answer was lost.
 *
 * The first sync is started exactly once.  The connection row and the
 * step "sync" are committed together, before POST /jobs is sent; so an
 * attempt that finds the connection recorded and "sync" (or "find_job")
 * as the last step knows the first sync was asked for and maybe not
 * heard: it lists the connection's sync jobs and adopts one it finds
 * (Airbyte started it and only the answer was lost), and starts the sync
 * only when there is none.  A connection adopted by "find" never had its
 * sync asked for ("sync" was never committed), so it goes on to "sync".
 * A job Airbyte started on its own schedule in between counts as the
 * first sync too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"

typedef struct ConnectionState
{
	char	   *workspace_id;
	char	   *source_id;
	char	   *destination_id;
	char	   *connection_id;	/* once created or adopted */
	Jsonb	   *body;
	bool		sync_on_create;
	int			offset;
} ConnectionState;

/* The schedule as tenant_connections keeps it: manual, or the cron expression. */
static char *
schedule_text(Jsonb *body)
{
	JsonbValue *schedule = airbyte_object_field(&body->root, "schedule");
	JsonbValue *cron;

	if (schedule == NULL || schedule->type != jbvBinary)
		return "manual";
	cron = airbyte_object_field(schedule->val.binary.data, "cronExpression");
	if (cron == NULL || cron->type != jbvString)
		return "manual";
	return pnstrdup(cron->val.string.val, cron->val.string.len);
}

/* Records the connection; then the first sync, or the end. */
static StepResult
record(Operation *op, const char *connection_id)
{
	ConnectionState *state = (ConnectionState *) op->state;
	Datum		values[7];
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->workspace_id);
	values[2] = CStringGetTextDatum(state->source_id);
	values[3] = CStringGetTextDatum(state->destination_id);
	values[4] = CStringGetTextDatum(connection_id);
	values[5] = CStringGetTextDatum(op->intended_name);
	values[6] = CStringGetTextDatum(schedule_text(state->body));
	if (op_spi("INSERT INTO tenant_airbyte.tenant_connections AS c"
			   "  (tenant_id, airbyte_workspace_id, airbyte_source_id, airbyte_destination_id,"
			   "   airbyte_connection_id, name, schedule)"
			   " VALUES ($1, $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6, $7)"
			   " ON CONFLICT DO NOTHING",
			   7, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the source's connection");
	state->connection_id = MemoryContextStrdup(op->context, connection_id);
	if (state->sync_on_create)
		return op_goto(op, "sync");
	return op_done(op, "{\"status\": \"created\", \"tenant_id\": %s, \"connection_id\": %s, \"name\": %s}",
				   op_json_string(op->tenant_id), op_json_string(connection_id),
				   op_json_string(op->intended_name));
}

static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	ConnectionState *state;
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;
	Datum		body;

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(op_param(op, "source_id") ? op_param(op, "source_id") : "");
	if (op_spi("SELECT c.airbyte_connection_id::text FROM tenant_airbyte.tenant_connections AS c"
			   " WHERE c.tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND c.airbyte_source_id::text OPERATOR(pg_catalog.=) $2",
			   2, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the source's connection");
	if (SPI_processed > 0)
	{
		char	   *connection_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		/* recorded by an earlier attempt whose first sync may be lost */
		if (op->last_step != NULL &&
			(strcmp(op->last_step, "sync") == 0 || strcmp(op->last_step, "find_job") == 0))
		{
			state = MemoryContextAllocZero(op->context, sizeof(ConnectionState));
			state->connection_id = MemoryContextStrdup(op->context, connection_id);
			state->sync_on_create = true;
			op->state = state;
			return op_goto(op, "find_job");
		}
		return op_done(op, "{\"status\": \"already_exists\", \"tenant_id\": %s, \"connection_id\": %s}",
					   op_json_string(op->tenant_id), op_json_string(connection_id));
	}

	/* The source, the tenant's destination, the rendered request. */
	if (op_spi("SELECT s.airbyte_workspace_id::text, s.airbyte_source_id::text, d.airbyte_destination_id::text,"
			   "       tenant_airbyte.pipeline_connection_request($1, s.airbyte_source_id, s.name::text,"
			   "                                                  d.airbyte_destination_id),"
			   "       tenant_airbyte.pipeline_sync_on_create($1)"
			   "  FROM tenant_airbyte.tenant_sources AS s"
			   "  JOIN tenant_airbyte.tenant_destinations AS d"
			   "    ON d.tenant_id OPERATOR(pg_catalog.=) s.tenant_id"
			   "   AND d.airbyte_workspace_id OPERATOR(pg_catalog.=) s.airbyte_workspace_id"
			   "  JOIN tenant_airbyte.tenant_airbyte_workspaces AS w"
			   "    ON w.airbyte_workspace_id OPERATOR(pg_catalog.=) s.airbyte_workspace_id"
			   "   AND w.status OPERATOR(pg_catalog.=) 'active'"
			   " WHERE s.tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND s.airbyte_source_id::text OPERATOR(pg_catalog.=) $2",
			   2, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the source and the tenant's destination");
	if (SPI_processed == 0)
		return op_nothing_to_do(op, "{\"status\": \"not_found\", \"tenant_id\": %s,"
								" \"reason\": \"no active source with a destination\"}",
								op_json_string(op->tenant_id));
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	body = SPI_getbinval(tuple, desc, 4, &isnull);
	if (isnull)
		return op_nothing_to_do(op, "{\"status\": \"no_template\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));

	state = MemoryContextAllocZero(op->context, sizeof(ConnectionState));
	state->workspace_id = SPI_getvalue(tuple, desc, 1);
	state->source_id = SPI_getvalue(tuple, desc, 2);
	state->destination_id = SPI_getvalue(tuple, desc, 3);
	state->body = DatumGetJsonbPCopy(body);
	state->sync_on_create = strcmp(SPI_getvalue(tuple, desc, 5), "t") == 0;
	op->state = state;
	op_set_intended_name(op, airbyte_string_field(state->body, "name"));

	if (op->last_step != NULL &&
		(strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "find") == 0 ||
		 strcmp(op->last_step, "sync") == 0))
		return op_goto(op, "find");
	return op_goto(op, "create");
}

static HttpRequest *
build_find(Operation *op)
{
	ConnectionState *state = (ConnectionState *) op->state;

	return airbyte_prepare(HTTP_GET,
						   psprintf("/connections?workspaceIds=%s&limit=%d&offset=%d",
									state->workspace_id, AIRBYTE_PAGE_LIMIT, state->offset),
						   NULL);
}

static StepResult
found(Operation *op, AirbyteResponse *resp)
{
	ConnectionState *state = (ConnectionState *) op->state;
	char	   *connection_id;
	int			page_length;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list the workspace's connections");
	connection_id = airbyte_page_id_named(resp->body, op->intended_name, "connectionId",
										  &page_length);
	if (page_length < 0)
		return op_retry(op, "Airbyte's list of connections had no \"data\" array");
	if (connection_id != NULL)
		return record(op, connection_id);	/* its first sync was never asked for */
	if (!airbyte_page_may_continue(page_length))
		return op_goto(op, "create");
	state->offset += AIRBYTE_PAGE_LIMIT;
	return op_send(op);
}

static HttpRequest *
build_create(Operation *op)
{
	ConnectionState *state = (ConnectionState *) op->state;

	return airbyte_prepare(HTTP_POST, "/connections", state->body);
}

static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	char	   *connection_id = NULL;

	if (resp->outcome == AIRBYTE_OK)
		connection_id = airbyte_string_field(resp->body, "connectionId");
	if (connection_id == NULL)
		return op_failed(op, resp, "create the source's connection");
	return record(op, connection_id);
}

/* Records the connection's first sync job and ends the operation. */
static StepResult
record_job(Operation *op, const char *job_id, const char *status, const char *how)
{
	ConnectionState *state = (ConnectionState *) op->state;
	Datum		values[4];
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->connection_id);
	values[2] = CStringGetTextDatum(job_id);
	values[3] = CStringGetTextDatum(status ? status : "pending");
	if (op_spi("INSERT INTO tenant_airbyte.tenant_syncs AS s"
			   "  (tenant_id, airbyte_connection_id, airbyte_job_id, job_type, status)"
			   " VALUES ($1, $2::uuid, $3::bigint, 'sync', $4)"
			   " ON CONFLICT DO NOTHING",
			   4, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the first sync");
	return op_done(op, "{\"status\": \"created\", \"tenant_id\": %s, \"connection_id\": %s,"
				   " \"job_id\": %s, \"sync\": \"%s\"}",
				   op_json_string(op->tenant_id), op_json_string(state->connection_id),
				   job_id, how);
}

/* A job id of an answer (a JSON number) in decimal, or NULL. */
static char *
job_id_text(JsonbContainer *job)
{
	JsonbValue *id = airbyte_object_field(job, "jobId");

	if (id == NULL || id->type != jbvNumeric)
		return NULL;
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(id->val.numeric)));
}

static HttpRequest *
build_find_job(Operation *op)
{
	ConnectionState *state = (ConnectionState *) op->state;

	return airbyte_prepare(HTTP_GET,
						   psprintf("/jobs?connectionId=%s&jobType=sync&orderBy=createdAt%%7CASC&limit=%d&offset=0",
									state->connection_id, AIRBYTE_PAGE_LIMIT),
						   NULL);
}

/*
 * found_job
 *		Any sync job of a connection created moments ago is its first sync:
 *		adopt the oldest rather than start another.  One page is enough, as
 *		a job found on it ends the search.
 */
static StepResult
found_job(Operation *op, AirbyteResponse *resp)
{
	JsonbContainer *data;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list the connection's jobs");
	data = airbyte_page_data(resp->body);
	if (data == NULL)
		return op_retry(op, "Airbyte's list of jobs had no \"data\" array");
	for (uint32 i = 0; i < JsonContainerSize(data); i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(data, i);
		JsonbValue *status;
		char	   *job_id;

		if (item == NULL || item->type != jbvBinary)
			continue;
		job_id = job_id_text(item->val.binary.data);
		if (job_id == NULL)
			continue;
		status = airbyte_object_field(item->val.binary.data, "status");
		return record_job(op, job_id,
						  status != NULL && status->type == jbvString ?
						  pnstrdup(status->val.string.val, status->val.string.len) : NULL,
						  "adopted");
	}
	return op_goto(op, "sync");
}

static HttpRequest *
build_sync(Operation *op)
{
	ConnectionState *state = (ConnectionState *) op->state;

	return airbyte_prepare(HTTP_POST, "/jobs",
						   airbyte_json_object(2, "connectionId", state->connection_id,
											   "jobType", "sync"));
}

static StepResult
synced(Operation *op, AirbyteResponse *resp)
{
	ConnectionState *state = (ConnectionState *) op->state;
	char	   *job_id;

	if (resp->outcome != AIRBYTE_OK && resp->http_status == 409)
		return op_done(op, "{\"status\": \"created\", \"tenant_id\": %s, \"connection_id\": %s,"
					   " \"sync\": \"already_running\"}",
					   op_json_string(op->tenant_id), op_json_string(state->connection_id));
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "start the connection's first sync");
	job_id = job_id_text(&resp->body->root);
	if (job_id == NULL)
		return op_failed(op, resp, "start the connection's first sync");
	return record_job(op, job_id, airbyte_string_field(resp->body, "status"), "started");
}

static const OperationStep create_connection_steps[] = {
	{"decide", NULL, decide, 0},
	{"find", build_find, found, 0},
	{"create", build_create, created, STEP_CREATES},
	{"find_job", build_find_job, found_job, 0},
	{"sync", build_sync, synced, STEP_CREATES},
};

const OperationKind create_connection_kind = {
	"create_connection", create_connection_steps, lengthof_steps(create_connection_steps)
};

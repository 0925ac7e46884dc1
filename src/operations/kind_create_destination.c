/*-------------------------------------------------------------------------
 *
 * kind_create_destination.c
 *	  create_destination: the tenant's destination, from its pipeline
 *	  template, in its workspace, exactly once.
 *
 *	  step		request						answer leads to
 *	  decide	-							no active workspace or no template:
 *											nothing to do; recorded already:
 *											done (already_exists); a create
 *											may have been sent before: find;
 *											else create
 *	  find		GET /destinations			the intended name on this page:
 *				?workspaceIds=&offset=		record it, done (adopted); a short
 *											page: create; else the next page
 *	  create	POST /destinations			record it, done (created)
 *
 * Recorded by a trigger on tenant_airbyte_workspaces when a tenant that
 * has a template gets an active workspace (section 7 of the install
 * script), so provisioning creates the workspace, then the destination.
 * The request body is pipeline_destination_request(): the template
 * rendered for the tenant.  It carries the destination's credentials, so
 * it is built in the worker's memory when the step runs and never stored;
 * the operation row holds only the intended name.  The name is decided
 * once (pipeline_destination_name()) and unique in the workspace, which
 * is what lets "find" adopt a destination whose create answer was lost.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"

typedef struct DestinationState
{
	char	   *workspace_id;
	Jsonb	   *body;			/* the POST /destinations body; credentials */
	int			offset;			/* of the page "find" reads */
} DestinationState;

/* Records the destination and ends the operation with status. */
static StepResult
record(Operation *op, const char *destination_id, const char *destination_type,
	   const char *status)
{
	DestinationState *state = (DestinationState *) op->state;
	Datum		values[5];
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state->workspace_id);
	values[2] = CStringGetTextDatum(destination_id);
	values[3] = CStringGetTextDatum(destination_type ? destination_type : "custom");
	values[4] = CStringGetTextDatum(op->intended_name);
	if (op_spi("INSERT INTO tenant_airbyte.tenant_destinations AS d"
			   "  (tenant_id, airbyte_workspace_id, airbyte_destination_id, destination_type, name, template)"
			   " VALUES ($1, $2::uuid, $3::uuid, $4, $5, tenant_airbyte.template_for_tenant($1))"
			   " ON CONFLICT DO NOTHING",
			   5, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the tenant's destination");
	return op_done(op, "{\"status\": \"%s\", \"tenant_id\": %s, \"workspace_id\": %s,"
				   " \"destination_id\": %s, \"name\": %s}",
				   status, op_json_string(op->tenant_id), op_json_string(state->workspace_id),
				   op_json_string(destination_id), op_json_string(op->intended_name));
}

static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	TenantWorkspace ws;
	DestinationState *state;
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	bool		isnull;
	Datum		body;

	if (!kind_tenant_workspace(op->tenant_id, &ws) || strcmp(ws.status, "active") != 0)
		return op_nothing_to_do(op, "{\"status\": \"not_found\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));

	values[0] = CStringGetTextDatum(op->tenant_id);
	if (op_spi("SELECT d.airbyte_destination_id::text FROM tenant_airbyte.tenant_destinations AS d"
			   " WHERE d.tenant_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
			   1, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the tenant's destination");
	if (SPI_processed > 0)
		return op_done(op, "{\"status\": \"already_exists\", \"tenant_id\": %s, \"destination_id\": %s}",
					   op_json_string(op->tenant_id),
					   op_json_string(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)));

	/* The template rendered for this tenant; NULL when it has none. */
	values[1] = CStringGetTextDatum(ws.workspace_id);
	if (op_spi("SELECT tenant_airbyte.pipeline_destination_request($1, $2::uuid)",
			   2, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not render the tenant's pipeline template");
	body = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return op_nothing_to_do(op, "{\"status\": \"no_template\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));

	state = MemoryContextAllocZero(op->context, sizeof(DestinationState));
	state->workspace_id = ws.workspace_id;
	state->body = DatumGetJsonbPCopy(body);
	op->state = state;
	op_set_intended_name(op, airbyte_string_field(state->body, "name"));

	/* A create that may have been carried out is looked for, not repeated. */
	if (op->last_step != NULL &&
		(strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "find") == 0))
		return op_goto(op, "find");
	return op_goto(op, "create");
}

static HttpRequest *
build_find(Operation *op)
{
	DestinationState *state = (DestinationState *) op->state;

	return airbyte_prepare(HTTP_GET,
						   psprintf("/destinations?workspaceIds=%s&limit=%d&offset=%d",
									state->workspace_id, AIRBYTE_PAGE_LIMIT, state->offset),
						   NULL);
}

static StepResult
found(Operation *op, AirbyteResponse *resp)
{
	DestinationState *state = (DestinationState *) op->state;
	List	   *named;
	int			page_length;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list the workspace's destinations");
	named = airbyte_page_named(resp->body, op->intended_name, "destinationId",
							   "destinationType", &page_length);
	if (page_length < 0)
		return op_retry(op, "Airbyte's list of destinations had no \"data\" array");
	if (named != NIL)
	{
		AirbyteNamedObject *destination = (AirbyteNamedObject *) linitial(named);

		return record(op, destination->id, destination->extra, "adopted");
	}
	if (!airbyte_page_may_continue(page_length))
		return op_goto(op, "create");
	state->offset += AIRBYTE_PAGE_LIMIT;
	return op_send(op);
}

static HttpRequest *
build_create(Operation *op)
{
	DestinationState *state = (DestinationState *) op->state;

	return airbyte_prepare(HTTP_POST, "/destinations", state->body);
}

static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	char	   *destination_id = NULL;

	if (resp->outcome == AIRBYTE_OK)
		destination_id = airbyte_string_field(resp->body, "destinationId");
	if (destination_id == NULL)
		return op_failed(op, resp, "create the tenant's destination");
	return record(op, destination_id, airbyte_string_field(resp->body, "destinationType"),
				  "created");
}

static const OperationStep create_destination_steps[] = {
	{"decide", NULL, decide, 0},
	{"find", build_find, found, 0},
	{"create", build_create, created, STEP_CREATES},
};

const OperationKind create_destination_kind = {
	"create_destination", create_destination_steps, lengthof_steps(create_destination_steps)
};

/*-------------------------------------------------------------------------
 *
 * kind_update_destination.c
 *	  update_destination: the tenant's Airbyte destination gets its
 *	  configuration rendered again from its pipeline template, so that a
 *	  rotated loader password reaches Airbyte.
 *
 *	  step		request						answer leads to
 *	  decide	-							no destination or no template:
 *											nothing to do; else patch
 *	  patch		PATCH /destinations/{id}	the password changed again while
 *				{configuration}				the request was out: decide (send
 *											the newer one); else done
 *
 * Recorded by rotate_loader_password() in the transaction that gives the
 * loader role its new password, so the operation exists exactly when the
 * rotation committed, and the worker cannot see it before the new
 * password is readable.
 *
 * Where the password comes from: the configuration is rendered when the
 * step runs (pipeline_destination_request(), whose {{loader_password}} is
 * loader_credentials(): the superuser-only tenant_data row), in the
 * worker's memory, and is never stored; the operation row holds only the
 * tenant.  This is the path create_destination already takes, and it is
 * chosen over handing the password to the worker in memory because the
 * rotation is committed before the worker acts: a worker that restarted
 * in between would have lost an in-memory password and left the
 * destination with the old one, while the row the password is read from
 * is durable and already the one every later render uses.
 *
 * PATCH is idempotent, so a transient failure is simply sent again, and
 * an attempt interrupted by a crash starts over from decide.  Airbyte's
 * answer is scrubbed of the configuration's secrets before anything of it
 * is recorded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"
#include "sources.h"

typedef struct UpdateDestinationState
{
	char	   *destination_id;
	char	   *workspace_id;
	Jsonb	   *body;			/* {"configuration": ...}; credentials */
} UpdateDestinationState;

/*
 * render
 *		The PATCH body from the tenant's template as it renders now, or
 *		NULL when the tenant has no template.
 */
static Jsonb *
render(Operation *op, const char *workspace_id)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	bool		isnull;
	Datum		body;

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(workspace_id);
	if (op_spi("SELECT pg_catalog.jsonb_build_object('configuration', r OPERATOR(pg_catalog.->) 'configuration')"
			   "  FROM tenant_airbyte.pipeline_destination_request($1, $2::uuid) AS r"
			   " WHERE r IS NOT NULL",
			   2, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not render the tenant's pipeline template");
	if (SPI_processed == 0)
		return NULL;
	body = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : DatumGetJsonbPCopy(body);
}

static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	UpdateDestinationState *state;
	Datum		values[1];
	Oid			types[1] = {TEXTOID};
	Jsonb	   *body;
	char	   *destination_id;
	char	   *workspace_id;

	values[0] = CStringGetTextDatum(op->tenant_id);
	if (op_spi("SELECT d.airbyte_destination_id::text, d.airbyte_workspace_id::text"
			   "  FROM tenant_airbyte.tenant_destinations AS d"
			   " WHERE d.tenant_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
			   1, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the tenant's destination");
	if (SPI_processed == 0)
		return op_nothing_to_do(op, "{\"status\": \"not_found\", \"tenant_id\": %s,"
								" \"reason\": \"no destination\"}",
								op_json_string(op->tenant_id));
	destination_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	workspace_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	body = render(op, workspace_id);
	if (body == NULL)
		return op_nothing_to_do(op, "{\"status\": \"no_template\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));

	state = MemoryContextAllocZero(op->context, sizeof(UpdateDestinationState));
	state->destination_id = MemoryContextStrdup(op->context, destination_id);
	state->workspace_id = MemoryContextStrdup(op->context, workspace_id);
	state->body = body;
	op->state = state;
	return op_goto(op, "patch");
}

static HttpRequest *
build_patch(Operation *op)
{
	UpdateDestinationState *state = (UpdateDestinationState *) op->state;

	return airbyte_prepare(HTTP_PATCH, psprintf("/destinations/%s", state->destination_id),
						   state->body);
}

/*
 * patched
 *		Done, unless the template renders differently now than what was
 *		sent (the password was rotated again while the request was out, and
 *		that rotation's own operation could not be recorded beside this
 *		unfinished one): then the newer configuration is sent.
 */
static StepResult
patched(Operation *op, AirbyteResponse *resp)
{
	UpdateDestinationState *state = (UpdateDestinationState *) op->state;
	Jsonb	   *now;

	if (resp->outcome != AIRBYTE_OK)
	{
		sources_scrub_response(resp, state->body);
		return op_failed(op, resp, "update the tenant's destination");
	}
	now = render(op, state->workspace_id);
	if (now != NULL &&
		DatumGetInt32(DirectFunctionCall2(jsonb_cmp, JsonbPGetDatum(now),
										  JsonbPGetDatum(state->body))) != 0)
		return op_goto(op, "decide");
	return op_done(op, "{\"status\": \"updated\", \"tenant_id\": %s, \"destination_id\": %s}",
				   op_json_string(op->tenant_id), op_json_string(state->destination_id));
}

static const OperationStep update_destination_steps[] = {
	{"decide", NULL, decide, 0},
	{"patch", build_patch, patched, 0},
};

const OperationKind update_destination_kind = {
	"update_destination", update_destination_steps, lengthof_steps(update_destination_steps)
};

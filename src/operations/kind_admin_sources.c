/*-------------------------------------------------------------------------
 *
 * kind_admin_sources.c
 *	  The source administration kinds behind the superuser wrappers of
 *	  sources.c.  Every one runs under ADMIN_TENANT (admin.h) and leaves
 *	  what Airbyte answered in admin_results (sources without their
 *	  configuration), never in the outcome.
 *
 * admin_create_source (subject: workspace id/name; params workspace_id,
 * name, definition_id; the configuration in op->secret, in memory only)
 *	  step		request					answer leads to
 *	  decide	-						a create may have been sent before:
 *										reconcile; no configuration in
 *										memory: failed, "call again";
 *										else create
 *	  create	POST /sources			stored, done; unknown outcome:
 *										retry (reconciles); refused: failed,
 *										the configuration's secrets blanked
 *	  reconcile	GET /sources page		a source of the workspace named
 *										exactly the name that no tenant row
 *										records and no other admin create
 *										answered: fetch; none: create, or
 *										"call again" without the configuration
 *	  fetch		GET /sources/{id}		stored, done
 *
 * admin_get_source	  get	GET /sources/{id}		stored; 404: failed (TA003)
 * admin_list_sources list	GET /sources?workspaceIds= pages, each stored
 * admin_delete_source delete DELETE /sources/{id}	deleted true; 404: false
 * admin_initiate_oauth initiate POST /sources/initiateOAuth  the consent URL
 *										stored; 501: failed (0A000).  It
 *										creates nothing, so it is retried
 *										like a read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "admin.h"
#include "kinds.h"
#include "sources.h"

typedef struct AdminSourceState
{
	int			page_offset;
	char	   *adopt_id;
} AdminSourceState;

static AdminSourceState *
state_of(Operation *op)
{
	if (op->state == NULL)
		op->state = MemoryContextAllocZero(op->context, sizeof(AdminSourceState));
	return (AdminSourceState *) op->state;
}

static Jsonb *
configuration(Operation *op)
{
	return op->secret ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(op->secret))) : NULL;
}

/* Stores a source answer (without its configuration); done. */
static StepResult
store_source(Operation *op, AirbyteResponse *resp, const char *action)
{
	char	   *id;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, action);
	id = airbyte_string_field(resp->body, "sourceId");
	if (id == NULL)
	{
		resp->outcome = AIRBYTE_BAD_RESPONSE;
		resp->message = "the answer has no sourceId";
		return op_failed(op, resp, action);
	}
	admin_results_store(op, 0, resp->body, true);
	return op_done(op, "{\"source_id\": %s}", op_json_string(id));
}

static StepResult
clear_and_go(Operation *op, const char *step)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	state_of(op)->page_offset = 0;
	return op_goto(op, step);
}

static StepResult
call_again(Operation *op)
{
	return op_fail(op, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				   "the background worker restarted before it could send the source's configuration to Airbyte",
				   "The configuration carries credentials and is kept in memory only, never in the database; no source was created.",
				   "Call airbyte_create_source() again.");
}

/* ---- admin_create_source ---- */

static StepResult
create_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	state_of(op)->page_offset = 0;
	if (op->intended_name == NULL)
		op_set_intended_name(op, op_param(op, "name"));
	if (strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "reconcile") == 0)
		return op_goto(op, "reconcile");
	if (op->secret == NULL)
		return call_again(op);
	return op_goto(op, "create");
}

/* POST /sources {name, workspaceId, definitionId?, configuration} */
static HttpRequest *
build_create(Operation *op)
{
	const char *definition_id = op_param(op, "definition_id");
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfo(&body, "{\"name\": %s, \"workspaceId\": %s, ",
					 op_json_string(op->intended_name),
					 op_json_string(op_param(op, "workspace_id")));
	if (definition_id != NULL)
		appendStringInfo(&body, "\"definitionId\": %s, ", op_json_string(definition_id));
	appendStringInfo(&body, "\"configuration\": %s}", op->secret);
	return airbyte_prepare(HTTP_POST, "/sources",
						   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(body.data))));
}

static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	char	   *action = psprintf("create source \"%s\"", op->intended_name);

	sources_scrub_response(resp, configuration(op));
	if (resp->outcome == AIRBYTE_BAD_RESPONSE ||
		(resp->outcome == AIRBYTE_OK && airbyte_string_field(resp->body, "sourceId") == NULL))
		return op_retry(op, psprintf("%s: %s", action,
									 resp->message ? resp->message : "no sourceId in the answer"));
	return store_source(op, resp, action);
}

static HttpRequest *
build_list_for_reconcile(Operation *op)
{
	return airbyte_prepare(HTTP_GET,
						   psprintf("/sources?workspaceIds=%s&limit=%d&offset=%d",
									op_param(op, "workspace_id"), AIRBYTE_PAGE_LIMIT,
									state_of(op)->page_offset),
						   NULL);
}

/* Whether a source is already someone's: recorded, or another create's. */
#define SOURCE_TAKEN_SQL \
	"SELECT FROM tenant_airbyte.tenant_sources AS s" \
	" WHERE s.airbyte_source_id OPERATOR(pg_catalog.=) $1::uuid" \
	" UNION ALL" \
	" SELECT FROM tenant_airbyte.operations AS o" \
	" WHERE o.kind OPERATOR(pg_catalog.=) 'admin_create_source'" \
	"   AND o.status OPERATOR(pg_catalog.=) 'done'" \
	"   AND o.id OPERATOR(pg_catalog.<>) $2" \
	"   AND (o.outcome OPERATOR(pg_catalog.->>) 'source_id'::text) OPERATOR(pg_catalog.=) $1"

static StepResult
reconciled(Operation *op, AirbyteResponse *resp)
{
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list sources to reconcile");
	switch (admin_adopt_from_page(op, resp->body, "sourceId", SOURCE_TAKEN_SQL,
								  &state_of(op)->adopt_id, &state_of(op)->page_offset))
	{
		case ADMIN_ADOPT_FOUND:
			return op_goto(op, "fetch");
		case ADMIN_ADOPT_NEXT_PAGE:
			return op_send(op);
		case ADMIN_ADOPT_NONE:
			break;
	}
	return op->secret ? op_goto(op, "create") : call_again(op);
}

static HttpRequest *
build_fetch(Operation *op)
{
	return airbyte_prepare(HTTP_GET, psprintf("/sources/%s", state_of(op)->adopt_id), NULL);
}

static StepResult
fetched(Operation *op, AirbyteResponse *resp)
{
	return store_source(op, resp, psprintf("get source %s", state_of(op)->adopt_id));
}

static const OperationStep admin_create_source_steps[] = {
	{"decide", NULL, create_decide, 0},
	{"create", build_create, created, STEP_CREATES},
	{"reconcile", build_list_for_reconcile, reconciled, 0},
	{"fetch", build_fetch, fetched, 0},
};

const OperationKind admin_create_source_kind = {
	"admin_create_source", admin_create_source_steps, lengthof_steps(admin_create_source_steps)
};

/* ---- admin_get_source ---- */

static StepResult
get_decide(Operation *op, AirbyteResponse *resp)
{
	return clear_and_go(op, "get");
}

static HttpRequest *
build_get(Operation *op)
{
	return airbyte_prepare(HTTP_GET, psprintf("/sources/%s", op_param(op, "source_id")), NULL);
}

static StepResult
got(Operation *op, AirbyteResponse *resp)
{
	return store_source(op, resp, psprintf("get source %s", op_param(op, "source_id")));
}

static const OperationStep admin_get_source_steps[] = {
	{"decide", NULL, get_decide, 0},
	{"get", build_get, got, 0},
};

const OperationKind admin_get_source_kind = {
	"admin_get_source", admin_get_source_steps, lengthof_steps(admin_get_source_steps)
};

/* ---- admin_list_sources ---- */

static StepResult
list_decide(Operation *op, AirbyteResponse *resp)
{
	return clear_and_go(op, "list");
}

static HttpRequest *
build_list(Operation *op)
{
	return build_list_for_reconcile(op);
}

static StepResult
listed(Operation *op, AirbyteResponse *resp)
{
	AdminSourceState *state = state_of(op);
	char	   *action = psprintf("list sources of workspace %s", op_param(op, "workspace_id"));
	int			page_length;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, action);
	page_length = admin_results_store_page(op, state->page_offset, resp->body, true);
	if (page_length < 0)
	{
		resp->outcome = AIRBYTE_BAD_RESPONSE;
		resp->message = "the answer has no data array";
		return op_failed(op, resp, action);
	}
	if (airbyte_page_may_continue(page_length))
	{
		state->page_offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	return op_done(op, "{\"listed\": %d}", state->page_offset + page_length);
}

static const OperationStep admin_list_sources_steps[] = {
	{"decide", NULL, list_decide, 0},
	{"list", build_list, listed, 0},
};

const OperationKind admin_list_sources_kind = {
	"admin_list_sources", admin_list_sources_steps, lengthof_steps(admin_list_sources_steps)
};

/* ---- admin_delete_source ---- */

static StepResult
delete_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!admin_start(op, &failure))
		return failure;
	return op_goto(op, "delete");
}

static HttpRequest *
build_delete(Operation *op)
{
	return airbyte_prepare(HTTP_DELETE, psprintf("/sources/%s", op_param(op, "source_id")), NULL);
}

static StepResult
deleted(Operation *op, AirbyteResponse *resp)
{
	if (resp->outcome == AIRBYTE_NOT_FOUND)
		return op_done(op, "{\"deleted\": false}");
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, psprintf("delete source %s", op_param(op, "source_id")));
	return op_done(op, "{\"deleted\": true}");
}

static const OperationStep admin_delete_source_steps[] = {
	{"decide", NULL, delete_decide, 0},
	{"delete", build_delete, deleted, 0},
};

const OperationKind admin_delete_source_kind = {
	"admin_delete_source", admin_delete_source_steps, lengthof_steps(admin_delete_source_steps)
};

/* ---- admin_initiate_oauth ---- */

static StepResult
oauth_decide(Operation *op, AirbyteResponse *resp)
{
	return clear_and_go(op, "initiate");
}

static HttpRequest *
build_initiate(Operation *op)
{
	return airbyte_prepare(HTTP_POST, "/sources/initiateOAuth",
						   airbyte_json_object(3, "sourceType", op_param(op, "source_type"),
											   "redirectUrl", op_param(op, "redirect_url"),
											   "workspaceId", op_param(op, "workspace_id")));
}

static StepResult
initiated(Operation *op, AirbyteResponse *resp)
{
	char	   *action = psprintf("start OAuth consent for a %s source", op_param(op, "source_type"));
	char	   *url;

	if (resp->http_status == 501)
		return op_fail(op, ERRCODE_FEATURE_NOT_SUPPORTED,
					   "this Airbyte server does not offer OAuth consent (HTTP 501)",
					   resp->message,
					   "Open-source Airbyte servers do not implement POST /sources/initiateOAuth; "
					   "create the source with its credentials in the configuration instead, "
					   "or use Airbyte Cloud.");
	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, action);
	url = airbyte_string_field(resp->body, "consentUrl");
	if (url == NULL)
		url = airbyte_string_field(resp->body, "redirect_url");
	if (url == NULL || url[0] == '\0')
	{
		resp->outcome = AIRBYTE_BAD_RESPONSE;
		resp->message = "the answer has no consentUrl";
		return op_failed(op, resp, action);
	}
	admin_results_store(op, 0, airbyte_json_object(1, "consent_url", url), false);
	return op_done(op, "{\"initiated\": true}");
}

static const OperationStep admin_initiate_oauth_steps[] = {
	{"decide", NULL, oauth_decide, 0},
	{"initiate", build_initiate, initiated, 0},
};

const OperationKind admin_initiate_oauth_kind = {
	"admin_initiate_oauth", admin_initiate_oauth_steps, lengthof_steps(admin_initiate_oauth_steps)
};

/*-------------------------------------------------------------------------
 *
 * kind_source.c
 *	  The source kinds: create_source, delete_source, initiate_oauth.
 *
 * create_source (subject: the source's name)
 *	  step		request					answer leads to
 *	  decide	-						no active workspace: failed (55000);
 *										a create may have been sent before:
 *										reconcile; no configuration in
 *										memory: failed, "call again";
 *										else create
 *	  create	POST /sources			recorded in tenant_sources, done;
 *										unknown outcome: retry (reconciles)
 *	  reconcile	GET /sources page		a source named exactly
 *										intended_name that no row records:
 *										adopted, done; none: create, or
 *										failed "call again" without the
 *										configuration
 *
 * The configuration (credentials) reaches the worker in memory only
 * (op->secret) and is blanked from every error Airbyte sends back.
 *
 * An OAuth completion (complete_oauth(), oauth_callback()) is a
 * create_source with a consent_id parameter: its secret is
 * {"secretId": ..., "configuration": {...}}, the configuration without
 * credentials, and POST /sources carries the secretId at the top level.
 * Before the create may be sent, decide claims the consent
 * (oauth_consents.c): already used or expired fails the operation; a
 * create refused for good gives the consent back.
 *
 * delete_source (subject: the source id)
 *	  decide	-						no such source of the tenant: done
 *										(deleted false); else delete
 *	  delete	DELETE /sources/{id}	row deleted, done (404 too)
 *
 * initiate_oauth (subject: the source type)
 *	  decide	-						no active workspace: failed (55000);
 *										else the pending consent is recorded
 *	  initiate	POST /sources/initiateOAuth	done with the consent URL and id;
 *										501: failed (0A000); failed: the
 *										consent is deleted
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"
#include "oauth_consents.h"
#include "sources.h"

typedef struct SourceState
{
	char	   *workspace_id;
	int			page_offset;
} SourceState;

static SourceState *
state_of(Operation *op)
{
	if (op->state == NULL)
		op->state = MemoryContextAllocZero(op->context, sizeof(SourceState));
	return (SourceState *) op->state;
}

/* The tenant's active workspace into the state, or the 55000 failure. */
static bool
need_workspace(Operation *op, StepResult *failure)
{
	TenantWorkspace ws;

	if (kind_tenant_workspace(op->tenant_id, &ws) && strcmp(ws.status, "active") == 0)
	{
		state_of(op)->workspace_id = ws.workspace_id;
		return true;
	}
	*failure = op_fail(op, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					   psprintf("tenant \"%s\" has no active Airbyte workspace: provision the tenant first",
								op->tenant_id),
					   NULL,
					   "SELECT tenant_airbyte.provision_tenant(tenant_id, tenant_name), or deliver its tenant.created webhook; a deprovisioned tenant is restored the same way.");
	return false;
}

static Jsonb *
configuration(Operation *op)
{
	return op->secret ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(op->secret))) : NULL;
}

/* Is this create_source the completion of an OAuth consent? */
static bool
is_oauth(Operation *op)
{
	return op_param(op, "consent_id") != NULL;
}

static StepResult
call_again(Operation *op)
{
	if (is_oauth(op))
	{
		oauth_consent_release(op);
		return op_fail(op, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					   "the background worker restarted before it could send the OAuth secret_id to Airbyte",
					   "The secret_id is kept in memory only, never in the database; no source was created and the consent is pending again.",
					   "Call complete_oauth() again with the same secret_id.");
	}
	return op_fail(op, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				   "the background worker restarted before it could send the source's configuration to Airbyte",
				   "The configuration carries credentials and is kept in memory only, never in the database; no source was created.",
				   "Call create_source() again.");
}

/* ---- create_source ---- */

static StepResult
create_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!need_workspace(op, &failure))
		return failure;
	if (op->intended_name == NULL)
		op_set_intended_name(op, op_param(op, "name"));
	if (strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "reconcile") == 0)
	{
		state_of(op)->page_offset = 0;
		return op_goto(op, "reconcile");
	}
	if (op->secret == NULL)
		return call_again(op);
	if (is_oauth(op) && !oauth_consent_claim(op, &failure))
		return failure;
	return op_goto(op, "create");
}

static HttpRequest *
build_create(Operation *op)
{
	const char *definition_id = op_param(op, "definition_id");
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfo(&body, "{\"name\": %s, \"workspaceId\": %s, ",
					 op_json_string(op->intended_name),
					 op_json_string(state_of(op)->workspace_id));
	if (definition_id != NULL)
		appendStringInfo(&body, "\"definitionId\": %s, ", op_json_string(definition_id));
	if (is_oauth(op))
	{
		/* SourceCreateRequest.secretId; the configuration has no credentials */
		Jsonb	   *secret = configuration(op);
		JsonbValue *config = airbyte_object_field(&secret->root, "configuration");

		appendStringInfo(&body, "\"secretId\": %s, \"configuration\": %s}",
						 op_json_string(airbyte_string_field(secret, "secretId")),
						 config && config->type == jbvBinary ?
						 JsonbToCString(NULL, config->val.binary.data, config->val.binary.len) : "{}");
	}
	else
		appendStringInfo(&body, "\"configuration\": %s}", op->secret);
	return airbyte_prepare(HTTP_POST, "/sources",
						   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(body.data))));
}

/* Records the source; the operation is done. */
static StepResult
record_source(Operation *op, const char *source_id, const char *source_type)
{
	Datum		values[5];
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	const char *type = source_type ? source_type : op_param(op, "source_type");

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state_of(op)->workspace_id);
	values[2] = CStringGetTextDatum(source_id);
	values[3] = CStringGetTextDatum(type);
	values[4] = CStringGetTextDatum(op->intended_name);
	if (op_spi("INSERT INTO tenant_airbyte.tenant_sources AS s"
			   " (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)"
			   " VALUES ($1, $2::uuid, $3::uuid, pg_catalog.left($4, 255), $5)"
			   " RETURNING s.source_type",
			   5, types, values, NULL, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record the source");
	type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (is_oauth(op))
		oauth_consent_used(op, source_id);
	return op_done(op, "{\"status\": \"created\", \"tenant_id\": %s, \"workspace_id\": %s, "
				   "\"source_id\": %s, \"source_type\": %s, \"name\": %s}",
				   op_json_string(op->tenant_id), op_json_string(state_of(op)->workspace_id),
				   op_json_string(source_id), op_json_string(type),
				   op_json_string(op->intended_name));
}

static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	char	   *source_id = NULL;
	char	   *action = psprintf("create source \"%s\"", op->intended_name);

	if (resp->outcome == AIRBYTE_OK)
		source_id = airbyte_string_field(resp->body, "sourceId");
	if (source_id != NULL)
		return record_source(op, source_id, airbyte_string_field(resp->body, "sourceType"));

	sources_scrub_response(resp, configuration(op));
	if (resp->outcome == AIRBYTE_OK || resp->outcome == AIRBYTE_BAD_RESPONSE)
		return op_retry(op, psprintf("%s: %s", action,
									 resp->message ? resp->message : "no sourceId in the answer"));
	{
		StepResult	result = op_failed(op, resp, action);

		/* Airbyte refused the create: no source, the consent is free again */
		if (result == STEP_FAIL && is_oauth(op))
			oauth_consent_release(op);
		return result;
	}
}

static HttpRequest *
build_list(Operation *op)
{
	return airbyte_prepare(HTTP_GET,
						   psprintf("/sources?workspaceIds=%s&limit=%d&offset=%d",
									state_of(op)->workspace_id, AIRBYTE_PAGE_LIMIT,
									state_of(op)->page_offset),
						   NULL);
}

static StepResult
listed(Operation *op, AirbyteResponse *resp)
{
	List	   *named;
	ListCell   *lc;
	int			page_length;

	if (resp->outcome != AIRBYTE_OK)
		return op_failed(op, resp, "list sources to reconcile");

	named = airbyte_page_named(resp->body, op->intended_name, "sourceId", "sourceType",
							   &page_length);
	foreach(lc, named)
	{
		AirbyteNamedObject *source = (AirbyteNamedObject *) lfirst(lc);
		Datum		values[1];
		Oid			types[1] = {TEXTOID};

		values[0] = CStringGetTextDatum(source->id);
		if (op_spi("SELECT FROM tenant_airbyte.tenant_sources"
				   " WHERE airbyte_source_id OPERATOR(pg_catalog.=) $1::uuid",
				   1, types, values, NULL, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up source %s", source->id);
		if (SPI_processed == 0)
			return record_source(op, source->id, source->extra);
	}
	if (airbyte_page_may_continue(page_length))
	{
		state_of(op)->page_offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	return op->secret ? op_goto(op, "create") : call_again(op);
}

static const OperationStep create_source_steps[] = {
	{"decide", NULL, create_decide, 0},
	{"create", build_create, created, STEP_CREATES},
	{"reconcile", build_list, listed, 0},
};

const OperationKind create_source_kind = {
	"create_source", create_source_steps, lengthof_steps(create_source_steps)
};

/* ---- delete_source ---- */

static StepResult
delete_decide(Operation *op, AirbyteResponse *resp)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(op_param(op, "source_id"));
	if (op_spi("SELECT FROM tenant_airbyte.tenant_sources"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_source_id OPERATOR(pg_catalog.=) $2::uuid FOR UPDATE",
			   2, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the source");
	if (SPI_processed == 0)
		return op_done(op, "{\"deleted\": false}");
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
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
		return op_failed(op, resp, psprintf("delete source %s", op_param(op, "source_id")));
	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(op_param(op, "source_id"));
	if (op_spi("DELETE FROM tenant_airbyte.tenant_sources"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_source_id OPERATOR(pg_catalog.=) $2::uuid",
			   2, types, values, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the source's row");
	return op_done(op, "{\"deleted\": true}");
}

static const OperationStep delete_source_steps[] = {
	{"decide", NULL, delete_decide, 0},
	{"delete", build_delete, deleted, 0},
};

const OperationKind delete_source_kind = {
	"delete_source", delete_source_steps, lengthof_steps(delete_source_steps)
};

/* ---- initiate_oauth ---- */

static StepResult
oauth_decide(Operation *op, AirbyteResponse *resp)
{
	StepResult	failure;

	if (!need_workspace(op, &failure))
		return failure;
	oauth_consent_record(op);
	return op_goto(op, "initiate");
}

static HttpRequest *
build_initiate(Operation *op)
{
	return airbyte_prepare(HTTP_POST, "/sources/initiateOAuth",
						   airbyte_json_object(3, "sourceType", op_param(op, "source_type"),
											   "redirectUrl", op_param(op, "redirect_url"),
											   "workspaceId", state_of(op)->workspace_id));
}

static StepResult
initiated(Operation *op, AirbyteResponse *resp)
{
	char	   *url;
	char	   *action = psprintf("start OAuth consent for a %s source", op_param(op, "source_type"));
	StepResult	result;

	if (resp->http_status == 501)
	{
		oauth_consent_forget(op);
		return op_fail(op, ERRCODE_FEATURE_NOT_SUPPORTED,
					   "this Airbyte server does not offer OAuth consent (HTTP 501)",
					   resp->message,
					   "Open-source Airbyte servers do not implement POST /sources/initiateOAuth; "
					   "create the source with its credentials in the configuration instead, "
					   "or use Airbyte Cloud.");
	}
	if (resp->outcome != AIRBYTE_OK)
	{
		result = op_failed(op, resp, action);
		if (result == STEP_FAIL)
			oauth_consent_forget(op);
		return result;
	}
	url = airbyte_string_field(resp->body, "consentUrl");
	if (url == NULL)
		url = airbyte_string_field(resp->body, "redirect_url");
	if (url == NULL || url[0] == '\0')
	{
		resp->outcome = AIRBYTE_BAD_RESPONSE;
		resp->message = "the answer has no consentUrl";
		result = op_failed(op, resp, action);
		if (result == STEP_FAIL)
			oauth_consent_forget(op);
		return result;
	}
	return op_done(op, "{\"consent_url\": %s, \"consent_id\": %s, \"redirect_url\": %s, "
				   "\"expires_at\": %s}",
				   op_json_string(url), op_json_string(op_param(op, "consent_id")),
				   op_json_string(op_param(op, "redirect_url")),
				   op_json_string(op_param(op, "expires_at")));
}

static const OperationStep initiate_oauth_steps[] = {
	{"decide", NULL, oauth_decide, 0},
	{"initiate", build_initiate, initiated, 0},
};

const OperationKind initiate_oauth_kind = {
	"initiate_oauth", initiate_oauth_steps, lengthof_steps(initiate_oauth_steps)
};

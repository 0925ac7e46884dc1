/*-------------------------------------------------------------------------
 *
 * kind_oauth_apps.c
 *	  apply_oauth_apps: the SaaS's own OAuth apps (tenant_airbyte.oauth_apps,
 *	  set_oauth_app()) sent to one tenant's workspace, so that its users'
 *	  consent screens show the SaaS's app instead of Airbyte's.
 *
 * Recorded when a workspace becomes active (a trigger, section 10 of the
 * install script) and by apply_oauth_apps() for the existing ones.
 *
 * apply_oauth_apps (subject: empty)
 *	  step		request					answer leads to
 *	  decide	-						no active workspace, or no app:
 *										nothing to do; else put, first app
 *	  put		PUT /workspaces/{id}/oauthCredentials
 *				{actorType, name, configuration}
 *										next app (put again), or done with
 *										the source types applied; 501:
 *										failed (0A000), the server has no
 *										overrides; other refusals: failed
 *										with Airbyte's title and detail
 *
 * PUT creates or replaces the workspace's override for that source type,
 * so the operation can always be carried out again from its first app.
 * "Nothing half-applied": a 501 arrives at the first app (the server
 * implements no override at all), so no workspace ends with some of the
 * apps; the operation fails saying so, provisioning is not held up (the
 * workspace is active and usable with Airbyte's own apps), and the apps
 * stay in oauth_apps for apply_oauth_apps() once the server supports
 * them.  Any other failure names the apps already applied.
 *
 * The apps' configurations hold client secrets: they are read from the
 * table by the worker at each attempt (never copied into the operation's
 * row) and blanked from every error Airbyte sends back.
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

typedef struct OAuthAppsState
{
	char	   *workspace_id;
	int			napps;
	int			next;			/* the app being applied */
	char	  **source_types;
	char	  **actor_types;
	Jsonb	  **configurations;
} OAuthAppsState;

/* The tenant's active workspace and every app, or nothing to do. */
static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	TenantWorkspace ws;
	OAuthAppsState *state;
	MemoryContext old;

	if (!kind_tenant_workspace(op->tenant_id, &ws) || strcmp(ws.status, "active") != 0)
		return op_nothing_to_do(op, "{\"status\": \"not_found\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));
	if (op_spi("SELECT a.source_type::text, a.actor_type, a.configuration"
			   "  FROM tenant_airbyte.oauth_apps AS a ORDER BY a.source_type",
			   0, NULL, NULL, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the OAuth apps");
	if (SPI_processed == 0)
		return op_nothing_to_do(op, "{\"status\": \"no_apps\", \"tenant_id\": %s}",
								op_json_string(op->tenant_id));

	old = MemoryContextSwitchTo(op->context);
	state = palloc0(sizeof(OAuthAppsState));
	state->workspace_id = pstrdup(ws.workspace_id);
	state->napps = (int) SPI_processed;
	state->source_types = palloc(sizeof(char *) * state->napps);
	state->actor_types = palloc(sizeof(char *) * state->napps);
	state->configurations = palloc(sizeof(Jsonb *) * state->napps);
	for (int i = 0; i < state->napps; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		state->source_types[i] = SPI_getvalue(tuple, desc, 1);
		state->actor_types[i] = SPI_getvalue(tuple, desc, 2);
		state->configurations[i] =
			DatumGetJsonbPCopy(SPI_getbinval(tuple, desc, 3, &isnull));
	}
	MemoryContextSwitchTo(old);
	op->state = state;
	return op_goto(op, "put");
}

/* WorkspaceOAuthCredentialsRequest for the current app. */
static HttpRequest *
build_put(Operation *op)
{
	OAuthAppsState *state = (OAuthAppsState *) op->state;
	Jsonb	   *config = state->configurations[state->next];
	StringInfoData body;

	initStringInfo(&body);
	appendStringInfo(&body, "{\"actorType\": %s, \"name\": %s, \"configuration\": %s}",
					 op_json_string(state->actor_types[state->next]),
					 op_json_string(state->source_types[state->next]),
					 JsonbToCString(NULL, &config->root, VARSIZE(config)));
	return airbyte_prepare(HTTP_PUT,
						   psprintf("/workspaces/%s/oauthCredentials", state->workspace_id),
						   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(body.data))));
}

/* The source types applied so far, as a JSON array. */
static char *
applied_so_far(OAuthAppsState *state, int count)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int i = 0; i < count; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", op_json_string(state->source_types[i]));
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

static StepResult
put_answered(Operation *op, AirbyteResponse *resp)
{
	OAuthAppsState *state = (OAuthAppsState *) op->state;
	const char *type = state->source_types[state->next];

	if (resp->http_status == 501)
		return op_fail(op, ERRCODE_FEATURE_NOT_SUPPORTED,
					   "this Airbyte server does not support OAuth app overrides (HTTP 501)",
					   psprintf("PUT /workspaces/%s/oauthCredentials for \"%s\" was answered 501; "
								"no OAuth app was applied to this workspace.",
								state->workspace_id, type),
					   "Open-source Airbyte servers do not implement workspace OAuth credentials: "
					   "the workspace works with Airbyte's own OAuth apps. The apps stay in "
					   "tenant_airbyte.oauth_apps; run tenant_airbyte.apply_oauth_apps() once the "
					   "server supports them (Airbyte Cloud does).");
	if (resp->outcome != AIRBYTE_OK)
	{
		sources_scrub_response(resp, state->configurations[state->next]);
		if (state->next > 0)
			resp->message = psprintf("%s (already applied: %s)",
									 resp->message ? resp->message : "refused",
									 applied_so_far(state, state->next));
		return op_failed(op, resp, psprintf("apply the OAuth app for \"%s\"", type));
	}
	state->next++;
	if (state->next < state->napps)
		return op_send(op);
	return op_done(op, "{\"status\": \"applied\", \"tenant_id\": %s, \"workspace_id\": %s, "
				   "\"source_types\": %s}",
				   op_json_string(op->tenant_id), op_json_string(state->workspace_id),
				   applied_so_far(state, state->napps));
}

static const OperationStep apply_oauth_apps_steps[] = {
	{"decide", NULL, decide, 0},
	{"put", build_put, put_answered, 0},
};

const OperationKind apply_oauth_apps_kind = {
	"apply_oauth_apps", apply_oauth_apps_steps, lengthof_steps(apply_oauth_apps_steps)
};

/*-------------------------------------------------------------------------
 *
 * sources.c
 *	  Per-tenant Airbyte sources: who may act on a tenant
 *	  (check_tenant_access) and the Airbyte calls behind create_source(),
 *	  delete_source() and initiate_oauth(): POST /sources, GET and DELETE
 *	  /sources/{id}, GET /sources?workspaceIds=, POST /sources/initiateOAuth.
 *
 * The tenant-facing functions record operations of kind_source.c; the
 * superuser-only airbyte_*_source() wrappers here hand operations of
 * kind_admin_sources.c to the worker (admin.h).  Two things are added:
 *
 *	 - A source's configuration carries credentials (access tokens, client
 *	   secrets, refresh tokens).  Airbyte's error answers may quote the
 *	   configuration back, so every string of it that could be a secret is
 *	   blanked out of the answer's title and detail before the SQL error is
 *	   raised, and the configuration is dropped from what is returned.
 *
 *	 - "Who is calling" for check_tenant_access() is the outer role (the
 *	   session role after SET ROLE), not the owner a SECURITY DEFINER
 *	   function runs as.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "admin.h"
#include "airbyte_api.h"
#include "sources.h"
#include "tenant_airbyte.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_check_tenant_access);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_create_source);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_get_source);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_list_sources);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_delete_source);
PG_FUNCTION_INFO_V1(tenant_airbyte_airbyte_initiate_oauth);

/* Any string at least this long is blanked, whatever its key. */
#define SCRUB_MIN_LENGTH 20
/* Under a secret-looking key, shorter ones too (not tiny ones: they would
 * blank ordinary words). */
#define SCRUB_MIN_SECRET_LENGTH 4

/*
 * check_tenant_access(tenant_id text) returns void
 *		Superusers and BYPASSRLS roles may act on any tenant.  Any other role
 *		only on the tenant of its context (tenant_airbyte.tenant_id, set by
 *		authenticate() or a trusted layer), so that passing another
 *		tenant's id to a SECURITY DEFINER function gets nowhere.  The role
 *		judged is the outer one: inside a SECURITY DEFINER function
 *		superuser() would judge the function's owner.
 */
Datum
tenant_airbyte_check_tenant_access(PG_FUNCTION_ARGS)
{
	Oid			caller = GetOuterUserId();
	const char *context = tenant_airbyte_tenant_id;
	char	   *tenant;

	if (superuser_arg(caller) || has_bypassrls_privilege(caller))
		PG_RETURN_VOID();

	if (context == NULL || context[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context: role \"%s\" may not act on any tenant",
						GetUserNameFromId(caller, false)),
				 errhint("Call tenant_airbyte.authenticate(token) with the user's Frontegg "
						 "access token earlier in the same transaction.")));

	tenant = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (tenant == NULL || strcmp(tenant, context) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", tenant ? tenant : "(null)"),
				 errdetail("The tenant context of this transaction is \"%s\"; a tenant-scoped "
						   "role acts only on its own tenant.", context)));
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Keeping credentials out of messages
 * ------------------------------------------------------------------------ */

/* Does a configuration key name something secret (or hold secrets)? */
static bool
key_looks_secret(const char *key, int len)
{
	static const char *const words[] = {
		"token", "secret", "password", "passwd", "key", "credential", "auth",
		"client_id", "private", "cert", "json", NULL
	};
	char	   *k = pnstrdup(key, len);

	for (char *p = k; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	for (int i = 0; words[i] != NULL; i++)
		if (strstr(k, words[i]) != NULL)
			return true;
	return false;
}

/* Keys whose values are names of a choice, never secrets. */
static bool
key_is_selector(const char *key, int len)
{
	return (len == 10 && strncmp(key, "sourceType", len) == 0) ||
		(len == 11 && strncmp(key, "auth_method", len) == 0) ||
		(len == 9 && strncmp(key, "auth_type", len) == 0);
}

/* Adds s, and s as it appears inside a JSON string if different. */
static List *
add_secret(List *secrets, const char *s, int len)
{
	char	   *plain = pnstrdup(s, len);
	StringInfoData escaped;

	secrets = lappend(secrets, plain);
	initStringInfo(&escaped);
	escape_json(&escaped, plain);
	if (escaped.len - 2 != len)
		secrets = lappend(secrets, pnstrdup(escaped.data + 1, escaped.len - 2));
	return secrets;
}

/*
 * collect_secrets
 *		The strings of a configuration (sub)object that could be
 *		credentials: every string under a secret-looking key, or anywhere
 *		below one ("credentials": {...}), except selectors such as
 *		auth_method; and any string long enough to be a token.  Erring on
 *		the side of blanking costs a less specific error message; the
 *		other side costs a leaked credential.
 */
static List *
collect_secrets(JsonbContainer *container, bool secret_subtree, List *secrets)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbValue	v;
	JsonbIteratorToken tok;
	const char *key = NULL;
	int			keylen = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		secret;

		if (tok == WJB_KEY)
		{
			key = v.val.string.val;
			keylen = v.val.string.len;
			continue;
		}
		if (tok != WJB_VALUE && tok != WJB_ELEM)
			continue;
		if (tok == WJB_VALUE && key_is_selector(key, keylen))
			continue;
		secret = secret_subtree || (tok == WJB_VALUE && key_looks_secret(key, keylen));
		if (v.type == jbvBinary)
			secrets = collect_secrets(v.val.binary.data, secret, secrets);
		else if (v.type == jbvString &&
				 (v.val.string.len >= SCRUB_MIN_LENGTH ||
				  (secret && v.val.string.len >= SCRUB_MIN_SECRET_LENGTH)))
			secrets = add_secret(secrets, v.val.string.val, v.val.string.len);
	}
	return secrets;
}

static List *
configuration_secrets(Jsonb *configuration)
{
	if (configuration == NULL || JB_ROOT_IS_SCALAR(configuration))
		return NIL;
	return collect_secrets(&configuration->root, false, NIL);
}

/* text with every occurrence of each secret replaced by "***". */
static char *
scrub_text(const char *text, List *secrets)
{
	char	   *result;
	ListCell   *lc;

	if (text == NULL)
		return NULL;
	result = pstrdup(text);
	foreach(lc, secrets)
	{
		const char *secret = (const char *) lfirst(lc);
		size_t		slen = strlen(secret);
		StringInfoData buf;
		const char *p = result;
		const char *hit;

		if (slen == 0 || strstr(result, secret) == NULL)
			continue;
		initStringInfo(&buf);
		while ((hit = strstr(p, secret)) != NULL)
		{
			appendBinaryStringInfo(&buf, p, hit - p);
			appendStringInfoString(&buf, "***");
			p = hit + slen;
		}
		appendStringInfoString(&buf, p);
		result = buf.data;
	}
	return result;
}

/*
 * sources_scrub_response
 *		Blanks the configuration's secrets from everything Airbyte said in
 *		resp (the create_source operation does this before it records an
 *		error).
 */
void
sources_scrub_response(AirbyteResponse *resp, Jsonb *configuration)
{
	List	   *secrets = configuration_secrets(configuration);

	resp->title = scrub_text(resp->title, secrets);
	resp->detail = scrub_text(resp->detail, secrets);
	resp->message = scrub_text(resp->message, secrets);
}

/* ------------------------------------------------------------------------
 * The Airbyte wrappers (superusers only), carried out by the worker
 * (kind_admin_sources.c)
 * ------------------------------------------------------------------------ */

#define SOURCES_HINT "Tenant-scoped roles use create_source(), delete_source() and initiate_oauth()."

/* The source an operation stored; an answer always has one. */
static Jsonb *
stored_result(int64 operation_id)
{
	Jsonb	   *result = admin_result(operation_id);

	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("operation " INT64_FORMAT " is done but left no result", operation_id)));
	return result;
}

/*
 * airbyte_create_source(workspace_id uuid, name text, configuration jsonb,
 *						 definition_id uuid DEFAULT NULL) returns jsonb
 *		POST /sources {name, workspaceId, configuration, definitionId?}
 *		(SourceCreateRequest).  Returns Airbyte's SourceResponse without its
 *		configuration.  The configuration reaches the worker in memory only,
 *		like create_source()'s; a create whose answer was lost adopts the
 *		workspace's source of that exact name instead of sending it again.
 */
Datum
tenant_airbyte_airbyte_create_source(PG_FUNCTION_ARGS)
{
	char	   *workspace_id;
	char	   *name;
	Jsonb	   *config;
	char	   *definition_id = NULL;
	int64		operation_id;

	admin_require_superuser("airbyte_create_source", SOURCES_HINT);
	workspace_id = admin_uuid_arg(fcinfo, 0, "workspace id");
	name = admin_text_arg(fcinfo, 1, "source name");
	if (PG_ARGISNULL(2) || !JB_ROOT_IS_OBJECT(PG_GETARG_JSONB_P(2)) ||
		JB_ROOT_IS_SCALAR(PG_GETARG_JSONB_P(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source configuration must be a JSON object")));
	config = PG_GETARG_JSONB_P(2);
	if (!PG_ARGISNULL(3))
		definition_id = admin_uuid_arg(fcinfo, 3, "definition id");

	(void) admin_run("admin_create_source",
					 airbyte_json_object(3, "workspace_id", workspace_id, "name", name,
										 "definition_id", definition_id),
					 psprintf("%s/%s", workspace_id, name),
					 JsonbToCString(NULL, &config->root, VARSIZE(config)),
					 &operation_id);
	PG_RETURN_JSONB_P(stored_result(operation_id));
}

/* airbyte_get_source(source_id uuid) returns jsonb, without configuration */
Datum
tenant_airbyte_airbyte_get_source(PG_FUNCTION_ARGS)
{
	char	   *id;
	int64		operation_id;

	admin_require_superuser("airbyte_get_source", SOURCES_HINT);
	id = admin_uuid_arg(fcinfo, 0, "source id");
	(void) admin_run("admin_get_source", airbyte_json_object(1, "source_id", id),
					 admin_unique_subject(), NULL, &operation_id);
	PG_RETURN_JSONB_P(stored_result(operation_id));
}

/* airbyte_list_sources(workspace_id uuid) returns setof jsonb, every page */
Datum
tenant_airbyte_airbyte_list_sources(PG_FUNCTION_ARGS)
{
	char	   *id;
	int64		operation_id;

	admin_require_superuser("airbyte_list_sources", SOURCES_HINT);
	id = admin_uuid_arg(fcinfo, 0, "workspace id");
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	(void) admin_run("admin_list_sources", airbyte_json_object(1, "workspace_id", id),
					 admin_unique_subject(), NULL, &operation_id);
	admin_results_to_srf(operation_id, fcinfo);
	return (Datum) 0;
}

/*
 * airbyte_delete_source(source_id uuid) returns boolean
 *		DELETE /sources/{id}; false when Airbyte did not know it (deleted
 *		already, or with its workspace).  Idempotent, so retried.
 */
Datum
tenant_airbyte_airbyte_delete_source(PG_FUNCTION_ARGS)
{
	char	   *id;
	int64		operation_id;
	Jsonb	   *outcome;

	admin_require_superuser("airbyte_delete_source", SOURCES_HINT);
	id = admin_uuid_arg(fcinfo, 0, "source id");
	outcome = admin_run("admin_delete_source", airbyte_json_object(1, "source_id", id),
						id, NULL, &operation_id);
	PG_RETURN_BOOL(admin_outcome_true(outcome, "deleted"));
}

/*
 * airbyte_initiate_oauth(workspace_id uuid, source_type text,
 *						  redirect_url text) returns text
 *		POST /sources/initiateOAuth (InitiateOauthRequest) -> the consent
 *		URL.  It creates nothing, so it is retried like a read.  Open-source
 *		Airbyte servers answer 501: that is a feature this server lacks, not
 *		a bad request, and says so (0A000).
 */
Datum
tenant_airbyte_airbyte_initiate_oauth(PG_FUNCTION_ARGS)
{
	char	   *workspace_id;
	char	   *source_type;
	char	   *redirect_url;
	int64		operation_id;
	char	   *url;

	admin_require_superuser("airbyte_initiate_oauth", SOURCES_HINT);
	workspace_id = admin_uuid_arg(fcinfo, 0, "workspace id");
	source_type = admin_text_arg(fcinfo, 1, "source type");
	redirect_url = admin_text_arg(fcinfo, 2, "redirect URL");
	(void) admin_run("admin_initiate_oauth",
					 airbyte_json_object(3, "workspace_id", workspace_id,
										 "source_type", source_type,
										 "redirect_url", redirect_url),
					 admin_unique_subject(), NULL, &operation_id);
	url = airbyte_string_field(stored_result(operation_id), "consent_url");
	PG_RETURN_TEXT_P(cstring_to_text(url ? url : ""));
}

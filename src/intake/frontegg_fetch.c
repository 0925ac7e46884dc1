/*-------------------------------------------------------------------------
 *
 * frontegg_fetch.c
 *	  Verify by fetch: what Frontegg's management API says about a tenant.
 *
 * Frontegg's webhook header is a JWT over its own claims only: whoever
 * holds one captured header can send any body with it while the token is
 * fresh (doc/security.md).  With verify by fetch configured
 * (tenant_airbyte.frontegg_api_url, frontegg_client_id, frontegg_api_key),
 * the tenant a tenant.created / updated / deleted delivery names is looked
 * up in Frontegg before anything is done, and what Frontegg answers (the
 * tenant exists, with this name; or it is gone) is acted on, not the body.
 * A forged body then changes nothing: at most it makes us ask again.
 *
 * Two requests, both from Frontegg's API reference:
 *
 *	 POST {frontegg_api_url}/auth/vendor/  {"clientId": ..., "secret": ...}
 *		-> {"token": ..., "expiresIn": seconds}
 *		"Authenticate with env credentials",
 *		https://developers.frontegg.com/api/vendor-service/other/authenticate_vendor
 *
 *	 GET {frontegg_api_url}/tenants/resources/tenants/v1/{tenantId}
 *		Authorization: Bearer <that token>
 *		-> an array: [the tenant] ({tenantId, name, deletedAt, ...}), or []
 *		   when the tenant cannot be found
 *		"Get an account (tenant)",
 *		https://developers.frontegg.com/ciam/api/tenants/accounts/tenantcontrollerv1_gettenant
 *
 * frontegg_api_url is the regional API host: https://api.frontegg.com (EU),
 * https://api.us.frontegg.com, https://api.ca.frontegg.com or
 * https://api.au.frontegg.com.  The requests go through the same libcurl
 * preparation as Airbyte's (http_client.c: TLS verified, no redirects,
 * bounded time and size); the request builders and answer readers are
 * separate so that the background worker can run them on its multi handle.
 * The API key and the vendor token never appear in a message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "airbyte_api.h"
#include "frontegg_fetch.h"
#include "http_client.h"
#include "retry.h"
#include "tenant_airbyte.h"

/* Refresh the vendor token this long before Frontegg says it expires. */
#define FRONTEGG_TOKEN_MARGIN_S 60

/* The cached vendor token, in TopMemoryContext, and what it is for. */
static char *vendor_token = NULL;	/* never in a message */
static time_t vendor_token_refresh_at = 0;
static char *vendor_token_owner = NULL;

PG_FUNCTION_INFO_V1(tenant_airbyte_frontegg_tenant);

/*
 * frontegg_fetch_enabled
 *		Verify by fetch is opt-in: it needs all three settings.
 */
bool
frontegg_fetch_enabled(void)
{
	return tenant_airbyte_frontegg_api_url != NULL && tenant_airbyte_frontegg_api_url[0] != '\0' &&
		tenant_airbyte_frontegg_client_id != NULL && tenant_airbyte_frontegg_client_id[0] != '\0' &&
		tenant_airbyte_frontegg_api_key != NULL && tenant_airbyte_frontegg_api_key[0] != '\0';
}

/* frontegg_api_url (any trailing slashes dropped) + path. */
static char *
frontegg_url(const char *path)
{
	const char *base = tenant_airbyte_frontegg_api_url ? tenant_airbyte_frontegg_api_url : "";
	size_t		len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		len--;
	return psprintf("%.*s%s", (int) len, base, path);
}

HttpRequest *
frontegg_prepare_vendor_auth(void)
{
	Jsonb	   *body = airbyte_json_object(2,
										   "clientId", tenant_airbyte_frontegg_client_id,
										   "secret", tenant_airbyte_frontegg_api_key);

	return http_request_prepare(HTTP_POST, frontegg_url("/auth/vendor/"), NULL,
								JsonbToCString(NULL, &body->root, VARSIZE(body)),
								tenant_airbyte_http_timeout_ms);
}

char *
frontegg_read_vendor_token(AirbyteResponse *resp, int *expires_in, const char **problem)
{
	char	   *token;
	JsonbValue *v;

	*expires_in = 0;
	if (resp->curl_code != CURLE_OK)
	{
		*problem = psprintf("no answer from Frontegg: %s", curl_easy_strerror((CURLcode) resp->curl_code));
		return NULL;
	}
	if (resp->http_status != 200)
	{
		*problem = psprintf("Frontegg refused the vendor credentials (HTTP %ld)", resp->http_status);
		return NULL;
	}
	token = airbyte_string_field(resp->body, "token");
	if (token == NULL || token[0] == '\0')
	{
		*problem = "Frontegg's vendor authentication answer has no token";
		return NULL;
	}
	v = resp->body ? airbyte_object_field(&resp->body->root, "expiresIn") : NULL;
	if (v != NULL && v->type == jbvNumeric)
		*expires_in = DatumGetInt32(DirectFunctionCall1(numeric_int4,
														NumericGetDatum(v->val.numeric)));
	return token;
}

HttpRequest *
frontegg_prepare_get_tenant(const char *tenant_id, const char *token)
{
	char	   *escaped = curl_easy_escape(NULL, tenant_id, 0);
	char	   *path;

	if (escaped == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	path = psprintf("/tenants/resources/tenants/v1/%s", escaped);
	curl_free(escaped);
	return http_request_prepare(HTTP_GET, frontegg_url(path), token, NULL,
								tenant_airbyte_http_timeout_ms);
}

/*
 * tenant_from
 *		The tenant object for tenant_id in Frontegg's answer: the answer is
 *		an array (or, defensively, the object itself); the element must name
 *		the same tenantId, so an answer about another tenant is never taken
 *		for this one.
 */
static JsonbContainer *
tenant_from(Jsonb *body, const char *tenant_id, bool *malformed)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;

	*malformed = false;
	if (body == NULL)
	{
		*malformed = true;
		return NULL;
	}
	if (JB_ROOT_IS_OBJECT(body))
	{
		char	   *id = airbyte_string_field(body, "tenantId");

		if (id != NULL && strcmp(id, tenant_id) == 0)
			return &body->root;
		*malformed = (id == NULL);
		return NULL;
	}
	if (!JB_ROOT_IS_ARRAY(body) || JB_ROOT_IS_SCALAR(body))
	{
		*malformed = true;
		return NULL;
	}
	it = JsonbIteratorInit(&body->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbValue *id;

		if (token != WJB_ELEM || v.type != jbvBinary)
			continue;
		id = airbyte_object_field(v.val.binary.data, "tenantId");
		if (id != NULL && id->type == jbvString &&
			id->val.string.len == (int) strlen(tenant_id) &&
			memcmp(id->val.string.val, tenant_id, id->val.string.len) == 0)
			return v.val.binary.data;
	}
	return NULL;
}

FronteggTenantAnswer
frontegg_read_tenant(AirbyteResponse *resp, const char *tenant_id, char **name,
					 const char **problem)
{
	JsonbContainer *tenant;
	JsonbValue *v;
	bool		malformed;

	*name = NULL;
	*problem = NULL;
	if (resp->curl_code != CURLE_OK)
	{
		*problem = psprintf("no answer from Frontegg: %s", curl_easy_strerror((CURLcode) resp->curl_code));
		return retry_curl_code_is_transient(resp->curl_code) ? FRONTEGG_TRANSIENT : FRONTEGG_FAILED;
	}
	if (resp->http_status == 404)
		return FRONTEGG_TENANT_GONE;
	if (resp->http_status == 401 || resp->http_status == 403)
	{
		*problem = psprintf("Frontegg refused the vendor token (HTTP %ld)", resp->http_status);
		return FRONTEGG_UNAUTHORIZED;
	}
	if (retry_http_status_is_transient(resp->http_status))
	{
		*problem = psprintf("Frontegg is unavailable (HTTP %ld)", resp->http_status);
		return FRONTEGG_TRANSIENT;
	}
	if (resp->http_status != 200)
	{
		*problem = psprintf("Frontegg answered HTTP %ld to the tenant lookup", resp->http_status);
		return FRONTEGG_FAILED;
	}

	tenant = tenant_from(resp->body, tenant_id, &malformed);
	if (malformed)
	{
		*problem = "Frontegg's tenant answer is not the expected JSON";
		return FRONTEGG_FAILED;
	}
	if (tenant == NULL)
		return FRONTEGG_TENANT_GONE;
	v = airbyte_object_field(tenant, "deletedAt");
	if (v != NULL && v->type != jbvNull)
		return FRONTEGG_TENANT_GONE;
	v = airbyte_object_field(tenant, "name");
	if (v != NULL && v->type == jbvString)
		*name = pnstrdup(v->val.string.val, v->val.string.len);
	return FRONTEGG_TENANT_EXISTS;
}

/*
 * frontegg_cached_token
 *		The vendor token this process holds for the current settings, or
 *		NULL when it has none or it is about to expire.
 */
const char *
frontegg_cached_token(void)
{
	char	   *owner = psprintf("%s\n%s\n%s", tenant_airbyte_frontegg_api_url,
								 tenant_airbyte_frontegg_client_id,
								 tenant_airbyte_frontegg_api_key);
	bool		good = vendor_token != NULL && time(NULL) < vendor_token_refresh_at &&
		strcmp(owner, vendor_token_owner) == 0;

	pfree(owner);
	return good ? vendor_token : NULL;
}

/* frontegg_remember_token: keep a new vendor token for expires_in seconds. */
void
frontegg_remember_token(const char *token, int expires_in)
{
	char	   *owner = psprintf("%s\n%s\n%s", tenant_airbyte_frontegg_api_url,
								 tenant_airbyte_frontegg_client_id,
								 tenant_airbyte_frontegg_api_key);

	frontegg_forget_token();
	vendor_token = MemoryContextStrdup(TopMemoryContext, token);
	vendor_token_owner = MemoryContextStrdup(TopMemoryContext, owner);
	vendor_token_refresh_at = time(NULL) + Max(0, expires_in - FRONTEGG_TOKEN_MARGIN_S);
	pfree(owner);
}

/* frontegg_forget_token: after Frontegg refused it. */
void
frontegg_forget_token(void)
{
	if (vendor_token != NULL)
		pfree(vendor_token);
	if (vendor_token_owner != NULL)
		pfree(vendor_token_owner);
	vendor_token = NULL;
	vendor_token_owner = NULL;
	vendor_token_refresh_at = 0;
}

/*
 * current_vendor_token
 *		The cached vendor token, or a new one fetched synchronously; NULL
 *		and *problem set when Frontegg gives none.
 */
static const char *
current_vendor_token(bool force_new, const char **problem)
{
	const char *cached = force_new ? NULL : frontegg_cached_token();
	HttpRequest *req;
	AirbyteResponse resp;
	char	   *token;
	int			expires_in;

	if (cached != NULL)
		return cached;

	req = frontegg_prepare_vendor_auth();
	http_request_perform(req);
	airbyte_classify(req, &resp);
	http_request_free(req);
	token = frontegg_read_vendor_token(&resp, &expires_in, problem);
	if (token == NULL)
		return NULL;
	frontegg_remember_token(token, expires_in);
	return frontegg_cached_token();
}

FronteggTenantAnswer
frontegg_lookup_tenant(const char *tenant_id, char **name, const char **problem)
{
	FronteggTenantAnswer answer = FRONTEGG_UNAUTHORIZED;

	*name = NULL;
	for (int attempt = 0; attempt < 2 && answer == FRONTEGG_UNAUTHORIZED; attempt++)
	{
		const char *token = current_vendor_token(attempt > 0, problem);
		HttpRequest *req;
		AirbyteResponse resp;

		if (token == NULL)
			return FRONTEGG_UNAUTHORIZED;
		req = frontegg_prepare_get_tenant(tenant_id, token);
		http_request_perform(req);
		airbyte_classify(req, &resp);
		http_request_free(req);
		answer = frontegg_read_tenant(&resp, tenant_id, name, problem);
	}
	return answer;
}

/* {"exists": true, "name": name-or-null} or {"exists": false} */
static Jsonb *
tenant_answer_json(bool exists, const char *name)
{
	JsonbParseState *state = NULL;
	JsonbValue	k;
	JsonbValue	v;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "exists";
	k.val.string.len = 6;
	pushJsonbValue(&state, WJB_KEY, &k);
	v.type = jbvBool;
	v.val.boolean = exists;
	pushJsonbValue(&state, WJB_VALUE, &v);
	if (exists)
	{
		k.val.string.val = "name";
		k.val.string.len = 4;
		pushJsonbValue(&state, WJB_KEY, &k);
		if (name != NULL)
		{
			v.type = jbvString;
			v.val.string.val = (char *) name;
			v.val.string.len = strlen(name);
		}
		else
			v.type = jbvNull;
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/*
 * tenant_airbyte_frontegg_tenant
 *		frontegg_tenant(tenant_id text) RETURNS jsonb: what Frontegg says
 *		about the tenant, {"exists": true, "name": ...} or {"exists": false};
 *		an ERROR when verify by fetch is not configured or Frontegg gives no
 *		usable answer.  For operators checking the configuration, and the
 *		tests; superusers only.
 */
Datum
tenant_airbyte_frontegg_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name;
	const char *problem = NULL;
	FronteggTenantAnswer answer;

	if (!frontegg_fetch_enabled())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("verify by fetch is not configured"),
				 errhint("Set tenant_airbyte.frontegg_api_url, tenant_airbyte.frontegg_client_id and tenant_airbyte.frontegg_api_key.")));

	answer = frontegg_lookup_tenant(tenant_id, &name, &problem);
	if (answer == FRONTEGG_TENANT_EXISTS)
		PG_RETURN_JSONB_P(tenant_answer_json(true, name));
	if (answer == FRONTEGG_TENANT_GONE)
		PG_RETURN_JSONB_P(tenant_answer_json(false, NULL));

	ereport(ERROR,
			(errcode(answer == FRONTEGG_UNAUTHORIZED ? ERRCODE_AIRBYTE_AUTH_FAILED : ERRCODE_AIRBYTE_UNAVAILABLE),
			 errmsg("could not look up tenant \"%s\" in Frontegg", tenant_id),
			 errdetail("%s", problem ? problem : "no usable answer"),
			 errhint(answer == FRONTEGG_UNAUTHORIZED ?
					 "Check tenant_airbyte.frontegg_client_id and tenant_airbyte.frontegg_api_key (Frontegg portal, environment settings)." :
					 "Check tenant_airbyte.frontegg_api_url and that Frontegg is reachable from the database host.")));
	PG_RETURN_NULL();			/* keep compiler quiet */
}

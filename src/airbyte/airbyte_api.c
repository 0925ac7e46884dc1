/*-------------------------------------------------------------------------
 *
 * airbyte_api.c
 *	  The Airbyte API v1 as tenant_airbyte uses it: request builders,
 *	  classification of answers, the bearer token cache (the worker's one
 *	  synchronous call), and Airbyte failures as SQL errors.  See airbyte_api.h
 *	  for the layers and who uses which.
 *
 * Bodies are built and read with PostgreSQL's jsonb in airbyte_json.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "airbyte_api.h"
#include "retry.h"
#include "shmem.h"
#include "tenant_airbyte.h"

/* The cached client-credentials token, in TopMemoryContext. */
static char *token_value = NULL;
static time_t token_refresh_at = 0;
static char *token_owner = NULL;	/* api_url + client_id + secret it is for */

static void airbyte_call_internal(HttpMethod method, const char *path,
								  Jsonb *body, bool idempotent, bool with_auth,
								  AirbyteResponse *resp);
static void fetch_token(void);

/* ------------------------------------------------------------------------
 * Request builders
 * ------------------------------------------------------------------------ */

/*
 * airbyte_url
 *		tenant_airbyte.api_url (with or without a trailing slash) + path.
 */
char *
airbyte_url(const char *path)
{
	const char *base = tenant_airbyte_api_url ? tenant_airbyte_api_url : "";
	size_t		len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		len--;
	return psprintf("%.*s%s", (int) len, base, path);
}

/* A path segment or query value, percent-encoded. */
static char *
escape(const char *s)
{
	char	   *e = curl_easy_escape(NULL, s, 0);
	char	   *result;

	if (e == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	result = pstrdup(e);
	curl_free(e);
	return result;
}

/*
 * require_worker_process
 *		Only the background worker talks to Airbyte: SQL functions hand
 *		their work to it (engine_run()), so that every effect is an
 *		operation row committed before its request is sent.  A request
 *		prepared anywhere else is a bug; refuse it before libcurl is
 *		touched, and say where it came from.
 */
static void
require_worker_process(HttpMethod method, const char *path)
{
	int			pid = 0;
	Oid			database;
	Oid			connected_to;

	if (shmem_worker_serving(&pid, &database, &connected_to) && pid == MyProcPid &&
		pid != 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("tenant_airbyte: only the background worker may send requests to Airbyte"),
			 errdetail("A %s %s request was prepared in process %d (%s).",
					   http_method_name(method), path, MyProcPid,
					   GetBackendTypeDesc(MyBackendType)),
			 errhint("SQL functions record an operation and hand it to the worker (engine_run()); report this as a bug.")));
}

static HttpRequest *
prepare_internal(HttpMethod method, const char *path, Jsonb *body, bool with_auth)
{
	char	   *json;
	const char *token;

	require_worker_process(method, path);
	json = body ? JsonbToCString(NULL, &body->root, VARSIZE(body)) : NULL;
	token = with_auth ? airbyte_bearer_token() : NULL;

	return http_request_prepare(method, airbyte_url(path), token, json,
								tenant_airbyte_http_timeout_ms);
}

/*
 * airbyte_prepare
 *		Any Airbyte request, authenticated.  path starts with "/" and is
 *		already escaped.
 */
HttpRequest *
airbyte_prepare(HttpMethod method, const char *path, Jsonb *body)
{
	return prepare_internal(method, path, body, true);
}

HttpRequest *
airbyte_prepare_create_workspace(const char *name, const char *organization_id)
{
	return airbyte_prepare(HTTP_POST, "/workspaces",
						   airbyte_json_object(2, "name", name,
											   "organizationId", organization_id));
}

HttpRequest *
airbyte_prepare_get_workspace(const char *workspace_id)
{
	return airbyte_prepare(HTTP_GET, psprintf("/workspaces/%s", escape(workspace_id)), NULL);
}

HttpRequest *
airbyte_prepare_list_workspaces(int limit, int offset, bool include_deleted)
{
	return airbyte_prepare(HTTP_GET,
						   psprintf("/workspaces?includeDeleted=%s&limit=%d&offset=%d",
									include_deleted ? "true" : "false", limit, offset),
						   NULL);
}

HttpRequest *
airbyte_prepare_rename_workspace(const char *workspace_id, const char *name)
{
	return airbyte_prepare(HTTP_PATCH, psprintf("/workspaces/%s", escape(workspace_id)),
						   airbyte_json_object(1, "name", name));
}

HttpRequest *
airbyte_prepare_delete_workspace(const char *workspace_id)
{
	return airbyte_prepare(HTTP_DELETE, psprintf("/workspaces/%s", escape(workspace_id)), NULL);
}

HttpRequest *
airbyte_prepare_list_jobs(const char *workspace_id, const char *status,
						  int limit, int offset)
{
	return airbyte_prepare(HTTP_GET,
						   psprintf("/jobs?workspaceIds=%s&status=%s&limit=%d&offset=%d",
									escape(workspace_id), escape(status), limit, offset),
						   NULL);
}

HttpRequest *
airbyte_prepare_cancel_job(int64 job_id)
{
	return airbyte_prepare(HTTP_DELETE, psprintf("/jobs/" INT64_FORMAT, job_id), NULL);
}

/* ------------------------------------------------------------------------
 * Bearer token
 * ------------------------------------------------------------------------ */

bool
airbyte_token_is_refreshable(void)
{
	return tenant_airbyte_api_token == NULL || tenant_airbyte_api_token[0] == '\0';
}

void
airbyte_forget_token(void)
{
	if (token_value != NULL)
	{
		explicit_bzero(token_value, strlen(token_value));
		pfree(token_value);
	}
	token_value = NULL;
	token_refresh_at = 0;
}

/* What the cached token was obtained with; a change means fetch again. */
static char *
token_owner_key(void)
{
	return psprintf("%s\x01%s\x01%s", tenant_airbyte_api_url,
					tenant_airbyte_client_id, tenant_airbyte_client_secret);
}

const char *
airbyte_bearer_token(void)
{
	char	   *owner;

	if (!airbyte_token_is_refreshable())
		return tenant_airbyte_api_token;

	if (tenant_airbyte_client_id == NULL || tenant_airbyte_client_id[0] == '\0' ||
		tenant_airbyte_client_secret == NULL || tenant_airbyte_client_secret[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_AIRBYTE_AUTH_FAILED),
				 errmsg("no Airbyte credentials are configured"),
				 errhint("Set tenant_airbyte.api_token, or tenant_airbyte.client_id and "
						 "tenant_airbyte.client_secret, in postgresql.conf or with ALTER SYSTEM, "
						 "then SELECT pg_reload_conf().  If you have just done so, open a new "
						 "session: a reload reaches a session that is already running only "
						 "later, between its statements.")));

	owner = token_owner_key();
	if (token_value == NULL || token_owner == NULL ||
		strcmp(owner, token_owner) != 0 || time(NULL) >= token_refresh_at)
	{
		airbyte_forget_token();
		fetch_token();
		if (token_owner != NULL)
		{
			explicit_bzero(token_owner, strlen(token_owner));
			pfree(token_owner);
		}
		token_owner = MemoryContextStrdup(TopMemoryContext, owner);
	}
	explicit_bzero(owner, strlen(owner));
	pfree(owner);
	return token_value;
}

/*
 * fetch_token
 *		POST /applications/token.  The token is kept until 60 s before
 *		expires_in runs out (half its life when that is shorter), because a
 *		request that starts just before expiry would otherwise fail with 401.
 */
static void
fetch_token(void)
{
	AirbyteResponse resp;
	Jsonb	   *body = airbyte_json_object(2,
										   "client_id", tenant_airbyte_client_id,
										   "client_secret", tenant_airbyte_client_secret);
	JsonbValue *expires;
	char	   *token;
	int64		lifetime = 0;

	airbyte_call_internal(HTTP_POST, "/applications/token", body, true, false, &resp);
	if (resp.outcome == AIRBYTE_UNAUTHORIZED)
		ereport(ERROR,
				(errcode(ERRCODE_AIRBYTE_AUTH_FAILED),
				 errmsg("Airbyte refused tenant_airbyte.client_id and tenant_airbyte.client_secret"),
				 errdetail("%s", resp.message),
				 errhint("Check the application's client id and secret in Airbyte "
						 "(Settings, Applications).")));
	if (resp.outcome != AIRBYTE_OK)
		airbyte_report_error(&resp, "obtain an access token");

	token = airbyte_string_field(resp.body, "access_token");
	expires = resp.body ? airbyte_object_field(&resp.body->root, "expires_in") : NULL;
	if (expires != NULL && expires->type == jbvNumeric)
		lifetime = DatumGetInt64(DirectFunctionCall1(numeric_int8,
													 NumericGetDatum(expires->val.numeric)));
	if (token == NULL || token[0] == '\0' || lifetime <= 0)
	{
		resp.outcome = AIRBYTE_BAD_RESPONSE;
		resp.message = "the answer has no access_token or no positive expires_in";
		airbyte_report_error(&resp, "obtain an access token");
	}

	token_value = MemoryContextStrdup(TopMemoryContext, token);
	explicit_bzero(token, strlen(token));
	token_refresh_at = time(NULL) + (lifetime > 120 ? lifetime - 60 : lifetime / 2);
}

/* ------------------------------------------------------------------------
 * Classification
 * ------------------------------------------------------------------------ */

/*
 * airbyte_classify
 *		What a finished request means.  Reads the body, so call it before
 *		http_request_free().
 */
void
airbyte_classify(HttpRequest *req, AirbyteResponse *resp)
{
	long		status = req->http_status;

	memset(resp, 0, sizeof(AirbyteResponse));
	resp->http_status = status;
	resp->curl_code = req->curl_code;
	resp->retry_after_ms = -1;

	if (req->curl_code != CURLE_OK)
	{
		if (req->curl_code == CURLE_FILESIZE_EXCEEDED)
			resp->outcome = AIRBYTE_BAD_RESPONSE;
		else if (retry_curl_code_is_transient(req->curl_code))
			resp->outcome = AIRBYTE_TRANSIENT;
		else
			resp->outcome = AIRBYTE_UNREACHABLE;
		resp->may_have_taken_effect = retry_may_have_taken_effect(req->curl_code, 0);
		resp->message = psprintf("no answer from Airbyte: %s", req->error_text);
		return;
	}

	if (req->body != NULL && req->body_len > 0)
		resp->body = airbyte_parse_json(req->body, req->body_len);
	resp->retry_after_ms = retry_after_ms(req->retry_after, (pg_time_t) time(NULL));
	resp->may_have_taken_effect = retry_may_have_taken_effect(CURLE_OK, status);

	if (status >= 200 && status < 300)
	{
		if (req->body_len > 0 && resp->body == NULL)
		{
			resp->outcome = AIRBYTE_BAD_RESPONSE;
			resp->message = psprintf("HTTP %ld with a body that is not valid JSON", status);
		}
		else
		{
			resp->outcome = AIRBYTE_OK;
			resp->message = psprintf("HTTP %ld", status);
		}
		return;
	}

	resp->title = airbyte_string_field(resp->body, "title");
	resp->detail = airbyte_string_field(resp->body, "detail");
	if (resp->detail == NULL)
		resp->detail = airbyte_string_field(resp->body, "message");

	if (status == 401 || status == 403)
		resp->outcome = AIRBYTE_UNAUTHORIZED;
	else if (status == 404)
		resp->outcome = AIRBYTE_NOT_FOUND;
	else if (retry_http_status_is_transient(status))
		resp->outcome = AIRBYTE_TRANSIENT;
	else
		resp->outcome = AIRBYTE_REJECTED;

	resp->message = psprintf("HTTP %ld%s%s%s%s", status,
							 resp->title ? " " : "", resp->title ? resp->title : "",
							 resp->detail ? ": " : "", resp->detail ? resp->detail : "");

	/* The retry policy will not wait that long: say so where it is recorded. */
	if (resp->outcome == AIRBYTE_TRANSIENT && retry_after_is_capped(resp->retry_after_ms))
		resp->message = psprintf("%s (Retry-After of " INT64_FORMAT " s capped at %d s (tenant_airbyte.max_retry_after_s))",
								 resp->message, resp->retry_after_ms / 1000,
								 tenant_airbyte_max_retry_after_s);
}

/* ------------------------------------------------------------------------
 * Synchronous calls
 * ------------------------------------------------------------------------ */

/* Waits ms milliseconds, answering interrupts as they come. */
void
airbyte_sleep_ms(int64 ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * perform_once
 *		One attempt; the handle is released on every path, ERROR included.
 */
static void
perform_once(HttpRequest *req, AirbyteResponse *resp)
{
	PG_TRY();
	{
		http_request_perform(req);
		airbyte_classify(req, resp);
	}
	PG_CATCH();
	{
		http_request_free(req);
		PG_RE_THROW();
	}
	PG_END_TRY();
	http_request_free(req);
}

static void
airbyte_call_internal(HttpMethod method, const char *path, Jsonb *body,
					  bool idempotent, bool with_auth, AirbyteResponse *resp)
{
	bool		refreshed = false;
	int			max_attempts = Max(tenant_airbyte_max_attempts, 1);

	for (int attempt = 1;; attempt++)
	{
		int64		delay;

		perform_once(prepare_internal(method, path, body, with_auth), resp);
		resp->attempts = attempt;

		/* A stale client-credentials token heals once, without an attempt. */
		if (with_auth && resp->http_status == 401 && !refreshed &&
			airbyte_token_is_refreshable())
		{
			airbyte_forget_token();
			refreshed = true;
			attempt--;
			continue;
		}
		if (resp->outcome != AIRBYTE_TRANSIENT)
			return;
		if (!idempotent && resp->may_have_taken_effect)
			return;
		if (attempt >= max_attempts)
			return;
		delay = retry_delay_ms(attempt, RETRY_BASE_MS, RETRY_CAP_MS,
							   pg_prng_double(&pg_global_prng_state),
							   resp->retry_after_ms);
		if (delay > AIRBYTE_SYNC_MAX_WAIT_MS)
			return;
		elog(DEBUG1, "tenant_airbyte: %s %s failed (%s), attempt %d, retrying in " INT64_FORMAT " ms",
			 http_method_name(method), path, resp->message, attempt, delay);
		airbyte_sleep_ms(delay);
	}
}

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/* "after 3 attempts" when there was more than one. */
static const char *
attempts_note(const AirbyteResponse *resp)
{
	if (resp->attempts > 1)
		return psprintf(" (after %d attempts)", resp->attempts);
	return "";
}

/*
 * airbyte_describe_error
 *		What airbyte_report_error() raises, as data: the background worker
 *		records it in an operation's outcome, and the SQL function waiting
 *		for the operation raises it.
 */
void
airbyte_describe_error(const AirbyteResponse *resp, const char *action, AirbyteError *err)
{
	const char *message = resp->message ? resp->message : "no details";

	memset(err, 0, sizeof(*err));
	switch (resp->outcome)
	{
		case AIRBYTE_TRANSIENT:
			err->sqlstate = ERRCODE_AIRBYTE_UNAVAILABLE;
			err->message = psprintf("could not %s: Airbyte is unavailable", action);
			err->detail = psprintf("%s%s", message, attempts_note(resp));
			err->hint = resp->may_have_taken_effect ?
				"Airbyte may have carried out the request anyway; check before repeating it "
				"(provision_tenant() does that by itself)." :
				"Try again later; tenant_airbyte.max_attempts and "
				"tenant_airbyte.http_timeout_ms bound the retries.";
			break;
		case AIRBYTE_UNREACHABLE:
			err->sqlstate = ERRCODE_AIRBYTE_UNAVAILABLE;
			err->message = psprintf("could not reach Airbyte to %s", action);
			err->detail = pstrdup(message);
			err->hint = psprintf("Check tenant_airbyte.api_url (\"%s\") and that its TLS certificate "
								 "is valid for that host and signed by an authority the server trusts "
								 "(tenant_airbyte.ca_file names a private one).", tenant_airbyte_api_url);
			break;
		case AIRBYTE_UNAUTHORIZED:
			err->sqlstate = ERRCODE_AIRBYTE_AUTH_FAILED;
			err->message = psprintf("Airbyte refused the credentials while trying to %s", action);
			err->detail = pstrdup(message);
			err->hint = resp->http_status == 403 ?
				"The credentials are valid but lack permission for this; "
				"check the application's role in Airbyte." :
				"Check tenant_airbyte.api_token, or tenant_airbyte.client_id "
				"and tenant_airbyte.client_secret.";
			break;
		case AIRBYTE_NOT_FOUND:
			err->sqlstate = ERRCODE_AIRBYTE_NOT_FOUND;
			err->message = psprintf("could not %s: Airbyte does not know it", action);
			err->detail = pstrdup(message);
			break;
		case AIRBYTE_REJECTED:
			err->sqlstate = ERRCODE_AIRBYTE_REJECTED;
			err->message = psprintf("Airbyte rejected the request to %s", action);
			err->detail = pstrdup(message);
			err->hint = resp->http_status == 501 ?
				"This Airbyte server does not implement this operation." :
				(resp->http_status >= 300 && resp->http_status < 400) ?
				"Airbyte answered with a redirect, which is never followed; "
				"check tenant_airbyte.api_url." : NULL;
			break;
		case AIRBYTE_BAD_RESPONSE:
			err->sqlstate = ERRCODE_AIRBYTE_BAD_RESPONSE;
			err->message = psprintf("could not use Airbyte's answer to %s", action);
			err->detail = pstrdup(message);
			err->hint = "Check that tenant_airbyte.api_url points at the Airbyte API "
				"(https://api.airbyte.com/v1 or <host>/api/public/v1).";
			break;
		case AIRBYTE_OK:
			elog(ERROR, "airbyte_describe_error called for a successful response");
			break;
	}
}

void
airbyte_report_error(const AirbyteResponse *resp, const char *action)
{
	AirbyteError err;

	airbyte_describe_error(resp, action, &err);
	ereport(ERROR,
			(errcode(err.sqlstate),
			 errmsg("%s", err.message),
			 errdetail("%s", err.detail),
			 err.hint ? errhint("%s", err.hint) : 0));
	pg_unreachable();
}

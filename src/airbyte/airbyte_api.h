/*-------------------------------------------------------------------------
 *
 * airbyte_api.h
 *	  The Airbyte API v1 as tenant_airbyte uses it: request builders,
 *	  response classification and parsing, the bearer token (static or
 *	  client credentials, cached per process), and turning a failure into
 *	  an SQL error.  Only the background worker may prepare a request.
 *
 * Layers, so the background worker can take the parts it needs:
 *
 *	 1. airbyte_prepare_*()   an HttpRequest ready to run (http_client.h):
 *							  URL, method, auth header, JSON body.  No I/O
 *							  except fetching a token when none is cached.
 *	 2. airbyte_classify()	  a finished HttpRequest -> AirbyteResponse:
 *							  outcome, status, Retry-After, Airbyte's
 *							  title/detail, the parsed body.  Never ERRORs
 *							  on a bad answer.
 *	 3. airbyte_workspace_id(), airbyte_page_*()   read fields of a body.
 *	 4. the worker-only rule: every builder refuses any other process.
 *	 5. airbyte_report_error()  a failed response -> ereport(ERROR) with the
 *							  TA SQLSTATEs of tenant_airbyte.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_AIRBYTE_API_H
#define TENANT_AIRBYTE_AIRBYTE_API_H

#include "nodes/pg_list.h"
#include "pg_compat.h"
#include "utils/jsonb.h"

#include "http_client.h"

/* Largest page the list endpoints allow. */
#define AIRBYTE_PAGE_LIMIT 100

/* A synchronous call gives up rather than wait longer than this at once. */
#define AIRBYTE_SYNC_MAX_WAIT_MS 60000

typedef enum AirbyteOutcome
{
	AIRBYTE_OK,					/* 2xx with a usable (or empty) body */
	AIRBYTE_TRANSIENT,			/* worth another attempt: 408/425/429/5xx,
								 * timeouts, connection errors */
	AIRBYTE_UNAUTHORIZED,		/* 401 or 403 */
	AIRBYTE_NOT_FOUND,			/* 404 */
	AIRBYTE_REJECTED,			/* any other 4xx: do not retry */
	AIRBYTE_UNREACHABLE,		/* a transport failure that retrying will
								 * not fix: bad URL, TLS verification */
	AIRBYTE_BAD_RESPONSE		/* 2xx we cannot use: not JSON, too large,
								 * a field missing */
} AirbyteOutcome;

typedef struct AirbyteResponse
{
	AirbyteOutcome outcome;
	long		http_status;	/* 0 when no answer arrived */
	int			curl_code;
	bool		may_have_taken_effect;	/* see retry_may_have_taken_effect() */
	int64		retry_after_ms; /* -1 when the server did not say */
	int			attempts;		/* attempts made for this answer */
	Jsonb	   *body;			/* parsed JSON body, or NULL */
	char	   *title;			/* Airbyte's error title, or NULL */
	char	   *detail;			/* Airbyte's error detail, or NULL */
	char	   *message;		/* one line for logs and last_error; never
								 * holds a secret */
} AirbyteResponse;

/* --- 1. request builders (path segments are escaped here) --- */
extern char *airbyte_url(const char *path);
extern HttpRequest *airbyte_prepare(HttpMethod method, const char *path,
									Jsonb *body);
extern HttpRequest *airbyte_prepare_create_workspace(const char *name,
													 const char *organization_id);
extern HttpRequest *airbyte_prepare_get_workspace(const char *workspace_id);
extern HttpRequest *airbyte_prepare_list_workspaces(int limit, int offset,
													bool include_deleted);
extern HttpRequest *airbyte_prepare_rename_workspace(const char *workspace_id,
													 const char *name);
extern HttpRequest *airbyte_prepare_delete_workspace(const char *workspace_id);
extern HttpRequest *airbyte_prepare_list_jobs(const char *workspace_id,
											  const char *status,
											  int limit, int offset);
extern HttpRequest *airbyte_prepare_cancel_job(int64 job_id);

/* --- bearer token --- */
/*
 * airbyte_bearer_token
 *		tenant_airbyte.api_token when set; otherwise an access token from
 *		POST /applications/token with client_id/client_secret, cached in
 *		this process until 60 s before it expires (fetched synchronously
 *		when needed).  ERRORs when neither is configured or the fetch fails.
 */
extern const char *airbyte_bearer_token(void);
/* True when the token comes from client credentials (so a 401 may heal). */
extern bool airbyte_token_is_refreshable(void);
/* Drop the cached token (after a 401); the next call fetches a new one. */
extern void airbyte_forget_token(void);

/* --- 2. classification --- */
extern void airbyte_classify(HttpRequest *req, AirbyteResponse *resp);
/* Parse text as JSON without ERROR: NULL when it is not valid JSON. */
extern Jsonb *airbyte_parse_json(const char *text, size_t len);

/* --- 3. reading bodies --- */
/* A string field of the top-level object, palloc'd, or NULL. */
extern char *airbyte_string_field(Jsonb *body, const char *key);
/* workspaceId of a WorkspaceResponse, or NULL. */
extern char *airbyte_workspace_id(Jsonb *body);
/* Number of elements of "data" in a list response (-1 if none). */
extern int	airbyte_page_length(Jsonb *body);
/*
 * An object of a list page found by its name: its id (the field id_key
 * names, such as "connectionId") and, when asked for, one more string
 * field (such as "destinationType"; NULL when absent).
 */
typedef struct AirbyteNamedObject
{
	char	   *name;
	char	   *id;
	char	   *extra;
} AirbyteNamedObject;

/*
 * The objects of a list page named exactly name, in page order (every
 * object with a string name and id when name is NULL), as a List of
 * AirbyteNamedObject *.  *page_length (when not NULL) is the length of the
 * page's "data" array, -1 when the answer has none.
 */
extern List *airbyte_page_named(Jsonb *body, const char *name, const char *id_key,
								const char *extra_key, int *page_length);
/* The id of the first object named name on the page, or NULL; as above. */
extern char *airbyte_page_id_named(Jsonb *body, const char *name, const char *id_key,
								   int *page_length);
/* Whether a page of this length may have a successor (a full page). */
#define airbyte_page_may_continue(page_length) ((page_length) >= AIRBYTE_PAGE_LIMIT)
/* jobIds of a jobs page (List of char *, decimal). */
extern List *airbyte_page_job_ids(Jsonb *body);
/* A field of a JSON object, or NULL. */
extern JsonbValue *airbyte_object_field(JsonbContainer *container, const char *key);
/* The "data" array of a list response, or NULL. */
extern JsonbContainer *airbyte_page_data(Jsonb *body);

/*
 * --- 4. the background worker only ---
 * Every request builder above refuses to run in any process but the
 * background worker (SQL functions hand their work to it).  The worker
 * itself performs one request synchronously: POST /applications/token for
 * a client-credentials token (airbyte_bearer_token()).
 */

/* Sleeps in a backend, answering query cancel and termination at once. */
extern void airbyte_sleep_ms(int64 ms);

/* --- 5. errors --- */
/*
 * airbyte_report_error
 *		ereport(ERROR) for a failed response: TA SQLSTATE by outcome, errmsg
 *		naming the action ("create workspace \"Acme - org-1234\""), the HTTP
 *		status and Airbyte's title/detail in errdetail, and a hint.
 */
pg_noreturn extern void airbyte_report_error(const AirbyteResponse *resp,
											 const char *action);

/* The same, as data (for an operation's recorded outcome). */
typedef struct AirbyteError
{
	int			sqlstate;
	char	   *message;
	char	   *detail;
	const char *hint;
} AirbyteError;
extern void airbyte_describe_error(const AirbyteResponse *resp, const char *action,
								   AirbyteError *err);

/* Small JSON builder: an object of string pairs, NULL values skipped. */
extern Jsonb *airbyte_json_object(int npairs, ...);

#endif							/* TENANT_AIRBYTE_AIRBYTE_API_H */

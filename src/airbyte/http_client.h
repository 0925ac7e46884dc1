/*-------------------------------------------------------------------------
 *
 * http_client.h
 *	  libcurl mechanics for talking to Airbyte: preparing one easy handle
 *	  per request, performing it synchronously in a backend, and freeing it.
 *
 * Two users, one preparation:
 *
 *	 - A backend (provision_tenant() and friends) calls
 *	   http_request_prepare(), then http_request_perform(), which blocks but
 *	   honours query cancel, statement_timeout and backend termination
 *	   within about a second, then reads the result fields and calls
 *	   http_request_free().
 *
 *	 - The background worker calls http_request_prepare(), adds req->easy to
 *	   its curl multi handle (curl_multi_add_handle), and when the multi
 *	   handle reports CURLMSG_DONE for it, calls
 *	   http_request_complete(req, msg->data.result), which fills the same
 *	   result fields.  It must curl_multi_remove_handle() before
 *	   http_request_free().  req->user_data is the worker's.
 *
 * Either way, an HttpRequest belongs to the memory context that was
 * current at prepare time: when that context is reset or deleted (for
 * instance because an ERROR aborted the transaction) the curl handle,
 * header list and response buffer are released with it, so nothing leaks
 * on any error path.  http_request_free() releases them earlier.
 *
 * Every request: TLS peer and host verification on (against
 * tenant_airbyte.ca_file when set), redirects off, only
 * http and https, CURLOPT_NOSIGNAL, connect timeout min(timeout, 10 s),
 * total timeout as given, the response body capped at
 * HTTP_MAX_RESPONSE_BYTES, User-Agent TENANT_AIRBYTE_USER_AGENT.  Requests
 * that are not idempotent (POST) never reuse a pooled connection, because
 * libcurl silently re-sends a request whose reused connection turns out to
 * be dead, and a create must never be sent twice without reconciling.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_HTTP_CLIENT_H
#define TENANT_AIRBYTE_HTTP_CLIENT_H

#include <curl/curl.h>

#include "utils/memutils.h"

/* Largest response body accepted; a larger one fails the request. */
#define HTTP_MAX_RESPONSE_BYTES (8 * 1024 * 1024)

typedef enum HttpMethod
{
	HTTP_GET,
	HTTP_POST,
	HTTP_PATCH,
	HTTP_DELETE,
	HTTP_PUT
} HttpMethod;

typedef struct HttpRequest
{
	/* set by http_request_prepare() */
	CURL	   *easy;
	struct curl_slist *headers;
	HttpMethod	method;
	char	   *url;			/* palloc'd; never holds a secret */
	size_t		body_limit;
	char	   *request_body;	/* palloc'd copy, zeroed on release; NULL if none */
	size_t		request_body_len;
	size_t		request_body_sent;	/* how much libcurl has read of it */

	/* filled while the transfer runs */
	char	   *body;			/* malloc'd, NUL-terminated; NULL if empty */
	size_t		body_len;
	bool		body_too_large;
	char		retry_after[64];	/* Retry-After header value, "" if none */

	/* filled by http_request_perform() / http_request_complete() */
	bool		done;
	CURLcode	curl_code;		/* CURLE_OK when an HTTP answer arrived */
	long		http_status;	/* 0 when there was no answer */
	char		error_text[CURL_ERROR_SIZE];	/* curl's words, "" if none */

	void	   *user_data;		/* free for the caller */

	/* private */
	bool		released;
	MemoryContextCallback cleanup;
} HttpRequest;

/* "GET", "POST", ... */
extern const char *http_method_name(HttpMethod method);

/*
 * http_request_prepare
 *		A ready-to-run easy handle for METHOD URL.  bearer_token (may be NULL)
 *		becomes "Authorization: Bearer ..."; json_body (may be NULL) is sent
 *		as application/json (copied).  timeout_ms bounds the whole transfer.
 *		ERRORs only when libcurl cannot be set up (out of memory).
 */
extern HttpRequest *http_request_prepare(HttpMethod method, const char *url,
										 const char *bearer_token,
										 const char *json_body,
										 int timeout_ms);

/*
 * http_request_perform
 *		Runs the request synchronously in a backend.  Returns with the result
 *		fields filled for every transport outcome (connection refused,
 *		timeout, too large ...); ERRORs only for an interrupt (query cancel,
 *		statement_timeout, termination), after freeing the handle.
 */
extern void http_request_perform(HttpRequest *req);

/* http_request_complete: record a finished transfer (multi-handle users). */
extern void http_request_complete(HttpRequest *req, CURLcode code);

/* http_request_free: release everything now; safe to call twice. */
extern void http_request_free(HttpRequest *req);

#endif							/* TENANT_AIRBYTE_HTTP_CLIENT_H */

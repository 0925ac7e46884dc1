/*-------------------------------------------------------------------------
 *
 * http_client.c
 *	  libcurl mechanics: one easy handle per request, set up the same safe
 *	  way for every caller, performed synchronously in a backend or handed
 *	  to the background worker's multi handle.  See http_client.h.
 *
 * Nothing here knows about Airbyte; airbyte_api.c builds URLs and bodies
 * and interprets answers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "http_client.h"
#include "request_metrics.h"
#include "tenant_airbyte.h"

/* Connect timeout never exceeds this, whatever the total timeout. */
#define HTTP_CONNECT_TIMEOUT_MAX_MS 10000

/*
 * A pooled connection idle longer than this is closed, not reused: below
 * the shortest keep-alive timeout servers commonly use (Node.js's 5 s), so
 * that a request rarely meets a connection the server is just closing.
 */
#define HTTP_MAX_IDLE_REUSE_S 4

static bool curl_initialised = false;

static void http_request_release(void *arg);
static size_t http_write_body(char *data, size_t size, size_t nmemb, void *arg);
static size_t http_read_header(char *data, size_t size, size_t nmemb, void *arg);
static size_t http_read_request_body(char *buffer, size_t size, size_t nitems, void *arg);
static int	http_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
						  curl_off_t ultotal, curl_off_t ulnow);
static void http_setopt_failed(HttpRequest *req, const char *option, CURLcode code);
static void http_set_tls_options(HttpRequest *req);

#define HTTP_SETOPT(req, option, value) \
	do { \
		CURLcode	setopt_code = curl_easy_setopt((req)->easy, (option), (value)); \
		if (setopt_code != CURLE_OK) \
			http_setopt_failed((req), #option, setopt_code); \
	} while (0)

/*
 * http_method_name
 *		The method as it goes on the wire and into messages.
 */
const char *
http_method_name(HttpMethod method)
{
	switch (method)
	{
		case HTTP_GET:
			return "GET";
		case HTTP_POST:
			return "POST";
		case HTTP_PATCH:
			return "PATCH";
		case HTTP_DELETE:
			return "DELETE";
		case HTTP_PUT:
			return "PUT";
	}
	return "GET";
}

/*
 * http_setopt_failed
 *		A libcurl option was refused: only possible when libcurl is built
 *		without something we rely on, which is a deployment problem.
 */
static void
http_setopt_failed(HttpRequest *req, const char *option, CURLcode code)
{
	http_request_free(req);
	ereport(ERROR,
			(errcode(ERRCODE_SYSTEM_ERROR),
			 errmsg("libcurl refused option %s", option),
			 errdetail("%s", curl_easy_strerror(code)),
			 errhint("tenant_airbyte needs a libcurl with HTTPS support.")));
}

/*
 * http_set_tls_options
 *		The one place TLS is configured, for the backends' requests and the
 *		worker's alike: peer and host verification always on, and the
 *		certificate authorities of tenant_airbyte.ca_file when it is set
 *		(a self-managed Airbyte behind a private CA), otherwise libcurl's
 *		default trust store.
 */
static void
http_set_tls_options(HttpRequest *req)
{
	HTTP_SETOPT(req, CURLOPT_SSL_VERIFYPEER, 1L);
	HTTP_SETOPT(req, CURLOPT_SSL_VERIFYHOST, 2L);
	if (tenant_airbyte_ca_file != NULL && tenant_airbyte_ca_file[0] != '\0')
		HTTP_SETOPT(req, CURLOPT_CAINFO, tenant_airbyte_ca_file);
}

/*
 * http_request_prepare
 *		Builds the easy handle.  Everything libcurl allocates is tied to the
 *		current memory context by a reset callback, so an ERROR anywhere
 *		after this point cannot leak the handle or the header list.
 */
HttpRequest *
http_request_prepare(HttpMethod method, const char *url,
					 const char *bearer_token, const char *json_body,
					 int timeout_ms)
{
	HttpRequest *req;
	struct curl_slist *list;

	if (!curl_initialised)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not initialise libcurl")));
		curl_initialised = true;
	}

	req = palloc0(sizeof(HttpRequest));
	req->method = method;
	req->url = pstrdup(url);
	req->body_limit = HTTP_MAX_RESPONSE_BYTES;
	req->cleanup.func = http_request_release;
	req->cleanup.arg = req;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &req->cleanup);

	req->easy = curl_easy_init();
	if (req->easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));

	HTTP_SETOPT(req, CURLOPT_URL, req->url);
	HTTP_SETOPT(req, CURLOPT_PROTOCOLS_STR, "http,https");
	HTTP_SETOPT(req, CURLOPT_NOSIGNAL, 1L);
	HTTP_SETOPT(req, CURLOPT_FOLLOWLOCATION, 0L);
	http_set_tls_options(req);
	HTTP_SETOPT(req, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
	HTTP_SETOPT(req, CURLOPT_CONNECTTIMEOUT_MS,
				(long) Min(timeout_ms, HTTP_CONNECT_TIMEOUT_MAX_MS));
	HTTP_SETOPT(req, CURLOPT_USERAGENT, TENANT_AIRBYTE_USER_AGENT);
	HTTP_SETOPT(req, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) req->body_limit);
	HTTP_SETOPT(req, CURLOPT_ERRORBUFFER, req->error_text);
	HTTP_SETOPT(req, CURLOPT_WRITEFUNCTION, http_write_body);
	HTTP_SETOPT(req, CURLOPT_WRITEDATA, req);
	HTTP_SETOPT(req, CURLOPT_HEADERFUNCTION, http_read_header);
	HTTP_SETOPT(req, CURLOPT_HEADERDATA, req);
	HTTP_SETOPT(req, CURLOPT_PRIVATE, req);
	HTTP_SETOPT(req, CURLOPT_MAXAGE_CONN, (long) HTTP_MAX_IDLE_REUSE_S);

	/*
	 * Connections are reused, and no request is ever sent twice by libcurl.
	 * libcurl re-sends a request on a fresh connection by itself when a
	 * reused one dies before any answer, even a POST the server may have
	 * carried out: a create would happen twice, and nobody would know.  So
	 * a body is handed to libcurl through a read callback with no seek
	 * callback: once libcurl has read any of it, it cannot rewind, and the
	 * transfer ends with CURLE_SEND_FAIL_REWIND instead, which the engine
	 * treats as any other request that may have been sent (reconcile by
	 * name).  Before libcurl has read the body, the server cannot have
	 * acted on it (the body is announced with Content-Length), and a
	 * re-send is harmless.  A POST without a body has nothing to make a
	 * re-send fail, so it keeps a fresh connection of its own.
	 */
	switch (method)
	{
		case HTTP_GET:
			HTTP_SETOPT(req, CURLOPT_HTTPGET, 1L);
			break;
		case HTTP_POST:
			/* with a body, below */
			if (json_body == NULL)
			{
				HTTP_SETOPT(req, CURLOPT_POST, 1L);
				HTTP_SETOPT(req, CURLOPT_FRESH_CONNECT, 1L);
				HTTP_SETOPT(req, CURLOPT_FORBID_REUSE, 1L);
				HTTP_SETOPT(req, CURLOPT_POSTFIELDSIZE, 0L);
			}
			break;
		case HTTP_PATCH:
		case HTTP_DELETE:
		case HTTP_PUT:
			HTTP_SETOPT(req, CURLOPT_CUSTOMREQUEST, http_method_name(method));
			break;
	}

	if (json_body != NULL)
	{
		req->request_body = pstrdup(json_body);
		req->request_body_len = strlen(json_body);
		/* a body is POSTed; CUSTOMREQUEST names PATCH and PUT on the wire */
		HTTP_SETOPT(req, CURLOPT_POST, 1L);
		HTTP_SETOPT(req, CURLOPT_READFUNCTION, http_read_request_body);
		HTTP_SETOPT(req, CURLOPT_READDATA, req);
		HTTP_SETOPT(req, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->request_body_len);
	}

	/* Build the header list; each append may fail on out of memory. */
	list = curl_slist_append(NULL, "Accept: application/json");
	if (list != NULL && json_body != NULL)
		list = curl_slist_append(list, "Content-Type: application/json");
	if (list != NULL)
		list = curl_slist_append(list, "Expect:");
	req->headers = list;
	if (list != NULL && bearer_token != NULL && bearer_token[0] != '\0')
	{
		char	   *auth = psprintf("Authorization: Bearer %s", bearer_token);
		struct curl_slist *more = curl_slist_append(req->headers, auth);

		explicit_bzero(auth, strlen(auth));
		pfree(auth);
		req->headers = more;
		list = more;
	}
	if (list == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while preparing an HTTP request")));
	HTTP_SETOPT(req, CURLOPT_HTTPHEADER, req->headers);

	return req;
}

/*
 * http_read_request_body
 *		Hands libcurl the next piece of the request body.  There is no seek
 *		callback on purpose: see http_request_prepare().  Must not ERROR.
 */
static size_t
http_read_request_body(char *buffer, size_t size, size_t nitems, void *arg)
{
	HttpRequest *req = (HttpRequest *) arg;
	size_t		n = Min(size * nitems, req->request_body_len - req->request_body_sent);

	memcpy(buffer, req->request_body + req->request_body_sent, n);
	req->request_body_sent += n;
	return n;
}

/*
 * http_write_body
 *		Appends to a malloc'd buffer.  It runs inside libcurl, so it must
 *		not ERROR: on overflow or out of memory it returns 0, which makes
 *		libcurl stop with CURLE_WRITE_ERROR.
 */
static size_t
http_write_body(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpRequest *req = (HttpRequest *) arg;
	size_t		n = size * nmemb;
	char	   *grown;

	if (n == 0)
		return 0;
	if (req->body_len + n > req->body_limit)
	{
		req->body_too_large = true;
		return 0;
	}
	grown = realloc(req->body, req->body_len + n + 1);
	if (grown == NULL)
		return 0;
	req->body = grown;
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return n;
}

/*
 * http_read_header
 *		Keeps Retry-After; forgets what an earlier response of the same
 *		transfer (a 1xx) said.  Must not ERROR either.
 */
static size_t
http_read_header(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpRequest *req = (HttpRequest *) arg;
	size_t		n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		req->retry_after[0] = '\0';
	else if (n > sizeof(name) - 1 && pg_strncasecmp(data, name, sizeof(name) - 1) == 0)
	{
		const char *v = data + sizeof(name) - 1;
		size_t		len = n - (sizeof(name) - 1);

		while (len > 0 && (*v == ' ' || *v == '\t'))
			v++, len--;
		while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
						   v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		len = Min(len, sizeof(req->retry_after) - 1);
		memcpy(req->retry_after, v, len);
		req->retry_after[len] = '\0';
	}
	return n;
}

/*
 * http_progress
 *		libcurl calls this at least once a second while a synchronous
 *		transfer waits.  Returning non-zero aborts the transfer, which we do
 *		when an interrupt that will raise an ERROR is pending (cancel,
 *		statement_timeout, termination); http_request_perform() then lets
 *		CHECK_FOR_INTERRUPTS() raise it.  We cannot raise it here: a longjmp
 *		through libcurl would leave it in an undefined state.
 */
static int
http_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	if (!InterruptPending || InterruptHoldoffCount > 0 || CritSectionCount > 0)
		return 0;
	if (ProcDiePending)
		return 1;
	if (QueryCancelPending && QueryCancelHoldoffCount == 0)
		return 1;
	return 0;
}

/*
 * http_request_perform
 *		Runs the transfer to completion in this backend.
 */
void
http_request_perform(HttpRequest *req)
{
	CURLcode	code;

	Assert(req->easy != NULL);
	HTTP_SETOPT(req, CURLOPT_NOPROGRESS, 0L);
	HTTP_SETOPT(req, CURLOPT_XFERINFOFUNCTION, http_progress);
	HTTP_SETOPT(req, CURLOPT_XFERINFODATA, req);

	code = curl_easy_perform(req->easy);
	http_request_complete(req, code);

	if (code == CURLE_ABORTED_BY_CALLBACK)
	{
		/* Release libcurl's resources before the ERROR unwinds the stack. */
		http_request_free(req);
		CHECK_FOR_INTERRUPTS();
		/* The interrupt was absorbed without an ERROR: still a failure. */
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("HTTP request to \"%s\" was interrupted", req->url)));
	}
}

/*
 * http_request_complete
 *		Fills the result fields of a finished transfer.  Too large a body
 *		is reported as CURLE_FILESIZE_EXCEEDED whichever check caught it.
 */
void
http_request_complete(HttpRequest *req, CURLcode code)
{
	long		status = 0;

	if (req->body_too_large)
		code = CURLE_FILESIZE_EXCEEDED;
	req->curl_code = code;
	if (req->easy != NULL &&
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
		req->http_status = status;
	if (code == CURLE_FILESIZE_EXCEEDED)
		snprintf(req->error_text, sizeof(req->error_text),
				 "response larger than %zu bytes", req->body_limit);
	else if (code == CURLE_SEND_FAIL_REWIND)
		strlcpy(req->error_text,
				"the connection closed after the request was sent, before any answer",
				sizeof(req->error_text));
	else if (code != CURLE_OK && req->error_text[0] == '\0')
		strlcpy(req->error_text, curl_easy_strerror(code), sizeof(req->error_text));
	/* A transport failure is not an answer, whatever came before it. */
	if (code != CURLE_OK)
		req->http_status = 0;
	req->done = true;
	request_metrics_observe(req);
}

/*
 * http_request_release
 *		Frees what libcurl and malloc own.  Runs from http_request_free() or
 *		when the owning memory context is reset or deleted.
 */
static void
http_request_release(void *arg)
{
	HttpRequest *req = (HttpRequest *) arg;

	if (req->released)
		return;
	req->released = true;
	if (req->easy != NULL)
		curl_easy_cleanup(req->easy);
	req->easy = NULL;
	if (req->headers != NULL)
		curl_slist_free_all(req->headers);
	req->headers = NULL;
	if (req->body != NULL)
		free(req->body);
	req->body = NULL;
	/* a source's credentials travel in some request bodies */
	if (req->request_body != NULL)
		explicit_bzero(req->request_body, req->request_body_len);
}

/*
 * http_request_free
 *		Releases the libcurl side now.  The HttpRequest itself stays valid
 *		(result fields can still be read) until its memory context goes.
 *		The body is gone, so read it before.
 */
void
http_request_free(HttpRequest *req)
{
	if (req != NULL)
		http_request_release(req);
}

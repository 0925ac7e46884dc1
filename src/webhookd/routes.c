/*-------------------------------------------------------------------------
 *
 * routes.c
 *	  What each route of the shim answers, and the answers themselves.
 *
 * http.c drives a request through libmicrohttpd; this file decides, from
 * the request line and headers, whether to refuse it at once (400
 * ambiguous, 403 address, 404, 405, 413 declared size) or to read its
 * body, and then hands a webhook to the database (pool.c) and relays the
 * answer.  /health asks the database too; /metrics renders the counters.
 * /api/oauth/callback finishes an OAuth consent (oauth.c) and sends the
 * user on to --oauth-done-url, or answers with a page.
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"
#include "http_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * route_for
 *		Which route the raw request target names: its path exactly, as
 *		sent (an escaped spelling of a route is another path, 404).
 *		/metrics is a route here only when it has no address of its own.
 */
Route
route_for(const char *raw)
{
	if (raw_path_equals(raw, "/api/webhooks/frontegg/tenant-created"))
		return ROUTE_TENANT_CREATED;
	if (raw_path_equals(raw, "/api/webhooks/frontegg/tenant-deleted"))
		return ROUTE_TENANT_DELETED;
	if (raw_path_equals(raw, "/api/webhooks/frontegg"))
		return ROUTE_FRONTEGG;
	if (raw_path_equals(raw, "/health"))
		return ROUTE_HEALTH;
	if (raw_path_equals(raw, "/api/oauth/callback"))
		return ROUTE_OAUTH_CALLBACK;
	if (raw_path_equals(raw, "/metrics") && http_options.metrics_fd < 0)
		return ROUTE_METRICS;
	return ROUTE_OTHER;
}

/* is_webhook: a route that takes a delivery (POST with a body) */
static bool
is_webhook(Route route)
{
	return route == ROUTE_TENANT_CREATED || route == ROUTE_TENANT_DELETED ||
		route == ROUTE_FRONTEGG;
}

/*
 * respond
 *		Queue a text/plain answer.  The connection is closed after it when
 *		the request was refused as ambiguous (nothing more on it can be
 *		trusted) and while shutting down (so keep-alive senders go
 *		elsewhere).
 */
static enum MHD_Result
respond(struct MHD_Connection *conn, Request *req, int status,
		const char *content_type, const char *body, size_t body_len,
		int retry_after, const char *allow)
{
	return respond_located(conn, req, status, content_type, body, body_len,
						   retry_after, allow, NULL);
}

/*
 * respond_located
 *		respond(), with a Location header when location is not NULL.  The
 *		OAuth callback's answers are never cached and send no Referer on:
 *		their URL carried a secret_id.
 */
enum MHD_Result
respond_located(struct MHD_Connection *conn, Request *req, int status,
				const char *content_type, const char *body, size_t body_len,
				int retry_after, const char *allow, const char *location)
{
	struct MHD_Response *response;
	enum MHD_Result ret;
	char		number[32];

	response = MHD_create_response_from_buffer(body_len, (void *) body,
											   MHD_RESPMEM_MUST_COPY);
	if (response == NULL)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (retry_after > 0)
	{
		snprintf(number, sizeof(number), "%d", retry_after);
		MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, number);
	}
	if (allow != NULL)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
	if (location != NULL)
		MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, location);
	if (req->route == ROUTE_OAUTH_CALLBACK)
	{
		MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
	}
	if (req->delivery_id >= 0)
	{
		snprintf(number, sizeof(number), "%lld", req->delivery_id);
		MHD_add_response_header(response, "X-Delivery-Id", number);
	}
	if (req->close || http_stopping())
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, (unsigned int) status, response);
	MHD_destroy_response(response);
	if (ret == MHD_YES)
	{
		req->answered = true;
		req->status = status;
	}
	return ret;
}

/* respond_text: respond with a short message line */
enum MHD_Result
respond_text(struct MHD_Connection *conn, Request *req, int status,
			 const char *message, int retry_after, const char *allow)
{
	char		body[300];
	int			n = snprintf(body, sizeof(body), "%s\n", message);

	if (n < 0 || (size_t) n >= sizeof(body))
		n = (int) sizeof(body) - 1;
	return respond(conn, req, status, "text/plain; charset=utf-8", body,
				   (size_t) n, retry_after, allow);
}

/* Headers collected for receive_webhook: names lower-cased, values as sent. */
typedef struct HeaderList
{
	int			n;
	int			cap;
	char	  **names;
	char	  **values;
	bool		failed;
} HeaderList;

/* collect_header: add one header to the list (a callback) */
static enum MHD_Result
collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
			   const char *value)
{
	HeaderList *list = cls;
	char	   *name;
	size_t		i;

	(void) kind;
	if (list->n == list->cap)
	{
		int			cap = list->cap ? list->cap * 2 : 16;
		char	  **names = realloc(list->names, cap * sizeof(char *));
		char	  **values;

		if (names == NULL)
		{
			list->failed = true;
			return MHD_NO;
		}
		list->names = names;
		values = realloc(list->values, cap * sizeof(char *));
		if (values == NULL)
		{
			list->failed = true;
			return MHD_NO;
		}
		list->values = values;
		list->cap = cap;
	}
	/* HTTP field names are case-insensitive; jsonb keys are not. */
	name = strdup(key);
	if (name == NULL)
	{
		list->failed = true;
		return MHD_NO;
	}
	for (i = 0; name[i] != '\0'; i++)
		name[i] = (char) tolower((unsigned char) name[i]);
	list->names[list->n] = name;
	list->values[list->n] = (char *) (value ? value : "");
	list->n++;
	return MHD_YES;
}

/* free_headers: release what collect_header allocated */
static void
free_headers(HeaderList *list)
{
	int			i;

	for (i = 0; i < list->n; i++)
		free(list->names[i]);
	free(list->names);
	free(list->values);
}

/*
 * handle_webhook
 *		The body is complete: pass everything to the database and relay
 *		its answer.
 */
enum MHD_Result
handle_webhook(struct MHD_Connection *conn, Request *req)
{
	HeaderList	headers;
	WebhookResult result;
	const char *event = NULL;

	if (req->route == ROUTE_TENANT_CREATED)
		event = "tenant-created";
	else if (req->route == ROUTE_TENANT_DELETED)
		event = "tenant-deleted";

	guard_busy(req->slot);
	memset(&headers, 0, sizeof(headers));
	MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
	if (headers.failed)
	{
		free_headers(&headers);
		return respond_text(conn, req, 503, "out of memory, retry later", 1, NULL);
	}
	pool_receive_webhook(event, headers.n, headers.names, headers.values,
						 req->body, req->body_len, &result);
	free_headers(&headers);

	req->delivery_id = result.delivery_id;
	return respond_text(conn, req, result.http_status, result.message,
						result.retry_after, NULL);
}

/* handle_get: /health and /metrics */
static enum MHD_Result
handle_get(struct MHD_Connection *conn, Request *req)
{
	guard_busy(req->slot);
	if (req->route == ROUTE_HEALTH)
	{
		int			retry_after;

		if (pool_health(&retry_after))
			return respond_text(conn, req, 200, "ok", 0, NULL);
		return respond_text(conn, req, 503, "database unavailable", retry_after, NULL);
	}
	else
	{
		size_t		len;
		char	   *text = metrics_render(&len);
		enum MHD_Result ret;

		if (text == NULL)
			return respond_text(conn, req, 500, "could not render metrics", 0, NULL);
		ret = respond(conn, req, 200, "text/plain; version=0.0.4; charset=utf-8",
					  text, len, 0, NULL);
		free(text);
		return ret;
	}
}

/*
 * declared_too_large
 *		Does the request announce a body over --max-body?  Checked before
 *		reading any of it.
 */
static bool
declared_too_large(struct MHD_Connection *conn)
{
	const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long declared;
	char	   *end;

	if (length == NULL)
		return false;
	errno = 0;
	declared = strtoull(length, &end, 10);
	return errno != 0 || declared > http_options.max_body;
}

/*
 * start_request
 *		First call for a request: everything that can be decided from the
 *		request line and headers alone (address, route, method, size).
 */
enum MHD_Result
start_request(struct MHD_Connection *conn, Request *req, const char *method,
			  const char *version)
{
	const union MHD_ConnectionInfo *info;
	const struct sockaddr *peer = NULL;
	bool		is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	const char *problem;

	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (info != NULL)
		peer = info->client_addr;

	problem = req->refusal ? req->refusal : request_framing_problem(conn, version);
	if (problem != NULL)
	{
		req->close = true;
		return respond_text(conn, req, 400, problem, 0, NULL);
	}
	if (!allow_match(http_options.allow, http_options.nallow, peer))
		return respond_text(conn, req, 403, "forbidden", 0, NULL);
	if (req->route == ROUTE_OTHER)
		return respond_text(conn, req, 404, "not found", 0, NULL);
	if (is_webhook(req->route))
	{
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return respond_text(conn, req, 405, "method not allowed", 0, "POST");
		if (declared_too_large(conn))
			return respond_text(conn, req, 413, "body too large", 0, NULL);
		return MHD_YES;			/* now read the body */
	}
	if (!is_get)
		return respond_text(conn, req, 405, "method not allowed", 0, "GET, HEAD");
	if (req->route == ROUTE_OAUTH_CALLBACK)
		return handle_oauth_callback(conn, req);
	return handle_get(conn, req);
}

/*
 * append_body
 *		Buffer the next piece of the body; past --max-body keep counting
 *		nothing more (the answer will be 413).
 */
void
append_body(Request *req, const char *data, size_t size)
{
	if (req->too_large)
		return;
	if (size > http_options.max_body - req->body_len)
	{
		req->too_large = true;
		free(req->body);
		req->body = NULL;
		req->body_len = 0;
		return;
	}
	if (req->body_len + size > req->body_cap)
	{
		size_t		cap = req->body_cap ? req->body_cap : 4096;
		char	   *grown;

		while (cap < req->body_len + size)
			cap *= 2;
		if (cap > http_options.max_body)
			cap = http_options.max_body;
		grown = realloc(req->body, cap);
		if (grown == NULL)
		{
			req->too_large = true;	/* answered 413: cannot hold it */
			free(req->body);
			req->body = NULL;
			req->body_len = 0;
			return;
		}
		req->body = grown;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, size);
	req->body_len += size;
}

/*
 * handle_metrics_only
 *		The access handler of the --metrics-listen address: GET /metrics
 *		and nothing else.  No body is ever read here.
 */
enum MHD_Result
handle_metrics_only(void *cls, struct MHD_Connection *conn, const char *url,
					const char *method, const char *version,
					const char *upload_data, size_t *upload_data_size,
					void **con_cls)
{
	Request		req;

	(void) cls;
	(void) version;
	(void) upload_data;
	(void) con_cls;
	memset(&req, 0, sizeof(req));
	req.delivery_id = -1;
	req.close = true;			/* one answer per connection: cheap and simple */
	*upload_data_size = 0;
	if (strcmp(url, "/metrics") != 0)
		return respond_text(conn, &req, 404, "not found", 0, NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
		strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(conn, &req, 405, "method not allowed", 0, "GET, HEAD");
	req.route = ROUTE_METRICS;
	{
		size_t		len;
		char	   *text = metrics_render(&len);
		enum MHD_Result ret;

		if (text == NULL)
			return respond_text(conn, &req, 500, "could not render metrics", 0, NULL);
		ret = respond(conn, &req, 200, "text/plain; version=0.0.4; charset=utf-8",
					  text, len, 0, NULL);
		free(text);
		return ret;
	}
}


/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The HTTP side of the shim: libmicrohttpd, the routes, the answers.
 *
 * libmicrohttpd parses HTTP (and, with --tls-cert, speaks TLS through
 * GnuTLS); this file only routes.  It runs one thread per connection (a
 * request thread blocks in libpq while the database commits), with a cap
 * on connections and an inactivity timeout; guard.c adds a deadline for a
 * whole request, a per-address limit and free slots for newcomers, so
 * slow or greedy clients cannot use up the shim.  Requests whose framing
 * or target is ambiguous are refused with 400 and the connection closed
 * (request.c).  Bodies are buffered up to --max-body; a larger declared
 * length is refused with 413 before any byte of the body is read.
 *
 * Routes, matched against the raw path as sent:
 *	  POST /api/webhooks/frontegg/tenant-created	event "tenant-created"
 *	  POST /api/webhooks/frontegg/tenant-deleted	event "tenant-deleted"
 *	  POST /api/webhooks/frontegg					event read from the body
 *	  GET  /health									200 when the database answers
 *	  GET  /metrics									Prometheus text (on its own
 *													address with --metrics-listen)
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct Request
{
	Route		route;
	double		started;
	char		method[16];		/* sanitised copies, for the log */
	char		path[128];
	char		peer[64];
	char	   *body;
	size_t		body_len;
	size_t		body_cap;
	bool		too_large;		/* the body outgrew --max-body */
	size_t		discarded;		/* bytes dropped since */
	bool		answered;
	bool		counted;		/* in in_flight */
	bool		close;			/* close the connection after the answer */
	const char *refusal;		/* why the target is refused, or NULL */
	int			status;
	long long	delivery_id;
	GuardSlot  *slot;			/* the connection's entry in guard.c */
	struct MHD_Connection *conn;
} Request;

/*
 * The request being read in this thread (one thread per connection), for
 * the logger, which the library calls without saying which connection.
 */
static __thread Request *current_request;

static HttpOptions options;
static struct MHD_Daemon *daemon_handle;
static struct MHD_Daemon *metrics_handle;
static int	in_flight;
static int	stopping;

/* http_in_flight: requests received and not yet answered */
int
http_in_flight(void)
{
	return __atomic_load_n(&in_flight, __ATOMIC_RELAXED);
}

/*
 * sanitize
 *		Copy request text (method, path) for the log: printable ASCII only,
 *		truncated, so a hostile request cannot forge or break log lines.
 */
static void
sanitize(const char *in, char *out, size_t len)
{
	size_t		i;

	for (i = 0; in != NULL && in[i] != '\0' && i < len - 1; i++)
		out[i] = (in[i] > ' ' && in[i] < 127 && in[i] != '"') ? in[i] : '?';
	out[i] = '\0';
}

/*
 * route_for
 *		Which route the raw request target names: its path exactly, as
 *		sent (an escaped spelling of a route is another path, 404).
 *		/metrics is a route here only when it has no address of its own.
 */
static Route
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
	if (raw_path_equals(raw, "/metrics") && options.metrics_fd < 0)
		return ROUTE_METRICS;
	return ROUTE_OTHER;
}

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
	if (req->delivery_id >= 0)
	{
		snprintf(number, sizeof(number), "%lld", req->delivery_id);
		MHD_add_response_header(response, "X-Delivery-Id", number);
	}
	if (req->close || __atomic_load_n(&stopping, __ATOMIC_RELAXED))
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
static enum MHD_Result
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
static enum MHD_Result
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
	return errno != 0 || declared > options.max_body;
}

/*
 * start_request
 *		First call for a request: everything that can be decided from the
 *		request line and headers alone (address, route, method, size).
 */
static enum MHD_Result
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
	if (!allow_match(options.allow, options.nallow, peer))
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
	return handle_get(conn, req);
}

/*
 * append_body
 *		Buffer the next piece of the body; past --max-body keep counting
 *		nothing more (the answer will be 413).
 */
static void
append_body(Request *req, const char *data, size_t size)
{
	if (req->too_large)
		return;
	if (size > options.max_body - req->body_len)
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
		if (cap > options.max_body)
			cap = options.max_body;
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
 * new_request
 *		libmicrohttpd's URI callback: the request line is in (headers not
 *		yet), and this is the only place that sees the target as sent,
 *		before unescaping.  The Request made here is the one the access
 *		handler and request_completed receive.
 */
static void *
new_request(void *cls, const char *uri, struct MHD_Connection *conn)
{
	Request    *req = calloc(1, sizeof(Request));
	const union MHD_ConnectionInfo *info;

	(void) cls;
	if (req == NULL)
		return NULL;
	req->started = monotonic_seconds();
	req->delivery_id = -1;
	req->refusal = request_target_problem(uri);
	req->route = req->refusal ? ROUTE_OTHER : route_for(uri);
	sanitize(uri, req->path, sizeof(req->path));
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	peer_to_text(info ? info->client_addr : NULL, req->peer, sizeof(req->peer));
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (info != NULL)
		req->slot = info->socket_context;
	req->conn = conn;
	current_request = req;
	return req;
}

/*
 * handle_request
 *		libmicrohttpd's access handler: called once when the headers are
 *		in, once per piece of body, and once more when the body is done.
 */
static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version,
			   const char *upload_data, size_t *upload_data_size,
			   void **con_cls)
{
	Request    *req = *con_cls;

	(void) cls;
	(void) url;
	if (req == NULL)
		return MHD_NO;			/* out of memory in new_request */
	if (!req->counted)
	{
		req->counted = true;
		sanitize(method, req->method, sizeof(req->method));
		__atomic_fetch_add(&in_flight, 1, __ATOMIC_RELAXED);
		return start_request(conn, req, method, version);
	}
	if (req->answered)
	{
		/* answered early (413, 405...): drop whatever body still comes */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		append_body(req, upload_data, *upload_data_size);
		if (req->too_large)
		{
			/*
			 * A chunked body without a declared length grew past the
			 * limit.  libmicrohttpd cannot answer in the middle of a
			 * body, so the rest is read and dropped, and the answer is
			 * 413 at its end; a sender that goes on and on past twice the
			 * limit is cut off instead.
			 */
			req->discarded += *upload_data_size;
			if (req->discarded > options.max_body + 65536)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_large)
		return respond_text(conn, req, 413, "body too large", 0, NULL);
	return handle_webhook(conn, req);
}

/*
 * request_completed
 *		The answer went out (or the client left): log one line, count it,
 *		free the request.
 */
static void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
				  enum MHD_RequestTerminationCode toe)
{
	Request    *req = *con_cls;
	double		duration;
	char		delivery[32];

	(void) cls;
	(void) conn;
	if (req == NULL)
		return;
	guard_answered(req->slot);
	*con_cls = NULL;
	if (current_request == req)
		current_request = NULL;
	if (!req->counted)
	{
		/* the library refused it before our handler saw it */
		if (req->answered)
		{
			log_message("- %s status=%d delivery_id=- duration_ms=%.1f peer=%s (malformed Content-Length)",
						req->path, req->status,
						(monotonic_seconds() - req->started) * 1000, req->peer);
			metrics_observe(ROUTE_OTHER, req->status, monotonic_seconds() - req->started);
		}
		free(req);
		return;
	}
	duration = monotonic_seconds() - req->started;
	if (req->delivery_id >= 0)
		snprintf(delivery, sizeof(delivery), "%lld", req->delivery_id);
	else
		snprintf(delivery, sizeof(delivery), "-");
	log_message("%s %s status=%d delivery_id=%s duration_ms=%.1f peer=%s%s",
				req->method, req->path, req->answered ? req->status : 0,
				delivery, duration * 1000, req->peer,
				toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" :
				" (connection closed before the answer was sent)");
	metrics_observe(req->route, req->answered ? req->status : 0, duration);
	free(req->body);
	free(req);
	__atomic_fetch_sub(&in_flight, 1, __ATOMIC_RELAXED);
}

/*
 * connection_event
 *		A connection opened or is about to close: tell guard.c, which
 *		keeps its entry as the connection's socket context.
 */
static void
connection_event(void *cls, struct MHD_Connection *conn, void **socket_context,
				 enum MHD_ConnectionNotificationCode code)
{
	(void) cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *fd_info;
		const union MHD_ConnectionInfo *peer_info;

		fd_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		peer_info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		*socket_context = fd_info == NULL ? NULL :
			guard_opened(fd_info->connect_fd,
						 peer_info ? peer_info->client_addr : NULL);
	}
	else
	{
		guard_closed(*socket_context);
		*socket_context = NULL;
	}
}

/*
 * mhd_log
 *		libmicrohttpd's own complaints, into our log.  Two of them mean
 *		the library refused the request's Content-Length and is about to
 *		answer it wrongly: answer in its place (request.c says why).
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
			__attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		line[512];
	size_t		n;

	(void) cls;
	if (current_request != NULL && !current_request->counted &&
		!current_request->answered)
	{
		int			status = 0;

		if (strncmp(fmt, "Failed to parse `Content-Length'", 32) == 0)
			status = 400;
		else if (strncmp(fmt, "Too large value of 'Content-Length'", 35) == 0)
			status = 413;
		if (status != 0)
		{
			current_request->answered = true;
			current_request->status = status;
			request_answer_for_library(current_request->conn, status,
									   status == 400 ? "malformed Content-Length" : "body too large");
		}
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_message("http: %s", line);
}

/*
 * handle_metrics_only
 *		The access handler of the --metrics-listen address: GET /metrics
 *		and nothing else.  No body is ever read here.
 */
static enum MHD_Result
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

/*
 * start_metrics_daemon
 *		/metrics on its own address: one polling thread, a few connections,
 *		a short timeout (a scraper asks and goes).
 */
static bool
start_metrics_daemon(void)
{
	metrics_handle = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
		MHD_USE_ERROR_LOG,
		0, NULL, NULL,
		handle_metrics_only, NULL,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket) options.metrics_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 16,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) 4,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 5,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32 * 1024,
		MHD_OPTION_END);
	return metrics_handle != NULL;
}

/*
 * http_start
 *		Start serving on the already bound, listening sockets.  With a
 *		certificate and key the main address speaks HTTPS only.
 */
bool
http_start(const HttpOptions *opts)
{
	struct MHD_OptionItem items[16];
	int			n = 0;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ITC |
		MHD_USE_ERROR_LOG;
	GuardOptions guard;

	options = *opts;

	/* one in eight slots, at least two, stays free for newcomers */
	guard.max_connections = options.max_connections;
	guard.max_per_peer = options.max_connections_per_ip;
	guard.request_timeout_s = options.request_timeout_s;
	guard.headroom = options.max_connections / 8 > 2 ? options.max_connections / 8 : 2;
	if (!guard_start(&guard))
		return false;

#define OPTION(o, v, p) (items[n].option = (o), items[n].value = (intptr_t) (v), \
						 items[n].ptr_value = (p), n++)
	OPTION(MHD_OPTION_LISTEN_SOCKET, options.listen_fd, NULL);
	OPTION(MHD_OPTION_CONNECTION_LIMIT, options.max_connections, NULL);
	OPTION(MHD_OPTION_CONNECTION_TIMEOUT, options.timeout_s, NULL);
	OPTION(MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL);
	OPTION(MHD_OPTION_THREAD_STACK_SIZE, 512 * 1024, NULL);
	OPTION(MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL);
	OPTION(MHD_OPTION_NOTIFY_CONNECTION, connection_event, NULL);
	OPTION(MHD_OPTION_URI_LOG_CALLBACK, new_request, NULL);
	if (options.tls_cert != NULL)
	{
		flags |= MHD_USE_TLS;
		OPTION(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) options.tls_cert);
		OPTION(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) options.tls_key);
	}
	OPTION(MHD_OPTION_END, 0, NULL);
#undef OPTION

	/*
	 * The per-address limit is guard.c's (it replaces a waiting
	 * connection rather than refusing the newcomer), so the library's own
	 * stays off.
	 */
	daemon_handle = MHD_start_daemon(flags, 0, NULL, NULL,
									 handle_request, NULL,
									 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
									 MHD_OPTION_ARRAY, items,
									 MHD_OPTION_END);
	if (daemon_handle == NULL)
	{
		guard_stop();
		return false;
	}
	if (options.metrics_fd >= 0 && !start_metrics_daemon())
	{
		MHD_stop_daemon(daemon_handle);
		daemon_handle = NULL;
		guard_stop();
		return false;
	}
	return true;
}

/*
 * http_stop_accepting
 *		First step of a graceful stop: close the listening socket, keep
 *		serving the connections already open.
 */
void
http_stop_accepting(void)
{
	MHD_socket	fd;

	__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
	fd = MHD_quiesce_daemon(daemon_handle);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

/* http_stop: close every connection and join the threads */
void
http_stop(void)
{
	if (metrics_handle != NULL)
		MHD_stop_daemon(metrics_handle);
	metrics_handle = NULL;
	MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
	guard_stop();
}

/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The HTTP side of the shim: the libmicrohttpd daemons and the life of
 *	  a request, from its request line to its log line.
 *
 * libmicrohttpd parses HTTP (and, with --tls-cert, speaks TLS through
 * GnuTLS).  The main daemon runs one thread per connection (a request
 * thread blocks in libpq while the database commits), with a cap on
 * connections and an inactivity timeout; guard.c adds a deadline for a
 * whole request, a per-address limit and free slots for newcomers, so
 * slow or greedy clients cannot use up the shim.  Requests whose framing
 * or target is ambiguous are refused with 400 and the connection closed
 * (request.c).  What each route answers is routes.c's.  With
 * --metrics-listen a second, single-threaded daemon serves /metrics
 * alone on its own address.
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
#include "http_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The request being read in this thread (one thread per connection), for
 * the logger, which the library calls without saying which connection.
 */
static __thread Request *current_request;

HttpOptions http_options;
static struct MHD_Daemon *daemon_handle;
static struct MHD_Daemon *metrics_handle;
static int	in_flight;
static int	stopping;

/* http_stopping: has a graceful stop begun? */
bool
http_stopping(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_RELAXED);
}

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
 * sanitize_path
 *		The request target for the log without its query: a query can
 *		carry a credential (GET /api/oauth/callback?...&secret_id=...), so
 *		only "?..." shows that there was one.
 */
static void
sanitize_path(const char *uri, char *out, size_t len)
{
	size_t		path_len = uri ? strcspn(uri, "?") : 0;
	char	   *path = strndup(uri ? uri : "", path_len);

	if (path == NULL)
	{
		snprintf(out, len, "-");
		return;
	}
	sanitize(path, out, len > 5 ? len - 4 : len);
	if (uri != NULL && uri[path_len] == '?' && len > 5)
		strcat(out, "?...");
	free(path);
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
	sanitize_path(uri, req->path, sizeof(req->path));
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
			if (req->discarded > http_options.max_body + 65536)
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
 *
 * Each MHD_get_connection_info() answer is read before the next call:
 * "the returned pointer is invalidated with the next call of this
 * function" (microhttpd.h), and libmicrohttpd 1.0 (Debian 13 and later)
 * does answer the descriptor and the address in one shared union, so
 * reading the descriptor after asking for the address gave part of a
 * pointer: guard.c then shut down a number that was no connection, and
 * slow clients kept every slot (0.9.75 happened to keep them apart).
 */
static void
connection_event(void *cls, struct MHD_Connection *conn, void **socket_context,
				 enum MHD_ConnectionNotificationCode code)
{
	(void) cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *info;
		int			fd;
		const struct sockaddr *peer;

		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (info == NULL)
		{
			*socket_context = NULL;
			return;
		}
		fd = info->connect_fd;
		info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		peer = info ? info->client_addr : NULL;
		*socket_context = guard_opened(fd, peer);
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
	else if (current_request != NULL && !current_request->counted &&
			 strncmp(fmt, "Failed to send the response headers", 35) == 0)
		return;					/* its duplicate answer, which we stopped */
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_message("http: %s", line);
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
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket) http_options.metrics_fd,
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

	http_options = *opts;

	/* one in eight slots, at least two, stays free for newcomers */
	guard.max_connections = http_options.max_connections;
	guard.max_per_peer = http_options.max_connections_per_ip;
	guard.request_timeout_s = http_options.request_timeout_s;
	guard.headroom = http_options.max_connections / 8 > 2 ? http_options.max_connections / 8 : 2;
	if (!guard_start(&guard))
		return false;

#define OPTION(o, v, p) (items[n].option = (o), items[n].value = (intptr_t) (v), \
						 items[n].ptr_value = (p), n++)
	OPTION(MHD_OPTION_LISTEN_SOCKET, http_options.listen_fd, NULL);
	OPTION(MHD_OPTION_CONNECTION_LIMIT, http_options.max_connections, NULL);
	OPTION(MHD_OPTION_CONNECTION_TIMEOUT, http_options.timeout_s, NULL);
	OPTION(MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL);
	OPTION(MHD_OPTION_THREAD_STACK_SIZE, 512 * 1024, NULL);
	OPTION(MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL);
	OPTION(MHD_OPTION_NOTIFY_CONNECTION, connection_event, NULL);
	OPTION(MHD_OPTION_URI_LOG_CALLBACK, new_request, NULL);
	if (http_options.tls_cert != NULL)
	{
		flags |= MHD_USE_TLS;
		OPTION(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) http_options.tls_cert);
		OPTION(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) http_options.tls_key);
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
	if (http_options.metrics_fd >= 0 && !start_metrics_daemon())
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

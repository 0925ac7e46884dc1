/*-------------------------------------------------------------------------
 *
 * webhookd.h
 *	  Declarations shared by the parts of tenant_airbyte_webhookd, the
 *	  small HTTP shim that hands Frontegg deliveries to the database.
 *
 * The shim interprets nothing: it passes the route's event, every request
 * header and the raw body to tenant_airbyte.receive_webhook() and answers
 * with the status that function returns.  Each concern lives in its own
 * file: options and signals (main.c), HTTP (http.c), checks of what the
 * HTTP library hands over (request.c), connection limits and deadlines
 * (guard.c), the libpq pool (pool.c), counters (metrics.c), source-address
 * rules (allow.c) and the log (log.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WEBHOOKD_H
#define TENANT_AIRBYTE_WEBHOOKD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifndef TENANT_AIRBYTE_VERSION
#define TENANT_AIRBYTE_VERSION "unknown"
#endif

/* ---- allow.c: --allow CIDR rules ---- */

typedef struct AllowRule
{
	int			family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* network address, prefix bits only */
	int			prefix;			/* prefix length in bits */
} AllowRule;

extern bool allow_parse(const char *text, AllowRule *rule);
extern bool allow_match(const AllowRule *rules, int nrules,
						const struct sockaddr *peer);
extern void peer_to_text(const struct sockaddr *peer, char *buf, size_t len);

/* ---- log.c: one line per event, reopened on SIGHUP ---- */

extern bool log_open(const char *path);
extern bool log_reopen(void);
extern void log_message(const char *fmt,...)
			__attribute__((format(printf, 1, 2)));

/* ---- guard.c: request deadlines, per-address limit, headroom ---- */

typedef struct GuardOptions
{
	unsigned int max_connections;	/* the library's hard limit */
	unsigned int max_per_peer;	/* 0: no per-address limit */
	unsigned int request_timeout_s; /* to deliver one whole request */
	unsigned int headroom;		/* slots kept free for newcomers */
} GuardOptions;

typedef enum GuardCloseReason
{
	GUARD_CLOSED_DEADLINE,		/* no complete request in time */
	GUARD_CLOSED_PER_PEER,		/* over the per-address limit */
	GUARD_CLOSED_HEADROOM,		/* to keep slots free */
	GUARD_CLOSE_REASON_COUNT
} GuardCloseReason;

typedef struct GuardSlot GuardSlot;

extern bool guard_start(const GuardOptions *options);
extern void guard_stop(void);
extern GuardSlot *guard_opened(int fd, const struct sockaddr *peer);
extern void guard_busy(GuardSlot *slot);
extern void guard_answered(GuardSlot *slot);
extern void guard_closed(GuardSlot *slot);
extern unsigned long long guard_closed_total(GuardCloseReason reason);

/* ---- metrics.c: counters rendered as Prometheus text ---- */

typedef enum Route
{
	ROUTE_TENANT_CREATED,
	ROUTE_TENANT_DELETED,
	ROUTE_FRONTEGG,
	ROUTE_HEALTH,
	ROUTE_METRICS,
	ROUTE_OAUTH_CALLBACK,
	ROUTE_OTHER,
	ROUTE_COUNT
} Route;

typedef enum DatabaseErrorKind
{
	DB_ERROR_CONNECT,			/* could not open or set up a connection */
	DB_ERROR_QUERY,				/* a statement failed or the link broke */
	DB_ERROR_KIND_COUNT
} DatabaseErrorKind;

extern const char *route_label(Route route);
extern void metrics_observe(Route route, int status, double seconds);
extern void metrics_database_error(DatabaseErrorKind kind);
extern char *metrics_render(size_t *len);

/* ---- pool.c: a fixed set of libpq connections ---- */

typedef struct PoolOptions
{
	const char *conninfo;		/* NULL: libpq environment */
	int			size;			/* connections */
	int			wait_ms;		/* longest wait for a free connection */
	int			statement_timeout_ms;	/* 0: leave the server's */
} PoolOptions;

typedef struct WebhookResult
{
	int			http_status;
	long long	delivery_id;	/* -1 when there is none */
	char		message[256];	/* what the sender is told */
	int			retry_after;	/* seconds, 0 for no Retry-After */
} WebhookResult;

extern bool pool_init(const PoolOptions *options);
extern void pool_warm(void);
extern void pool_shutdown(void);
extern void pool_receive_webhook(const char *event,
								 int nheaders, char **names, char **values,
								 const char *body, size_t body_len,
								 WebhookResult *result);
extern bool pool_health(int *retry_after);

struct pg_result;
extern struct pg_result *pool_exec(const char *sql, int nparams,
								   const char *const *values, int *retry_after);
extern void pool_clear(struct pg_result *res);

/* ---- oauth.c: GET /api/oauth/callback ---- */

typedef struct OAuthOutcome
{
	int			http_status;	/* of the page, without --oauth-done-url */
	bool		ok;
	char		source_id[64];	/* when ok */
	char		reason[40];		/* when not: a word for the done page */
	char		message[300];	/* what failed, for the page and the log */
} OAuthOutcome;

extern void oauth_complete(const char *consent_id, const char *secret_id,
						   OAuthOutcome *outcome);
extern void pool_stats(int *open, int *busy);
extern char *pool_extension_metrics(void);

/* ---- request.c: what the HTTP library hands over, checked ---- */

struct MHD_Connection;
extern const char *request_target_problem(const char *raw);
extern bool raw_path_equals(const char *raw, const char *path);
extern const char *request_framing_problem(struct MHD_Connection *conn,
										   const char *version);
extern void request_answer_for_library(struct MHD_Connection *conn,
									   int status, const char *message);

/* ---- http.c: the libmicrohttpd daemons and their routes ---- */

typedef struct HttpOptions
{
	int			listen_fd;
	int			metrics_fd;		/* -1: /metrics on listen_fd */
	size_t		max_body;
	const AllowRule *allow;
	int			nallow;
	unsigned int max_connections;
	unsigned int max_connections_per_ip;	/* 0: no limit */
	unsigned int timeout_s;		/* idle connection */
	unsigned int request_timeout_s; /* to deliver one whole request */
	const char *tls_cert;		/* PEM text; NULL: plain HTTP */
	const char *tls_key;
	const char *oauth_done_url; /* NULL: answer the callback with a page */
} HttpOptions;

extern bool http_start(const HttpOptions *options);
extern void http_stop_accepting(void);
extern int	http_in_flight(void);
extern void http_stop(void);

/* monotonic seconds, for durations and deadlines */
extern double monotonic_seconds(void);

#endif							/* TENANT_AIRBYTE_WEBHOOKD_H */

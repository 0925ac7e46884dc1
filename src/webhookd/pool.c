/*-------------------------------------------------------------------------
 *
 * pool.c
 *	  A fixed set of libpq connections shared by the request threads, and
 *	  the one statement the shim runs on them.
 *
 * Why a pool: 32 concurrent senders must not cost 32 new backends a
 * second.  Why a fixed size: it is the most the shim will ever ask of
 * max_connections.  A thread takes a free slot (waiting a bounded time),
 * makes sure its connection is alive, runs the statement and gives the
 * slot back.
 *
 * When the database is unreachable the pool stops trying for a while
 * (exponential backoff, capped), answering 503 with Retry-After at once
 * instead of stacking up connection attempts; after the pause one
 * request probes, and the first success ends the backoff.  The shim never
 * exits because of the database.
 *
 * Every statement runs in autocommit mode, so by the time libpq hands
 * back the result the server has committed the inbox row (libpq waits
 * for ReadyForQuery, which follows the commit).  A 2xx is only ever
 * built from such a result.
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* type oids of the statement's parameters (pg_type.dat) */
#define TEXTOID			25
#define BYTEAOID		17
#define TEXTARRAYOID	1009

#define STATEMENT_NAME	"receive_webhook"

/*
 * Headers travel as two text arrays in binary format, so no quoting or
 * JSON is written in C: merge_repeated() has joined the values of a
 * repeated header with ", " (RFC 9110 section 5.3), and SQL's
 * jsonb_object() pairs the arrays up.  (A subquery that grouped and joined
 * them in SQL cost about as much as the rest of the statement.)
 */
static const char receive_webhook_sql[] =
"SELECT r.http_status, r.delivery_id, r.message "
"  FROM tenant_airbyte.receive_webhook("
"         $1,"
"         pg_catalog.jsonb_object($2::pg_catalog.text[], $3::pg_catalog.text[]),"
"         $4) AS r";

#define BACKOFF_FIRST_MS	250
#define BACKOFF_MAX_MS		5000

typedef struct Slot
{
	PGconn	   *conn;
	bool		prepared;
} Slot;

static PoolOptions options;
static Slot *slots;
static int *free_slots;			/* stack of free slot indexes */
static int	nfree;
static int	nopen;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_freed;

/* backoff state, under pool_lock */
static int	backoff_ms = 0;		/* 0: the database is believed reachable */
static double retry_at = 0;		/* monotonic time of the next attempt */
static bool probing = false;	/* a connection attempt during backoff runs */

/* monotonic_seconds: a clock that jumps neither with NTP nor with DST */
double
monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * pool_init
 *		Allocate the slots; connections are opened on first use (and by
 *		pool_warm), so the shim starts even when the database does not.
 */
bool
pool_init(const PoolOptions *opts)
{
	pthread_condattr_t attr;
	int			i;

	options = *opts;
	slots = calloc(options.size, sizeof(Slot));
	free_slots = calloc(options.size, sizeof(int));
	if (slots == NULL || free_slots == NULL)
		return false;
	for (i = 0; i < options.size; i++)
		free_slots[i] = options.size - 1 - i;
	nfree = options.size;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&slot_freed, &attr);
	pthread_condattr_destroy(&attr);
	return true;
}

/* first_line: the first line of a libpq message, for a one-line log */
static void
first_line(const char *msg, char *buf, size_t len)
{
	size_t		n = strcspn(msg ? msg : "", "\n");

	if (n >= len)
		n = len - 1;
	memcpy(buf, msg ? msg : "", n);
	buf[n] = '\0';
}

/*
 * log_notice
 *		Server messages that arrive outside a result (the FATAL sent before
 *		a shutdown closes the connection, warnings).  Only warnings and
 *		worse are logged, one line each; libpq would print them to stderr.
 */
static void
log_notice(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char		line[300];

	(void) arg;
	if (severity == NULL ||
		(strcmp(severity, "WARNING") != 0 && strcmp(severity, "FATAL") != 0 &&
		 strcmp(severity, "PANIC") != 0))
		return;
	first_line(PQresultErrorMessage(res), line, sizeof(line));
	log_message("database says: %s", line);
}

/*
 * open_connection
 *		Connect and prepare the statement.  The user's conninfo comes after
 *		our defaults so it can override them; client_encoding comes last
 *		because the shim hands headers over as UTF-8.
 */
static PGconn *
open_connection(char *error, size_t errlen)
{
	const char *keys[] = {"fallback_application_name", "connect_timeout",
	"dbname", "client_encoding", NULL};
	const char *values[] = {"tenant_airbyte_webhookd", "5",
	options.conninfo ? options.conninfo : "", "UTF8", NULL};
	Oid			types[4] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, BYTEAOID};
	PGconn	   *conn;
	PGresult   *res;

	conn = PQconnectdbParams(keys, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		first_line(conn ? PQerrorMessage(conn) : "out of memory", error, errlen);
		PQfinish(conn);
		return NULL;
	}

	PQsetNoticeReceiver(conn, log_notice, NULL);

	if (options.statement_timeout_ms > 0)
	{
		char		sql[64];

		snprintf(sql, sizeof(sql), "SET statement_timeout = %d",
				 options.statement_timeout_ms);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			first_line(PQerrorMessage(conn), error, errlen);
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}

	res = PQprepare(conn, STATEMENT_NAME, receive_webhook_sql, 4, types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		char		line[200];

		first_line(PQresultErrorMessage(res), line, sizeof(line));
		snprintf(error, errlen, "could not prepare the call of tenant_airbyte.receive_webhook (is the extension installed in this database?): %s",
				 line);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

/*
 * connection_alive
 *		Cheap check before reuse.  After a server restart an idle pooled
 *		connection has a FATAL message and EOF waiting on its socket;
 *		reading them now lets us reconnect instead of failing a request.
 */
static bool
connection_alive(PGconn *conn)
{
	struct pollfd pfd;

	if (PQstatus(conn) != CONNECTION_OK ||
		PQtransactionStatus(conn) != PQTRANS_IDLE)
		return false;
	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) > 0)
	{
		if (!PQconsumeInput(conn))
			return false;
	}
	return PQstatus(conn) == CONNECTION_OK;
}

/*
 * slot_acquire
 *		Take a free slot within wait_ms.  Returns -1 when none came free.
 */
static int
slot_acquire(void)
{
	struct timespec deadline;
	int			index = -1;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += options.wait_ms / 1000;
	deadline.tv_nsec += (long) (options.wait_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000)
	{
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}

	pthread_mutex_lock(&pool_lock);
	while (nfree == 0)
	{
		if (pthread_cond_timedwait(&slot_freed, &pool_lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (nfree > 0)
		index = free_slots[--nfree];
	pthread_mutex_unlock(&pool_lock);
	return index;
}

static void
slot_release(int index)
{
	pthread_mutex_lock(&pool_lock);
	free_slots[nfree++] = index;
	pthread_cond_signal(&slot_freed);
	pthread_mutex_unlock(&pool_lock);
}

/* slot_close: drop a slot's connection (broken or no longer trusted) */
static void
slot_close(Slot *slot)
{
	if (slot->conn == NULL)
		return;
	PQfinish(slot->conn);
	slot->conn = NULL;
	pthread_mutex_lock(&pool_lock);
	nopen--;
	pthread_mutex_unlock(&pool_lock);
}

/*
 * slot_connect
 *		Make sure the slot holds a live, prepared connection.  Honours the
 *		backoff: while it lasts, fail at once and say how long to wait.
 */
static bool
slot_connect(Slot *slot, int *retry_after)
{
	char		error[512];
	double		now;
	PGconn	   *conn;
	bool		was_down;

	if (slot->conn != NULL && connection_alive(slot->conn))
		return true;
	slot_close(slot);

	pthread_mutex_lock(&pool_lock);
	now = monotonic_seconds();
	if (backoff_ms > 0 && (now < retry_at || probing))
	{
		double		wait = retry_at - now;

		pthread_mutex_unlock(&pool_lock);
		*retry_after = wait > 1 ? (int) ceil(wait) : 1;
		return false;
	}
	was_down = backoff_ms > 0;
	if (was_down)
		probing = true;
	pthread_mutex_unlock(&pool_lock);

	conn = open_connection(error, sizeof(error));

	pthread_mutex_lock(&pool_lock);
	probing = false;
	if (conn != NULL)
	{
		backoff_ms = 0;
		nopen++;
	}
	else
	{
		backoff_ms = backoff_ms == 0 ? BACKOFF_FIRST_MS :
			(backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2);
		retry_at = monotonic_seconds() + backoff_ms / 1000.0;
		*retry_after = backoff_ms >= 1000 ? (backoff_ms + 999) / 1000 : 1;
	}
	pthread_mutex_unlock(&pool_lock);

	if (conn == NULL)
	{
		metrics_database_error(DB_ERROR_CONNECT);
		if (!was_down)
			log_message("database unavailable: %s; answering 503 and retrying with backoff", error);
		return false;
	}
	if (was_down)
		log_message("database connection restored");
	slot->conn = conn;
	return true;
}

/*
 * put_int32
 *		Append a network-order 32-bit integer (the binary wire format).
 */
static char *
put_int32(char *p, uint32_t v)
{
	uint32_t	n = htonl(v);

	memcpy(p, &n, 4);
	return p + 4;
}

/*
 * text_array_binary
 *		A one-dimensional text[] in PostgreSQL's binary array format
 *		(array_recv): ndim, has-nulls flag, element type, then per
 *		dimension its length and lower bound, then each element as length
 *		plus bytes.  No quoting is needed, which is why we use it.
 */
static char *
text_array_binary(int n, char **items, int *len)
{
	size_t		size = 20;
	char	   *buf;
	char	   *p;
	int			i;

	for (i = 0; i < n; i++)
		size += 4 + strlen(items[i]);
	buf = malloc(size);
	if (buf == NULL)
		return NULL;
	p = buf;
	p = put_int32(p, n > 0 ? 1 : 0);
	p = put_int32(p, 0);
	p = put_int32(p, TEXTOID);
	if (n > 0)
	{
		p = put_int32(p, (uint32_t) n);
		p = put_int32(p, 1);
		for (i = 0; i < n; i++)
		{
			size_t		l = strlen(items[i]);

			p = put_int32(p, (uint32_t) l);
			memcpy(p, items[i], l);
			p += l;
		}
	}
	*len = (int) (p - buf);
	return buf;
}

/* A header's place in the request, for merge_repeated(). */
typedef struct HeaderRef
{
	const char *name;
	const char *value;
	int			position;
} HeaderRef;

/* Orders headers by name, and a name's values by arrival. */
static int
header_ref_cmp(const void *a, const void *b)
{
	const HeaderRef *x = a;
	const HeaderRef *y = b;
	int			c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->position < y->position ? -1 : x->position > y->position;
}

/*
 * merge_repeated
 *		Each header name once, the values of a repeated one joined with
 *		", " in the order they arrived (RFC 9110 section 5.3).  Names are
 *		already lower-cased.  Sorting keeps this O(n log n) however many
 *		headers a hostile request sends.  Fills names_out/values_out
 *		(malloc'd, as are the joined values, listed in *joined) and returns
 *		how many there are, or -1 when out of memory.
 */
static int
merge_repeated(int n, char **names, char **values,
			   char ***names_out, char ***values_out, char ***joined,
			   int *njoined)
{
	HeaderRef  *refs = malloc((n > 0 ? n : 1) * sizeof(HeaderRef));
	char	  **out_names = malloc((n > 0 ? n : 1) * sizeof(char *));
	char	  **out_values = malloc((n > 0 ? n : 1) * sizeof(char *));
	char	  **out_joined = malloc((n > 0 ? n : 1) * sizeof(char *));
	int			nout = 0;
	int			i;
	int			j;

	*njoined = 0;
	if (refs == NULL || out_names == NULL || out_values == NULL || out_joined == NULL)
		goto oom;
	for (i = 0; i < n; i++)
	{
		refs[i].name = names[i];
		refs[i].value = values[i];
		refs[i].position = i;
	}
	qsort(refs, n, sizeof(HeaderRef), header_ref_cmp);

	for (i = 0; i < n; i = j)
	{
		size_t		size = 0;
		char	   *value;
		char	   *p;
		int			k;

		for (j = i; j < n && strcmp(refs[j].name, refs[i].name) == 0; j++)
			size += strlen(refs[j].value) + 2;
		out_names[nout] = (char *) refs[i].name;
		if (j == i + 1)
		{
			out_values[nout++] = (char *) refs[i].value;
			continue;
		}
		value = malloc(size + 1);
		if (value == NULL)
			goto oom;
		out_joined[(*njoined)++] = value;
		p = value;
		for (k = i; k < j; k++)
		{
			size_t		l = strlen(refs[k].value);

			if (k > i)
			{
				memcpy(p, ", ", 2);
				p += 2;
			}
			memcpy(p, refs[k].value, l);
			p += l;
		}
		*p = '\0';
		out_values[nout++] = value;
	}

	free(refs);
	*names_out = out_names;
	*values_out = out_values;
	*joined = out_joined;
	return nout;

oom:
	if (out_joined != NULL)
		for (i = 0; i < *njoined; i++)
			free(out_joined[i]);
	free(refs);
	free(out_names);
	free(out_values);
	free(out_joined);
	*njoined = 0;
	return -1;
}

static void
set_result(WebhookResult *result, int status, const char *message, int retry_after)
{
	result->http_status = status;
	result->delivery_id = -1;
	snprintf(result->message, sizeof(result->message), "%s", message);
	result->retry_after = retry_after;
}

/*
 * is_transient
 *		SQLSTATEs after which the same delivery may well succeed later, so
 *		the sender is told 503 and retries: connection and resource
 *		trouble, shutdown, timeouts, serialization and lock failures.
 */
static bool
is_transient(const char *sqlstate)
{
	if (sqlstate == NULL)
		return true;			/* no SQLSTATE: libpq lost the connection */
	return strncmp(sqlstate, "08", 2) == 0 ||	/* connection exception */
		strncmp(sqlstate, "53", 2) == 0 ||	/* insufficient resources */
		strncmp(sqlstate, "57", 2) == 0 ||	/* shutdown, cancel, timeout */
		strncmp(sqlstate, "58", 2) == 0 ||	/* system error */
		strncmp(sqlstate, "40", 2) == 0 ||	/* serialization, deadlock */
		strcmp(sqlstate, "55P03") == 0 ||	/* lock not available */
		strcmp(sqlstate, "55000") == 0 ||	/* object not in prerequisite state */
		strcmp(sqlstate, "25006") == 0;	/* read-only transaction (standby) */
}

/*
 * interpret_result
 *		Turn receive_webhook's row, or its error, into the answer.
 */
static void
interpret_result(Slot *slot, PGresult *res, WebhookResult *result)
{
	ExecStatusType status = PQresultStatus(res);

	if (status == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 3 &&
		!PQgetisnull(res, 0, 0))
	{
		long		code = strtol(PQgetvalue(res, 0, 0), NULL, 10);

		if (code < 100 || code > 599)
		{
			log_message("tenant_airbyte.receive_webhook returned HTTP status %ld, which is not one", code);
			set_result(result, 500, "internal error", 0);
			return;
		}
		set_result(result, (int) code,
				   PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2), 0);
		if (!PQgetisnull(res, 0, 1))
			result->delivery_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		return;
	}

	if (status == PGRES_TUPLES_OK)
	{
		log_message("tenant_airbyte.receive_webhook returned %d rows instead of one", PQntuples(res));
		set_result(result, 500, "internal error", 0);
		return;
	}

	metrics_database_error(DB_ERROR_QUERY);
	{
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		char		line[300];

		/*
		 * Data exceptions (class 22) come from the request itself, for
		 * example a header that is not valid UTF-8.  Their messages may
		 * quote bytes of a header, so only the SQLSTATE is logged.
		 */
		if (sqlstate != NULL && strncmp(sqlstate, "22", 2) == 0)
		{
			log_message("receive_webhook refused the request: SQLSTATE %s", sqlstate);
			set_result(result, 400, "malformed request", 0);
			return;
		}

		first_line(PQresultErrorMessage(res), line, sizeof(line));
		log_message("receive_webhook failed: SQLSTATE %s: %s",
					sqlstate ? sqlstate : "(none)", line);
		if (PQstatus(slot->conn) != CONNECTION_OK ||
			PQtransactionStatus(slot->conn) != PQTRANS_IDLE)
			slot_close(slot);
		if (is_transient(sqlstate))
			set_result(result, 503, "database unavailable, retry later", 1);
		else
			set_result(result, 500, "internal error", 0);
	}
}

/*
 * pool_receive_webhook
 *		Hand one delivery to tenant_airbyte.receive_webhook() and fill in
 *		the answer.  Any path that is not a committed result ends in 4xx or
 *		5xx.
 */
void
pool_receive_webhook(const char *event,
					 int nheaders, char **names, char **values,
					 const char *body, size_t body_len,
					 WebhookResult *result)
{
	const char *params[4];
	int			lengths[4];
	int			formats[4] = {0, 1, 1, 1};
	char	   *name_array = NULL;
	char	   *value_array = NULL;
	char	  **merged_names;
	char	  **merged_values;
	char	  **joined;
	int			nmerged;
	int			njoined;
	int			i;
	int			retry_after = 1;
	int			index;
	PGresult   *res;

	index = slot_acquire();
	if (index < 0)
	{
		set_result(result, 503, "too busy, retry later", 1);
		return;
	}
	if (!slot_connect(&slots[index], &retry_after))
	{
		slot_release(index);
		set_result(result, 503, "database unavailable, retry later", retry_after);
		return;
	}

	nmerged = merge_repeated(nheaders, names, values,
							 &merged_names, &merged_values, &joined, &njoined);
	if (nmerged >= 0)
	{
		name_array = text_array_binary(nmerged, merged_names, &lengths[1]);
		value_array = text_array_binary(nmerged, merged_values, &lengths[2]);
		for (i = 0; i < njoined; i++)
			free(joined[i]);
		free(joined);
		free(merged_names);
		free(merged_values);
	}
	if (name_array == NULL || value_array == NULL)
	{
		free(name_array);
		free(value_array);
		slot_release(index);
		set_result(result, 503, "out of memory, retry later", 1);
		return;
	}
	params[0] = event;
	lengths[0] = 0;
	params[1] = name_array;
	params[2] = value_array;
	params[3] = body_len > 0 ? body : "";
	lengths[3] = (int) body_len;

	res = PQexecPrepared(slots[index].conn, STATEMENT_NAME, 4, params,
						 lengths, formats, 0);
	interpret_result(&slots[index], res, result);
	PQclear(res);
	free(name_array);
	free(value_array);
	slot_release(index);
}

/*
 * pool_health
 *		Does the database answer a trivial query right now?
 */
bool
pool_health(int *retry_after)
{
	int			index = slot_acquire();
	bool		ok = false;
	PGresult   *res;

	*retry_after = 1;
	if (index < 0)
		return false;
	if (slot_connect(&slots[index], retry_after))
	{
		res = PQexec(slots[index].conn, "SELECT 1");
		ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		PQclear(res);
		if (!ok)
		{
			metrics_database_error(DB_ERROR_QUERY);
			if (PQstatus(slots[index].conn) != CONNECTION_OK)
				slot_close(&slots[index]);
		}
	}
	slot_release(index);
	return ok;
}

/*
 * pool_exec
 *		Run one parameterised statement (text parameters, text results) on
 *		a pooled connection.  NULL when no connection could be had (then
 *		*retry_after says how long to wait); otherwise the result, ok or
 *		an error, to be freed with pool_clear().  Parameters are never
 *		logged: they may be credentials.
 */
PGresult *
pool_exec(const char *sql, int nparams, const char *const *values, int *retry_after)
{
	int			index = slot_acquire();
	PGresult   *res;

	*retry_after = 1;
	if (index < 0)
		return NULL;
	if (!slot_connect(&slots[index], retry_after))
	{
		slot_release(index);
		return NULL;
	}
	res = PQexecParams(slots[index].conn, sql, nparams, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		metrics_database_error(DB_ERROR_QUERY);
		if (PQstatus(slots[index].conn) != CONNECTION_OK ||
			PQtransactionStatus(slots[index].conn) != PQTRANS_IDLE)
			slot_close(&slots[index]);
	}
	slot_release(index);
	return res;
}

/* pool_clear: free what pool_exec() returned */
void
pool_clear(PGresult *res)
{
	PQclear(res);
}

/*
 * pool_extension_metrics
 *		tenant_airbyte.metrics() (the inbox and the worker), for /metrics,
 *		as a malloc'd string; NULL when the database is unreachable or the
 *		function is missing or not executable by our role (grant it
 *		pg_monitor).  Neither is counted as a database error: /metrics
 *		reports it with its own gauge.
 */
char *
pool_extension_metrics(void)
{
	int			index = slot_acquire();
	int			retry_after;
	char	   *text = NULL;
	PGresult   *res;

	if (index < 0)
		return NULL;
	if (slot_connect(&slots[index], &retry_after))
	{
		res = PQexec(slots[index].conn,
					 "SELECT pg_catalog.to_regprocedure('tenant_airbyte.metrics()') IS NOT NULL"
					 " AND pg_catalog.has_function_privilege('tenant_airbyte.metrics()', 'EXECUTE')");
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		{
			PQclear(res);
			res = PQexec(slots[index].conn, "SELECT tenant_airbyte.metrics()");
			if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
				!PQgetisnull(res, 0, 0))
				text = strdup(PQgetvalue(res, 0, 0));
		}
		PQclear(res);
		if (PQstatus(slots[index].conn) != CONNECTION_OK)
			slot_close(&slots[index]);
	}
	slot_release(index);
	return text;
}

/*
 * pool_warm
 *		Open one connection at start-up, so a wrong conninfo shows up in the
 *		log at once rather than at the first delivery.
 */
void
pool_warm(void)
{
	int			retry_after;

	if (pool_health(&retry_after))
		log_message("database connection ready");
}

/* pool_stats: open and busy connections, for /metrics */
void
pool_stats(int *open, int *busy)
{
	pthread_mutex_lock(&pool_lock);
	*open = nopen;
	*busy = options.size - nfree;
	pthread_mutex_unlock(&pool_lock);
}

/* pool_shutdown: close every connection (no request runs any more) */
void
pool_shutdown(void)
{
	int			i;

	for (i = 0; i < options.size; i++)
		slot_close(&slots[i]);
}

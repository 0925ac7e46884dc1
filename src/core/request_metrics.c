/*-------------------------------------------------------------------------
 *
 * request_metrics.c
 *	  Counters of every Airbyte request the extension makes, by endpoint
 *	  and outcome, with a latency histogram per endpoint, kept in shared
 *	  memory; and tenant_airbyte.worker_metrics(), which renders them and
 *	  the worker's state in Prometheus' text exposition format for
 *	  tenant_airbyte.metrics() (see doc/operations.md, "Monitoring").
 *
 * Every request goes through http_request_complete() (http_client.c),
 * whether a backend performed it or the worker's multi handle did, and
 * that is where it is counted.  Counters are atomics: counting takes no
 * lock and never fails.  Labels are fixed words from the tables below,
 * never anything from a URL: an id in a path becomes "{id}" and a path
 * that is not in the table is counted as "other".
 *
 * Present only when the library is preloaded (shared memory); otherwise
 * nothing is counted and the rendering says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"

#include "http_client.h"
#include "request_metrics.h"
#include "shmem.h"
#include "tenant_airbyte.h"

/* The Airbyte API's endpoints we call, as method and path template. */
static const char *const endpoints[] = {
	"POST /applications/token",
	"POST /workspaces",
	"GET /workspaces",
	"GET /workspaces/{id}",
	"PATCH /workspaces/{id}",
	"DELETE /workspaces/{id}",
	"POST /sources",
	"GET /sources",
	"GET /sources/{id}",
	"DELETE /sources/{id}",
	"POST /sources/initiateOAuth",
	"POST /destinations",
	"DELETE /destinations/{id}",
	"POST /connections",
	"PATCH /connections/{id}",
	"DELETE /connections/{id}",
	"POST /jobs",
	"GET /jobs",
	"GET /jobs/{id}",
	"DELETE /jobs/{id}",
	"PUT /workspaces/{id}/oauthCredentials",
	"other"
};
#define N_ENDPOINTS lengthof(endpoints)
#define ENDPOINT_OTHER (N_ENDPOINTS - 1)

/* How a request ended: an HTTP status class, or no answer at all. */
static const char *const outcomes[] = {"2xx", "4xx", "429", "5xx", "other", "error"};
#define N_OUTCOMES lengthof(outcomes)

/* Latency histogram upper bounds, seconds (then +Inf). */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BOUNDS lengthof(bounds)

typedef struct RequestMetrics
{
	pg_atomic_uint64 requests[N_ENDPOINTS][N_OUTCOMES];
	pg_atomic_uint64 buckets[N_ENDPOINTS][N_BOUNDS + 1];
	pg_atomic_uint64 duration_us[N_ENDPOINTS];
} RequestMetrics;

static RequestMetrics *metrics = NULL;

static shmem_request_hook_type prev_request_hook = NULL;
static shmem_startup_hook_type prev_startup_hook = NULL;

static void request_metrics_shmem_request(void);
static void request_metrics_shmem_startup(void);

/*
 * request_metrics_register
 *		Called from _PG_init while preloading: reserve and set up the
 *		counters through the shared memory hooks.
 */
void
request_metrics_register(void)
{
	prev_request_hook = shmem_request_hook;
	shmem_request_hook = request_metrics_shmem_request;
	prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = request_metrics_shmem_startup;
}

static void
request_metrics_shmem_request(void)
{
	if (prev_request_hook)
		prev_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RequestMetrics)));
}

static void
request_metrics_shmem_startup(void)
{
	bool		found;

	if (prev_startup_hook)
		prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	metrics = ShmemInitStruct("tenant_airbyte request metrics", sizeof(RequestMetrics), &found);
	if (!found)
	{
		int			e,
					i;

		for (e = 0; e < N_ENDPOINTS; e++)
		{
			for (i = 0; i < N_OUTCOMES; i++)
				pg_atomic_init_u64(&metrics->requests[e][i], 0);
			for (i = 0; i <= N_BOUNDS; i++)
				pg_atomic_init_u64(&metrics->buckets[e][i], 0);
			pg_atomic_init_u64(&metrics->duration_us[e], 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * id_like
 *		A path segment that names an object: a UUID or a job number.
 */
static bool
id_like(const char *s, size_t len)
{
	size_t		i;
	bool		digits = true;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			digits = false;
		if (!isxdigit((unsigned char) s[i]) && s[i] != '-')
			return false;
	}
	return digits || len >= 8;
}

/*
 * endpoint_index
 *		The table entry a request's method and URL match: the path after
 *		the host, without the query, ids replaced by {id}, must end with
 *		the entry's path (the API's base path, /v1 or /api/public/v1, is
 *		whatever comes before).
 */
static int
endpoint_index(HttpMethod method, const char *url)
{
	const char *p = strstr(url, "://");
	char		path[256];
	size_t		n = 0;
	const char *m = http_method_name(method);
	size_t		mlen = strlen(m);
	int			e;
	int			best = ENDPOINT_OTHER;
	size_t		best_len = 0;

	p = p ? strchr(p + 3, '/') : NULL;
	if (p == NULL)
		return ENDPOINT_OTHER;
	while (*p != '\0' && *p != '?' && *p != '#')
	{
		const char *seg = p + 1;
		size_t		len = strcspn(seg, "/?#");
		const char *word = id_like(seg, len) ? "{id}" : seg;
		size_t		wlen = id_like(seg, len) ? 4 : len;

		if (n + 1 + wlen >= sizeof(path))
			return ENDPOINT_OTHER;
		path[n++] = '/';
		memcpy(path + n, word, wlen);
		n += wlen;
		p = seg + len;
	}
	path[n] = '\0';

	for (e = 0; e < ENDPOINT_OTHER; e++)
	{
		const char *entry = endpoints[e];
		const char *epath;
		size_t		elen;

		if (strncmp(entry, m, mlen) != 0 || entry[mlen] != ' ')
			continue;
		epath = entry + mlen + 1;
		elen = strlen(epath);
		if (elen <= n && strcmp(path + n - elen, epath) == 0 && elen > best_len)
		{
			best = e;
			best_len = elen;
		}
	}
	return best;
}

/*
 * request_metrics_observe
 *		Count one finished request.  Runs in backends and in the worker;
 *		must not ERROR (it runs after the transfer, before the caller has
 *		looked at the result).
 */
void
request_metrics_observe(HttpRequest *req)
{
	int			e;
	int			outcome;
	curl_off_t	total_us = 0;
	double		seconds;
	int			b;

	if (metrics == NULL)
		return;

	e = endpoint_index(req->method, req->url);
	if (req->curl_code != CURLE_OK || req->http_status == 0)
		outcome = 5;
	else if (req->http_status == 429)
		outcome = 2;
	else if (req->http_status >= 200 && req->http_status < 300)
		outcome = 0;
	else if (req->http_status >= 400 && req->http_status < 500)
		outcome = 1;
	else if (req->http_status >= 500 && req->http_status < 600)
		outcome = 3;
	else
		outcome = 4;
	pg_atomic_fetch_add_u64(&metrics->requests[e][outcome], 1);

	if (req->easy != NULL &&
		curl_easy_getinfo(req->easy, CURLINFO_TOTAL_TIME_T, &total_us) != CURLE_OK)
		total_us = 0;
	seconds = (double) total_us / 1e6;
	for (b = 0; b < N_BOUNDS && seconds > bounds[b]; b++)
		;
	pg_atomic_fetch_add_u64(&metrics->buckets[e][b], 1);
	pg_atomic_fetch_add_u64(&metrics->duration_us[e], (uint64) total_us);
}

PG_FUNCTION_INFO_V1(tenant_airbyte_worker_metrics);

/*
 * tenant_airbyte_worker_metrics
 *		The shared-memory part of tenant_airbyte.metrics(): the worker's
 *		state and counters, and the request counters and histograms.
 */
Datum
tenant_airbyte_worker_metrics(PG_FUNCTION_ARGS)
{
	StringInfoData out;
	WorkerStatusSnapshot w;
	int			e,
				i;

	initStringInfo(&out);
	shmem_snapshot(&w);

	appendStringInfo(&out,
					 "# HELP tenant_airbyte_worker_up 1 when the background worker is running.\n"
					 "# TYPE tenant_airbyte_worker_up gauge\n"
					 "tenant_airbyte_worker_up %d\n"
					 "# HELP tenant_airbyte_worker_state The worker's current state (1 for the state it is in).\n"
					 "# TYPE tenant_airbyte_worker_state gauge\n",
					 w.pid != 0 ? 1 : 0);
	for (i = WORKER_STATE_STOPPED; i <= WORKER_STATE_WORKING; i++)
		appendStringInfo(&out, "tenant_airbyte_worker_state{state=\"%s\"} %d\n",
						 worker_state_name((WorkerState) i), w.state == i ? 1 : 0);
	appendStringInfo(&out,
					 "# HELP tenant_airbyte_worker_requests_in_flight Airbyte requests the worker has in flight.\n"
					 "# TYPE tenant_airbyte_worker_requests_in_flight gauge\n"
					 "tenant_airbyte_worker_requests_in_flight %d\n"
					 "# HELP tenant_airbyte_worker_deliveries_finished_total Deliveries the worker finished since it started.\n"
					 "# TYPE tenant_airbyte_worker_deliveries_finished_total counter\n"
					 "tenant_airbyte_worker_deliveries_finished_total " UINT64_FORMAT "\n"
					 "# HELP tenant_airbyte_worker_commit_wakeups_total Times a commit woke the worker.\n"
					 "# TYPE tenant_airbyte_worker_commit_wakeups_total counter\n"
					 "tenant_airbyte_worker_commit_wakeups_total " UINT64_FORMAT "\n",
					 w.in_flight, w.deliveries_finished, w.commit_wakeups);

	if (metrics == NULL)
	{
		appendStringInfoString(&out,
							   "# tenant_airbyte is not in shared_preload_libraries: no request metrics\n");
		PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
	}

	appendStringInfoString(&out,
						   "# HELP tenant_airbyte_airbyte_requests_total Airbyte API requests by endpoint and outcome (HTTP status class, or error: no answer).\n"
						   "# TYPE tenant_airbyte_airbyte_requests_total counter\n");
	for (e = 0; e < N_ENDPOINTS; e++)
		for (i = 0; i < N_OUTCOMES; i++)
		{
			uint64		n = pg_atomic_read_u64(&metrics->requests[e][i]);

			if (n > 0)
				appendStringInfo(&out,
								 "tenant_airbyte_airbyte_requests_total{endpoint=\"%s\",outcome=\"%s\"} " UINT64_FORMAT "\n",
								 endpoints[e], outcomes[i], n);
		}

	appendStringInfoString(&out,
						   "# HELP tenant_airbyte_airbyte_request_duration_seconds Time an Airbyte request took, by endpoint.\n"
						   "# TYPE tenant_airbyte_airbyte_request_duration_seconds histogram\n");
	for (e = 0; e < N_ENDPOINTS; e++)
	{
		uint64		cumulative = 0;

		for (i = 0; i <= N_BOUNDS; i++)
			cumulative += pg_atomic_read_u64(&metrics->buckets[e][i]);
		if (cumulative == 0)
			continue;
		cumulative = 0;
		for (i = 0; i <= N_BOUNDS; i++)
		{
			cumulative += pg_atomic_read_u64(&metrics->buckets[e][i]);
			if (i < N_BOUNDS)
				appendStringInfo(&out,
								 "tenant_airbyte_airbyte_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} " UINT64_FORMAT "\n",
								 endpoints[e], bounds[i], cumulative);
			else
				appendStringInfo(&out,
								 "tenant_airbyte_airbyte_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} " UINT64_FORMAT "\n",
								 endpoints[e], cumulative);
		}
		appendStringInfo(&out,
						 "tenant_airbyte_airbyte_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
						 "tenant_airbyte_airbyte_request_duration_seconds_count{endpoint=\"%s\"} " UINT64_FORMAT "\n",
						 endpoints[e], (double) pg_atomic_read_u64(&metrics->duration_us[e]) / 1e6,
						 endpoints[e], cumulative);
	}

	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

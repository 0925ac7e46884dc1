/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Counters for GET /metrics, in Prometheus' text exposition format.
 *
 * Every counter is a plain integer bumped with an atomic add, so request
 * threads never wait on each other to be counted.  The exposition ends
 * with tenant_airbyte.metrics() (the inbox and the background worker),
 * read from the database at each scrape.  Labels are fixed
 * words chosen here (route names, status codes), never request data.
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <stdio.h>
#include <stdlib.h>

#define STATUS_MIN 100
#define STATUS_MAX 599

/* latency histogram upper bounds, seconds */
static const double bucket_bounds[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

static unsigned long long requests[ROUTE_COUNT][STATUS_MAX - STATUS_MIN + 1];
static unsigned long long buckets[ROUTE_COUNT][NBUCKETS + 1];
static unsigned long long duration_sum_us[ROUTE_COUNT];
static unsigned long long database_errors[DB_ERROR_KIND_COUNT];

static const char *const route_labels[ROUTE_COUNT] = {
	"tenant-created", "tenant-deleted", "frontegg", "health", "metrics", "oauth-callback", "other"
};

static const char *const db_error_labels[DB_ERROR_KIND_COUNT] = {
	"connect", "query"
};

#define COUNT(var) __atomic_fetch_add(&(var), 1, __ATOMIC_RELAXED)
#define READ(var) __atomic_load_n(&(var), __ATOMIC_RELAXED)

/* route_label: the word a route goes by in logs and metrics */
const char *
route_label(Route route)
{
	return route_labels[route];
}

/*
 * metrics_observe
 *		Count one finished request: its status, and its duration in the
 *		route's histogram.
 */
void
metrics_observe(Route route, int status, double seconds)
{
	size_t		b;

	if (status >= STATUS_MIN && status <= STATUS_MAX)
		COUNT(requests[route][status - STATUS_MIN]);
	for (b = 0; b < NBUCKETS && seconds > bucket_bounds[b]; b++)
		;
	COUNT(buckets[route][b]);
	__atomic_fetch_add(&duration_sum_us[route],
					   (unsigned long long) (seconds * 1e6), __ATOMIC_RELAXED);
}

/* metrics_database_error: count a failed connection or statement */
void
metrics_database_error(DatabaseErrorKind kind)
{
	COUNT(database_errors[kind]);
}

/*
 * metrics_render
 *		The whole exposition as one malloc'd string (the caller frees it).
 */
char *
metrics_render(size_t *len)
{
	char	   *text = NULL;
	FILE	   *out = open_memstream(&text, len);
	int			r;
	int			s;
	size_t		b;
	int			open;
	int			busy;
	char	   *extension;

	if (out == NULL)
		return NULL;

	fprintf(out,
			"# HELP tenant_airbyte_webhookd_requests_total HTTP requests answered, by route and status.\n"
			"# TYPE tenant_airbyte_webhookd_requests_total counter\n");
	for (r = 0; r < ROUTE_COUNT; r++)
		for (s = STATUS_MIN; s <= STATUS_MAX; s++)
		{
			unsigned long long n = READ(requests[r][s - STATUS_MIN]);

			if (n > 0)
				fprintf(out, "tenant_airbyte_webhookd_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
						route_labels[r], s, n);
		}

	fprintf(out,
			"# HELP tenant_airbyte_webhookd_database_errors_total Failed database connections and statements.\n"
			"# TYPE tenant_airbyte_webhookd_database_errors_total counter\n");
	for (r = 0; r < DB_ERROR_KIND_COUNT; r++)
		fprintf(out, "tenant_airbyte_webhookd_database_errors_total{kind=\"%s\"} %llu\n",
				db_error_labels[r], READ(database_errors[r]));

	fprintf(out,
			"# HELP tenant_airbyte_webhookd_request_duration_seconds Time from request line to answer.\n"
			"# TYPE tenant_airbyte_webhookd_request_duration_seconds histogram\n");
	for (r = 0; r < ROUTE_COUNT; r++)
	{
		unsigned long long cumulative = 0;

		for (b = 0; b <= NBUCKETS; b++)
		{
			cumulative += READ(buckets[r][b]);
			if (b < NBUCKETS)
				fprintf(out, "tenant_airbyte_webhookd_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
						route_labels[r], bucket_bounds[b], cumulative);
			else
				fprintf(out, "tenant_airbyte_webhookd_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
						route_labels[r], cumulative);
		}
		fprintf(out, "tenant_airbyte_webhookd_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
				route_labels[r], READ(duration_sum_us[r]) / 1e6);
		fprintf(out, "tenant_airbyte_webhookd_request_duration_seconds_count{route=\"%s\"} %llu\n",
				route_labels[r], cumulative);
	}

	fprintf(out,
			"# HELP tenant_airbyte_webhookd_connections_closed_total Connections the shim closed to protect itself: no complete request in time, over the per-address limit, or to keep slots free.\n"
			"# TYPE tenant_airbyte_webhookd_connections_closed_total counter\n"
			"tenant_airbyte_webhookd_connections_closed_total{reason=\"deadline\"} %llu\n"
			"tenant_airbyte_webhookd_connections_closed_total{reason=\"per_address\"} %llu\n"
			"tenant_airbyte_webhookd_connections_closed_total{reason=\"headroom\"} %llu\n",
			guard_closed_total(GUARD_CLOSED_DEADLINE),
			guard_closed_total(GUARD_CLOSED_PER_PEER),
			guard_closed_total(GUARD_CLOSED_HEADROOM));

	pool_stats(&open, &busy);
	fprintf(out,
			"# HELP tenant_airbyte_webhookd_pool_connections Database connections open and in use.\n"
			"# TYPE tenant_airbyte_webhookd_pool_connections gauge\n"
			"tenant_airbyte_webhookd_pool_connections{state=\"open\"} %d\n"
			"tenant_airbyte_webhookd_pool_connections{state=\"busy\"} %d\n"
			"# HELP tenant_airbyte_webhookd_requests_in_flight Requests received and not yet answered.\n"
			"# TYPE tenant_airbyte_webhookd_requests_in_flight gauge\n"
			"tenant_airbyte_webhookd_requests_in_flight %d\n",
			open, busy, http_in_flight());

	/* The inbox and the worker, from the database (pool.c) */
	extension = pool_extension_metrics();
	fprintf(out,
			"# HELP tenant_airbyte_webhookd_extension_metrics_up 1 when tenant_airbyte.metrics() below could be read.\n"
			"# TYPE tenant_airbyte_webhookd_extension_metrics_up gauge\n"
			"tenant_airbyte_webhookd_extension_metrics_up %d\n%s",
			extension != NULL ? 1 : 0, extension != NULL ? extension : "");
	free(extension);

	if (fclose(out) != 0)
	{
		free(text);
		return NULL;
	}
	return text;
}

/*-------------------------------------------------------------------------
 *
 * retry.h
 *	  Which failures of an Airbyte call are worth another attempt, whether a
 *	  failed request may still have taken effect, and how long to wait.
 *
 * Pure functions (no I/O, randomness passed in; the one setting read is
 * tenant_airbyte.max_retry_after_s), shared
 * by synchronous calls (airbyte_api.c) and the background worker, and
 * tested from SQL through thin wrappers at the end of retry.c.  The policy
 * is doc/operations.md, "Dead letters and retries".
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_RETRY_H
#define TENANT_AIRBYTE_RETRY_H

#include "pgtime.h"

/* Backoff defaults: first wait up to 200 ms, never more than 30 s. */
#define RETRY_BASE_MS 200
#define RETRY_CAP_MS 30000

/* True for 408, 425, 429, 500, 502, 503, 504. */
extern bool retry_http_status_is_transient(long http_status);

/* True for libcurl codes that mean "the network or server hiccupped". */
extern bool retry_curl_code_is_transient(int curl_code);

/*
 * retry_may_have_taken_effect
 *		Could a request that failed this way have been carried out by the
 *		server anyway?  False only when we know it was not (never connected,
 *		or the server said so with a 4xx/429).  A create that may have taken
 *		effect must be reconciled (list and adopt) before it is re-sent.
 *		curl_code is CURLE_OK when an HTTP answer with http_status arrived.
 */
extern bool retry_may_have_taken_effect(int curl_code, long http_status);

/*
 * retry_backoff_ms
 *		Full jitter: random_fraction (in [0,1)) times
 *		min(cap_ms, base_ms * 2^(attempt-1)); attempt counts from 1.
 */
extern int64 retry_backoff_ms(int attempt, int64 base_ms, int64 cap_ms,
							  double random_fraction);

/*
 * retry_after_ms
 *		Milliseconds a Retry-After header value asks for: delta-seconds or
 *		an HTTP-date (relative to now).  A date in the past gives 0; an
 *		absent or unreadable value gives -1.
 */
extern int64 retry_after_ms(const char *value, pg_time_t now);

/*
 * retry_delay_ms
 *		The wait before attempt+1: the backoff, or the server's Retry-After
 *		(retry_after_ms >= 0) when that asks for longer, but never more than
 *		tenant_airbyte.max_retry_after_s.
 */
extern int64 retry_delay_ms(int attempt, int64 base_ms, int64 cap_ms,
							double random_fraction, int64 retry_after_ms);

/* tenant_airbyte.max_retry_after_s in milliseconds. */
extern int64 retry_after_cap_ms(void);

/* Whether retry_delay_ms() waits less than this Retry-After asks. */
extern bool retry_after_is_capped(int64 retry_after_ms);

#endif							/* TENANT_AIRBYTE_RETRY_H */

/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  Which failures of an Airbyte call are worth another attempt, whether
 *	  a failed request may have taken effect anyway, and when to try again.
 *
 * Pure functions: no I/O, randomness passed in, so the policy is shared by
 * backends and the background worker, and tested from SQL through the thin
 * wrappers at the end of this file.  The one piece of global state read is
 * the setting tenant_airbyte.max_retry_after_s, the most a server's
 * Retry-After may make us wait; it is applied here, in retry_delay_ms(),
 * so that no caller can forget it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "retry.h"
#include "tenant_airbyte.h"

/*
 * retry_http_status_is_transient
 *		408, 425, 429, 500, 502, 503, 504 (doc/operations.md, "Dead letters
 *		and retries").  501 is not: it means the server does not implement
 *		the operation.
 */
bool
retry_http_status_is_transient(long http_status)
{
	switch (http_status)
	{
		case 408:
		case 425:
		case 429:
		case 500:
		case 502:
		case 503:
		case 504:
			return true;
		default:
			return false;
	}
}

/*
 * retry_curl_code_is_transient
 *		Network trouble that may be gone in a moment.  TLS verification
 *		failures, malformed URLs and responses over our size cap are not:
 *		trying again gives the same answer.
 */
bool
retry_curl_code_is_transient(int curl_code)
{
	switch ((CURLcode) curl_code)
	{
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_HTTP3:
		case CURLE_QUIC_CONNECT_ERROR:
			/* a reused connection died after the body went (http_client.c) */
		case CURLE_SEND_FAIL_REWIND:
			return true;
		default:
			return false;
	}
}

/*
 * retry_may_have_taken_effect
 *		False only when we know the server did not act: the connection was
 *		never made (so nothing was sent), or the server answered that it
 *		refused (4xx, including 429).  A timeout, a dropped connection, a
 *		5xx or an unreadable 2xx leave the outcome unknown.
 */
bool
retry_may_have_taken_effect(int curl_code, long http_status)
{
	if (curl_code != CURLE_OK)
	{
		switch ((CURLcode) curl_code)
		{
			case CURLE_UNSUPPORTED_PROTOCOL:
			case CURLE_URL_MALFORMAT:
			case CURLE_COULDNT_RESOLVE_PROXY:
			case CURLE_COULDNT_RESOLVE_HOST:
			case CURLE_COULDNT_CONNECT:
			case CURLE_SSL_CONNECT_ERROR:
			case CURLE_PEER_FAILED_VERIFICATION:
			case CURLE_SSL_CACERT_BADFILE:
			case CURLE_SSL_CERTPROBLEM:
			case CURLE_OUT_OF_MEMORY:
				return false;
			default:
				return true;
		}
	}
	if (http_status >= 400 && http_status < 500)
		return false;
	return true;
}

/*
 * retry_backoff_ms
 *		Full jitter ("Exponential Backoff And Jitter", AWS architecture
 *		blog): spreading retries uniformly over the whole window keeps many
 *		clients that failed together from retrying together.
 */
int64
retry_backoff_ms(int attempt, int64 base_ms, int64 cap_ms, double random_fraction)
{
	double		window;

	if (attempt < 1)
		attempt = 1;
	if (base_ms < 0)
		base_ms = 0;
	if (cap_ms < 0)
		cap_ms = 0;
	if (random_fraction < 0.0)
		random_fraction = 0.0;
	if (random_fraction >= 1.0)
		random_fraction = nextafter(1.0, 0.0);

	/* 2^62 overflows nothing in a double, and the cap applies right after */
	window = (double) base_ms * ldexp(1.0, Min(attempt - 1, 62));
	if (window > (double) cap_ms)
		window = (double) cap_ms;
	return (int64) floor(window * random_fraction);
}

/*
 * retry_after_ms
 *		RFC 9110 section 10.2.3: delta-seconds or an HTTP-date.  libcurl's
 *		curl_getdate() reads all three date formats HTTP allows, so no date
 *		parser is written here.
 */
int64
retry_after_ms(const char *value, pg_time_t now)
{
	const char *p;
	time_t		when;

	if (value == NULL)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value == '\0')
		return -1;

	for (p = value; *p >= '0' && *p <= '9'; p++)
		;
	if (p != value)
	{
		int64		seconds = 0;
		const char *q;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return -1;
		for (q = value; *q >= '0' && *q <= '9'; q++)
		{
			seconds = seconds * 10 + (*q - '0');
			if (seconds > INT64CONST(86400) * 365)
				return INT64CONST(86400) * 365 * 1000;	/* absurd: clamp */
		}
		return seconds * 1000;
	}

	when = curl_getdate(value, NULL);
	if (when == (time_t) -1)
		return -1;
	if ((pg_time_t) when <= now)
		return 0;
	return ((int64) when - (int64) now) * 1000;
}

/*
 * retry_after_cap_ms
 *		The longest wait a Retry-After may ask for: without a bound, one
 *		answer "Retry-After: 31536000" would park a delivery (and every later
 *		delivery for its tenant behind it) for a year.
 */
int64
retry_after_cap_ms(void)
{
	return (int64) tenant_airbyte_max_retry_after_s * 1000;
}

/*
 * retry_after_is_capped
 *		Whether retry_delay_ms() will wait less than this Retry-After asked,
 *		so that the error recorded for the attempt can say so.
 */
bool
retry_after_is_capped(int64 retry_after)
{
	return retry_after > retry_after_cap_ms();
}

/*
 * retry_delay_ms
 *		The server knows best when it asks for more time than our backoff
 *		would wait (retrying earlier would only earn another 429), up to
 *		tenant_airbyte.max_retry_after_s.
 */
int64
retry_delay_ms(int attempt, int64 base_ms, int64 cap_ms,
			   double random_fraction, int64 retry_after)
{
	int64		backoff = retry_backoff_ms(attempt, base_ms, cap_ms, random_fraction);

	retry_after = Min(retry_after, retry_after_cap_ms());
	return Max(backoff, retry_after);
}

/* ------------------------------------------------------------------------
 * SQL wrappers, so the policy has its own pg_regress test (retry_policy).
 * ------------------------------------------------------------------------ */

PG_FUNCTION_INFO_V1(tenant_airbyte_retry_transient_http_status);
PG_FUNCTION_INFO_V1(tenant_airbyte_retry_transient_curl_code);
PG_FUNCTION_INFO_V1(tenant_airbyte_retry_may_have_taken_effect);
PG_FUNCTION_INFO_V1(tenant_airbyte_retry_backoff_ms);
PG_FUNCTION_INFO_V1(tenant_airbyte_retry_after_ms);
PG_FUNCTION_INFO_V1(tenant_airbyte_retry_delay_ms);

Datum
tenant_airbyte_retry_transient_http_status(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(retry_http_status_is_transient(PG_GETARG_INT32(0)));
}

Datum
tenant_airbyte_retry_transient_curl_code(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(retry_curl_code_is_transient(PG_GETARG_INT32(0)));
}

Datum
tenant_airbyte_retry_may_have_taken_effect(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(retry_may_have_taken_effect(PG_GETARG_INT32(0), PG_GETARG_INT32(1)));
}

Datum
tenant_airbyte_retry_backoff_ms(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(retry_backoff_ms(PG_GETARG_INT32(0), PG_GETARG_INT64(1),
									 PG_GETARG_INT64(2), PG_GETARG_FLOAT8(3)));
}

/* NULL when the header value is unreadable. */
Datum
tenant_airbyte_retry_after_ms(PG_FUNCTION_ARGS)
{
	char	   *value = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pg_time_t	now = timestamptz_to_time_t(PG_GETARG_TIMESTAMPTZ(1));
	int64		ms = retry_after_ms(value, now);

	if (ms < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(ms);
}

/*
 * retry_delay_ms(attempt, base_ms, cap_ms, random_fraction, retry_after_ms)
 *		The very function the engine uses to combine backoff and
 *		Retry-After; a NULL or negative retry_after_ms means the answer had
 *		none.
 */
Datum
tenant_airbyte_retry_delay_ms(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	PG_RETURN_INT64(retry_delay_ms(PG_GETARG_INT32(0), PG_GETARG_INT64(1),
								   PG_GETARG_INT64(2), PG_GETARG_FLOAT8(3),
								   PG_ARGISNULL(4) ? -1 : PG_GETARG_INT64(4)));
}

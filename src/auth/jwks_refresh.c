/*-------------------------------------------------------------------------
 *
 * jwks_refresh.c
 *	  Signing keys that refresh themselves: the background worker fetches
 *	  the issuer's JWKS (tenant_airbyte.jwks_url) on start, every
 *	  tenant_airbyte.jwks_refresh_s, and soon after authenticate() met a
 *	  token whose kid no stored key has, and applies it to jwt_keys.
 *
 * authenticate() never makes a network call.  On an unknown kid it raises
 * a flag in shared memory and wakes the worker (jwks_ask_for_refresh), and
 * refuses the token saying a refresh was requested.  The worker honours
 * the flag at most once a minute (JWKS_ASK_INTERVAL_S after the last fetch
 * the flag caused), so any number of tokens with made-up kids costs the
 * issuer one request a minute; the flag is cleared when a fetch completes,
 * so the tokens that raised it while a fetch was on its way are answered
 * by that fetch.
 *
 * The fetch is one GET on the worker's curl multi handle beside the
 * Airbyte requests (never inside a transaction), made by the same HTTP
 * client code: TLS verification on, no redirects, a body of at most
 * JWKS_MAX_BYTES.  The answer is applied by the SQL function apply_jwks()
 * in one short transaction of its own: PostgreSQL's jsonb parses it, only
 * the keys authenticate() can verify are kept, and a document that cannot
 * be used (not JSON, no keys, only unusable keys) raises an error, so the
 * transaction rolls back and the current keys stay as they were.  What
 * happened (when, how many keys, or why not) is in shared memory, which
 * jwks_state() and the worker_status view show.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "http_client.h"
#include "jwks_refresh.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker.h"

/* Fetches that unknown kids cause: at most one per this many seconds. */
#define JWKS_ASK_INTERVAL_S 60
/* After a failed fetch, the next one comes no later than this. */
#define JWKS_RETRY_S 60
/* Largest JWKS document accepted; real ones are a few kilobytes. */
#define JWKS_MAX_BYTES (256 * 1024)

char	   *tenant_airbyte_jwks_url = NULL;
int			tenant_airbyte_jwks_refresh_s = 3600;
int			tenant_airbyte_jwks_grace_s = 600;

typedef struct JwksShared
{
	slock_t		mutex;			/* protects everything but the flag */
	pg_atomic_uint32 refresh_wanted;	/* set by authenticate(), unknown kid */
	TimestampTz checked_at;		/* last fetch completed (0: never) */
	TimestampTz refreshed_at;	/* last document applied (0: never) */
	int			keys;			/* usable keys in that document */
	uint64		fetches;		/* fetches completed since server start */
	char		error[512];		/* why the last fetch changed nothing, "" */
} JwksShared;

static JwksShared *jwks_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The worker's side: at most one fetch at a time. */
static HttpRequest *fetch = NULL;
static MemoryContext fetch_context = NULL;
static char *fetched_url = NULL;	/* URL of the last fetch started */
static TimestampTz last_fetch_at = 0;
static TimestampTz last_asked_fetch_at = 0;
static bool last_fetch_ok = false;
static char fetch_owner;		/* its address marks our transfer */

static bool check_jwks_url(char **newval, void **extra, GucSource source);
static void jwks_shmem_request_hook(void);
static void jwks_shmem_startup_hook(void);
static void start_fetch(HttpWindow *window, const char *url, bool asked);
static char *apply_document(const char *body, size_t len, const char *url, int *keys);
static void record_outcome(const char *error, int keys);

/*
 * jwks_define_settings
 *		The three settings of the refresh.  All PGC_SIGHUP: they come from
 *		the server's configuration, and the worker and every backend read
 *		the same values.
 */
void
jwks_define_settings(void)
{
	DefineCustomStringVariable("tenant_airbyte.jwks_url",
							   "URL of the token issuer's JWKS, which the worker fetches to keep jwt_keys current.",
							   "Empty: no refresh, keys are loaded with load_jwks(). Frontegg serves it at "
							   "https://<your-domain>.frontegg.com/.well-known/jwks.json.",
							   &tenant_airbyte_jwks_url, "",
							   PGC_SIGHUP, 0,
							   check_jwks_url, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.jwks_refresh_s",
							"How often the worker fetches tenant_airbyte.jwks_url.",
							"It also fetches it on start, and within a minute of a token with an unknown kid.",
							&tenant_airbyte_jwks_refresh_s,
							3600, 1, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.jwks_grace_s",
							"How long authenticate() still accepts a key after it vanished from the fetched JWKS.",
							NULL,
							&tenant_airbyte_jwks_grace_s,
							600, 0, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * check_jwks_url
 *		Empty (off), https://, or plain http:// to this host only, as for
 *		tenant_airbyte.api_url: a key fetched over plain HTTP from elsewhere
 *		could be anyone's, and would let them sign tokens for any tenant.
 */
static bool
check_jwks_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' ||
		pg_strncasecmp(*newval, "https://", 8) == 0)
		return true;
	if (pg_strncasecmp(*newval, "http://", 7) == 0)
	{
		if (url_host_is_loopback(*newval))
			return true;
		GUC_check_errdetail("tenant_airbyte.jwks_url may use plain http:// only for a server on this host (localhost, 127.0.0.1 or ::1).");
		GUC_check_errhint("Use the issuer's https:// URL, e.g. https://<your-domain>.frontegg.com/.well-known/jwks.json.");
		return false;
	}
	GUC_check_errdetail("tenant_airbyte.jwks_url must be empty or start with https:// (or http:// for a server on this host).");
	return false;
}

/*
 * jwks_shmem_request
 *		Called from _PG_init while preloading: reserves our struct.
 */
void
jwks_shmem_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = jwks_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = jwks_shmem_startup_hook;
}

static void
jwks_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(JwksShared)));
}

/*
 * jwks_shmem_startup_hook
 *		Creates the struct at postmaster start (and after a crash restart),
 *		attaches to it in every process started afterwards.
 */
static void
jwks_shmem_startup_hook(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	jwks_shared = ShmemInitStruct("tenant_airbyte jwks", sizeof(JwksShared), &found);
	if (!found)
	{
		memset(jwks_shared, 0, sizeof(JwksShared));
		SpinLockInit(&jwks_shared->mutex);
		pg_atomic_init_u32(&jwks_shared->refresh_wanted, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * jwks_ask_for_refresh
 *		authenticate() met an unknown kid: asks the worker to fetch the JWKS
 *		soon.  Only the first request since the last fetch wakes the worker;
 *		the others find the flag raised.  False when there is nothing to ask
 *		(no jwks_url, or no worker because the library was not preloaded).
 */
bool
jwks_ask_for_refresh(void)
{
	if (tenant_airbyte_jwks_url == NULL || tenant_airbyte_jwks_url[0] == '\0' ||
		jwks_shared == NULL)
		return false;
	if (pg_atomic_exchange_u32(&jwks_shared->refresh_wanted, 1) == 0)
		shmem_wake_worker();
	return true;
}

/*
 * jwks_worker_tick
 *		Called by the worker's loop on every turn, outside any transaction:
 *		starts a fetch when one is due, and returns how many milliseconds
 *		until the next one is (-1: none is, or one is on its way and its
 *		completion will wake the loop).
 *
 * Due: when jwks_url changed (or was never fetched since the worker
 * started), jwks_refresh_s after the last fetch (JWKS_RETRY_S at most
 * after a failed one), and, when a backend asked, JWKS_ASK_INTERVAL_S
 * after the last fetch a request caused.
 */
long
jwks_worker_tick(HttpWindow *window)
{
	const char *url = tenant_airbyte_jwks_url;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due;
	bool		asked;
	long		interval_s;

	if (jwks_shared == NULL || fetch != NULL)
		return -1;
	if (url == NULL || url[0] == '\0')
	{
		/* off: forget what an earlier URL did */
		pg_atomic_write_u32(&jwks_shared->refresh_wanted, 0);
		if (fetched_url != NULL)
		{
			pfree(fetched_url);
			fetched_url = NULL;
			SpinLockAcquire(&jwks_shared->mutex);
			jwks_shared->checked_at = 0;
			jwks_shared->refreshed_at = 0;
			jwks_shared->keys = 0;
			jwks_shared->error[0] = '\0';
			SpinLockRelease(&jwks_shared->mutex);
		}
		return -1;
	}

	asked = pg_atomic_read_u32(&jwks_shared->refresh_wanted) != 0;
	if (fetched_url == NULL || strcmp(fetched_url, url) != 0)
		due = now;
	else
	{
		interval_s = tenant_airbyte_jwks_refresh_s;
		if (!last_fetch_ok)
			interval_s = Min(interval_s, JWKS_RETRY_S);
		due = TimestampTzPlusMilliseconds(last_fetch_at, interval_s * 1000);
		if (asked)
		{
			TimestampTz asked_due = TimestampTzPlusMilliseconds(last_asked_fetch_at,
																JWKS_ASK_INTERVAL_S * 1000);

			if (asked_due < due)
				due = asked_due;
		}
	}

	if (due > now)
		return Max(1, TimestampDifferenceMilliseconds(now, due));
	start_fetch(window, url, asked);
	return -1;
}

/*
 * start_fetch
 *		GET url on the worker's multi handle, in a memory context of its own
 *		that is deleted when the fetch is done.  A failure to set libcurl up
 *		is recorded like a failed fetch rather than raised: the worker is
 *		outside a transaction here.
 */
static void
start_fetch(HttpWindow *window, const char *url, bool asked)
{
	MemoryContext old;

	if (fetched_url != NULL)
		pfree(fetched_url);
	fetched_url = MemoryContextStrdup(TopMemoryContext, url);
	last_fetch_at = GetCurrentTimestamp();
	if (asked)
		last_asked_fetch_at = last_fetch_at;

	fetch_context = AllocSetContextCreate(TopMemoryContext, "tenant_airbyte JWKS fetch",
										  ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(fetch_context);
	PG_TRY();
	{
		fetch = http_request_prepare(HTTP_GET, url, NULL, NULL,
									 tenant_airbyte_http_timeout_ms);
		fetch->body_limit = JWKS_MAX_BYTES;
		if (curl_easy_setopt(fetch->easy, CURLOPT_MAXFILESIZE_LARGE,
							 (curl_off_t) JWKS_MAX_BYTES) != CURLE_OK)
			elog(ERROR, "libcurl refused CURLOPT_MAXFILESIZE_LARGE");
		http_window_add(window, fetch->easy, &fetch_owner);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		MemoryContextDelete(fetch_context);
		fetch_context = NULL;
		fetch = NULL;
		last_fetch_ok = false;
		record_outcome(edata->message, 0);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
}

/*
 * jwks_worker_owns
 *		Whether a transfer the window reports is the JWKS fetch.
 */
bool
jwks_worker_owns(void *owner)
{
	return owner == &fetch_owner;
}

/*
 * jwks_worker_in_flight
 *		1 while the fetch is on its way: it takes no slot of the window's
 *		Airbyte requests.
 */
int
jwks_worker_in_flight(void)
{
	return fetch != NULL ? 1 : 0;
}

/*
 * jwks_worker_done
 *		The window reported the fetch finished (and removed it): check the
 *		answer, apply it, record what happened.
 */
void
jwks_worker_done(CURLcode result)
{
	char	   *error = NULL;
	int			keys = 0;
	MemoryContext old;

	if (fetch == NULL)
		return;
	old = MemoryContextSwitchTo(fetch_context);
	http_request_complete(fetch, result);
	if (fetch->curl_code != CURLE_OK)
		error = psprintf("could not fetch %s: %s", fetch->url, fetch->error_text);
	else if (fetch->http_status != 200)
		error = psprintf("%s answered HTTP %ld", fetch->url, fetch->http_status);
	else if (fetch->body == NULL || fetch->body_len == 0)
		error = psprintf("%s answered with an empty body", fetch->url);
	else
		error = apply_document(fetch->body, fetch->body_len, fetch->url, &keys);

	/* tokens that asked while this fetch was on its way are answered by it */
	pg_atomic_write_u32(&jwks_shared->refresh_wanted, 0);
	last_fetch_ok = (error == NULL);
	if (error != NULL)
		ereport(LOG,
				(errmsg("tenant_airbyte worker: the JWKS refresh changed no signing key: %s", error)));
	record_outcome(error, keys);

	http_request_free(fetch);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(fetch_context);
	fetch_context = NULL;
	fetch = NULL;
}

/*
 * jwks_worker_abandon
 *		The worker dropped every transfer (the extension went away): forget
 *		the fetch; the next tick starts another one.
 */
void
jwks_worker_abandon(void)
{
	if (fetch == NULL)
		return;
	http_request_free(fetch);
	MemoryContextDelete(fetch_context);
	fetch_context = NULL;
	fetch = NULL;
	if (fetched_url != NULL)
		pfree(fetched_url);
	fetched_url = NULL;
}

/*
 * apply_document
 *		Hands the fetched document to apply_jwks() in a short transaction of
 *		its own.  Returns NULL and the number of keys kept, or why nothing
 *		changed (the transaction then rolled back), in the caller's memory.
 */
static char *
apply_document(const char *body, size_t len, const char *url, int *keys)
{
	MemoryContext caller = CurrentMemoryContext;
	char	   *volatile error = NULL;
	volatile int kept = 0;

	if (strlen(body) != len)
		return psprintf("%s answered with a body that contains a NUL byte", url);
	if (!pg_verifymbstr(body, (int) len, true))
		return psprintf("%s answered with a body that is not valid in the database encoding", url);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "tenant_airbyte: applying the fetched JWKS");
	PG_TRY();
	{
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Datum		args[2];
		bool		isnull;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (!inbox_extension_present())
			error = MemoryContextStrdup(caller, "the extension is not installed in the worker's database");
		else
		{
			args[0] = CStringGetTextDatum(body);
			args[1] = CStringGetTextDatum(url);
			if (SPI_execute_with_args("SELECT tenant_airbyte.apply_jwks($1, $2)",
									  2, argtypes, args, NULL, false, 1) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "could not run tenant_airbyte.apply_jwks()");
			kept = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		error = edata->detail != NULL ?
			psprintf("%s: %s", edata->message, edata->detail) :
			pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	*keys = kept;
	return error;
}

/*
 * record_outcome
 *		What jwks_state() shows: when the last fetch completed, and either
 *		that its keys were applied or why they were not.
 */
static void
record_outcome(const char *error, int keys)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&jwks_shared->mutex);
	jwks_shared->checked_at = now;
	jwks_shared->fetches++;
	if (error == NULL)
	{
		jwks_shared->refreshed_at = now;
		jwks_shared->keys = keys;
		jwks_shared->error[0] = '\0';
	}
	else
		strlcpy(jwks_shared->error, error, sizeof(jwks_shared->error));
	SpinLockRelease(&jwks_shared->mutex);
}

PG_FUNCTION_INFO_V1(tenant_airbyte_jwks_state);

/*
 * tenant_airbyte_jwks_state
 *		jwks_state(): the refresh as the worker last left it.  All NULL when
 *		the library was not preloaded or nothing was fetched yet.
 */
Datum
tenant_airbyte_jwks_state(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {true, true, true, true, true};
	TimestampTz checked_at = 0;
	TimestampTz refreshed_at = 0;
	int			keys = 0;
	uint64		fetches = 0;
	char		error[sizeof(((JwksShared *) NULL)->error)];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	error[0] = '\0';
	if (jwks_shared != NULL)
	{
		SpinLockAcquire(&jwks_shared->mutex);
		checked_at = jwks_shared->checked_at;
		refreshed_at = jwks_shared->refreshed_at;
		keys = jwks_shared->keys;
		fetches = jwks_shared->fetches;
		memcpy(error, jwks_shared->error, sizeof(error));
		SpinLockRelease(&jwks_shared->mutex);
	}

	if (checked_at != 0)
	{
		values[0] = TimestampTzGetDatum(checked_at);
		nulls[0] = false;
	}
	if (refreshed_at != 0)
	{
		values[1] = TimestampTzGetDatum(refreshed_at);
		nulls[1] = false;
		values[2] = Int32GetDatum(keys);
		nulls[2] = false;
	}
	if (error[0] != '\0')
	{
		values[3] = CStringGetTextDatum(error);
		nulls[3] = false;
	}
	if (jwks_shared != NULL)
	{
		values[4] = Int64GetDatum((int64) fetches);
		nulls[4] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

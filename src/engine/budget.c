/*-------------------------------------------------------------------------
 *
 * budget.c
 *	  One request budget for every Airbyte request the worker sends, so
 *	  that the engine as a whole, not each operation alone, adapts to what
 *	  Airbyte tolerates.
 *
 * THE RATE.  A token bucket (kept as a "theoretical arrival time", GCRA)
 * paces requests at the allowed rate: tenant_airbyte.max_requests_per_second
 * (0: unlimited) to begin with.  A request that finds no token gets one
 * reserved in the future and waits for it, holding its slot of the window.
 *
 * AIMD.  Airbyte Cloud answers 429 under load without saying its limits
 * and usually without Retry-After.  Such a 429 lowers the allowed rate for
 * everyone (multiplicative decrease, at most once per DECREASE_GAP_MS,
 * since the requests already in flight answer 429 too): to 85% of it, and
 * never above 95% of the answers that succeeded over the last second (the
 * goodput, which is what Airbyte lets through).  Each second without a
 * 429 adds 2% of the rate reached after the decrease (additive increase),
 * up to the configured rate; with no configured rate, a minute without a
 * 429 lifts the limit again.  The window of operations in flight follows
 * the rate (two seconds' worth, at least one), so that no request waits
 * long for its token while holding a claim; tokens reserved before a
 * decrease are void, so that the requests waiting for them do not go out
 * at the old rate.  A 429 with Retry-After is the
 * server saying exactly when: the operation waits that long (retry.c) and
 * the rate is left alone.
 *
 * Not every 429 is a rate limit.  Under a limit, what gets through stays
 * the same when we send less; a server that refuses a fixed share of
 * everything lets through less the less we send.  So each decrease after
 * the first of an episode (429s less than EPISODE_GAP_MS apart) compares
 * the last second with the second before the previous decrease: when the
 * requests sent fell by a fifth or more, the successes fell about as
 * much and the share of 429s stayed about the same (5% or more), lowering
 * the rate does not help: the episode's decreases are undone, and for
 * INDEPENDENT_MS 429s are left to each operation's own retries.
 *
 * Whether a 429 uses up the operation's attempt: when 429s without
 * Retry-After come from at least two operations within EPISODE_MS, the
 * engine is being rate limited as a whole; such a 429 is re-sent in place,
 * paced by the budget, and neither the attempt nor the request's tries are
 * used (a 429 is an answer that nothing was done, so even a create may be
 * re-sent).  A single operation that alone keeps getting 429 is retried
 * as before and ends dead after tenant_airbyte.max_attempts.
 *
 * THE CIRCUIT.  When tenant_airbyte.circuit_failures answers in a row are
 * 401 or 403, from at least two operations, the credentials are refused
 * for everything (a revoked token): the circuit opens.  No request is sent
 * then, except one probe each tenant_airbyte.circuit_probe_interval_s (the
 * next request some operation has ready); any answer that is not 401/403
 * closes the circuit, and sending resumes.  Operations whose request meets
 * the open circuit go back to pending until the next probe, their attempt
 * given back, so none ends dead however long the outage lasts.  A 401/403
 * while the circuit is closed waits BUDGET_VERDICT_MS for the verdict: if
 * the circuit opened meanwhile it waits like the others; otherwise it was
 * about this request only, and the operation fails as it always did.
 *
 * PAUSE.  pause_worker() sets tenant_airbyte.worker_control.paused; the
 * worker reads it every cycle (backfill.c) and, while it is set, claims
 * nothing new: the window is empty and requests in flight finish.
 *
 * Everything here is the worker's own state; what worker_status shows is
 * copied into a small struct in shared memory after every change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "budget.h"
#include "shmem.h"
#include "tenant_airbyte.h"

/* Lowest allowed rate, requests per second. */
#define MIN_RATE 1.0
/* A 429 within this long of the last decrease lowers nothing more. */
#define DECREASE_GAP_MS 1000
/* 429s further apart than this are separate episodes. */
#define EPISODE_GAP_MS 5000
/* Multiplicative decrease, and the cap relative to the goodput. */
#define DECREASE_FACTOR 0.85
#define GOODPUT_FACTOR 0.95
/* Additive increase per second, as a share of the rate after a decrease. */
#define INCREASE_SHARE 0.02
/* Without a configured rate, this long without a 429 lifts the limit. */
#define UNLIMIT_AFTER_MS 60000
/* 429s from two operations within this long: the engine is rate limited. */
#define EPISODE_MS 10000
/*
 * The window holds this many seconds' worth of requests at the rate: room
 * for Airbyte's latency, and no request waits longer for its token.
 */
#define WINDOW_SECONDS 2.0
/* 429s that do not follow the rate: leave the rate alone this long. */
#define INDEPENDENT_MS 30000
/* Answers counted over the last second, in buckets of 100 ms. */
#define BUCKETS 10
#define BUCKET_US 100000
#define RECENT_429 8

typedef enum CircuitState
{
	CIRCUIT_CLOSED = 0,
	CIRCUIT_OPEN,
	CIRCUIT_PROBING
} CircuitState;

/* What worker_status shows, copied by the worker after each change. */
typedef struct BudgetShared
{
	slock_t		mutex;
	bool		paused;
	double		allowed_rate;	/* 0: unlimited */
	int			window;
	CircuitState circuit;
	TimestampTz circuit_since;
	uint64		answers_429;	/* 429 without Retry-After */
	uint64		answers_refused;	/* 401 and 403 */
} BudgetShared;

int			tenant_airbyte_max_requests_per_second = 0;
int			tenant_airbyte_circuit_failures = 3;
int			tenant_airbyte_circuit_probe_interval_s = 10;
int			tenant_airbyte_backfill_share = 50;

static BudgetShared *shared = NULL;
static shmem_request_hook_type prev_request_hook = NULL;
static shmem_startup_hook_type prev_startup_hook = NULL;

/* --- the worker's own state --- */
static int	configured = -1;	/* the setting the state was made for */
static double rate = 0;			/* allowed now; 0: unlimited */
static bool lowered = false;	/* rate lowered by 429s */
static double increase_step = 1;
static TimestampTz last_decrease = 0;
static TimestampTz last_429 = 0;
static TimestampTz last_increase = 0;
static TimestampTz tat = 0;		/* when the next token is free */
static uint64 generation = 1;	/* tokens reserved before a decrease are void */
static int	window = 0;
static bool paused = false;

/* the episode of 429s under way */
static bool episode = false;
static double episode_rate_before = 0;
static bool episode_lowered_before = false;
static double previous_ok_rate = 0;	/* per second, at the last decrease */
static double previous_all_rate = 0;
static TimestampTz independent_until = 0;

/* successes and attempts per 100 ms bucket, over the last second */
static int64 bucket_id[BUCKETS];
static int	bucket_ok[BUCKETS];
static int	bucket_all[BUCKETS];

static struct
{
	int64		operation_id;
	TimestampTz at;
}			recent_429[RECENT_429];
static int	recent_429_next = 0;

static CircuitState circuit = CIRCUIT_CLOSED;
static int	refused_streak = 0;
static int64 streak_first_operation = 0;
static bool streak_two_operations = false;
static TimestampTz next_probe_at = 0;
static int64 probe_operation = 0;
static TimestampTz probe_sent_at = 0;
static uint64 count_429 = 0;
static uint64 count_refused = 0;

static void budget_shmem_request(void);
static void budget_shmem_startup(void);
static void publish(void);
static void refresh_rate(TimestampTz now);
static void lower_rate(TimestampTz now);
static void count_answer(TimestampTz now, bool ok);
static void open_circuit(TimestampTz now);
static bool rate_independent(TimestampTz now, double ok_rate, double all_rate,
							 double share);
static void probe_lost(TimestampTz now);

/*
 * budget_define_settings
 *		The budget's settings (doc/configuration.md), all reloadable.
 */
void
budget_define_settings(void)
{
	DefineCustomIntVariable("tenant_airbyte.max_requests_per_second",
							"Most Airbyte requests per second the worker sends, all operations together.",
							"0 means no limit of our own; 429 answers still slow the worker down.",
							&tenant_airbyte_max_requests_per_second,
							0, 0, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_airbyte.circuit_failures",
							"Airbyte answers 401 or 403 in a row, from at least two operations, that open the circuit.",
							"While it is open, the worker sends only one probe per tenant_airbyte.circuit_probe_interval_s.",
							&tenant_airbyte_circuit_failures,
							3, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_airbyte.circuit_probe_interval_s",
							"Seconds between two probes while the circuit is open.",
							NULL,
							&tenant_airbyte_circuit_probe_interval_s,
							10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tenant_airbyte.backfill_share",
							"Percentage of the worker's window that provision_tenants() batches may hold.",
							"The rest stays free for webhook deliveries and direct calls.",
							&tenant_airbyte_backfill_share,
							50, 1, 100,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

/*
 * budget_register
 *		Called from _PG_init while preloading: reserve the shared struct.
 */
void
budget_register(void)
{
	prev_request_hook = shmem_request_hook;
	shmem_request_hook = budget_shmem_request;
	prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = budget_shmem_startup;
}

static void
budget_shmem_request(void)
{
	if (prev_request_hook)
		prev_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BudgetShared)));
}

static void
budget_shmem_startup(void)
{
	bool		found;

	if (prev_startup_hook)
		prev_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("tenant_airbyte request budget", sizeof(BudgetShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(BudgetShared));
		SpinLockInit(&shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Copies the worker's state where worker_status reads it. */
static void
publish(void)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->paused = paused;
	shared->allowed_rate = rate;
	shared->window = window;
	if (shared->circuit != circuit)
		shared->circuit_since = GetCurrentTimestamp();
	shared->circuit = circuit;
	shared->answers_429 = count_429;
	shared->answers_refused = count_refused;
	SpinLockRelease(&shared->mutex);
}

/*
 * refresh_rate
 *		Follows a changed setting, and adds what the seconds without a 429
 *		earned since the last look (the additive increase).
 */
static void
refresh_rate(TimestampTz now)
{
	if (configured != tenant_airbyte_max_requests_per_second)
	{
		configured = tenant_airbyte_max_requests_per_second;
		rate = configured;
		lowered = false;
		tat = 0;
	}
	if (!lowered)
		return;
	if (configured == 0 && now - last_429 >= (int64) UNLIMIT_AFTER_MS * 1000)
	{
		ereport(LOG,
				(errmsg("tenant_airbyte: no 429 from Airbyte for %d s: the request rate is no longer limited",
						UNLIMIT_AFTER_MS / 1000)));
		rate = 0;
		lowered = false;
		generation++;
		return;
	}
	if (now - last_increase >= USECS_PER_SEC && now - last_429 >= USECS_PER_SEC)
	{
		int64		seconds = (now - last_increase) / USECS_PER_SEC;

		rate += seconds * increase_step;
		last_increase += seconds * USECS_PER_SEC;
		if (configured > 0 && rate >= configured)
		{
			rate = configured;
			lowered = false;
		}
	}
}

/*
 * recent_answers
 *		Successful answers and all answers over the last second, and the
 *		seconds since the first of them (at least a bucket's worth), so
 *		that a burst at the start of a run is not mistaken for a second's.
 */
static void
recent_answers(TimestampTz now, int *ok, int *all, double *seconds)
{
	int64		current = now / BUCKET_US;
	int64		first = current;
	int			i;

	*ok = 0;
	*all = 0;
	for (i = 0; i < BUCKETS; i++)
	{
		if (bucket_id[i] > current - BUCKETS && bucket_all[i] > 0)
		{
			*ok += bucket_ok[i];
			*all += bucket_all[i];
			first = Min(first, bucket_id[i]);
		}
	}
	*seconds = Max((double) (now - first * BUCKET_US), (double) BUCKET_US) / USECS_PER_SEC;
	*seconds = Min(*seconds, 1.0);
}

static void
count_answer(TimestampTz now, bool ok)
{
	int64		current = now / BUCKET_US;
	int			i = (int) (current % BUCKETS);

	if (bucket_id[i] != current)
	{
		bucket_id[i] = current;
		bucket_ok[i] = 0;
		bucket_all[i] = 0;
	}
	bucket_all[i]++;
	if (ok)
		bucket_ok[i]++;
}

/*
 * rate_independent
 *		Whether the 429s do not follow our rate (see the file header): the
 *		requests sent fell by a fifth or more since the previous decrease,
 *		the successes fell about as much, and the share of 429s stayed
 *		about the same, at 5% or more.  Under a limit the successes hold
 *		up, and the share falls as we send less, or rises when a burst the
 *		server allowed at first is spent.
 */
static bool
rate_independent(TimestampTz now, double ok_rate, double all_rate, double share)
{
	double		sent_ratio;
	double		previous_share;

	if (previous_all_rate < 10 || previous_ok_rate <= 0 || share < 0.05)
		return false;
	previous_share = 1.0 - previous_ok_rate / previous_all_rate;
	if (previous_share <= 0 || share < 0.6 * previous_share || share > 1.67 * previous_share)
		return false;
	sent_ratio = all_rate / previous_all_rate;
	if (sent_ratio > 0.8)
		return false;
	return ok_rate / previous_ok_rate <= sent_ratio * 1.1;
}

/*
 * lower_rate
 *		The multiplicative decrease, after a 429 without Retry-After, or
 *		undoing the episode's decreases when they do not help.
 */
static void
lower_rate(TimestampTz now)
{
	int			ok,
				all;
	double		seconds;
	double		next;

	if (episode && now - last_429 > (int64) EPISODE_GAP_MS * 1000)
		episode = false;
	last_429 = now;
	if (now < independent_until ||
		now - last_decrease < (int64) DECREASE_GAP_MS * 1000)
		return;
	recent_answers(now, &ok, &all, &seconds);
	/*
	 * Raw counts of the last second, not rates over the time since the
	 * first answer: a server's burst allowance at the start of a run would
	 * otherwise look like a rate that fell as we slowed down.
	 */
	(void) seconds;
	if (episode && all >= 3 && rate_independent(now, ok, all,
												(double) (all - ok) / all))
	{
		ereport(LOG,
				(errmsg("tenant_airbyte: 429s from Airbyte do not follow the request rate (%d of the last %d answers): the limit is undone",
						all - ok, all),
				 errdetail("Sending less let fewer requests through, not more; operations retry such 429s as any transient failure for the next %d s.",
						   INDEPENDENT_MS / 1000)));
		rate = episode_rate_before;
		lowered = episode_lowered_before;
		episode = false;
		independent_until = TimestampTzPlusMilliseconds(now, INDEPENDENT_MS);
		generation++;			/* waiting requests take tokens of this rate */
		tat = now;
		return;
	}
	if (all < 10)
		return;					/* too few answers to tell anything */
	if (!episode)
	{
		episode = true;
		episode_rate_before = rate;
		episode_lowered_before = lowered;
	}
	previous_ok_rate = ok;
	previous_all_rate = all;

	/* what got through over the last second, counted as a second's worth */
	next = rate > 0 ? rate * DECREASE_FACTOR : HUGE_VAL;
	if (ok > 0)
		next = Min(next, ok * GOODPUT_FACTOR);
	else if (!isfinite(next))
		next = all * 0.5;
	next = Max(next, MIN_RATE);

	ereport(LOG,
			(errmsg("tenant_airbyte: Airbyte answered 429 without Retry-After: allowed request rate lowered to %.1f/s", next),
			 errdetail("%d of the %d answers of the last second succeeded.", ok, all)));
	rate = next;
	lowered = true;
	increase_step = Max(1.0, rate * INCREASE_SHARE);
	last_decrease = now;
	last_increase = now;
	/* requests waiting for tokens of the old rate take new ones */
	generation++;
	tat = now;
}

/*
 * budget_admit
 *		Whether a request ready to go may be sent now.  reserved: it waited
 *		for a token budget_admit() reserved for it earlier.  While the
 *		circuit is open only the probe goes, when it is due.
 */
BudgetVerdict
budget_admit(int64 operation_id, bool reserved, long *wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	double		interval_us;
	double		tolerance_us;

	*wait_ms = 0;
	probe_lost(now);
	if (circuit == CIRCUIT_PROBING)
		return BUDGET_HOLD;
	if (circuit == CIRCUIT_OPEN)
	{
		if (now < next_probe_at)
			return BUDGET_HOLD;
		circuit = CIRCUIT_PROBING;
		probe_operation = operation_id;
		probe_sent_at = now;
		ereport(LOG,
				(errmsg("tenant_airbyte: the circuit is open; operation " INT64_FORMAT "'s request is the probe",
						operation_id)));
		publish();
		return BUDGET_SEND;
	}
	if (reserved)
		return BUDGET_SEND;

	refresh_rate(now);
	if (rate <= 0)
		return BUDGET_SEND;

	/* GCRA: a burst of up to 5% of a second's worth goes at once */
	interval_us = USECS_PER_SEC / rate;
	tolerance_us = interval_us * (Max(1.0, rate * 0.05) - 1.0);
	if (tat < now)
		tat = now;
	if (tat - now <= tolerance_us)
	{
		tat += (int64) interval_us;
		return BUDGET_SEND;
	}
	*wait_ms = (long) ceil((tat - now - tolerance_us) / 1000.0);

	/*
	 * No request waits for a token longer than the window's worth: tokens
	 * reserved that far ahead belong to requests that are gone (their
	 * claim lapsed, or they were given back), and must not starve those
	 * that are here.
	 */
	if (*wait_ms > (long) (WINDOW_SECONDS * 1000) + 1000)
	{
		ereport(DEBUG1,
				(errmsg("tenant_airbyte: request budget reset: next token was %ld ms away", *wait_ms)));
		tat = now;
		*wait_ms = 0;
	}
	tat += (int64) interval_us;
	if (*wait_ms <= 0)
		return BUDGET_SEND;
	return BUDGET_WAIT;
}

/*
 * open_circuit
 *		Every request is refused: stop sending until a probe succeeds.
 */
static void
open_circuit(TimestampTz now)
{
	circuit = CIRCUIT_OPEN;
	next_probe_at = TimestampTzPlusMilliseconds(now, tenant_airbyte_circuit_probe_interval_s * 1000L);
	ereport(LOG,
			(errmsg("tenant_airbyte: %d Airbyte requests in a row were refused (HTTP 401/403): the circuit is open",
					refused_streak),
			 errdetail("No request is sent until a probe succeeds; one goes every %d s. Waiting operations keep their attempts.",
					   tenant_airbyte_circuit_probe_interval_s),
			 errhint("Check tenant_airbyte.api_token, or tenant_airbyte.client_id and tenant_airbyte.client_secret.")));
	shmem_set_last_error("Airbyte refuses the credentials (HTTP 401/403) for every request: circuit open");
}

/*
 * probe_lost
 *		A probe whose answer never came (its operation lost its claim, or
 *		the worker gave it up) must not keep the circuit shut for good:
 *		after the request's own timeout and an interval, probe again.
 */
static void
probe_lost(TimestampTz now)
{
	if (circuit == CIRCUIT_PROBING &&
		now - probe_sent_at > ((int64) tenant_airbyte_http_timeout_ms +
							   tenant_airbyte_circuit_probe_interval_s * 1000L) * 1000)
	{
		circuit = CIRCUIT_OPEN;
		next_probe_at = now;
		publish();
	}
}

/*
 * budget_observe
 *		Every answer the worker receives (http_status 0: none arrived)
 *		feeds the rate and the circuit.
 */
void
budget_observe(int64 operation_id, long http_status, long retry_after_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		probe = circuit == CIRCUIT_PROBING && operation_id == probe_operation;

	if (http_status == 0)
	{
		if (probe)
		{
			circuit = CIRCUIT_OPEN;
			next_probe_at = TimestampTzPlusMilliseconds(now, tenant_airbyte_circuit_probe_interval_s * 1000L);
			publish();
		}
		return;
	}

	if (http_status == 401 || http_status == 403)
	{
		count_refused++;
		if (circuit != CIRCUIT_CLOSED)
		{
			/* the probe was refused too: the next one after an interval */
			if (probe)
			{
				circuit = CIRCUIT_OPEN;
				next_probe_at = TimestampTzPlusMilliseconds(now, tenant_airbyte_circuit_probe_interval_s * 1000L);
			}
			publish();
			return;
		}
		if (refused_streak++ == 0)
			streak_first_operation = operation_id;
		else if (operation_id != streak_first_operation)
			streak_two_operations = true;
		if (refused_streak >= tenant_airbyte_circuit_failures &&
			(streak_two_operations || tenant_airbyte_circuit_failures == 1))
			open_circuit(now);
		publish();
		return;
	}

	/* any other answer: the credentials work */
	refused_streak = 0;
	streak_two_operations = false;
	if (circuit != CIRCUIT_CLOSED)
	{
		circuit = CIRCUIT_CLOSED;
		ereport(LOG,
				(errmsg("tenant_airbyte: Airbyte accepts the credentials again (HTTP %ld): the circuit is closed, requests resume",
						http_status)));
	}

	if (http_status == 429 && retry_after_ms < 0)
	{
		count_429++;
		recent_429[recent_429_next].operation_id = operation_id;
		recent_429[recent_429_next].at = now;
		recent_429_next = (recent_429_next + 1) % RECENT_429;
		count_answer(now, false);
		refresh_rate(now);
		lower_rate(now);
	}
	else
		count_answer(now, http_status != 429);
	publish();
}

/*
 * budget_answer
 *		What a failed answer means beyond the operation that got it; see
 *		the file header.  Called after budget_observe() saw the answer.
 */
BudgetAnswer
budget_answer(int64 operation_id, long http_status, long retry_after_ms)
{
	if (http_status == 429 && retry_after_ms < 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		bool		others = false;
		int			i;

		if (now < independent_until)
			return BUDGET_ANSWER_USUAL;
		for (i = 0; i < RECENT_429; i++)
			if (recent_429[i].operation_id != 0 &&
				recent_429[i].operation_id != operation_id &&
				now - recent_429[i].at < (int64) EPISODE_MS * 1000)
				others = true;
		return others ? BUDGET_ANSWER_RESEND : BUDGET_ANSWER_USUAL;
	}
	if (http_status == 401 || http_status == 403)
		return circuit == CIRCUIT_CLOSED ? BUDGET_ANSWER_VERDICT : BUDGET_ANSWER_CIRCUIT;
	return BUDGET_ANSWER_USUAL;
}

/*
 * budget_window
 *		How many operations the worker may hold at once now: none while
 *		paused, none while the circuit is open (one when a probe is due),
 *		otherwise two seconds' worth at the allowed rate, within
 *		tenant_airbyte.max_concurrency.
 */
int
budget_window(int max_concurrency)
{
	TimestampTz now = GetCurrentTimestamp();
	int			result;

	refresh_rate(now);
	probe_lost(now);
	if (paused)
		result = 0;
	else if (circuit == CIRCUIT_OPEN)
		result = now >= next_probe_at ? 1 : 0;
	else if (circuit == CIRCUIT_PROBING)
		result = 0;
	else if (rate > 0)
		result = Max(1, Min(max_concurrency, (int) ceil(rate * WINDOW_SECONDS)));
	else
		result = max_concurrency;
	if (result != window)
	{
		window = result;
		publish();
	}
	return result;
}

/* How many of the window's operations provision_tenants() batches may hold. */
int
budget_backfill_window(int window_size)
{
	return Max(1, window_size * tenant_airbyte_backfill_share / 100);
}

/* Milliseconds until the budget wants the worker to look again; -1: never. */
long
budget_next_event_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (circuit != CIRCUIT_OPEN)
		return -1;
	if (now >= next_probe_at)
		return 0;
	return TimestampDifferenceMilliseconds(now, next_probe_at);
}

/*
 * budget_circuit_wait_ms
 *		How long an operation that met the open circuit waits: until just
 *		after the next probe, spread a little so that they do not all come
 *		back in the same cycle.
 */
long
budget_circuit_wait_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		until = now >= next_probe_at ? 0 :
		TimestampDifferenceMilliseconds(now, next_probe_at);

	return until + 100 + (long) pg_prng_uint64_range(&pg_global_prng_state, 0, 999);
}

/*
 * budget_generation
 *		Changes whenever the rate is lowered: a token reserved before that
 *		is void, and its request asks again (worker.c).
 */
uint64
budget_generation(void)
{
	return generation;
}

bool
budget_circuit_open(void)
{
	return circuit != CIRCUIT_CLOSED;
}

void
budget_set_paused(bool value)
{
	if (value != paused)
	{
		paused = value;
		ereport(LOG,
				(errmsg(paused ? "tenant_airbyte worker paused (pause_worker()): no new work is taken; requests in flight finish"
						: "tenant_airbyte worker resumed (resume_worker())")));
		publish();
	}
}

bool
budget_paused(void)
{
	return paused;
}

PG_FUNCTION_INFO_V1(tenant_airbyte_worker_budget);

/*
 * tenant_airbyte_worker_budget
 *		The budget as the worker last published it, for worker_status.
 */
Datum
tenant_airbyte_worker_budget(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {0};
	BudgetShared copy;
	static const char *const circuit_names[] = {"closed", "open", "probing"};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	memset(&copy, 0, sizeof(copy));
	if (shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		copy = *shared;
		SpinLockRelease(&shared->mutex);
	}

	values[0] = BoolGetDatum(copy.paused);
	values[1] = Float8GetDatum(copy.allowed_rate);
	nulls[1] = copy.allowed_rate <= 0;
	values[2] = Int32GetDatum(copy.window);
	values[3] = CStringGetTextDatum(circuit_names[copy.circuit]);
	values[4] = TimestampTzGetDatum(copy.circuit_since);
	nulls[4] = copy.circuit_since == 0;
	values[5] = Int64GetDatum((int64) copy.answers_429);
	values[6] = Int64GetDatum((int64) copy.answers_refused);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

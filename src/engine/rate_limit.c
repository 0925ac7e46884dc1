/*-------------------------------------------------------------------------
 *
 * rate_limit.c
 *	  The request budget's rate: how many Airbyte requests per second the
 *	  worker sends, all operations together, and how that follows Airbyte's
 *	  429 answers (budget.c combines it with the circuit).
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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/timestamp.h"

#include "budget_internal.h"

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
/* 429s that do not follow the rate: leave the rate alone this long. */
#define INDEPENDENT_MS 30000
/* Answers counted over the last second, in buckets of 100 ms. */
#define BUCKETS 10
#define BUCKET_US 100000
#define RECENT_429 8

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

static uint64 count_429 = 0;

static void lower_rate(TimestampTz now);
static void count_answer(TimestampTz now, bool ok);
static bool rate_independent(TimestampTz now, double ok_rate, double all_rate,
							 double share);

/*
 * rate_refresh
 *		Follows a changed setting, and adds what the seconds without a 429
 *		earned since the last look (the additive increase).
 */
void
rate_refresh(TimestampTz now)
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
 * rate_admit
 *		Whether a request may go now at the allowed rate (BUDGET_SEND), or
 *		must wait *wait_ms for the token reserved for it (BUDGET_WAIT).
 */
BudgetVerdict
rate_admit(TimestampTz now, long *wait_ms)
{
	double		interval_us;
	double		tolerance_us;

	*wait_ms = 0;
	rate_refresh(now);
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
 * rate_observe
 *		An answer for the rate: a 429 without Retry-After lowers it (at
 *		most once per DECREASE_GAP_MS), every answer counts towards the
 *		goodput of the last second.
 */
void
rate_observe(TimestampTz now, int64 operation_id, long http_status, long retry_after_ms)
{
	if (http_status == 429 && retry_after_ms < 0)
	{
		count_429++;
		recent_429[recent_429_next].operation_id = operation_id;
		recent_429[recent_429_next].at = now;
		recent_429_next = (recent_429_next + 1) % RECENT_429;
		count_answer(now, false);
		rate_refresh(now);
		lower_rate(now);
	}
	else
		count_answer(now, http_status != 429);
}

/*
 * rate_resend
 *		Whether a 429 without Retry-After is the engine's as a whole (429s
 *		from another operation within EPISODE_MS): re-send it in place
 *		without using the attempt.  Not while 429s are left to each
 *		operation (INDEPENDENT_MS).
 */
bool
rate_resend(TimestampTz now, int64 operation_id)
{
	int			i;

	if (now < independent_until)
		return false;
	for (i = 0; i < RECENT_429; i++)
		if (recent_429[i].operation_id != 0 &&
			recent_429[i].operation_id != operation_id &&
			now - recent_429[i].at < (int64) EPISODE_MS * 1000)
			return true;
	return false;
}

/* The allowed rate now, requests per second; 0: unlimited. */
double
rate_allowed(void)
{
	return rate;
}

/* Changes whenever the rate is lowered (budget_generation()). */
uint64
rate_generation(void)
{
	return generation;
}

/* 429s without Retry-After since the worker started. */
uint64
rate_answers_429(void)
{
	return count_429;
}

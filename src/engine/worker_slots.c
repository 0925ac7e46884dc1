/*-------------------------------------------------------------------------
 *
 * worker_slots.c
 *	  The requests the background worker holds, each in a slot of its
 *	  window of tenant_airbyte.max_concurrency: in flight on the curl multi
 *	  handle, delayed until their backoff (or the request budget's token)
 *	  passes, or finished and ready for the next cycle (worker_cycle.c) to
 *	  step; the requests claimed ahead, waiting for a slot; and the
 *	  secrets held in memory for the operations they serve.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "budget.h"
#include "jwks_refresh.h"
#include "opqueue.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker_internal.h"

/*
 * Finished requests stepped per cycle: half the window, at least
 * READY_CHUNK, at most READY_CHUNK_MAX.  Requests started together finish
 * together; stepping all of them in one cycle would restart them all only
 * at its end, and the window would pulse (half empty, then full) for the
 * whole run.  A few per cycle, each cycle's new requests sent before the
 * next one, spread them out again: 375 -> 487 tenants/s at 32 x 50 ms.
 * 4 and 16 measured the same as 8.  But a cycle costs its statements and
 * two commits whatever it steps, so a fixed 8 bounded the rate at
 * 8 per cycle: at max_concurrency 128 the finished requests queued,
 * holding slots, and the window never filled (62 of 128 in flight).
 * READY_CHUNK_MAX keeps a cycle's first transaction (one subtransaction
 * per step, beside the claims', worker_cycle.c) below the proc array's
 * 64 cached subtransactions.
 */
#define READY_CHUNK 8
#define READY_CHUNK_MAX 32

/* A job whose next request waits for its backoff to pass. */
typedef struct DelayedJob
{
	Operation  *job;
	TimestampTz start_at;
	bool		reserved;		/* waits for a token the budget reserved */
	uint64		generation;		/* budget_generation() at the reservation */
} DelayedJob;

/*
 * Claimed ahead (worker_cycle.c): a request whose step is committed but
 * for which no slot was free.  It starts as soon as one frees, without
 * waiting for the cycle that steps the request that freed it: at 32 x
 * 50 ms a slot otherwise stood empty for that cycle, about 10 ms of each
 * request's 60.  The claim is the worker's meanwhile, so one that waits
 * too long for a slot (the window stuck on requests that hang) is given
 * up before its lease could run out during its request: its lease
 * returns it, and its recorded step makes the next attempt reconcile.
 */
typedef struct StandbyJob
{
	Operation  *job;
	TimestampTz since;
} StandbyJob;

HttpWindow *worker_window = NULL;
MemoryContext worker_jobs_context = NULL;
static List *delayed = NIL;		/* DelayedJob *, in worker_jobs_context */
static List *ready = NIL;		/* Completion *, in worker_jobs_context, not stepped yet */
static List *standby = NIL;		/* StandbyJob *, in worker_jobs_context, oldest first */

/* Secrets of operations requested since this worker started, by id. */
typedef struct HeldSecret
{
	int64		operation_id;
	char	   *secret;
} HeldSecret;
static List *held_secrets = NIL;	/* HeldSecret *, in TopMemoryContext */

/*
 * worker_slots_init
 *		At start-up: the memory the jobs live in, and the curl multi window.
 */
void
worker_slots_init(void)
{
	worker_jobs_context = AllocSetContextCreate(TopMemoryContext, "tenant_airbyte jobs",
												ALLOCSET_DEFAULT_SIZES);
	worker_window = http_window_create();
}

/*
 * worker_add_ready
 *		A request that finished during the last wait, for a coming cycle.
 */
void
worker_add_ready(Operation *job, CURLcode result)
{
	MemoryContext old = MemoryContextSwitchTo(worker_jobs_context);
	Completion *completion = palloc(sizeof(Completion));

	completion->job = job;
	completion->result = result;
	ready = lappend(ready, completion);
	MemoryContextSwitchTo(old);
}

/* Whether finished requests wait for a cycle; whether requests are delayed. */
bool
worker_have_ready(void)
{
	return ready != NIL;
}

bool
worker_have_delayed(void)
{
	return delayed != NIL;
}

/* Secrets held in memory, by operation id. */
void
worker_hold_secret(int64 operation_id, const char *secret)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	HeldSecret *held = palloc(sizeof(HeldSecret));

	held->operation_id = operation_id;
	held->secret = pstrdup(secret);
	held_secrets = lappend(held_secrets, held);
	MemoryContextSwitchTo(old);
}

const char *
worker_held_secret(int64 operation_id)
{
	ListCell   *lc;

	foreach(lc, held_secrets)
	{
		HeldSecret *held = (HeldSecret *) lfirst(lc);

		if (held->operation_id == operation_id)
			return held->secret;
	}
	return NULL;
}

void
worker_drop_secret(int64 operation_id)
{
	ListCell   *lc;

	foreach(lc, held_secrets)
	{
		HeldSecret *held = (HeldSecret *) lfirst(lc);

		if (held->operation_id == operation_id)
		{
			explicit_bzero(held->secret, strlen(held->secret));
			pfree(held->secret);
			pfree(held);
			held_secrets = foreach_delete_current(held_secrets, lc);
			return;
		}
	}
}

/*
 * worker_forget_job
 *		Releases a job that is finished, or whose claim is lost or left for
 *		the lease to return.
 */
void
worker_forget_job(Operation *job)
{
	engine_release(job);
	MemoryContextDelete(job->context);
}

/*
 * worker_delay_job
 *		Keeps a job's next request back until its backoff has passed.  The
 *		job keeps its slot of the window meanwhile.
 */
void
worker_delay_job(Operation *job, bool reserved)
{
	MemoryContext old = MemoryContextSwitchTo(worker_jobs_context);
	DelayedJob *entry = palloc(sizeof(DelayedJob));

	entry->job = job;
	entry->start_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), job->start_after_ms);
	entry->reserved = reserved;
	entry->generation = budget_generation();
	job->start_after_ms = 0;
	delayed = lappend(delayed, entry);
	MemoryContextSwitchTo(old);
}

/*
 * worker_start_request
 *		Sends a job's request when the request budget (budget.c) allows:
 *		now, after the token reserved for it, or not at all while the
 *		circuit is open, or while a refusal waits for the circuit's
 *		verdict: such a job goes to the next cycle, whose step decides
 *		(steps.c, budget_held()).
 */
void
worker_start_request(Operation *job, bool reserved)
{
	long		wait_ms;
	BudgetVerdict verdict;

	if (job->budget_hold == 0)
	{
		verdict = budget_admit(job->id, reserved, &wait_ms);
		if (verdict == BUDGET_SEND)
		{
			http_window_add(worker_window, job->request->easy, job);
			return;
		}
		if (verdict == BUDGET_WAIT)
		{
			job->start_after_ms = wait_ms;
			worker_delay_job(job, true);
			return;
		}
		job->budget_hold = BUDGET_HELD_CIRCUIT;
	}
	{
		MemoryContext old = MemoryContextSwitchTo(worker_jobs_context);
		Completion *completion = palloc(sizeof(Completion));

		completion->job = job;
		completion->result = CURLE_OK;
		ready = lappend(ready, completion);
		MemoryContextSwitchTo(old);
	}
}

/*
 * worker_start_delayed
 *		Starts the delayed requests whose time has come; returns when the
 *		next one is due (0 when none is left).
 */
TimestampTz
worker_start_delayed(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	List	   *due = NIL;
	ListCell   *lc;

	foreach(lc, delayed)
	{
		DelayedJob *entry = (DelayedJob *) lfirst(lc);

		if (entry->start_at <= now)
		{
			due = lappend(due, entry);
			delayed = foreach_delete_current(delayed, lc);
		}
	}

	/* outside the walk: the request budget may delay a job again */
	foreach(lc, due)
	{
		DelayedJob *entry = (DelayedJob *) lfirst(lc);

		worker_start_request(entry->job, entry->reserved &&
					  entry->generation == budget_generation());
		pfree(entry);
	}
	list_free(due);

	foreach(lc, delayed)
	{
		DelayedJob *entry = (DelayedJob *) lfirst(lc);

		if (next == 0 || entry->start_at < next)
			next = entry->start_at;
	}
	return next;
}

/*
 * worker_jobs_holding_slots
 *		Deliveries the worker holds: requests in flight and requests
 *		waiting for their backoff.  Together they stay within
 *		tenant_airbyte.max_concurrency.
 */
int
worker_jobs_holding_slots(void)
{
	return http_window_in_flight(worker_window) - jwks_worker_in_flight() +
		list_length(delayed) + list_length(ready);
}

/*
 * worker_standby_max_wait_ms
 *		How long a request claimed ahead may wait for a slot: half of what
 *		its lease leaves once the request's own timeout is set aside.
 */
static long
worker_standby_max_wait_ms(void)
{
	return Max(0, ((long) tenant_airbyte_lease_ms - tenant_airbyte_http_timeout_ms) / 2);
}

/*
 * worker_claim_ahead
 *		How many operations beyond the window a cycle may claim and step
 *		ahead: a quarter of the window, at most 16; none for a window under
 *		8 (a circuit's probe, a paused or throttled worker) or when the
 *		lease leaves less than a second to wait in.
 */
int
worker_claim_ahead(int window)
{
	if (window < 8 || worker_standby_max_wait_ms() < 1000)
		return 0;
	return Min(window / 4, 16);
}

/*
 * worker_claim_room
 *		How many more operations a cycle may claim: the window and what may
 *		be claimed ahead of it, less every request the worker holds or has
 *		waiting for a slot.
 */
int
worker_claim_room(int window)
{
	return window + worker_claim_ahead(window) - worker_jobs_holding_slots() - list_length(standby);
}

/*
 * worker_add_standby
 *		A job whose request is decided and committed, to start when a slot
 *		of the window is free (worker_start_standby).
 */
void
worker_add_standby(Operation *job)
{
	MemoryContext old = MemoryContextSwitchTo(worker_jobs_context);
	StandbyJob *entry = palloc(sizeof(StandbyJob));

	entry->job = job;
	entry->since = GetCurrentTimestamp();
	standby = lappend(standby, entry);
	MemoryContextSwitchTo(old);
}

/*
 * worker_start_standby
 *		Starts the waiting requests, oldest first, while the window has a
 *		free slot (requests in flight and delayed ones hold slots; finished
 *		ones waiting to be stepped do not: their next request, if any,
 *		waits here like the others).  Only while claiming ahead is on
 *		(worker_claim_ahead()): otherwise, and while the window is none
 *		(paused, the circuit open: the request budget's to enforce), every
 *		request starts at once, as each did before there was claiming
 *		ahead.  Returns whether it started any.
 */
bool
worker_start_standby(void)
{
	int			window = budget_current_window();
	bool		gated = window > 0 && worker_claim_ahead(window) > 0;
	TimestampTz now = GetCurrentTimestamp();
	long		max_wait_ms = worker_standby_max_wait_ms();
	bool		started = false;

	while (standby != NIL)
	{
		StandbyJob *entry = (StandbyJob *) linitial(standby);
		Operation  *job = entry->job;

		if (gated && TimestampDifferenceExceeds(entry->since, now, max_wait_ms))
		{
			ereport(LOG,
					(errmsg("tenant_airbyte: operation " INT64_FORMAT " (tenant \"%s\") waited %ld ms for a free slot; it is given up and returns when its lease runs out",
							job->id, job->tenant_id, max_wait_ms)));
			standby = list_delete_first(standby);
			pfree(entry);
			worker_forget_job(job);
			continue;
		}
		if (gated &&
			http_window_in_flight(worker_window) - jwks_worker_in_flight() +
			list_length(delayed) >= window)
			break;
		standby = list_delete_first(standby);
		pfree(entry);
		if (job->start_after_ms > 0)
			worker_delay_job(job, false);
		else
			worker_start_request(job, false);
		started = true;
	}
	return started;
}

/*
 * worker_take_ready
 *		A chunk of the finished requests for the next cycle, in the
 *		current memory context; the rest wait for the following one.
 */
List *
worker_take_ready(void)
{
	List	   *chunk = NIL;
	int			size = budget_window(tenant_airbyte_max_concurrency) / 2;

	size = Max(READY_CHUNK, Min(size, READY_CHUNK_MAX));
	while (ready != NIL && list_length(chunk) < size)
	{
		Completion *completion = (Completion *) linitial(ready);
		Completion *copy = palloc(sizeof(Completion));

		*copy = *completion;
		chunk = lappend(chunk, copy);
		ready = list_delete_first(ready);
		pfree(completion);
	}
	return chunk;
}

/*
 * worker_abandon_all
 *		Drops every request in flight, when the extension went away under
 *		us; their deliveries, if they still exist, come back through their
 *		leases.
 */
void
worker_abandon_all(void)
{
	CURL	   *easy;
	void	   *owner;

	ListCell   *lc;

	while (http_window_take_any(worker_window, &easy, &owner))
	{
		if (jwks_worker_owns(owner))
			jwks_worker_abandon();
		else
			worker_forget_job((Operation *) owner);
	}
	foreach(lc, ready)
		worker_forget_job(((Completion *) lfirst(lc))->job);
	list_free_deep(ready);
	ready = NIL;
	foreach(lc, delayed)
		worker_forget_job(((DelayedJob *) lfirst(lc))->job);
	list_free_deep(delayed);
	delayed = NIL;
	foreach(lc, standby)
		worker_forget_job(((StandbyJob *) lfirst(lc))->job);
	list_free_deep(standby);
	standby = NIL;
	shmem_set_in_flight(0);
}

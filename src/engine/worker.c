/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: one per cluster, in tenant_airbyte.database,
 *	  turning webhook_inbox rows into Airbyte calls.
 *
 * The loop alternates two things and never mixes them:
 *
 *	  a cycle	one short transaction that records what the finished HTTP
 *				requests produced, claims due deliveries into the free
 *				slots of the window, decides each one's next request, and
 *				finds when it must look again;
 *	  a wait	outside any transaction, on the latch (a commit put work in
 *				the inbox, SIGTERM, SIGHUP), the sockets of the requests in
 *				flight and the next due time, whichever comes first.
 *
 * A cycle steps at most READY_CHUNK finished requests; when more are
 * waiting, the requests it started are sent (a non-blocking turn of the
 * window) before the next cycle takes them.
 *
 * Each delivery's step runs in its own subtransaction inside the cycle,
 * so one that fails is retried later without undoing the others.  A
 * request starts only after the transaction that decided it committed:
 * the provisioning intent is durable before Airbyte hears of it.
 *
 * Idle, the worker sleeps until a commit wakes it or a retry comes due;
 * it does not poll.  When the extension is not installed in its database
 * it waits quietly and looks again now and then.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "http_multi.h"
#include "provision.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker.h"

/* How often to look for the extension while it is not installed. */
#define EXTENSION_NAP_MS 5000
/* Longest sleep: retention and lease checks happen at least this often. */
#define MAX_NAP_MS 60000
/*
 * Finished requests stepped per cycle.  Requests started together finish
 * together; stepping all of them in one cycle would restart them all only
 * at its end, and the window would pulse (half empty, then full) for the
 * whole run.  A few per cycle, each cycle's new requests sent before the
 * next one, spread them out again: 375 -> 487 tenants/s at 32 x 50 ms.
 * 4 and 16 measured the same as 8.
 */
#define READY_CHUNK 8
/* Rows deleted per retention batch. */
#define RETENTION_BATCH 1000

PGDLLEXPORT void tenant_airbyte_worker_main(Datum main_arg);

/* A finished request waiting for the next cycle to look at it. */
typedef struct Completion
{
	Job		   *job;
	CURLcode	result;
} Completion;

/* A job whose next request waits for its backoff to pass. */
typedef struct DelayedJob
{
	Job		   *job;
	TimestampTz start_at;
} DelayedJob;

static HttpWindow *window = NULL;
static MemoryContext jobs_context = NULL;
static List *delayed = NIL;		/* DelayedJob *, in jobs_context */
static List *ready = NIL;		/* Completion *, in jobs_context, not stepped yet */

static bool leases_released_at_start = false;
static TimestampTz next_retention_at = 0;

static void worker_on_exit(int code, Datum arg);
struct Cycle;
static bool run_cycle(List *completions, bool claim, TimestampTz *next_due,
					  bool *more_due);
static bool in_transaction(bool (*fn) (struct Cycle *cycle), struct Cycle *cycle,
						   const char *activity);
static bool finish_and_claim(struct Cycle *cycle);
static bool start_claimed(struct Cycle *cycle);
static void remember(struct Cycle *cycle, Job *job, JobOutcome outcome);
static JobOutcome run_step(Job *job, bool first, CURLcode result);
static void forget_job(Job *job);
static void delay_job(Job *job);
static TimestampTz start_delayed(void);
static int	jobs_holding_slots(void);
static List *take_ready(void);
static void abandon_all(void);
static void report_activity(void);
static long milliseconds_until(TimestampTz when, long cap);

/*
 * tenant_airbyte_worker_main
 *		Started by the launcher.  Connects as the bootstrap superuser, which
 *		bypasses row-level security, so it sees every tenant's deliveries.
 */
void
tenant_airbyte_worker_main(Datum main_arg)
{
	bool		want_claim = true;
	TimestampTz next_due = 0;
	MemoryContext loop_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(tenant_airbyte_database, NULL, 0);
	pgstat_report_appname("tenant_airbyte worker");

	shmem_set_worker(true);
	before_shmem_exit(worker_on_exit, (Datum) 0);

	/*
	 * A cycle sets the markers of all the deliveries it starts; fsync them
	 * together when its transaction commits, before any create is sent.
	 */
	provision_defer_marker_sync(true);

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(FATAL,
				(errmsg("could not initialise libcurl")));

	jobs_context = AllocSetContextCreate(TopMemoryContext, "tenant_airbyte jobs",
										 ALLOCSET_DEFAULT_SIZES);
	loop_context = AllocSetContextCreate(TopMemoryContext, "tenant_airbyte worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	window = http_window_create();

	ereport(LOG,
			(errmsg("tenant_airbyte worker started in database \"%s\"",
					tenant_airbyte_database)));

	for (;;)
	{
		List	   *completions = NIL;
		Job		   *job;
		CURL	   *easy;
		CURLcode	result;
		TimestampTz now;
		long		timeout_ms;

		MemoryContextReset(loop_context);
		MemoryContextSwitchTo(loop_context);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (shmem_leave_requested())
		{
			ereport(LOG,
					(errmsg("tenant_airbyte worker disconnects from database \"%s\" so that it can be dropped, renamed or copied",
							tenant_airbyte_database)));
			proc_exit(0);
		}

		/* collect what finished during the last wait */
		while (http_window_next_done(window, &easy, &result, (void **) &job))
		{
			MemoryContext old = MemoryContextSwitchTo(jobs_context);
			Completion *completion = palloc(sizeof(Completion));

			completion->job = job;
			completion->result = result;
			ready = lappend(ready, completion);
			MemoryContextSwitchTo(old);
		}
		completions = take_ready();

		now = GetCurrentTimestamp();
		if (shmem_take_wake() || (next_due != 0 && now >= next_due) || now >= next_retention_at)
			want_claim = true;
		if (completions != NIL)
			want_claim = true;

		if (want_claim || completions != NIL)
		{
			bool		more_due = false;

			if (!run_cycle(completions, want_claim, &next_due, &more_due))
			{
				/* extension missing, or the cycle failed: start over later */
				abandon_all();
				leases_released_at_start = false;
				shmem_set_state(WORKER_STATE_WAITING_FOR_EXTENSION);
				report_activity();
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 EXTENSION_NAP_MS, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				want_claim = true;
				continue;
			}
			want_claim = more_due &&
				jobs_holding_slots() < tenant_airbyte_max_concurrency;
		}

		shmem_set_state(http_window_in_flight(window) > 0 ? WORKER_STATE_WORKING : WORKER_STATE_IDLE);
		shmem_set_in_flight(http_window_in_flight(window));
		report_activity();

		if (want_claim || ready != NIL)
		{
			/* send what the cycle started before stepping the next chunk */
			(void) http_window_wait(window, 0);
			continue;
		}

		timeout_ms = milliseconds_until(next_retention_at, MAX_NAP_MS);
		if (next_due != 0)
			timeout_ms = Min(timeout_ms, milliseconds_until(next_due, MAX_NAP_MS));
		if (delayed != NIL)
		{
			TimestampTz next_start = start_delayed();

			if (next_start != 0)
				timeout_ms = Min(timeout_ms, milliseconds_until(next_start, MAX_NAP_MS));
		}
		(void) http_window_wait(window, timeout_ms);
	}
}

/*
 * worker_on_exit
 *		Unregisters the worker so no backend sets a latch that is not ours.
 *		Deliveries in flight keep their claims until the next start
 *		releases them.
 */
static void
worker_on_exit(int code, Datum arg)
{
	shmem_set_worker(false);
}

/*
 * Cycle
 *		What one cycle touched, in memory that outlives its transactions
 *		(SPI's would not).
 */
typedef struct Cycle
{
	MemoryContext context;
	List	   *completions;	/* Completion *, from the last wait */
	bool		claim;			/* whether to claim into free slots */
	List	   *claimed;		/* Job *, claimed in the first transaction */
	List	   *touched;		/* Job *, every job the cycle stepped */
	List	   *to_start;		/* Job *, with a request to start */
	int			finished;
	bool		more_due;
	TimestampTz next_due;
} Cycle;

/*
 * run_cycle
 *		Two short transactions.  The first records what the finished
 *		requests produced (continuing or finishing their deliveries), claims
 *		due deliveries into the free slots, keeps the inbox tidy and learns
 *		when the next retry or lease comes due.  The second takes the first
 *		step of the deliveries just claimed: only once their claim (and its
 *		raised attempt counter) is committed, so that a delivery whose step
 *		kills the worker runs out of attempts instead of crashing it forever.
 *		Requests decided in either start after their commit.  Returns false
 *		when the extension is not installed or a transaction failed.
 */
/*
 * Durability, request by request.  Both transactions commit with the
 * server's synchronous_commit, and that must stay so:
 *
 *	  - the first records finished deliveries and workspace rows, and its
 *		commit removes their markers (provision.c).  Were that commit lost
 *		in an OS crash after the unlink, the retry would find neither row
 *		nor marker and send a second create.  Its claims raise attempts,
 *		which must be on disk before the second transaction steps them.
 *	  - the second decides the creates.  What a create needs on disk first
 *		is its marker, a file fsynced at pre-commit, so for a plain create
 *		this transaction writes no WAL at all and its commit costs no
 *		flush; when a step does write (a restored row, a result) it is
 *		flushed like any commit before the next request can start.
 *
 * So a request starts only after the commit that decided it returned.
 */
static bool
run_cycle(List *completions, bool claim, TimestampTz *next_due, bool *more_due)
{
	Cycle		cycle;
	bool		ok;
	ListCell   *lc;

	memset(&cycle, 0, sizeof(cycle));
	cycle.context = CurrentMemoryContext;
	cycle.completions = completions;
	cycle.claim = claim;

	/* every job the cycle may touch is forgotten afterwards unless it goes on */
	foreach(lc, completions)
		cycle.touched = lappend(cycle.touched, ((Completion *) lfirst(lc))->job);

	ok = in_transaction(finish_and_claim, &cycle,
						"tenant_airbyte: recording results and claiming deliveries");
	if (ok && cycle.claimed != NIL)
		ok = in_transaction(start_claimed, &cycle,
							"tenant_airbyte: starting claimed deliveries");

	/* a request starts only once the decision to send it is committed */
	foreach(lc, cycle.touched)
	{
		Job		   *job = (Job *) lfirst(lc);

		if (ok && list_member_ptr(cycle.to_start, job))
		{
			if (job->start_after_ms > 0)
				delay_job(job);
			else
				http_window_add(window, job->easy, job);
		}
		else
			forget_job(job);
	}
	if (ok && cycle.finished > 0)
		shmem_count_finished(cycle.finished);

	*next_due = cycle.next_due;
	*more_due = cycle.more_due;
	return ok;
}

/*
 * in_transaction
 *		Runs fn in a transaction of its own with SPI connected; false when
 *		the extension is missing or anything raised an error, which is
 *		logged (a DROP EXTENSION racing with us is one such thing).
 */
static bool
in_transaction(bool (*fn) (Cycle *cycle), Cycle *cycle, const char *activity)
{
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);

	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		if (!inbox_extension_present())
			ok = false;
		else
			ok = fn(cycle);

		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cycle->context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();

		ereport(LOG,
				(errmsg("tenant_airbyte worker cycle failed: %s", edata->message)));
		shmem_set_last_error("worker cycle failed: %s", edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();

	MemoryContextSwitchTo(cycle->context);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/*
 * finish_and_claim
 *		The first transaction of a cycle.
 */
static bool
finish_and_claim(Cycle *cycle)
{
	int			released;
	ListCell   *lc;

	released = inbox_release_leases(!leases_released_at_start);
	if (released > 0)
		ereport(LOG,
				(errmsg("tenant_airbyte worker returned %d interrupted deliveries to the queue", released)));
	leases_released_at_start = true;

	foreach(lc, cycle->completions)
	{
		Completion *completion = (Completion *) lfirst(lc);

		remember(cycle, completion->job,
				 run_step(completion->job, false, completion->result));
	}

	if (cycle->claim)
	{
		int			free_slots = tenant_airbyte_max_concurrency
			- jobs_holding_slots() - list_length(cycle->to_start);

		if (free_slots > 0)
		{
			List	   *claimed = inbox_claim(free_slots, jobs_context);
			MemoryContext old = MemoryContextSwitchTo(cycle->context);

			cycle->claimed = list_copy(claimed);
			cycle->touched = list_concat(cycle->touched, claimed);
			MemoryContextSwitchTo(old);

			/* a claim that filled every free slot may have left more */
			cycle->more_due = list_length(claimed) == free_slots;
		}
	}

	if (GetCurrentTimestamp() >= next_retention_at)
	{
		int			deleted = inbox_delete_finished(RETENTION_BATCH);

		next_retention_at = deleted == RETENTION_BATCH ? 0 :
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MAX_NAP_MS);
	}

	cycle->next_due = inbox_next_due();
	return true;
}

/*
 * start_claimed
 *		The second transaction of a cycle: the first step of each delivery
 *		the first one claimed.
 */
static bool
start_claimed(Cycle *cycle)
{
	ListCell   *lc;

	foreach(lc, cycle->claimed)
	{
		Job		   *job = (Job *) lfirst(lc);

		remember(cycle, job, run_step(job, true, CURLE_OK));
	}
	return true;
}

/*
 * remember
 *		Notes a job the cycle stepped, and whether it has a request to start.
 */
static void
remember(Cycle *cycle, Job *job, JobOutcome outcome)
{
	MemoryContext old = MemoryContextSwitchTo(cycle->context);

	cycle->touched = list_append_unique_ptr(cycle->touched, job);
	if (outcome == JOB_HTTP)
		cycle->to_start = lappend(cycle->to_start, job);
	else if (outcome != JOB_LOST)
		cycle->finished++;
	MemoryContextSwitchTo(old);
}

/*
 * run_step
 *		One step of one delivery, in its own subtransaction: start it (first)
 *		or act on its finished request, then either keep the claim for the
 *		next request or record the outcome.  An error inside rolls back only
 *		this delivery's step and counts as a transient failure.
 */
static JobOutcome
run_step(Job *job, bool first, CURLcode result)
{
	MemoryContext old_context = CurrentMemoryContext;
	ResourceOwner old_owner = CurrentResourceOwner;
	volatile JobOutcome outcome = JOB_LOST;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old_context);

	PG_TRY();
	{
		outcome = first ? work_start(job) : work_http_done(job, result);

		if (outcome == JOB_HTTP)
		{
			if (!first && !inbox_extend_lease(job))
				outcome = JOB_LOST;
		}
		else if (!inbox_record(job, outcome))
			outcome = JOB_LOST;

		if (outcome == JOB_LOST)
		{
			ereport(LOG,
					(errmsg("tenant_airbyte: delivery " INT64_FORMAT " (tenant \"%s\") lost its claim; its result is discarded",
							job->delivery_id, job->tenant_id ? job->tenant_id : "")));
			RollbackAndReleaseCurrentSubTransaction();
		}
		else
			ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old_context);
		CurrentResourceOwner = old_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		MemoryContext job_old;

		MemoryContextSwitchTo(old_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old_context);
		CurrentResourceOwner = old_owner;

		job_old = MemoryContextSwitchTo(job->context);
		job->error = psprintf("internal error: %s", edata->message);
		MemoryContextSwitchTo(job_old);
		job->http_status = 0;
		job->result_json = NULL;
		job->retry_delay_ms = work_retry_delay_ms(job, -1);
		FreeErrorData(edata);

		outcome = inbox_record(job, JOB_RETRY) ? JOB_RETRY : JOB_LOST;
	}
	PG_END_TRY();

	if (outcome == JOB_RETRY || outcome == JOB_DEAD)
	{
		bool		unused = outcome == JOB_RETRY && job->attempt_unused;
		bool		last = outcome == JOB_DEAD ||
			(!unused && job->attempts >= tenant_airbyte_max_attempts);

		/* LOG, not WARNING: it is news for the server log, not for a client */
		ereport(LOG,
				(errmsg("tenant_airbyte: delivery " INT64_FORMAT " (%s, tenant \"%s\") attempt %d of %d failed%s: %s",
						job->delivery_id, job->event, job->tenant_id ? job->tenant_id : "(none)",
						job->attempts, tenant_airbyte_max_attempts,
						last ? " for good" : unused ? " without reaching Airbyte (not counted)" : "",
						job->error ? job->error : "unknown error"),
				 last ? 0 : errdetail("Retrying in %ld ms.", job->retry_delay_ms)));
		shmem_set_last_error("delivery " INT64_FORMAT " (tenant %s): %s",
							 job->delivery_id, job->tenant_id ? job->tenant_id : "(none)",
							 job->error ? job->error : "unknown error");
	}
	return outcome;
}

/*
 * forget_job
 *		Releases a job that is finished, or whose claim is lost or left for
 *		the lease to return.
 */
static void
forget_job(Job *job)
{
	work_release(job);
	MemoryContextDelete(job->context);
}

/*
 * delay_job
 *		Keeps a job's next request back until its backoff has passed.  The
 *		job keeps its slot of the window meanwhile.
 */
static void
delay_job(Job *job)
{
	MemoryContext old = MemoryContextSwitchTo(jobs_context);
	DelayedJob *entry = palloc(sizeof(DelayedJob));

	entry->job = job;
	entry->start_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), job->start_after_ms);
	job->start_after_ms = 0;
	delayed = lappend(delayed, entry);
	MemoryContextSwitchTo(old);
}

/*
 * start_delayed
 *		Starts the delayed requests whose time has come; returns when the
 *		next one is due (0 when none is left).
 */
static TimestampTz
start_delayed(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	ListCell   *lc;

	foreach(lc, delayed)
	{
		DelayedJob *entry = (DelayedJob *) lfirst(lc);

		if (entry->start_at <= now)
		{
			http_window_add(window, entry->job->easy, entry->job);
			delayed = foreach_delete_current(delayed, lc);
			pfree(entry);
		}
		else if (next == 0 || entry->start_at < next)
			next = entry->start_at;
	}
	return next;
}

/*
 * jobs_holding_slots
 *		Deliveries the worker holds: requests in flight and requests
 *		waiting for their backoff.  Together they stay within
 *		tenant_airbyte.max_concurrency.
 */
static int
jobs_holding_slots(void)
{
	return http_window_in_flight(window) + list_length(delayed) + list_length(ready);
}

/*
 * take_ready
 *		Up to READY_CHUNK finished requests for the next cycle, in the
 *		current memory context; the rest wait for the following one.
 */
static List *
take_ready(void)
{
	List	   *chunk = NIL;

	while (ready != NIL && list_length(chunk) < READY_CHUNK)
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
 * abandon_all
 *		Drops every request in flight, when the extension went away under
 *		us; their deliveries, if they still exist, come back through their
 *		leases.
 */
static void
abandon_all(void)
{
	CURL	   *easy;
	void	   *owner;

	ListCell   *lc;

	while (http_window_take_any(window, &easy, &owner))
		forget_job((Job *) owner);
	foreach(lc, ready)
		forget_job(((Completion *) lfirst(lc))->job);
	list_free_deep(ready);
	ready = NIL;
	foreach(lc, delayed)
		forget_job(((DelayedJob *) lfirst(lc))->job);
	list_free_deep(delayed);
	delayed = NIL;
	shmem_set_in_flight(0);
}

/*
 * report_activity
 *		What pg_stat_activity shows for the worker.
 */
static void
report_activity(void)
{
	WorkerStatusSnapshot snapshot;
	char		activity[128];

	shmem_snapshot(&snapshot);
	if (snapshot.state == WORKER_STATE_WORKING)
		snprintf(activity, sizeof(activity), "tenant_airbyte: %d Airbyte requests in flight",
				 snapshot.in_flight);
	else if (snapshot.state == WORKER_STATE_WAITING_FOR_EXTENSION)
		snprintf(activity, sizeof(activity),
				 "tenant_airbyte: waiting for CREATE EXTENSION tenant_airbyte");
	else
		snprintf(activity, sizeof(activity), "tenant_airbyte: waiting for deliveries");
	pgstat_report_activity(STATE_IDLE, activity);
}

static long
milliseconds_until(TimestampTz when, long cap)
{
	TimestampTz now = GetCurrentTimestamp();

	if (when <= now)
		return 0;
	return Min(cap, TimestampDifferenceMilliseconds(now, when));
}

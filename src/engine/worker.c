/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: one per cluster, in tenant_airbyte.database,
 *	  the only process that calls Airbyte: it runs the operations that
 *	  backends hand it (handoff.c) and that webhook deliveries become
 *	  (opqueue.c), one step at a time (steps.c).
 *
 * The loop alternates two things and never mixes them:
 *
 *	  a cycle	two short transactions (run_cycle) that record what the
 *				finished HTTP requests produced, claim due operations into
 *				the free slots of the window, decide each one's next
 *				request, and find when to look again;
 *	  a wait	outside any transaction, on the latch (a commit put work in
 *				the inbox, a backend handed over an operation, SIGTERM,
 *				SIGHUP), the sockets of the requests in flight and the next
 *				due time, whichever comes first.
 *
 * A cycle steps at most READY_CHUNK finished requests; when more are
 * waiting, the requests it started are sent (a non-blocking turn of the
 * window) before the next cycle takes them.
 *
 * Each operation's step runs in its own subtransaction inside the cycle,
 * so one that fails is retried later without undoing the others.  A
 * request starts only after the transaction that decided it committed:
 * the intent is durable before Airbyte hears of it.
 *
 * Beside the operations, the loop keeps the signing keys of
 * authenticate() current (jwks_refresh.c): when tenant_airbyte.jwks_url is
 * set, one GET of it at a time shares the window, and its answer is
 * applied in a transaction of its own.
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
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "backfill.h"
#include "budget.h"
#include "handoff.h"
#include "http_multi.h"
#include "jwks_refresh.h"
#include "opqueue.h"
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
/*
 * Operations claimed per cycle.  Each one's step runs in a subtransaction
 * of its own, and a transaction with more than 64 subtransactions that
 * wrote overflows its entry in the proc array, which makes every snapshot
 * in the cluster look transaction ids up in pg_subtrans until it ends.
 * With READY_CHUNK finished requests beside them, 48 claims stay below
 * that; a larger window fills over a few cycles instead of one.
 */
#define MAX_CLAIMS_PER_CYCLE 48

/* Kinds' ticks come at most this often. */
#define TICK_MS 1000

/* Rows deleted per retention batch: inbox rows, operations. */
#define RETENTION_BATCH 1000
#define OPERATION_RETENTION_BATCH 500

PGDLLEXPORT void tenant_airbyte_worker_main(Datum main_arg);

/* A finished request waiting for the next cycle to look at it. */
typedef struct Completion
{
	Operation  *job;
	CURLcode	result;
} Completion;

/* A job whose next request waits for its backoff to pass. */
typedef struct DelayedJob
{
	Operation  *job;
	TimestampTz start_at;
	bool		reserved;		/* waits for a token the budget reserved */
	uint64		generation;		/* budget_generation() at the reservation */
} DelayedJob;

static HttpWindow *window = NULL;
static MemoryContext jobs_context = NULL;
static List *delayed = NIL;		/* DelayedJob *, in jobs_context */
static List *ready = NIL;		/* Completion *, in jobs_context, not stepped yet */

static bool leases_released_at_start = false;
static bool requests_waiting = false;	/* a request waits for another operation */
static bool deliveries_waiting = false; /* a delivery waits likewise */

/* Secrets of operations requested since this worker started, by id. */
typedef struct HeldSecret
{
	int64		operation_id;
	char	   *secret;
} HeldSecret;
static List *held_secrets = NIL;	/* HeldSecret *, in TopMemoryContext */
static TimestampTz next_retention_at = 0;
static TimestampTz next_tick_at = 0;

static void worker_on_exit(int code, Datum arg);
struct Cycle;
static bool run_cycle(List *completions, bool claim, TimestampTz *next_due,
					  bool *more_due);
static bool in_transaction(bool (*fn) (struct Cycle *cycle), struct Cycle *cycle,
						   const char *activity);
static bool finish_and_claim(struct Cycle *cycle);
static bool start_claimed(struct Cycle *cycle);
static void remember(struct Cycle *cycle, Operation *job, StepResult outcome);
static StepResult run_step(struct Cycle *cycle, Operation *job, bool first, CURLcode result);
static void forget_job(Operation *job);
static void delay_job(Operation *job, bool reserved);
static void start_request(Operation *job, bool reserved);
static void accept_requests(struct Cycle *cycle);
static List *list_copy_deep_ptrs(List *list);
static void note_due(struct Cycle *cycle, TimestampTz when);
static bool recorded_in_this_cycle(struct Cycle *cycle, int64 id);
static void hold_secret(int64 operation_id, const char *secret);
static const char *held_secret(int64 operation_id);
static void drop_secret(int64 operation_id);
static TimestampTz start_delayed(void);
static int	jobs_holding_slots(void);
static List *take_ready(void);
static void abandon_all(void);
static void report_activity(void);
static long milliseconds_until(TimestampTz when, long cap);

/*
 * tenant_airbyte_worker_main
 *		Started by the launcher.  Connects as tenant_airbyte_worker: not a
 *		superuser, BYPASSRLS (it serves every tenant), rights only on the
 *		extension's own objects (the install script, section 6).  Its
 *		settings leave nothing for another role to hook into: a search_path
 *		of pg_catalog and pg_temp only (every statement is qualified
 *		anyway), session_replication_role = replica so that triggers others
 *		add to its tables do not fire for its writes (the extension's own
 *		are ENABLE ALWAYS), and a lock_timeout, so that a caller whose open
 *		transaction holds a row the worker needs gets an error instead of a
 *		deadlock no one detects (the caller waits on the worker's latch,
 *		not on a lock).
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

	BackgroundWorkerInitializeConnection(tenant_airbyte_database, WORKER_ROLE, 0);
	pgstat_report_appname("tenant_airbyte worker");
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);

	shmem_set_worker(true);
	before_shmem_exit(worker_on_exit, (Datum) 0);

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
		Operation  *job;
		CURL	   *easy;
		CURLcode	result;
		TimestampTz now;
		long		timeout_ms;
		long		jwks_due_ms;

		MemoryContextReset(loop_context);
		MemoryContextSwitchTo(loop_context);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a retention setting may have changed: apply it now */
			next_retention_at = 0;
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
			MemoryContext old;
			Completion *completion;

			if (jwks_worker_owns(job))
			{
				jwks_worker_done(result);
				continue;
			}
			old = MemoryContextSwitchTo(jobs_context);
			completion = palloc(sizeof(Completion));

			completion->job = job;
			completion->result = result;
			ready = lappend(ready, completion);
			MemoryContextSwitchTo(old);
		}
		completions = take_ready();

		now = GetCurrentTimestamp();
		if (shmem_take_wake() || (next_due != 0 && now >= next_due) || now >= next_retention_at)
			want_claim = true;
		if (budget_next_event_ms() == 0)	/* budget.c: a probe is due */
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
				shmem_set_serving(false);
				shmem_set_state(WORKER_STATE_WAITING_FOR_EXTENSION);
				report_activity();
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 EXTENSION_NAP_MS, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				want_claim = true;
				continue;
			}
			shmem_set_serving(true);
			want_claim = more_due &&
				jobs_holding_slots() < budget_window(tenant_airbyte_max_concurrency);
		}

		shmem_set_state(http_window_in_flight(window) > 0 ? WORKER_STATE_WORKING : WORKER_STATE_IDLE);
		shmem_set_in_flight(http_window_in_flight(window) - jwks_worker_in_flight());
		report_activity();

		jwks_due_ms = jwks_worker_tick(window);

		if (want_claim || ready != NIL)
		{
			/*
			 * Delayed requests whose time has come start here too: operations
			 * that keep coming due (waiting for a reconciliation pass, say)
			 * can keep the worker in this branch for long, and the pass's own
			 * delayed request must not starve behind them.
			 */
			if (delayed != NIL)
				(void) start_delayed();
			/* send what the cycle started before stepping the next chunk */
			(void) http_window_wait(window, 0);
			continue;
		}

		timeout_ms = milliseconds_until(next_retention_at, MAX_NAP_MS);
		if (budget_next_event_ms() >= 0)	/* budget.c */
			timeout_ms = Min(timeout_ms, budget_next_event_ms());
		if (jwks_due_ms >= 0)
			timeout_ms = Min(timeout_ms, jwks_due_ms);
		if (next_due != 0)
			timeout_ms = Min(timeout_ms, milliseconds_until(next_due, MAX_NAP_MS));
		if (delayed != NIL)
		{
			TimestampTz next_start = start_delayed();

			if (next_start != 0)
				timeout_ms = Min(timeout_ms, milliseconds_until(next_start, MAX_NAP_MS));
		}
		if (ready != NIL)		/* a request the budget held: step it now */
			timeout_ms = 0;
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
	List	   *accepted;		/* HandoffRequest *, recorded as operations */
	List	   *accepted_ids;	/* their operation ids (int64 *) */
	List	   *replies;		/* OpFinished *, to answer after commit */
	int			finished;
	bool		more_due;
	TimestampTz next_due;
} Cycle;

/*
 * run_cycle
 *		Two short transactions.  The first returns lapsed claims, records
 *		the operations backends handed over, acts on the finished requests
 *		(continuing or finishing their operations), takes up due webhook
 *		deliveries, claims due operations into the free slots, keeps the
 *		inbox tidy and learns when to look again.  The second takes the
 *		first step of the operations just claimed: only once their claim
 *		(and its raised attempt counter) is committed, so that an operation
 *		whose step kills the worker runs out of attempts instead of crashing
 *		it forever.  (An operation a backend handed over, recorded by the
 *		first transaction itself, takes its first step there: nothing of it
 *		would outlive a crash in that step.)  Requests decided in either
 *		start after their commit,
 *		and only then are the waiting backends answered.  Returns false
 *		when the extension is not installed or a transaction failed.
 */
/*
 * Durability, request by request.  Both transactions commit with the
 * server's synchronous_commit, and that must stay so (and, for failover,
 * with a synchronous standby): the commit that records a step
 * (operations.step, intended_name) is what a crash or a promoted standby
 * reconciles from, so it must be durable before the step's request is
 * sent, and a recorded outcome before the caller hears of it.  So a
 * request starts, and a caller is answered, only after the commit that
 * decided it returned.
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
		Operation  *job = (Operation *) lfirst(lc);

		if (ok && list_member_ptr(cycle.to_start, job))
		{
			if (job->start_after_ms > 0)
				delay_job(job, false);
			else
				start_request(job, false);
		}
		else
			forget_job(job);
	}
	if (ok)
	{
		ListCell   *la,
				   *li;

		forboth(la, cycle.accepted, li, cycle.accepted_ids)
			handoff_accepted((HandoffRequest *) lfirst(la), *(int64 *) lfirst(li));
		foreach(lc, cycle.replies)
		{
			OpFinished *f = (OpFinished *) lfirst(lc);

			handoff_reply(f->id, f->status, f->outcome);
			if (f->final)
				drop_secret(f->id);
		}
		if (cycle.finished > 0)
			shmem_count_finished(cycle.finished);
		/* a request that waited for an operation of its kind may go now */
		if ((requests_waiting || deliveries_waiting) && cycle.replies != NIL)
			cycle.more_due = true;
	}
	else
	{
		/* the rows were not committed: forget the secrets held for them */
		foreach(lc, cycle.accepted_ids)
			drop_secret(*(int64 *) lfirst(lc));
	}

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
 *		The first transaction of a cycle: return lapsed claims, record the
 *		operations backends asked for, act on the finished requests, take
 *		up due webhook deliveries, claim due operations into the free slots
 *		of the window, keep the tables tidy, and learn when to look again.
 */
static bool
finish_and_claim(Cycle *cycle)
{
	int			released;
	ListCell   *lc;
	List	   *dead = NIL;

	released = ops_release_leases(!leases_released_at_start, &dead);
	if (released > 0)
		ereport(LOG,
				(errmsg("tenant_airbyte worker returned %d interrupted operations and deliveries to the queue", released)));
	leases_released_at_start = true;
	{
		MemoryContext old = MemoryContextSwitchTo(cycle->context);

		cycle->replies = list_concat(cycle->replies, list_copy_deep_ptrs(dead));
		MemoryContextSwitchTo(old);
	}

	accept_requests(cycle);

	foreach(lc, cycle->completions)
	{
		Completion *completion = (Completion *) lfirst(lc);

		remember(cycle, completion->job,
				 run_step(cycle, completion->job, false, completion->result));
	}

	/* budget.c, backfill.c: the pause switch, and provision_tenants() */
	backfill_read_control();

	if (cycle->claim)
	{
		int			window_size = budget_window(tenant_airbyte_max_concurrency);
		int			free_slots = window_size
			- jobs_holding_slots() - list_length(cycle->to_start);

		free_slots = Min(free_slots, MAX_CLAIMS_PER_CYCLE);
		if (window_size > 0)
			(void) backfill_feed(budget_backfill_window(window_size));

		if (free_slots > 0)
		{
			List	   *claimed;
			MemoryContext old;

			int			looked_at = ops_take_up_deliveries(free_slots, engine_kind_for_event,
														   &deliveries_waiting);

			List	   *fresh = NIL;

			claimed = ops_claim(free_slots, jobs_context);
			old = MemoryContextSwitchTo(cycle->context);
			foreach(lc, claimed)
			{
				Operation  *op = (Operation *) lfirst(lc);

				op->secret = held_secret(op->id);
				if (recorded_in_this_cycle(cycle, op->id))
					fresh = lappend(fresh, op);
				else
					cycle->claimed = lappend(cycle->claimed, op);
			}
			cycle->touched = list_concat(cycle->touched, claimed);
			MemoryContextSwitchTo(old);

			/*
			 * An operation a backend handed over and this transaction
			 * recorded takes its first step here, saving a commit (a WAL
			 * flush) on the way to its first request.  Its claim need not
			 * be committed first: should the step kill the worker, the
			 * row dies with this transaction, so no operation is left to
			 * crash on again (every other claim is stepped only once it is
			 * committed, start_claimed).
			 */
			foreach(lc, fresh)
			{
				Operation  *job = (Operation *) lfirst(lc);

				remember(cycle, job, run_step(cycle, job, true, CURLE_OK));
			}

			/* a claim that filled every free slot may have left more */
			cycle->more_due = list_length(claimed) == free_slots || looked_at == free_slots;
		}
	}

	if (GetCurrentTimestamp() >= next_retention_at)
	{
		int			deleted = inbox_delete_finished(RETENTION_BATCH);
		int			ops_deleted = ops_delete_finished(OPERATION_RETENTION_BATCH);

		next_retention_at = deleted == RETENTION_BATCH ||
			ops_deleted == OPERATION_RETENTION_BATCH ? 0 :
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MAX_NAP_MS);
	}

	/* kinds that record operations of their own accord (operation.h) */
	if (GetCurrentTimestamp() >= next_tick_at)
	{
		operation_kinds_tick();
		next_tick_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), TICK_MS);
	}

	note_due(cycle, ops_next_due());
	return true;
}

/* Whether operation id was recorded from a hand-off by this cycle. */
static bool
recorded_in_this_cycle(Cycle *cycle, int64 id)
{
	ListCell   *lc;

	foreach(lc, cycle->accepted_ids)
	{
		if (*(int64 *) lfirst(lc) == id)
			return true;
	}
	return false;
}

/*
 * note_due
 *		Makes the cycle's next wake-up no later than when.  Retries decided
 *		in the cycle's second transaction come after the first one asked the
 *		table, so they are noted here too (remember()).
 */
static void
note_due(Cycle *cycle, TimestampTz when)
{
	if (when != 0 && (cycle->next_due == 0 || when < cycle->next_due))
		cycle->next_due = when;
}

/*
 * list_copy_deep_ptrs
 *		The OpFinished entries of list, copied into the current context.
 */
static List *
list_copy_deep_ptrs(List *list)
{
	List	   *copy = NIL;
	ListCell   *lc;

	foreach(lc, list)
	{
		OpFinished *f = (OpFinished *) lfirst(lc);
		OpFinished *c = palloc(sizeof(OpFinished));

		c->id = f->id;
		c->status = pstrdup(f->status);
		c->outcome = f->outcome ? pstrdup(f->outcome) : NULL;
		c->final = true;
		copy = lappend(copy, c);
	}
	return copy;
}

/*
 * accept_requests
 *		Records the operations backends handed over (handoff.c).  A request
 *		for which an unfinished operation of the same tenant, kind and
 *		subject exists stays in its slot until that one finishes.  The
 *		slots learn their operation ids only after this transaction
 *		commits (run_cycle); a secret is held in the worker's memory from
 *		here on.
 */
static void
accept_requests(Cycle *cycle)
{
	MemoryContext old = MemoryContextSwitchTo(cycle->context);
	List	   *requests = handoff_take_requests();
	ListCell   *lc;

	requests_waiting = false;
	foreach(lc, requests)
	{
		HandoffRequest *request = (HandoffRequest *) lfirst(lc);
		int64		id;
		int64	   *idp;

		if (operation_kind_by_name(request->kind) == NULL)
		{
			handoff_reply_request(request, "failed",
								  psprintf("{\"sqlstate\": \"0A000\", \"message\": %s}",
										   op_json_string(psprintf("unknown operation kind \"%s\"", request->kind))));
			continue;
		}
		id = ops_insert(request->kind, request->tenant_id, request->subject,
						request->params, 0);
		MemoryContextSwitchTo(cycle->context);
		if (id == 0)
		{
			requests_waiting = true;
			continue;
		}
		idp = palloc(sizeof(int64));
		*idp = id;
		cycle->accepted = lappend(cycle->accepted, request);
		cycle->accepted_ids = lappend(cycle->accepted_ids, idp);
		if (request->secret != NULL)
			hold_secret(id, request->secret);
	}
	MemoryContextSwitchTo(old);
}

/*
 * start_claimed
 *		The second transaction of a cycle: the first step of each operation
 *		the first one claimed, only once their claim (and its raised
 *		attempt counter) is committed, so that an operation whose step
 *		kills the worker runs out of attempts instead of crashing it forever.
 */
static bool
start_claimed(Cycle *cycle)
{
	ListCell   *lc;

	foreach(lc, cycle->claimed)
	{
		Operation  *job = (Operation *) lfirst(lc);

		remember(cycle, job, run_step(cycle, job, true, CURLE_OK));
	}
	return true;
}

/*
 * remember
 *		Notes an operation the cycle stepped, whether it has a request to
 *		start, and whom to answer once its outcome is committed.
 */
static void
remember(Cycle *cycle, Operation *job, StepResult outcome)
{
	MemoryContext old = MemoryContextSwitchTo(cycle->context);

	cycle->touched = list_append_unique_ptr(cycle->touched, job);
	if (outcome == STEP_SEND)
		cycle->to_start = lappend(cycle->to_start, job);
	else if (job->recorded_status != NULL)
	{
		cycle->finished++;
		if (strcmp(job->recorded_status, "pending") != 0)
		{
			OpFinished *f = palloc(sizeof(OpFinished));

			f->id = job->id;
			f->status = pstrdup(job->recorded_status);
			f->outcome = job->recorded_outcome ? pstrdup(job->recorded_outcome) : NULL;
			f->final = true;
			cycle->replies = lappend(cycle->replies, f);
		}
		else
			note_due(cycle, TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														job->retry_delay_ms));
		if (strcmp(job->recorded_status, "pending") == 0 && job->error_early_reply != NULL)
		{
			OpFinished *f = palloc(sizeof(OpFinished));

			f->id = job->id;
			f->status = "failed";
			f->outcome = pstrdup(job->error_early_reply);
			f->final = false;	/* the operation goes on: keep its secret */
			cycle->replies = lappend(cycle->replies, f);
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * run_step
 *		One step of one operation, in its own subtransaction: start it
 *		(first) or act on its finished request, then either record the step
 *		whose request goes next or record the outcome.  An error inside
 *		rolls back only this operation's step and counts as a transient
 *		failure; one that is a lock timeout is reported to a waiting caller
 *		at once, because its own transaction may hold that lock.
 */
static StepResult
run_step(Cycle *cycle, Operation *job, bool first, CURLcode result)
{
	MemoryContext old_context = CurrentMemoryContext;
	ResourceOwner old_owner = CurrentResourceOwner;
	volatile StepResult outcome = STEP_FAIL;
	volatile bool lost = false;

	job->recorded_status = NULL;
	job->error_early_reply = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old_context);

	PG_TRY();
	{
		outcome = first ? engine_start(job) : engine_answer(job, result);

		if (outcome == STEP_SEND)
			lost = !ops_enter_step(job);
		else
			lost = ops_record(job, outcome) == NULL;

		if (lost)
		{
			ereport(LOG,
					(errmsg("tenant_airbyte: operation " INT64_FORMAT " (tenant \"%s\") lost its claim; its result is discarded",
							job->id, job->tenant_id)));
			RollbackAndReleaseCurrentSubTransaction();
			job->recorded_status = NULL;
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
		bool		lock = false;

		MemoryContextSwitchTo(old_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old_context);
		CurrentResourceOwner = old_owner;

		lock = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
		/* a name decided by the step that failed was not recorded */
		if (job->intended_name_unsaved)
		{
			job->intended_name = job->intended_name_before;
			job->intended_name_unsaved = false;
		}
		job_old = MemoryContextSwitchTo(job->context);
		job->error = lock ?
			psprintf("a lock the operation needs is held by another transaction: %s", edata->message) :
			psprintf("internal error: %s", edata->message);
		if (lock)
			job->error_early_reply =
				psprintf("{\"sqlstate\": \"55P03\", \"message\": %s, \"hint\": %s}",
						 op_json_string(psprintf("operation " INT64_FORMAT " (%s for tenant \"%s\") waits for a lock that another transaction holds, possibly the caller's own",
												 job->id, job->kind_name, job->tenant_id)),
						 op_json_string("Call it outside a transaction that has written this tenant's rows. The operation goes on and completes once the lock is free; its outcome is in tenant_airbyte.operations."));
		job->outcome = NULL;
		MemoryContextSwitchTo(job_old);
		job->http_status = 0;
		job->retry_delay_ms = lock ? 1000 : engine_retry_delay_ms(job, -1);
		job->attempt_unused = lock;
		FreeErrorData(edata);

		outcome = STEP_RETRY;
		lost = ops_record(job, STEP_RETRY) == NULL;
	}
	PG_END_TRY();

	/*
	 * Airbyte cannot be reached at all: the operation rides the outage out
	 * (those attempts are not counted), but a caller waiting for it hears
	 * now rather than after the outage.
	 */
	if (!lost && outcome == STEP_RETRY && job->attempt_unused && !job->quiet &&
		job->error_early_reply == NULL && job->outcome != NULL)
		job->error_early_reply = MemoryContextStrdup(job->context, job->outcome);

	if (!lost && (outcome == STEP_RETRY || outcome == STEP_FAIL) && !job->quiet)
	{
		bool		unused = outcome == STEP_RETRY && job->attempt_unused;
		bool		last = outcome == STEP_FAIL ||
			(!unused && job->attempts >= tenant_airbyte_max_attempts);

		/* LOG, not WARNING: it is news for the server log, not for a client */
		if (job->delivery_id != 0)
			ereport(LOG,
					(errmsg("tenant_airbyte: delivery " INT64_FORMAT " (%s, tenant \"%s\") attempt %d of %d failed%s: %s",
							job->delivery_id, engine_event_of_kind(job->kind_name), job->tenant_id,
							job->attempts, tenant_airbyte_max_attempts,
							last ? " for good" : unused ? " without reaching Airbyte (not counted)" : "",
							job->error ? job->error : "unknown error"),
					 last ? 0 : errdetail("Retrying in %ld ms.", job->retry_delay_ms)));
		else
			ereport(LOG,
					(errmsg("tenant_airbyte: operation " INT64_FORMAT " (%s, tenant \"%s\") attempt %d of %d failed%s: %s",
							job->id, job->kind_name, job->tenant_id,
							job->attempts, tenant_airbyte_max_attempts,
							last ? " for good" : unused ? " without reaching Airbyte (not counted)" : "",
							job->error ? job->error : "unknown error"),
					 last ? 0 : errdetail("Retrying in %ld ms.", job->retry_delay_ms)));
		shmem_set_last_error("operation " INT64_FORMAT " (tenant %s): %s",
							 job->id, job->tenant_id,
							 job->error ? job->error : "unknown error");
	}
	return lost ? STEP_FAIL : outcome;
}

/* Secrets held in memory, by operation id. */
static void
hold_secret(int64 operation_id, const char *secret)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	HeldSecret *held = palloc(sizeof(HeldSecret));

	held->operation_id = operation_id;
	held->secret = pstrdup(secret);
	held_secrets = lappend(held_secrets, held);
	MemoryContextSwitchTo(old);
}

static const char *
held_secret(int64 operation_id)
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

static void
drop_secret(int64 operation_id)
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
 * forget_job
 *		Releases a job that is finished, or whose claim is lost or left for
 *		the lease to return.
 */
static void
forget_job(Operation *job)
{
	engine_release(job);
	MemoryContextDelete(job->context);
}

/*
 * delay_job
 *		Keeps a job's next request back until its backoff has passed.  The
 *		job keeps its slot of the window meanwhile.
 */
static void
delay_job(Operation *job, bool reserved)
{
	MemoryContext old = MemoryContextSwitchTo(jobs_context);
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
 * start_request
 *		Sends a job's request when the request budget (budget.c) allows:
 *		now, after the token reserved for it, or not at all while the
 *		circuit is open, or while a refusal waits for the circuit's
 *		verdict: such a job goes to the next cycle, whose step decides
 *		(steps.c, budget_held()).
 */
static void
start_request(Operation *job, bool reserved)
{
	long		wait_ms;
	BudgetVerdict verdict;

	if (job->budget_hold == 0)
	{
		verdict = budget_admit(job->id, reserved, &wait_ms);
		if (verdict == BUDGET_SEND)
		{
			http_window_add(window, job->request->easy, job);
			return;
		}
		if (verdict == BUDGET_WAIT)
		{
			job->start_after_ms = wait_ms;
			delay_job(job, true);
			return;
		}
		job->budget_hold = BUDGET_HELD_CIRCUIT;
	}
	{
		MemoryContext old = MemoryContextSwitchTo(jobs_context);
		Completion *completion = palloc(sizeof(Completion));

		completion->job = job;
		completion->result = CURLE_OK;
		ready = lappend(ready, completion);
		MemoryContextSwitchTo(old);
	}
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

		start_request(entry->job, entry->reserved &&
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
 * jobs_holding_slots
 *		Deliveries the worker holds: requests in flight and requests
 *		waiting for their backoff.  Together they stay within
 *		tenant_airbyte.max_concurrency.
 */
static int
jobs_holding_slots(void)
{
	return http_window_in_flight(window) - jwks_worker_in_flight() +
		list_length(delayed) + list_length(ready);
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
	{
		if (jwks_worker_owns(owner))
			jwks_worker_abandon();
		else
			forget_job((Operation *) owner);
	}
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

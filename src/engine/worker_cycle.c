/*-------------------------------------------------------------------------
 *
 * worker_cycle.c
 *	  One cycle of the background worker (worker.c runs them): two short
 *	  transactions that record what the finished HTTP requests produced,
 *	  take up due webhook deliveries, claim due operations into the free
 *	  slots of the window, decide each one's next request, and find when
 *	  to look again.
 *
 * Each operation's step runs in its own subtransaction inside the cycle,
 * so one that fails is retried later without undoing the others.  A
 * request starts only after the transaction that decided it committed:
 * the intent is durable before Airbyte hears of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "backfill.h"
#include "budget.h"
#include "handoff.h"
#include "opqueue.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker.h"
#include "worker_internal.h"

/*
 * Operations claimed per cycle.  Each one's step runs in a subtransaction
 * of its own, and a transaction with more than 64 subtransactions that
 * wrote overflows its entry in the proc array, which makes every snapshot
 * in the cluster look transaction ids up in pg_subtrans until it ends.
 * The claims are stepped in the second transaction, 48 at most; a larger
 * window fills over a few cycles instead of one.  The first steps up to
 * READY_CHUNK_MAX (32) finished requests (worker_slots.c) and, of the
 * operations it recorded from hand-offs itself, as many as keep it within
 * STEPS_PER_TRANSACTION; the others wait for the second.
 */
#define MAX_CLAIMS_PER_CYCLE 48
#define STEPS_PER_TRANSACTION 56

/* Kinds' ticks come at most this often. */
#define TICK_MS 1000

/*
 * Lapsed leases are looked for at most this often.  The worker renews the
 * lease of everything it holds, so one runs out only when the worker lost
 * track of a claim: a safety net, not a path every cycle needs (the two
 * statements cost as much as claiming).  Leases are at least a second
 * (tenant_airbyte.lease_ms), so a lapsed one is returned within one more.
 */
#define LEASE_CHECK_MS 1000

/* Rows deleted per retention batch: inbox rows, operations. */
#define RETENTION_BATCH 1000
#define OPERATION_RETENTION_BATCH 500

bool		worker_leases_released_at_start = false;
TimestampTz worker_next_retention_at = 0;

static bool requests_waiting = false;	/* a request waits for another operation */
static bool deliveries_waiting = false; /* a delivery waits likewise */
static TimestampTz next_tick_at = 0;
static TimestampTz next_lease_check_at = 0;

struct Cycle;
static bool in_transaction(bool (*fn) (struct Cycle *cycle), struct Cycle *cycle,
						   const char *activity);
static bool finish_and_claim(struct Cycle *cycle);
static bool start_claimed(struct Cycle *cycle);
static void remember(struct Cycle *cycle, Operation *job, StepResult outcome);
static void accept_requests(struct Cycle *cycle);
static List *list_copy_deep_ptrs(List *list);
static void note_due(struct Cycle *cycle, TimestampTz when);
static bool recorded_in_this_cycle(struct Cycle *cycle, int64 id);

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
	bool		claim_done;		/* this cycle's claim has run */
	bool		more_due;
	TimestampTz next_due;
} Cycle;

/*
 * worker_run_cycle
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
bool
worker_run_cycle(List *completions, bool claim, TimestampTz *next_due, bool *more_due)
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

	/*
	 * A request starts only once the decision to send it is committed, and
	 * only into a free slot of the window: the others (claimed ahead) wait
	 * behind the requests already waiting, for the next slot to free.
	 */
	foreach(lc, cycle.touched)
	{
		Operation  *job = (Operation *) lfirst(lc);

		if (ok && list_member_ptr(cycle.to_start, job))
			worker_add_standby(job);
		else
			worker_forget_job(job);
	}
	(void) worker_start_standby();
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
				worker_drop_secret(f->id);
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
			worker_drop_secret(*(int64 *) lfirst(lc));
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
		{
			ok = fn(cycle);
			/* nothing the steps decided may be left unwritten at commit */
			ops_record_batch();
			ops_write_steps();
		}

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
		ops_forget_later();

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

	if (!worker_leases_released_at_start || GetCurrentTimestamp() >= next_lease_check_at)
	{
		MemoryContext old;

		released = ops_release_leases(!worker_leases_released_at_start, &dead);
		if (released > 0)
			ereport(LOG,
					(errmsg("tenant_airbyte worker returned %d interrupted operations and deliveries to the queue", released)));
		worker_leases_released_at_start = true;
		next_lease_check_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LEASE_CHECK_MS);
		old = MemoryContextSwitchTo(cycle->context);
		cycle->replies = list_concat(cycle->replies, list_copy_deep_ptrs(dead));
		MemoryContextSwitchTo(old);
	}

	accept_requests(cycle);

	/*
	 * The finished requests, their outcomes written together once all are
	 * stepped (worker_step.c), before the take-up and the claim look at
	 * which operations are unfinished.
	 */
	if (cycle->completions != NIL)
	{
		StepResult *outcomes = palloc(list_length(cycle->completions) * sizeof(StepResult));

		foreach(lc, cycle->completions)
		{
			Completion *completion = (Completion *) lfirst(lc);

			outcomes[foreach_current_index(lc)] =
				worker_run_step(completion->job, false, completion->result, true);
		}
		ops_record_batch();
		foreach(lc, cycle->completions)
			remember(cycle, ((Completion *) lfirst(lc))->job, outcomes[foreach_current_index(lc)]);
	}

	/* budget.c, backfill.c: the pause switch, and provision_tenants() */
	backfill_read_control();

	if (cycle->claim)
	{
		int			window_size = budget_window(tenant_airbyte_max_concurrency);
		int			free_slots = worker_claim_room(window_size) - list_length(cycle->to_start);

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

			claimed = ops_claim(free_slots, worker_jobs_context);
			cycle->claim_done = true;
			old = MemoryContextSwitchTo(cycle->context);
			foreach(lc, claimed)
			{
				Operation  *op = (Operation *) lfirst(lc);

				op->secret = worker_held_secret(op->id);
				if (recorded_in_this_cycle(cycle, op->id) &&
					list_length(cycle->completions) + list_length(fresh) < STEPS_PER_TRANSACTION)
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
			 * committed, start_claimed; so are those beyond
			 * STEPS_PER_TRANSACTION).
			 */
			foreach(lc, fresh)
			{
				Operation  *job = (Operation *) lfirst(lc);

				remember(cycle, job, worker_run_step(job, true, CURLE_OK, false));
			}

			/* a claim that filled every free slot may have left more */
			cycle->more_due = list_length(claimed) == free_slots || looked_at == free_slots;
		}
	}

	/* the steps entered above are written before anything else reads operations */
	ops_write_steps();

	if (GetCurrentTimestamp() >= worker_next_retention_at)
	{
		int			deleted = inbox_delete_finished(RETENTION_BATCH);
		int			ops_deleted = ops_delete_finished(OPERATION_RETENTION_BATCH);

		worker_next_retention_at = deleted == RETENTION_BATCH ||
			ops_deleted == OPERATION_RETENTION_BATCH ? 0 :
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), MAX_NAP_MS);
	}

	/* kinds that record operations of their own accord (operation.h) */
	if (GetCurrentTimestamp() >= next_tick_at)
	{
		operation_kinds_tick();
		next_tick_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), TICK_MS);
	}

	/*
	 * A cycle that claimed all it could runs again as soon as a slot is
	 * free, and only then could it claim a retry that comes due: the next
	 * cycle that does not fill the window asks instead.
	 */
	if (!cycle->more_due)
	{
		TimestampTz retry_at;
		TimestampTz lease_at;

		ops_next_due(&retry_at, &lease_at);
		note_due(cycle, retry_at);
		if (lease_at != 0)
			note_due(cycle, Max(lease_at, next_lease_check_at));
	}
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
 *		commits (worker_run_cycle); a secret is held in the worker's memory from
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
			worker_hold_secret(id, request->secret);
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

		remember(cycle, job, worker_run_step(job, true, CURLE_OK, false));
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

			/*
			 * Finished after this cycle claimed (a first step that needed
			 * no request, such as a signup whose workspace exists): the
			 * claim could not see it, and the tenant's next operation,
			 * which waited for it, is due now.  Nothing else would wake
			 * the worker for that one.
			 */
			if (cycle->claim_done)
				cycle->more_due = true;

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

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
 * A cycle steps a chunk of the finished requests (worker_slots.c); when
 * more are waiting, the requests it started are sent (a non-blocking turn
 * of the window) before the next cycle takes them.  The cycle itself and
 * the rule that a request starts only after the commit that decided it
 * are in worker_cycle.c, the subtransaction of each step in
 * worker_step.c.
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

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "budget.h"
#include "jwks_refresh.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker.h"
#include "worker_internal.h"

PGDLLEXPORT void tenant_airbyte_worker_main(Datum main_arg);

static void worker_on_exit(int code, Datum arg);
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
 *
 *		enable_seqscan is off, and with it jit.  The worker keeps its
 *		statements' plans for its whole life, and each was planned when it
 *		first ran, often against a new or idle queue whose statistics say
 *		ten rows: a burst of signups then found the claim scanning the
 *		whole operations table and the inbox, 3 ms and 850 buffers a cycle,
 *		until autovacuum's next ANALYZE.  Every statement the worker runs
 *		reads rows by key or through a partial index, so no plan of its
 *		wants a sequential scan; where no index fits the planner still
 *		takes one.  The cost that disable adds would then make every such
 *		plan look expensive enough to JIT-compile (200 ms a statement), so
 *		jit goes off too: nothing the worker runs is long enough to gain.
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
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	shmem_set_worker(true);
	before_shmem_exit(worker_on_exit, (Datum) 0);

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(FATAL,
				(errmsg("could not initialise libcurl")));

	worker_slots_init();
	loop_context = AllocSetContextCreate(TopMemoryContext, "tenant_airbyte worker loop",
										 ALLOCSET_DEFAULT_SIZES);

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
			worker_next_retention_at = 0;
		}
		if (shmem_leave_requested())
		{
			ereport(LOG,
					(errmsg("tenant_airbyte worker disconnects from database \"%s\" so that it can be dropped, renamed or copied",
							tenant_airbyte_database)));
			proc_exit(0);
		}

		/* collect what finished during the last wait */
		while (http_window_next_done(worker_window, &easy, &result, (void **) &job))
		{

			if (jwks_worker_owns(job))
			{
				jwks_worker_done(result);
				continue;
			}
			worker_add_ready(job, result);
		}

		/*
		 * Requests claimed ahead take the slots just freed now, before the
		 * cycle that steps what finished: sent at once, not after it.
		 */
		if (worker_start_standby())
			(void) http_window_wait(worker_window, 0);
		completions = worker_take_ready();

		now = GetCurrentTimestamp();
		if (shmem_take_wake() || (next_due != 0 && now >= next_due) || now >= worker_next_retention_at)
			want_claim = true;
		if (budget_next_event_ms() == 0)	/* budget.c: a probe is due */
			want_claim = true;
		if (completions != NIL)
			want_claim = true;

		if (want_claim || completions != NIL)
		{
			bool		more_due = false;

			if (!worker_run_cycle(completions, want_claim, &next_due, &more_due))
			{
				/* extension missing, or the cycle failed: start over later */
				worker_abandon_all();
				worker_leases_released_at_start = false;
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
				worker_claim_room(budget_window(tenant_airbyte_max_concurrency)) > 0;
		}

		shmem_set_state(http_window_in_flight(worker_window) > 0 ? WORKER_STATE_WORKING : WORKER_STATE_IDLE);
		shmem_set_in_flight(http_window_in_flight(worker_window) - jwks_worker_in_flight());
		report_activity();

		jwks_due_ms = jwks_worker_tick(worker_window);

		if (want_claim || worker_have_ready())
		{
			/*
			 * Delayed requests whose time has come start here too: operations
			 * that keep coming due (waiting for a reconciliation pass, say)
			 * can keep the worker in this branch for long, and the pass's own
			 * delayed request must not starve behind them.
			 */
			if (worker_have_delayed())
				(void) worker_start_delayed();
			/* send what the cycle started before stepping the next chunk */
			(void) http_window_wait(worker_window, 0);
			continue;
		}

		timeout_ms = milliseconds_until(worker_next_retention_at, MAX_NAP_MS);
		if (budget_next_event_ms() >= 0)	/* budget.c */
			timeout_ms = Min(timeout_ms, budget_next_event_ms());
		if (jwks_due_ms >= 0)
			timeout_ms = Min(timeout_ms, jwks_due_ms);
		if (next_due != 0)
			timeout_ms = Min(timeout_ms, milliseconds_until(next_due, MAX_NAP_MS));
		if (worker_have_delayed())
		{
			TimestampTz next_start = worker_start_delayed();

			if (next_start != 0)
				timeout_ms = Min(timeout_ms, milliseconds_until(next_start, MAX_NAP_MS));
		}
		if (worker_have_ready())	/* a request the budget held: step it now */
			timeout_ms = 0;
		(void) http_window_wait(worker_window, timeout_ms);
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

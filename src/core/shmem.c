/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between the background worker, its launcher and every
 *	  backend, and the commit-time wake-up.
 *
 * One small struct in shared memory, present only when the library was
 * preloaded.  It holds who the worker is (pid and latch), what it is
 * doing (for the worker_status view and pg_stat_activity), and an atomic
 * "there is new work" flag.
 *
 * The wake-up follows pg_net: a statement-level trigger on webhook_inbox
 * only notes, in backend-local memory, that this transaction put work in
 * the inbox.  A transaction callback turns that note into one wake-up at
 * commit: it sets the shared flag and the worker's latch.  An aborted
 * transaction (or subtransaction) forgets the note, so it wakes nothing;
 * a transaction that inserted a thousand rows in ten statements wakes the
 * worker once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "handoff.h"
#include "shmem.h"
#include "tenant_airbyte.h"

/* How long the launcher holds off after the worker left for DROP DATABASE. */
#define LEAVE_HOLD_MS 10000

typedef struct TenantAirbyteShared
{
	slock_t		mutex;			/* protects everything but the atomics */

	Latch	   *launcher_latch;
	Latch	   *worker_latch;
	int			worker_pid;
	Oid			worker_database;	/* valid once it serves the extension */
	Oid			worker_connected_to;	/* the database it is connected to */
	WorkerState state;
	TimestampTz started_at;
	int			in_flight;
	uint64		deliveries_finished;
	TimestampTz last_error_at;
	char		last_error[256];

	/* set by a backend about to DROP (or rename, or copy) our database */
	bool		leave_requested;
	TimestampTz relaunch_hold_until;

	pg_atomic_uint32 wake_pending;
	pg_atomic_uint64 commit_wakeups;
} TenantAirbyteShared;

static TenantAirbyteShared *shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Backend-local: the lowest subtransaction nesting level at which this
 * transaction put work into the inbox, 0 when it did not.
 */
static int	wake_nest_level = 0;
static bool xact_callbacks_registered = false;

static void shmem_request_hook_fn(void);
static void shmem_startup_hook_fn(void);
static void wake_xact_callback(XactEvent event, void *arg);
static void wake_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								  SubTransactionId parentSubid, void *arg);

/*
 * shmem_request
 *		Called from _PG_init while preloading: installs the hooks that
 *		reserve and then initialise our struct.
 */
void
shmem_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request_hook_fn;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup_hook_fn;
}

static void
shmem_request_hook_fn(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(TenantAirbyteShared)));
	RequestAddinShmemSpace(handoff_shmem_size());
}

/*
 * shmem_startup_hook_fn
 *		Creates the struct at postmaster start and after every crash
 *		restart (which re-creates shared memory), and attaches to it in
 *		every process that starts afterwards.
 */
static void
shmem_startup_hook_fn(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("tenant_airbyte", sizeof(TenantAirbyteShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(TenantAirbyteShared));
		SpinLockInit(&shared->mutex);
		shared->state = WORKER_STATE_STOPPED;
		pg_atomic_init_u32(&shared->wake_pending, 0);
		pg_atomic_init_u64(&shared->commit_wakeups, 0);
	}
	handoff_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * shmem_attached
 *		False in a session that loaded the library without preloading it:
 *		there is no worker then, and nothing to wake or report.
 */
bool
shmem_attached(void)
{
	return shared != NULL;
}

/*
 * shmem_set_launcher
 *		Publishes the launcher's latch so that the worker's departure for a
 *		DROP DATABASE can be followed by a prompt, but not too prompt, return.
 */
void
shmem_set_launcher(bool running)
{
	SpinLockAcquire(&shared->mutex);
	shared->launcher_latch = running ? MyLatch : NULL;
	SpinLockRelease(&shared->mutex);
}

/*
 * shmem_take_relaunch_hold
 *		Whether the launcher must wait before starting the worker again
 *		because it just left for a DROP DATABASE; reconnecting at once would
 *		block that command again.
 */
bool
shmem_take_relaunch_hold(TimestampTz *hold_until)
{
	bool		hold;

	SpinLockAcquire(&shared->mutex);
	*hold_until = shared->relaunch_hold_until;
	hold = shared->relaunch_hold_until > GetCurrentTimestamp();
	if (!hold)
		shared->leave_requested = false;
	SpinLockRelease(&shared->mutex);
	return hold;
}

/*
 * shmem_set_worker
 *		Registers (or unregisters at exit) the worker's pid and latch, which
 *		is what committing backends set to wake it.
 */
void
shmem_set_worker(bool running)
{
	SpinLockAcquire(&shared->mutex);
	if (running)
	{
		shared->worker_pid = MyProcPid;
		shared->worker_connected_to = MyDatabaseId;
		shared->worker_latch = MyLatch;
		shared->started_at = GetCurrentTimestamp();
		shared->state = WORKER_STATE_STARTING;
	}
	else
	{
		shared->worker_pid = 0;
		shared->worker_database = InvalidOid;
		shared->worker_connected_to = InvalidOid;
		shared->worker_latch = NULL;
		shared->state = WORKER_STATE_STOPPED;
		shared->in_flight = 0;
	}
	SpinLockRelease(&shared->mutex);
}

/*
 * shmem_set_serving
 *		Whether the worker serves the extension in its database now; what
 *		engine_run() asks before it hands anything over.
 */
void
shmem_set_serving(bool serving)
{
	SpinLockAcquire(&shared->mutex);
	shared->worker_database = serving ? MyDatabaseId : InvalidOid;
	SpinLockRelease(&shared->mutex);
}

/*
 * shmem_worker_serving
 *		The worker's pid (0: none), the database it serves (InvalidOid:
 *		none yet) and the one it is connected to; false when the library
 *		was not preloaded.
 */
bool
shmem_worker_serving(int *pid, Oid *database, Oid *connected_to)
{
	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	*pid = shared->worker_pid;
	*database = shared->worker_database;
	*connected_to = shared->worker_connected_to;
	SpinLockRelease(&shared->mutex);
	return true;
}

void
shmem_set_state(WorkerState state)
{
	SpinLockAcquire(&shared->mutex);
	shared->state = state;
	SpinLockRelease(&shared->mutex);
}

void
shmem_set_in_flight(int in_flight)
{
	SpinLockAcquire(&shared->mutex);
	shared->in_flight = in_flight;
	SpinLockRelease(&shared->mutex);
}

void
shmem_count_finished(int n)
{
	SpinLockAcquire(&shared->mutex);
	shared->deliveries_finished += n;
	SpinLockRelease(&shared->mutex);
}

/*
 * shmem_set_last_error
 *		Remembers the latest failure for worker_status.  Callers pass only
 *		what may be shown to an administrator: never a token or a secret.
 */
void
shmem_set_last_error(const char *fmt,...)
{
	char		buf[256];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);

	SpinLockAcquire(&shared->mutex);
	strlcpy(shared->last_error, buf, sizeof(shared->last_error));
	shared->last_error_at = GetCurrentTimestamp();
	SpinLockRelease(&shared->mutex);
}

/*
 * shmem_take_wake
 *		Consumes the "new work was committed" flag: true when at least one
 *		commit since the last call put work in the inbox.
 */
bool
shmem_take_wake(void)
{
	return pg_atomic_exchange_u32(&shared->wake_pending, 0) != 0;
}

bool
shmem_leave_requested(void)
{
	bool		leave;

	SpinLockAcquire(&shared->mutex);
	leave = shared->leave_requested;
	SpinLockRelease(&shared->mutex);
	return leave;
}

/*
 * shmem_wake_worker
 *		Tells the worker that committed work is waiting.  Cheap and safe to
 *		call from a commit callback: an atomic store and a latch.
 */
void
shmem_wake_worker(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return;

	pg_atomic_write_u32(&shared->wake_pending, 1);
	pg_atomic_fetch_add_u64(&shared->commit_wakeups, 1);

	SpinLockAcquire(&shared->mutex);
	latch = shared->worker_latch;
	SpinLockRelease(&shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * shmem_ask_worker_to_leave
 *		Called before a command that needs the worker's database free of
 *		connections (DROP DATABASE, renaming it, copying it): the worker
 *		disconnects, and the launcher waits LEAVE_HOLD_MS before starting
 *		it again, long enough for the command to take its lock.
 */
void
shmem_ask_worker_to_leave(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return;

	SpinLockAcquire(&shared->mutex);
	shared->leave_requested = true;
	shared->relaunch_hold_until =
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LEAVE_HOLD_MS);
	latch = shared->worker_latch;
	SpinLockRelease(&shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

void
shmem_snapshot(WorkerStatusSnapshot *snapshot)
{
	memset(snapshot, 0, sizeof(*snapshot));
	if (shared == NULL)
		return;

	SpinLockAcquire(&shared->mutex);
	snapshot->pid = shared->worker_pid;
	snapshot->state = shared->state;
	snapshot->started_at = shared->started_at;
	snapshot->in_flight = shared->in_flight;
	snapshot->deliveries_finished = shared->deliveries_finished;
	snapshot->last_error_at = shared->last_error_at;
	strlcpy(snapshot->last_error, shared->last_error, sizeof(snapshot->last_error));
	SpinLockRelease(&shared->mutex);
	snapshot->commit_wakeups = pg_atomic_read_u64(&shared->commit_wakeups);
}

const char *
worker_state_name(WorkerState state)
{
	switch (state)
	{
		case WORKER_STATE_STOPPED:
			return "stopped";
		case WORKER_STATE_STARTING:
			return "starting";
		case WORKER_STATE_WAITING_FOR_DATABASE:
			return "waiting for database";
		case WORKER_STATE_WAITING_FOR_EXTENSION:
			return "waiting for extension";
		case WORKER_STATE_IDLE:
			return "idle";
		case WORKER_STATE_WORKING:
			return "working";
	}
	return "unknown";
}

/*
 * wake_xact_callback
 *		Turns "this transaction put work in the inbox" into one wake-up at
 *		commit, and into nothing at abort.
 */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_nest_level > 0)
				shmem_wake_worker();
			wake_nest_level = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's rows are found by the worker's timer */
			wake_nest_level = 0;
			break;
		default:
			break;
	}
}

/*
 * wake_subxact_callback
 *		A rolled-back savepoint takes its inserts with it, so it takes its
 *		note too; a released one hands the note to its parent.
 */
static void
wake_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (wake_nest_level == 0 || wake_nest_level < level)
		return;

	if (event == SUBXACT_EVENT_ABORT_SUB)
		wake_nest_level = 0;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		wake_nest_level = level - 1;
}

PG_FUNCTION_INFO_V1(tenant_airbyte_inbox_wake);

/*
 * tenant_airbyte_inbox_wake
 *		Statement-level trigger on webhook_inbox (INSERT, UPDATE): notes
 *		that this transaction has put work in the inbox.  The wake itself
 *		waits for commit, because before that the worker could not see the
 *		rows.  The worker's own updates need no wake: it knows.
 */
Datum
tenant_airbyte_inbox_wake(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("inbox_wake() must be called as a trigger")));

	/* the worker's own writes (it mirrors operations) need no wake-up */
	if (shared != NULL && shared->worker_pid == MyProcPid)
		return PointerGetDatum(NULL);
	shmem_wake_worker_at_commit();

	return PointerGetDatum(NULL);
}

/*
 * shmem_wake_worker_at_commit
 *		Notes that the current transaction has news for the worker (work in
 *		the inbox, or the extension created or dropped); the worker is
 *		woken if and when the transaction commits.
 */
void
shmem_wake_worker_at_commit(void)
{
	int			level;

	if (shared == NULL || shared->worker_pid == MyProcPid)
		return;

	if (!xact_callbacks_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		RegisterSubXactCallback(wake_subxact_callback, NULL);
		xact_callbacks_registered = true;
	}
	level = GetCurrentTransactionNestLevel();
	if (wake_nest_level == 0 || level < wake_nest_level)
		wake_nest_level = level;
}

PG_FUNCTION_INFO_V1(tenant_airbyte_worker_state);

/*
 * tenant_airbyte_worker_state
 *		The worker as shared memory describes it, for the worker_status view.
 *		Without preloading there is no worker: the state says why, and a
 *		WARNING says it loudly, because everything else then looks normal
 *		while nothing is ever processed.
 */
Datum
tenant_airbyte_worker_state(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};
	WorkerStatusSnapshot snapshot;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (shared == NULL)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_airbyte is not in shared_preload_libraries, so there is no background worker"),
				 errdetail("Webhook deliveries and operations are recorded but never carried out until a worker runs."),
				 errhint("Add tenant_airbyte to shared_preload_libraries in postgresql.conf and restart PostgreSQL: a reload is not enough.")));

	shmem_snapshot(&snapshot);

	values[0] = Int32GetDatum(snapshot.pid);
	nulls[0] = snapshot.pid == 0;
	values[1] = CStringGetTextDatum(shared == NULL
									? "not running: tenant_airbyte is not in shared_preload_libraries"
									: worker_state_name(snapshot.state));
	values[2] = TimestampTzGetDatum(snapshot.started_at);
	nulls[2] = snapshot.pid == 0;
	values[3] = Int32GetDatum(snapshot.in_flight);
	values[4] = Int64GetDatum((int64) snapshot.deliveries_finished);
	values[5] = Int64GetDatum((int64) snapshot.commit_wakeups);
	values[6] = CStringGetTextDatum(snapshot.last_error);
	nulls[6] = snapshot.last_error[0] == '\0';
	values[7] = TimestampTzGetDatum(snapshot.last_error_at);
	nulls[7] = snapshot.last_error_at == 0;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*-------------------------------------------------------------------------
 *
 * budget.c
 *	  One request budget for every Airbyte request the worker sends, so
 *	  that the engine as a whole, not each operation alone, adapts to what
 *	  Airbyte tolerates.  Three parts:
 *
 *	  rate_limit.c	the rate: a token bucket at the allowed rate
 *					(tenant_airbyte.max_requests_per_second to begin with),
 *					lowered and raised again (AIMD) as Airbyte answers 429
 *					without Retry-After; whether such a 429 uses up an
 *					operation's attempt
 *	  circuit.c		the circuit: while every request is refused with 401 or
 *					403, nothing is sent but one probe per interval
 *	  budget.c		(this file) the settings; what the worker asks before a
 *					request goes and tells when its answer arrives, the
 *					circuit asked first, then the rate; the window of
 *					operations the worker may hold; the pause switch; and
 *					worker_budget() for worker_status
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

#include "budget_internal.h"
#include "tenant_airbyte.h"

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

/* the worker's own state */
static int	window = 0;
static bool paused = false;

static void budget_shmem_request(void);
static void budget_shmem_startup(void);

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
							"Percentage of the worker's window that provision_tenants() batches keep while other work waits.",
							"The rest is left to webhook deliveries and direct calls; with nothing else waiting a batch uses the whole window.",
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
void
budget_publish(void)
{
	CircuitState circuit = circuit_state();

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	shared->paused = paused;
	shared->allowed_rate = rate_allowed();
	shared->window = window;
	if (shared->circuit != circuit)
		shared->circuit_since = GetCurrentTimestamp();
	shared->circuit = circuit;
	shared->answers_429 = rate_answers_429();
	shared->answers_refused = circuit_answers_refused();
	SpinLockRelease(&shared->mutex);
}

/*
 * budget_admit
 *		Whether a request ready to go may be sent now.  reserved: it waited
 *		for a token budget_admit() reserved for it earlier.  While the
 *		circuit is open only the probe goes, when it is due (circuit.c);
 *		otherwise the rate decides (rate_limit.c).
 */
BudgetVerdict
budget_admit(int64 operation_id, bool reserved, long *wait_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	BudgetVerdict verdict;

	*wait_ms = 0;
	if (circuit_admit(now, operation_id, &verdict))
		return verdict;
	if (reserved)
		return BUDGET_SEND;
	return rate_admit(now, wait_ms);
}

/*
 * budget_observe
 *		Every answer the worker receives (http_status 0: none arrived)
 *		feeds the circuit, and unless it was a refusal, the rate.
 */
void
budget_observe(int64 operation_id, long http_status, long retry_after_ms)
{
	TimestampTz now = GetCurrentTimestamp();

	if (circuit_observe(now, operation_id, http_status))
		return;
	rate_observe(now, operation_id, http_status, retry_after_ms);
	budget_publish();
}

/*
 * budget_answer
 *		What a failed answer means beyond the operation that got it (see
 *		rate_limit.c and circuit.c).  Called after budget_observe() saw the
 *		answer.
 */
BudgetAnswer
budget_answer(int64 operation_id, long http_status, long retry_after_ms)
{
	if (http_status == 429 && retry_after_ms < 0)
		return rate_resend(GetCurrentTimestamp(), operation_id) ?
			BUDGET_ANSWER_RESEND : BUDGET_ANSWER_USUAL;
	if (http_status == 401 || http_status == 403)
		return circuit_state() == CIRCUIT_CLOSED ? BUDGET_ANSWER_VERDICT : BUDGET_ANSWER_CIRCUIT;
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
	double		rate;

	rate_refresh(now);
	circuit_probe_lost(now);
	rate = rate_allowed();
	if (paused)
		result = 0;
	else if (circuit_state() == CIRCUIT_OPEN)
		result = circuit_probe_due(now) ? 1 : 0;
	else if (circuit_state() == CIRCUIT_PROBING)
		result = 0;
	else if (rate > 0)
		result = Max(1, Min(max_concurrency, (int) ceil(rate * WINDOW_SECONDS)));
	else
		result = max_concurrency;
	if (result != window)
	{
		window = result;
		budget_publish();
	}
	return result;
}

/* The window budget_window() last computed (backfill.c). */
int
budget_current_window(void)
{
	return window;
}

/*
 * How many of the window's operations provision_tenants() batches may
 * hold while other work waits (backfill.c).
 */
int
budget_backfill_window(int window_size)
{
	return Max(1, window_size * tenant_airbyte_backfill_share / 100);
}

/*
 * budget_generation
 *		Changes whenever the rate is lowered: a token reserved before that
 *		is void, and its request asks again (worker.c).
 */
uint64
budget_generation(void)
{
	return rate_generation();
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
		budget_publish();
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

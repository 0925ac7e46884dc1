/*-------------------------------------------------------------------------
 *
 * circuit.c
 *	  The request budget's circuit breaker: while Airbyte refuses the
 *	  credentials (401/403) for every request, the worker stops sending and
 *	  probes once per interval (budget.c combines it with the rate).
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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "utils/timestamp.h"

#include "budget_internal.h"
#include "shmem.h"
#include "tenant_airbyte.h"

static CircuitState circuit = CIRCUIT_CLOSED;
static int	refused_streak = 0;
static int64 streak_first_operation = 0;
static bool streak_two_operations = false;
static TimestampTz next_probe_at = 0;
static int64 probe_operation = 0;
static TimestampTz probe_sent_at = 0;
static uint64 count_refused = 0;

/*
 * circuit_admit
 *		The circuit's say on a request ready to go: false while it is
 *		closed (the rate decides); otherwise true with *verdict: hold it,
 *		or send it as the probe when one is due.
 */
bool
circuit_admit(TimestampTz now, int64 operation_id, BudgetVerdict *verdict)
{
	circuit_probe_lost(now);
	if (circuit == CIRCUIT_PROBING)
	{
		*verdict = BUDGET_HOLD;
		return true;
	}
	if (circuit == CIRCUIT_OPEN)
	{
		if (now < next_probe_at)
		{
			*verdict = BUDGET_HOLD;
			return true;
		}
		circuit = CIRCUIT_PROBING;
		probe_operation = operation_id;
		probe_sent_at = now;
		ereport(LOG,
				(errmsg("tenant_airbyte: the circuit is open; operation " INT64_FORMAT "'s request is the probe",
						operation_id)));
		budget_publish();
		*verdict = BUDGET_SEND;
		return true;
	}
	return false;
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
 * circuit_probe_lost
 *		A probe whose answer never came (its operation lost its claim, or
 *		the worker gave it up) must not keep the circuit shut for good:
 *		after the request's own timeout and an interval, probe again.
 */
void
circuit_probe_lost(TimestampTz now)
{
	if (circuit == CIRCUIT_PROBING &&
		now - probe_sent_at > ((int64) tenant_airbyte_http_timeout_ms +
							   tenant_airbyte_circuit_probe_interval_s * 1000L) * 1000)
	{
		circuit = CIRCUIT_OPEN;
		next_probe_at = now;
		budget_publish();
	}
}

/*
 * circuit_observe
 *		An answer for the circuit (http_status 0: none arrived).  True when
 *		it is the circuit's alone (no answer, or 401/403), false when it
 *		shows the credentials work: the circuit closes, and the rate sees
 *		the answer.
 */
bool
circuit_observe(TimestampTz now, int64 operation_id, long http_status)
{
	bool		probe = circuit == CIRCUIT_PROBING && operation_id == probe_operation;

	if (http_status == 0)
	{
		if (probe)
		{
			circuit = CIRCUIT_OPEN;
			next_probe_at = TimestampTzPlusMilliseconds(now, tenant_airbyte_circuit_probe_interval_s * 1000L);
			budget_publish();
		}
		return true;
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
			budget_publish();
			return true;
		}
		if (refused_streak++ == 0)
			streak_first_operation = operation_id;
		else if (operation_id != streak_first_operation)
			streak_two_operations = true;
		if (refused_streak >= tenant_airbyte_circuit_failures &&
			(streak_two_operations || tenant_airbyte_circuit_failures == 1))
			open_circuit(now);
		budget_publish();
		return true;
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
	return false;
}

/* closed, open or probing */
CircuitState
circuit_state(void)
{
	return circuit;
}

/* Whether the open circuit's next probe is due. */
bool
circuit_probe_due(TimestampTz now)
{
	return now >= next_probe_at;
}

/* 401 and 403 answers since the worker started. */
uint64
circuit_answers_refused(void)
{
	return count_refused;
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

bool
budget_circuit_open(void)
{
	return circuit != CIRCUIT_CLOSED;
}

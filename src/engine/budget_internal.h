/*-------------------------------------------------------------------------
 *
 * budget_internal.h
 *	  What the three files of the request budget tell each other: the
 *	  rate (rate_limit.c: token bucket and AIMD), the circuit (circuit.c:
 *	  401/403 for everything) and budget.c, which combines them for the
 *	  worker and publishes their state for worker_status.  Internal to
 *	  src/engine/; the worker includes budget.h only.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_BUDGET_INTERNAL_H
#define TENANT_AIRBYTE_BUDGET_INTERNAL_H

#include "budget.h"

/*
 * The window holds this many seconds' worth of requests at the rate: room
 * for Airbyte's latency, and no request waits longer for its token.
 */
#define WINDOW_SECONDS 2.0

typedef enum CircuitState
{
	CIRCUIT_CLOSED = 0,
	CIRCUIT_OPEN,
	CIRCUIT_PROBING
} CircuitState;

/* budget.c: copy the state worker_status shows into shared memory */
extern void budget_publish(void);

/* rate_limit.c */
extern void rate_refresh(TimestampTz now);
extern BudgetVerdict rate_admit(TimestampTz now, long *wait_ms);
extern void rate_observe(TimestampTz now, int64 operation_id, long http_status,
						 long retry_after_ms);
extern bool rate_resend(TimestampTz now, int64 operation_id);
extern double rate_allowed(void);
extern uint64 rate_generation(void);
extern uint64 rate_answers_429(void);

/* circuit.c */
extern bool circuit_admit(TimestampTz now, int64 operation_id, BudgetVerdict *verdict);
extern bool circuit_observe(TimestampTz now, int64 operation_id, long http_status);
extern void circuit_probe_lost(TimestampTz now);
extern CircuitState circuit_state(void);
extern bool circuit_probe_due(TimestampTz now);
extern uint64 circuit_answers_refused(void);

#endif							/* TENANT_AIRBYTE_BUDGET_INTERNAL_H */

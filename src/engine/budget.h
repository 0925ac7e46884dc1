/*-------------------------------------------------------------------------
 *
 * budget.h
 *	  One request budget for all of the worker's Airbyte requests: a token
 *	  bucket at tenant_airbyte.max_requests_per_second, an allowed rate
 *	  that falls and recovers (AIMD) when Airbyte answers 429 without
 *	  Retry-After, a circuit that stops sending while every request is
 *	  refused with 401/403, and the pause switch.  See budget.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_BUDGET_H
#define TENANT_AIRBYTE_BUDGET_H

#include "datatype/timestamp.h"

/* What budget_admit() says about a request that is ready to go. */
typedef enum BudgetVerdict
{
	BUDGET_SEND,				/* send it now */
	BUDGET_WAIT,				/* a token is reserved for it in *wait_ms */
	BUDGET_HOLD					/* the circuit is open: give it back */
} BudgetVerdict;

/* What budget_answer() makes of a failed answer (steps.c). */
typedef enum BudgetAnswer
{
	BUDGET_ANSWER_USUAL,		/* the engine's usual policy applies */
	BUDGET_ANSWER_RESEND,		/* re-send in place, paced by the budget,
								 * the attempt not used (a 429 that the
								 * whole engine is getting) */
	BUDGET_ANSWER_VERDICT,		/* a 401/403 with the circuit closed: wait
								 * a moment for the circuit's verdict */
	BUDGET_ANSWER_CIRCUIT		/* a 401/403 with the circuit open: give
								 * the attempt back until a probe succeeds */
} BudgetAnswer;

/* The settings (defined from _PG_init). */
extern int	tenant_airbyte_max_requests_per_second;
extern int	tenant_airbyte_circuit_failures;
extern int	tenant_airbyte_circuit_probe_interval_s;
extern int	tenant_airbyte_backfill_share;

extern void budget_define_settings(void);
extern void budget_register(void);

/* the worker: before a request starts, and when its answer arrives */
extern BudgetVerdict budget_admit(int64 operation_id, bool reserved, long *wait_ms);
extern void budget_observe(int64 operation_id, long http_status, long retry_after_ms);
extern BudgetAnswer budget_answer(int64 operation_id, long http_status,
								  long retry_after_ms);

/* the worker: how many operations it may hold, and when to look again */
extern int	budget_window(int max_concurrency);
extern int	budget_backfill_window(int window);
extern int	budget_current_window(void);
extern long budget_next_event_ms(void);
extern long budget_circuit_wait_ms(void);
extern bool budget_circuit_open(void);
extern uint64 budget_generation(void);
extern void budget_set_paused(bool paused);
extern bool budget_paused(void);

/* Operation.budget_hold: why a request was not sent (steps.c, worker.c). */
#define BUDGET_HELD_CIRCUIT 1	/* the circuit was open when it was ready */
#define BUDGET_HELD_VERDICT 2	/* a 401/403 waiting for the circuit's verdict */

/* How long a 401/403 waits for the circuit's verdict before it counts. */
#define BUDGET_VERDICT_MS 2000

#endif							/* TENANT_AIRBYTE_BUDGET_H */

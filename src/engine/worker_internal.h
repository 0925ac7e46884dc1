/*-------------------------------------------------------------------------
 *
 * worker_internal.h
 *	  What the background worker's own files share: worker.c (start-up,
 *	  the loop, its waits and wake-ups), worker_cycle.c (a cycle's two
 *	  transactions: record, take up, claim), worker_step.c (one step of
 *	  one operation in a subtransaction) and worker_slots.c (the
 *	  requests the worker holds: in flight, delayed, ready to step,
 *	  claimed ahead and waiting for a slot, and the secrets held for them).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WORKER_INTERNAL_H
#define TENANT_AIRBYTE_WORKER_INTERNAL_H

#include "http_multi.h"
#include "operation.h"
#include "utils/timestamp.h"

/* How often to look for the extension while it is not installed. */
#define EXTENSION_NAP_MS 5000
/* Longest sleep: retention and lease checks happen at least this often. */
#define MAX_NAP_MS 60000

/* A finished request waiting for the next cycle to look at it. */
typedef struct Completion
{
	Operation  *job;
	CURLcode	result;
} Completion;

/* worker_slots.c: the requests the worker holds */
extern HttpWindow *worker_window;
extern MemoryContext worker_jobs_context;
extern void worker_slots_init(void);
extern void worker_add_ready(Operation *job, CURLcode result);
extern bool worker_have_ready(void);
extern bool worker_have_delayed(void);
extern List *worker_take_ready(void);
extern TimestampTz worker_start_delayed(void);
extern int	worker_jobs_holding_slots(void);
extern int	worker_claim_ahead(int window);
extern int	worker_claim_room(int window);
extern void worker_add_standby(Operation *job);
extern bool worker_start_standby(void);
extern void worker_abandon_all(void);
extern void worker_forget_job(Operation *job);
extern void worker_delay_job(Operation *job, bool reserved);
extern void worker_start_request(Operation *job, bool reserved);
extern void worker_hold_secret(int64 operation_id, const char *secret);
extern const char *worker_held_secret(int64 operation_id);
extern void worker_drop_secret(int64 operation_id);

/* worker_cycle.c: one cycle */
extern bool worker_leases_released_at_start;
extern TimestampTz worker_next_retention_at;
extern bool worker_run_cycle(List *completions, bool claim, TimestampTz *next_due,
							 bool *more_due);

/* worker_step.c: one step of one operation, in a subtransaction */
extern StepResult worker_run_step(Operation *job, bool first, CURLcode result,
								  bool outcome_later);

#endif							/* TENANT_AIRBYTE_WORKER_INTERNAL_H */

/*-------------------------------------------------------------------------
 *
 * opqueue.h
 *	  The operations table as the worker's queue (opqueue.c) and the step
 *	  runner (steps.c); internal to the engine.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_OPQUEUE_H
#define TENANT_AIRBYTE_OPQUEUE_H

#include <curl/curl.h>

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "operation.h"

/* An operation whose final state was committed: answer its waiters. */
typedef struct OpFinished
{
	int64		id;
	const char *status;
	char	   *outcome;
	bool		final;			/* false: an early answer, the operation goes on */
} OpFinished;

/* opqueue.c: each runs inside a transaction with SPI connected */
extern int64 ops_insert(const char *kind, const char *tenant_id, const char *subject,
						const char *params, int64 delivery_id);
extern int	ops_take_up_deliveries(int limit, const char *(*kind_of) (const char *event),
								   bool *held_back);
extern int	ops_release_leases(bool all, List **dead);
extern List *ops_claim(int limit, MemoryContext parent);
extern const char *ops_record(Operation *op, StepResult result);
extern bool ops_enter_step(Operation *op);
extern void ops_next_due(TimestampTz *retry_at, TimestampTz *lease_at);

/* steps.c */
extern StepResult engine_start(Operation *op);
extern StepResult engine_answer(Operation *op, CURLcode result);
extern long engine_retry_delay_ms(Operation *op, long retry_after_ms);
extern void engine_release(Operation *op);
extern const char *engine_kind_for_event(const char *event);
extern const char *engine_event_of_kind(const char *kind);

#endif							/* TENANT_AIRBYTE_OPQUEUE_H */

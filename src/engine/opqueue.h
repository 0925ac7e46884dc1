/*-------------------------------------------------------------------------
 *
 * opqueue.h
 *	  The operations table as the worker's queue (opqueue.c), the records
 *	  of steps and outcomes (op_record.c) and the step runner (steps.c);
 *	  internal to the engine.
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

/*
 * The mirror: a delivery served by an operation shows the operation's
 * status, attempts, lease and errors (failed shows as dead, as a delivery
 * Airbyte refused always did; "ignored" where the kind did nothing).  The
 * data-modifying CTE before it is called op and returns the operation
 * columns named here and nothing_done.
 */
#define OPS_MIRROR_TO_INBOX \
	" UPDATE tenant_airbyte.webhook_inbox AS i" \
	"    SET status = CASE WHEN op.status OPERATOR(pg_catalog.=) 'failed' THEN 'dead'" \
	"                      WHEN op.status OPERATOR(pg_catalog.=) 'done' AND op.nothing_done THEN 'ignored'" \
	"                      ELSE op.status END," \
	"        attempts = op.attempts, next_attempt_at = op.next_attempt_at," \
	"        lease_id = op.lease_id, lease_expires_at = op.lease_expires_at," \
	"        last_http_status = op.last_http_status, last_error = op.last_error," \
	"        result = CASE WHEN op.status OPERATOR(pg_catalog.=) 'done' THEN op.outcome ELSE i.result END," \
	"        finished_at = op.finished_at" \
	"   FROM op" \
	"  WHERE i.delivery_id OPERATOR(pg_catalog.=) op.delivery_id AND i.operation_id OPERATOR(pg_catalog.=) op.id"

/*
 * An outcome a step decided whose UPDATE is written later, together with
 * the others of its cycle (ops_record_later, ops_record_batch).
 */
typedef struct OutcomeToRecord
{
	Operation  *op;
	StepResult	result;
} OutcomeToRecord;

/* opqueue.c: each runs inside a transaction with SPI connected */
extern int64 ops_insert(const char *kind, const char *tenant_id, const char *subject,
						const char *params, int64 delivery_id);
extern int	ops_take_up_deliveries(int limit, const char *(*kind_of) (const char *event),
								   bool *held_back);
extern int	ops_release_leases(bool all, List **dead);
extern List *ops_claim(int limit, MemoryContext parent);
extern void ops_next_due(TimestampTz *retry_at, TimestampTz *lease_at);
extern bool ops_claim_may_be_lost(Operation *op);

/* op_record.c: likewise */
extern const char *ops_record(Operation *op, StepResult result);
extern void ops_record_later(Operation *op, StepResult result);
extern void ops_record_batch(void);
extern bool ops_enter_step(Operation *op);
extern void ops_enter_step_later(Operation *op);
extern void ops_write_steps(void);
extern void ops_forget_later(void);

/* steps.c */
extern StepResult engine_start(Operation *op);
extern StepResult engine_answer(Operation *op, CURLcode result);
extern long engine_retry_delay_ms(Operation *op, long retry_after_ms);
extern void engine_release(Operation *op);
extern const char *engine_kind_for_event(const char *event);
extern const char *engine_event_of_kind(const char *kind);

#endif							/* TENANT_AIRBYTE_OPQUEUE_H */

/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The C API for enqueueing an operation and waiting for its outcome,
 *	  used by the SQL functions (provision_tenant(), create_source(), ...).
 *
 * A caller is inside its own transaction, so it cannot be the one that
 * commits the operation row: a rollback would erase the record of a
 * request Airbyte may have carried out.  The request travels instead
 * through a slot in shared memory (handoff.c); the background worker
 * inserts and commits the row, runs the operation, and sets the caller's
 * latch when its outcome is recorded.  Like nextval(), the operation
 * does not depend on the caller's transaction: a rollback afterwards
 * leaves it done, and calling again finds its effect (already_exists).
 *
 * engine_run() waits for the outcome, answering query cancel and
 * statement_timeout; an interrupted wait leaves the operation running to
 * its end, its outcome visible afterwards in tenant_airbyte.operations.
 * When no worker serves this database it fails at once with a hint.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_ENGINE_H
#define TENANT_AIRBYTE_ENGINE_H

#include "pg_compat.h"
#include "utils/jsonb.h"

/*
 * engine_run
 *		Enqueues operation KIND for TENANT_ID with PARAMS (a JSON object,
 *		never secrets; may be NULL) and SUBJECT (what, within the tenant
 *		and kind, it is about, e.g. a source name; "" for the tenant
 *		itself), and waits.  SECRET, when not NULL, reaches the worker in
 *		memory only.  Returns the outcome (jsonb) of a done operation;
 *		raises the recorded error of a failed or dead one.  While another
 *		unfinished operation of the same tenant, kind and subject exists,
 *		the new one waits for it to finish before it is recorded.
 */
extern Jsonb *engine_run(const char *kind, const char *tenant_id, Jsonb *params,
						 const char *subject, const char *secret);

/* engine_run() that also returns a failed operation's error outcome. */
extern Jsonb *engine_run_status(const char *kind, const char *tenant_id, Jsonb *params,
								const char *subject, const char *secret,
								const char **status, int64 *operation_id);

/* Raises the error a failed or dead operation recorded (its outcome). */
pg_noreturn extern void engine_raise_outcome(const char *status, Jsonb *outcome,
											 int64 operation_id);

/* Raises "no worker serves this database" unless one does. */
extern void engine_require_worker(void);

#endif							/* TENANT_AIRBYTE_ENGINE_H */

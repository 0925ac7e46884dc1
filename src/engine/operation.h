/*-------------------------------------------------------------------------
 *
 * operation.h
 *	  The kind interface: what an operation kind gives the engine, and the
 *	  calls a kind's steps make.  This is the extension point for every
 *	  Airbyte effect (workspaces, sources, OAuth, pipelines, ...).
 *
 * AN OPERATION is a row of tenant_airbyte.operations: one intended effect
 * on Airbyte for one tenant, committed before its first request is sent.
 * The engine (src/engine/) claims it under a lease, runs its steps, sends
 * their requests outside any transaction, retries, records the outcome
 * and wakes whoever waits for it.  It never names a kind.
 *
 * A KIND (one file in src/operations/, one OPERATION_KIND line in
 * src/operations/kindlist.h) is a small table of steps:
 *
 *	  static const OperationStep provision_steps[] = {
 *		  {"decide",	NULL,			decide},
 *		  {"create",	build_create,	created, STEP_CREATES},
 *		  ...
 *	  };
 *
 * Each step is a name (recorded in operations.step), the request it
 * builds (NULL: the step only works on the database), and what its
 * answer leads to.  The engine runs a step like this:
 *
 *	  1. build(op) returns the request (in op->context).  The engine
 *		 commits operations.step = the step's name before the request is
 *		 sent, so after any crash the row says what may have been sent.
 *	  2. The request is performed outside any transaction.
 *	  3. answer(op, resp) runs in a (sub)transaction with SPI connected and
 *		 returns one of the StepResults below, through the helpers:
 *			op_send(op)				send this step's request again (the
 *									kind changed its state: next page)
 *			op_goto(op, "name")		enter another step now
 *			op_done(op, json)		finished; json is the outcome
 *			op_failed(op, resp, what)	classify an unsuccessful answer:
 *									transient -> re-sent in place (not for
 *									STEP_CREATES) or the operation retried
 *									after a backoff honouring Retry-After;
 *									otherwise failed with Airbyte's
 *									title/detail
 *			op_fail(op, sqlstate, message, detail, hint)
 *			op_retry(op, message)	try the whole operation again later
 *			op_wait(op, ms, why)	come back in ms, without counting an
 *									attempt (waiting for something shared)
 *		 A step without a request gets answer(op, NULL) at once.
 *
 * Every (re)claim starts at steps[0], with op->last_step set to what the
 * row recorded: a kind whose last_step is a STEP_CREATES step must assume
 * the create may have happened and reconcile (find the object by
 * op->intended_name) before creating again.
 *
 * Steps run in the background worker, connected as the unprivileged
 * tenant_airbyte_worker role with search_path = pg_catalog, pg_temp:
 * every SQL statement a step runs must be schema-qualified, operators
 * too (OPERATOR(pg_catalog.=)).  Use op_spi() for SQL (a plan kept for
 * the worker's life; sql must be a string constant).
 *
 * SECRETS a request needs (a source's credentials) arrive in op->secret,
 * in memory only, never in the row, WAL or logs.  op->secret is NULL
 * when the worker restarted since the operation was requested: a kind
 * that needs it fails the operation ("call again") unless its last_step
 * shows the request may already have been sent (then it reconciles).
 *
 * Enqueueing and waiting (for SQL functions): see engine.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_OPERATION_H
#define TENANT_AIRBYTE_OPERATION_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

#include "airbyte_api.h"

/* What a step's answer leads to. */
typedef enum StepResult
{
	STEP_SEND,					/* perform the current step's request */
	STEP_NEXT,					/* enter op->next_step now */
	STEP_DONE,					/* finished: op->outcome */
	STEP_RETRY,					/* try the operation again after a delay */
	STEP_FAIL					/* permanent failure: op->error_* */
} StepResult;

typedef struct Operation Operation;

/* Step flags */
#define STEP_CREATES	0x01	/* the request creates an object: never
								 * re-sent blindly once it may have been
								 * carried out; reconcile first */

typedef struct OperationStep
{
	const char *name;
	HttpRequest *(*build) (Operation *op);
	StepResult	(*answer) (Operation *op, AirbyteResponse *resp);
	int			flags;
} OperationStep;

typedef struct OperationKind
{
	const char *name;			/* operations.kind */
	const OperationStep *steps; /* steps[0] runs first, at every claim */
	int			nsteps;

	/*
	 * Optional: called by the worker in a cycle's first transaction, SPI
	 * connected, at most once a second, so that a kind can record
	 * operations of its own accord (a periodic run).  NULL for most kinds.
	 */
	void		(*tick) (void);
} OperationKind;

/*
 * Operation
 *		One claimed operation, from its claim to the transaction that
 *		records its outcome, across transactions and requests; it lives in
 *		its own memory context (op->context), where a kind keeps its state.
 */
struct Operation
{
	MemoryContext context;

	/* the row */
	int64		id;
	char		lease_id[37];
	const OperationKind *kind;	/* NULL: not registered */
	char	   *kind_name;
	char	   *tenant_id;
	Jsonb	   *params;			/* never secrets */
	char	   *intended_name;	/* NULL until a kind decides it */
	bool		intended_name_unsaved;	/* decided in this step: written with
										 * the step or outcome it leads to */
	char	   *intended_name_before;	/* what it was before this step */
	char	   *last_step;		/* operations.step as claimed */
	int			attempts;		/* including this one */
	int64		delivery_id;	/* 0: none */
	TimestampTz previous_attempt_over;	/* any earlier attempt had ended by
										 * then (attempt_ended_at) */
	const char *secret;			/* in memory only; NULL when lost */

	/* the kind's own state */
	void	   *state;

	/* engine bookkeeping (kinds read, never write) */
	int			step;			/* index into kind->steps */
	int			next_step;
	int			tries;			/* of the current request, from 1 */
	HttpRequest *request;
	long		start_after_ms;
	uint64		claimed_after_lapses;	/* opqueue.c: leases lapsed before the
										 * claim */

	/* the outcome */
	long		http_status;
	char	   *outcome;		/* JSON text, for STEP_DONE */
	char	   *error;			/* one line, never a secret */
	int			error_sqlstate;
	char	   *error_detail;
	char	   *error_hint;
	long		retry_delay_ms;
	bool		attempt_unused; /* STEP_RETRY: Airbyte never heard of it */
	bool		quiet;			/* STEP_RETRY from op_wait(): not a failure */
	bool		nothing_done;	/* STEP_DONE with nothing to do: a delivery
								 * it serves shows "ignored" */
	char	   *recorded_status;	/* what the engine wrote */
	char	   *error_early_reply;	/* for a waiting caller before the end */
	char	   *recorded_outcome;

	/* the request budget (src/engine/budget.c): why a request was held */
	int			budget_hold;	/* 0, or BUDGET_HELD_* (budget.h) */
};

/* The registered kind called name, or NULL (src/operations/kinds.c). */
extern const OperationKind *operation_kind_by_name(const char *name);
/* The i-th registered kind (from 0), or NULL past the last. */
extern const OperationKind *operation_kind_at(int i);
/* Calls every registered kind's tick (src/operations/kinds.c). */
extern void operation_kinds_tick(void);

/* --- helpers for a kind's steps --- */
extern StepResult op_send(Operation *op);
extern StepResult op_goto(Operation *op, const char *step_name);
extern StepResult op_done(Operation *op, const char *fmt,...) pg_attribute_printf(2, 3);
extern StepResult op_failed(Operation *op, AirbyteResponse *resp, const char *action);
extern StepResult op_fail(Operation *op, int sqlstate, const char *message,
						  const char *detail, const char *hint);
extern StepResult op_retry(Operation *op, const char *message);
extern StepResult op_wait(Operation *op, long delay_ms, const char *why);
extern StepResult op_nothing_to_do(Operation *op, const char *fmt,...) pg_attribute_printf(2, 3);
extern void op_set_intended_name(Operation *op, const char *name);
extern bool op_name_decided_unsaved(const char *tenant_id, const char *name);
extern const char *op_param(Operation *op, const char *key);
extern int	op_spi(const char *sql, int nargs, Oid *types, Datum *values,
				   const char *nulls, long count);
extern char *op_json_string(const char *s);

#endif							/* TENANT_AIRBYTE_OPERATION_H */

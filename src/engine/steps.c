/*-------------------------------------------------------------------------
 *
 * steps.c
 *	  Runs an operation's steps: enters a step (building its request or
 *	  acting at once), hands a finished request's answer to the step, and
 *	  turns what the step says into the next thing to do.  Also the
 *	  helpers a kind's steps call (operation.h).  Knows no kind by name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "airbyte_api.h"
#include "budget.h"
#include "opqueue.h"
#include "operation.h"
#include "retry.h"
#include "tenant_airbyte.h"
#include "worker.h"

/* How often a request that is safe to repeat is sent within one attempt. */
#define REQUEST_TRIES 5
/* Steps entered without a request in a row, before we call it a loop. */
#define MAX_HOPS 64

static StepResult enter(Operation *op);
static StepResult follow(Operation *op, StepResult result);
static StepResult budget_held(Operation *op);
static StepResult circuit_wait(Operation *op);
static char *error_outcome(int sqlstate, const char *message, const char *detail, const char *hint);

/*
 * engine_kind_for_event
 *		The kind of operation a webhook event asks for; NULL for none.
 */
const char *
engine_kind_for_event(const char *event)
{
	if (event == NULL)
		return NULL;
	if (strcmp(event, "tenant.created") == 0)
		return "provision";
	if (strcmp(event, "tenant.updated") == 0)
		return "rename";
	if (strcmp(event, "tenant.deleted") == 0)
		return "deprovision";
	return NULL;
}

/* The webhook event a kind serves, for log lines about deliveries. */
const char *
engine_event_of_kind(const char *kind)
{
	if (strcmp(kind, "provision") == 0)
		return "tenant.created";
	if (strcmp(kind, "rename") == 0)
		return "tenant.updated";
	if (strcmp(kind, "deprovision") == 0)
		return "tenant.deleted";
	return kind;
}

/*
 * engine_start
 *		A freshly claimed operation begins at its kind's first step.  Runs
 *		in op->context, so that what steps keep lives as long as op.
 */
StepResult
engine_start(Operation *op)
{
	MemoryContext old = MemoryContextSwitchTo(op->context);
	StepResult	result;

	if (op->kind == NULL)
		result = op_fail(op, ERRCODE_FEATURE_NOT_SUPPORTED,
						 psprintf("unknown operation kind \"%s\"", op->kind_name),
						 NULL, "This server's tenant_airbyte library does not know the kind; is it an older version?");
	else
	{
		op->step = 0;
		result = enter(op);
	}
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * engine_answer
 *		Hands the answer to the operation's request to its step.
 */
StepResult
engine_answer(Operation *op, CURLcode code)
{
	MemoryContext old = MemoryContextSwitchTo(op->context);
	const OperationStep *step = &op->kind->steps[op->step];
	AirbyteResponse resp;
	StepResult	result;

	/* request budget (budget.c): a request the budget kept back */
	if (op->budget_hold != 0)
	{
		result = follow(op, budget_held(op));
		MemoryContextSwitchTo(old);
		return result;
	}

	http_request_complete(op->request, code);
	airbyte_classify(op->request, &resp);
	op->http_status = resp.http_status;
	budget_observe(op->id, resp.http_status, resp.retry_after_ms);	/* budget.c */
	result = follow(op, step->answer(op, &resp));
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * budget_held
 *		A request the budget did not send (budget.c): while the circuit is
 *		open the operation waits for the next probe, its attempt given
 *		back; a 401/403 the circuit did not confirm fails the operation as
 *		any refusal does (op_failed() prepared the error); a request held
 *		by a circuit that has closed since is sent.
 */
static StepResult
budget_held(Operation *op)
{
	int			held = op->budget_hold;

	op->budget_hold = 0;
	if (budget_circuit_open())
		return circuit_wait(op);
	if (held == BUDGET_HELD_VERDICT)
		return STEP_FAIL;
	return op_send(op);
}

/*
 * circuit_wait
 *		Back to pending until just after the next probe, the attempt given
 *		back; a caller waiting for the operation hears why now.
 */
static StepResult
circuit_wait(Operation *op)
{
	op->error = pstrdup("Airbyte refuses the credentials (HTTP 401/403) for every request: the circuit is open, waiting for a probe to succeed");
	op->error_early_reply =
		error_outcome(ERRCODE_AIRBYTE_AUTH_FAILED,
					  "Airbyte refuses the credentials for every request (HTTP 401/403): the worker's circuit is open",
					  "The operation waits with its attempts kept, and completes once a probe (one every tenant_airbyte.circuit_probe_interval_s) succeeds.",
					  "Check tenant_airbyte.api_token, or tenant_airbyte.client_id and tenant_airbyte.client_secret.");
	op->outcome = NULL;
	op->retry_delay_ms = budget_circuit_wait_ms();
	op->attempt_unused = true;
	op->quiet = true;
	return STEP_RETRY;
}

/* Builds the current step's request afresh. */
static StepResult
build(Operation *op)
{
	const OperationStep *step = &op->kind->steps[op->step];

	if (op->request != NULL)
		http_request_free(op->request);
	op->request = step->build(op);
	return STEP_SEND;
}

/*
 * enter
 *		Enters op->step: a step with a request builds it; one without acts
 *		at once, and may lead on to further steps.
 */
static StepResult
enter(Operation *op)
{
	int			hops;

	for (hops = 0; hops < MAX_HOPS; hops++)
	{
		const OperationStep *step = &op->kind->steps[op->step];
		StepResult	result;

		op->tries = 1;
		op->start_after_ms = 0;
		if (step->build != NULL)
			return build(op);
		result = step->answer(op, NULL);
		if (result != STEP_NEXT)
			return follow(op, result);
		op->step = op->next_step;
	}
	elog(ERROR, "operation " INT64_FORMAT " (%s) went through %d steps without a request",
		 op->id, op->kind->name, MAX_HOPS);
	return STEP_FAIL;			/* keep compiler quiet */
}

static StepResult
follow(Operation *op, StepResult result)
{
	switch (result)
	{
		case STEP_NEXT:
			op->step = op->next_step;
			return enter(op);
		case STEP_SEND:
			return build(op);
		default:
			return result;
	}
}

/* ------------------------------------------------------------------------
 * helpers for kinds (operation.h)
 * ------------------------------------------------------------------------ */

StepResult
op_send(Operation *op)
{
	op->tries = 1;
	op->start_after_ms = 0;
	return STEP_SEND;
}

StepResult
op_goto(Operation *op, const char *step_name)
{
	int			i;

	for (i = 0; i < op->kind->nsteps; i++)
	{
		if (strcmp(op->kind->steps[i].name, step_name) == 0)
		{
			op->next_step = i;
			return STEP_NEXT;
		}
	}
	elog(ERROR, "operation kind %s has no step \"%s\"", op->kind->name, step_name);
	return STEP_FAIL;			/* keep compiler quiet */
}

/* printf into op->context */
static char *op_vprintf(Operation *op, const char *fmt, va_list args_in) pg_attribute_printf(2, 0);

static char *
op_vprintf(Operation *op, const char *fmt, va_list args_in)
{
	StringInfoData buf;
	MemoryContext old = MemoryContextSwitchTo(op->context);

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_copy(args, args_in);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	MemoryContextSwitchTo(old);
	return buf.data;
}

StepResult
op_done(Operation *op, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	op->outcome = op_vprintf(op, fmt, args);
	va_end(args);
	op->error = NULL;
	return STEP_DONE;
}

StepResult
op_nothing_to_do(Operation *op, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	op->outcome = op_vprintf(op, fmt, args);
	va_end(args);
	op->error = NULL;
	op->nothing_done = true;
	return STEP_DONE;
}

/* The JSON error outcome a waiting SQL function raises. */
static char *
error_outcome(int sqlstate, const char *message, const char *detail, const char *hint)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"sqlstate\": %s, \"message\": %s",
					 op_json_string(unpack_sql_state(sqlstate)), op_json_string(message));
	if (detail)
		appendStringInfo(&buf, ", \"detail\": %s", op_json_string(detail));
	if (hint)
		appendStringInfo(&buf, ", \"hint\": %s", op_json_string(hint));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

StepResult
op_fail(Operation *op, int sqlstate, const char *message, const char *detail,
		const char *hint)
{
	MemoryContext old = MemoryContextSwitchTo(op->context);

	op->error = pstrdup(message);
	op->outcome = error_outcome(sqlstate, message, detail, hint);
	MemoryContextSwitchTo(old);
	return STEP_FAIL;
}

StepResult
op_retry(Operation *op, const char *message)
{
	MemoryContext old = MemoryContextSwitchTo(op->context);

	op->error = pstrdup(message);
	op->outcome = error_outcome(ERRCODE_AIRBYTE_UNAVAILABLE, message, NULL,
								"Airbyte did not answer usefully; the operation was retried until tenant_airbyte.max_attempts.");
	op->retry_delay_ms = engine_retry_delay_ms(op, -1);
	MemoryContextSwitchTo(old);
	return STEP_RETRY;
}

/* Back to pending for delay_ms, the attempt given back. */
StepResult
op_wait(Operation *op, long delay_ms, const char *why)
{
	MemoryContext old = MemoryContextSwitchTo(op->context);

	op->error = pstrdup(why);
	op->outcome = NULL;
	op->retry_delay_ms = delay_ms;
	op->attempt_unused = true;
	op->quiet = true;
	MemoryContextSwitchTo(old);
	return STEP_RETRY;
}

/*
 * op_failed
 *		An unsuccessful answer.  A transient failure of a request that is
 *		safe to repeat is re-sent in place after a backoff (honouring
 *		Retry-After), up to REQUEST_TRIES times: a reconcile that lists ten
 *		pages should not start over because the seventh got a 429.  Then,
 *		and at once for a create, the operation is retried after a backoff;
 *		a refused token too (an operator can fix it).  Anything else fails
 *		for good, with Airbyte's title and detail.
 */
StepResult
op_failed(Operation *op, AirbyteResponse *resp, const char *action)
{
	const OperationStep *step = &op->kind->steps[op->step];
	MemoryContext old = MemoryContextSwitchTo(op->context);
	char	   *message = psprintf("%s: %s", action, resp->message ? resp->message : "failed");
	AirbyteError err;
	StepResult	result;

	op->http_status = resp->http_status;
	op->error = message;

	/*
	 * request budget (budget.c): a 429 the whole engine is getting is sent
	 * again, paced by the budget, without using the attempt or a try; a
	 * 429 says nothing was done, so this holds for a create too
	 */
	if (budget_answer(op->id, resp->http_status, resp->retry_after_ms) == BUDGET_ANSWER_RESEND)
	{
		op->start_after_ms = (long) retry_delay_ms(1, RETRY_BASE_MS, RETRY_CAP_MS,
												   pg_prng_double(&pg_global_prng_state), -1);
		MemoryContextSwitchTo(old);
		return STEP_SEND;
	}

	if (resp->outcome == AIRBYTE_TRANSIENT && !(step->flags & STEP_CREATES) &&
		op->tries < REQUEST_TRIES)
	{
		long		delay = (long) retry_delay_ms(op->tries, RETRY_BASE_MS, RETRY_CAP_MS,
												  pg_prng_double(&pg_global_prng_state),
												  resp->retry_after_ms);

		ereport(LOG,
				(errmsg("tenant_airbyte: operation " INT64_FORMAT " (%s, tenant \"%s\") request %d of attempt %d failed, sending it again in %ld ms: %s",
						op->id, op->kind->name, op->tenant_id, op->tries,
						op->attempts, delay, message)));
		op->tries++;
		op->start_after_ms = delay;
		MemoryContextSwitchTo(old);
		return STEP_SEND;
	}

	/* a 401 with a token from client credentials may heal with a new one */
	if (resp->outcome == AIRBYTE_UNAUTHORIZED && resp->http_status == 401 &&
		airbyte_token_is_refreshable() && op->tries == 1)
	{
		airbyte_forget_token();
		op->tries++;
		op->start_after_ms = 0;
		MemoryContextSwitchTo(old);
		return STEP_SEND;
	}

	/* what the waiting caller sees, should this be the end */
	resp->attempts = op->attempts;
	airbyte_describe_error(resp, action, &err);
	op->outcome = error_outcome(err.sqlstate, err.message, err.detail, err.hint);

	/*
	 * request budget (budget.c): a refused request while the circuit is
	 * open waits for the probe; with the circuit closed it waits a moment
	 * for the circuit's verdict before it fails (budget_held())
	 */
	if (resp->outcome == AIRBYTE_UNAUTHORIZED)
	{
		BudgetAnswer verdict = budget_answer(op->id, resp->http_status, -1);

		if (verdict == BUDGET_ANSWER_CIRCUIT)
		{
			result = circuit_wait(op);
			MemoryContextSwitchTo(old);
			return result;
		}
		if (verdict == BUDGET_ANSWER_VERDICT)
		{
			op->budget_hold = BUDGET_HELD_VERDICT;
			op->start_after_ms = BUDGET_VERDICT_MS;
			MemoryContextSwitchTo(old);
			return STEP_SEND;
		}
	}

	if (resp->outcome == AIRBYTE_TRANSIENT)
	{
		op->retry_delay_ms = engine_retry_delay_ms(op, (long) resp->retry_after_ms);

		/*
		 * No connection was ever made (refused, no route, no name): the
		 * attempt did nothing, so it is given back, and an outage of any
		 * length delays operations instead of killing them.
		 */
		op->attempt_unused = resp->http_status == 0 && !resp->may_have_taken_effect;
		result = STEP_RETRY;
	}
	else
		result = STEP_FAIL;
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * op_set_intended_name
 *		Decides the name the operation will create.  It is written by the
 *		same UPDATE that records the step it leads to, or the outcome
 *		(opqueue.c), in the transaction of this step, so before any create
 *		is sent, without a statement of its own.
 */
void
op_set_intended_name(Operation *op, const char *name)
{
	if (!op->intended_name_unsaved)
		op->intended_name_before = op->intended_name;
	op->intended_name = MemoryContextStrdup(op->context, name);
	op->intended_name_unsaved = true;
}

/* A string parameter of the operation, or NULL. */
const char *
op_param(Operation *op, const char *key)
{
	return airbyte_string_field(op->params, key);
}

/*
 * op_spi
 *		A kept plan (spi_run) that leaves the caller's memory context
 *		current, so that what a step reads outlives SPI's context.  Always
 *		read-write, so a read sees what earlier steps of the same
 *		transaction wrote.
 */
int
op_spi(const char *sql, int nargs, Oid *types, Datum *values,
	   const char *nulls, long count)
{
	MemoryContext old = CurrentMemoryContext;
	int			rc = spi_run(sql, nargs, types, values, nulls, false, count);

	MemoryContextSwitchTo(old);
	return rc;
}

/* A JSON string literal for s, escaped by PostgreSQL's own escape_json. */
char *
op_json_string(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, s ? s : "");
	return buf.data;
}

/*
 * engine_retry_delay_ms
 *		Full-jitter exponential backoff for the attempt that just failed, or
 *		the server's Retry-After when it asks for longer (retry.c).
 */
long
engine_retry_delay_ms(Operation *op, long retry_after_ms)
{
	return (long) retry_delay_ms(op->attempts, RETRY_BASE_MS, RETRY_CAP_MS,
								 pg_prng_double(&pg_global_prng_state),
								 retry_after_ms);
}

/* Frees the operation's curl handle now rather than when its memory goes. */
void
engine_release(Operation *op)
{
	if (op->request != NULL)
		http_request_free(op->request);
	op->request = NULL;
}

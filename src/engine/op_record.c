/*-------------------------------------------------------------------------
 *
 * op_record.c
 *	  What the worker writes of an operation under its claim: the step
 *	  whose request is about to be sent, and the outcome of an attempt
 *	  (mirrored onto the delivery the operation serves).  The outcomes of
 *	  a cycle's finished requests are written by one statement, however
 *	  many, and so are the steps a transaction's operations enter: a
 *	  statement's fixed cost (its executor start, the table's constraints
 *	  and index predicates prepared again, the mirror's second UPDATE) was
 *	  a fifth of the worker's time at max_concurrency 128 when each outcome
 *	  had its own, and a step of its own cost as much again.  Every
 *	  statement is schema-qualified, operators too.
 *
 * What waits to be written is kept here, in the transaction's memory,
 * until the statement that writes it; a transaction must not commit
 * before (worker_cycle.c writes what is left before every commit, and
 * forgets it after an abort).  Until then the names those operations
 * decided are only here: op_name_decided_unsaved() is how a name decision
 * sees them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "opqueue.h"
#include "operation.h"
#include "tenant_airbyte.h"
#include "worker.h"

#define Q(op) " OPERATOR(pg_catalog." op ") "

/* In write_outcomes(): the attempts an outcome leaves counted. */
#define SPENT "(o.attempts OPERATOR(pg_catalog.-) a.unused)"

/*
 * Written later in this transaction, in TopTransactionContext:
 * OutcomeToRecord * (ops_record_later) and Operation * (ops_enter_step_later).
 */
static List *outcomes_later = NIL;
static List *steps_later = NIL;

/* The parameters of write_outcomes(): one array each, one element per outcome. */
enum
{
	OUT_ID,
	OUT_LEASE,
	OUT_RESULT,
	OUT_HTTP_STATUS,
	OUT_ERROR,
	OUT_OUTCOME,
	OUT_DELAY_MS,
	OUT_UNUSED,
	OUT_NOTHING_DONE,
	OUT_QUIET,
	OUT_INTENDED_NAME,
	OUT_ARRAYS
};

/*
 * intended_name_datum
 *		The name a step decided (op_set_intended_name), for the UPDATE that
 *		records the step or outcome it led to; NULL (keep the column) when
 *		the step decided none.
 */
static Datum
intended_name_datum(Operation *op, char *null)
{
	if (!op->intended_name_unsaved || op->intended_name == NULL)
	{
		*null = 'n';
		return (Datum) 0;
	}
	*null = ' ';
	return CStringGetTextDatum(op->intended_name);
}

/* The text of a step result, as ops_record() writes it. */
static const char *
result_name(StepResult result)
{
	switch (result)
	{
		case STEP_DONE:
			return "done";
		case STEP_FAIL:
			return "failed";
		case STEP_RETRY:
			return "retry";
		default:
			elog(ERROR, "cannot record step result %d", (int) result);
	}
	return NULL;				/* keep the compiler quiet */
}

/* A one-dimensional array of n elements of type, with nulls where isnull. */
static Datum
array_of(Datum *elems, bool *isnull, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1];
	int			lbs[1];

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, isnull, 1, dims, lbs,
											  type, typlen, typbyval, typalign));
}

/*
 * write_outcomes
 *		One UPDATE for the outcomes of every OutcomeToRecord in outcomes:
 *		done, failed, or (STEP_RETRY) pending again after the operation's
 *		retry_delay_ms, or dead when that was the last attempt.  Each is
 *		written only under its claim (id, lease, still in flight).  The
 *		step is left as it is: it moves only when a request is about to be
 *		sent (ops_enter_step), so an attempt that stops before sending
 *		anything cannot hide that an earlier one may have created
 *		something.  Sets recorded_status and recorded_outcome of each
 *		operation written; returns how many were.
 */
static uint64
write_outcomes(List *outcomes)
{
	int			n = list_length(outcomes);
	Datum	   *elems[OUT_ARRAYS];
	bool	   *isnull[OUT_ARRAYS];
	static const Oid elem_types[OUT_ARRAYS] = {INT8OID, TEXTOID, TEXTOID, INT4OID, TEXTOID,
	TEXTOID, INT8OID, INT4OID, BOOLOID, BOOLOID, TEXTOID};
	Datum		values[OUT_ARRAYS + 2];
	Oid			types[OUT_ARRAYS + 2];
	int			i;
	int			k;
	int			rc;
	uint64		row;
	ListCell   *lc;

	for (k = 0; k < OUT_ARRAYS; k++)
	{
		elems[k] = palloc0(n * sizeof(Datum));
		isnull[k] = palloc0(n * sizeof(bool));
	}
	i = 0;
	foreach(lc, outcomes)
	{
		OutcomeToRecord *r = (OutcomeToRecord *) lfirst(lc);
		Operation  *op = r->op;
		char		name_null;

		elems[OUT_ID][i] = Int64GetDatum(op->id);
		elems[OUT_LEASE][i] = CStringGetTextDatum(op->lease_id);
		elems[OUT_RESULT][i] = CStringGetTextDatum(result_name(r->result));
		elems[OUT_HTTP_STATUS][i] = Int32GetDatum((int32) op->http_status);
		isnull[OUT_HTTP_STATUS][i] = op->http_status == 0;
		if (op->error)
			elems[OUT_ERROR][i] = CStringGetTextDatum(op->error);
		isnull[OUT_ERROR][i] = op->error == NULL;
		if (op->outcome)
			elems[OUT_OUTCOME][i] = CStringGetTextDatum(op->outcome);
		isnull[OUT_OUTCOME][i] = op->outcome == NULL;
		elems[OUT_DELAY_MS][i] = Int64GetDatum(op->retry_delay_ms);
		/* an attempt that never reached Airbyte is given back */
		elems[OUT_UNUSED][i] = Int32GetDatum(r->result == STEP_RETRY && op->attempt_unused ? 1 : 0);
		elems[OUT_NOTHING_DONE][i] = BoolGetDatum(op->nothing_done);
		elems[OUT_QUIET][i] = BoolGetDatum(op->quiet);
		elems[OUT_INTENDED_NAME][i] = intended_name_datum(op, &name_null);
		isnull[OUT_INTENDED_NAME][i] = name_null == 'n';
		i++;
	}
	for (k = 0; k < OUT_ARRAYS; k++)
	{
		values[k] = array_of(elems[k], isnull[k], n, elem_types[k]);
		types[k] = get_array_type(elem_types[k]);
	}
	values[OUT_ARRAYS] = Int32GetDatum(tenant_airbyte_max_attempts);
	types[OUT_ARRAYS] = INT4OID;
	values[OUT_ARRAYS + 1] = CStringGetTextDatum("in_flight");	/* see IN_FLIGHT_PARAM */
	types[OUT_ARRAYS + 1] = TEXTOID;

	/* $12: max_attempts */
	rc = spi_run_generic("WITH op AS ("
				 " UPDATE tenant_airbyte.operations AS o"
				 "    SET status = CASE WHEN a.result" Q("<>") "'retry' THEN a.result"
				 "                      WHEN " SPENT "" Q(">=") "$12 THEN 'dead'"
				 "                      ELSE 'pending' END,"
				 "        attempts = " SPENT ","
				 "        attempt_ended_at = CASE WHEN a.quiet THEN o.attempt_ended_at ELSE pg_catalog.now() END,"
				 "        next_attempt_at = CASE WHEN a.result" Q("=") "'retry'"
				 "             THEN pg_catalog.now() OPERATOR(pg_catalog.+) (a.delay_ms OPERATOR(pg_catalog.*) interval '1 millisecond')"
				 "             ELSE o.next_attempt_at END,"
				 "        finished_at = CASE WHEN a.result" Q("=") "'retry' AND " SPENT "" Q("<") "$12"
				 "             THEN NULL ELSE pg_catalog.now() END,"
				 "        last_http_status = a.http_status,"
				 "        last_error = CASE WHEN a.result" Q("=") "'retry' AND " SPENT "" Q(">=") "$12"
				 "             THEN 'gave up after ' OPERATOR(pg_catalog.||) " SPENT " OPERATOR(pg_catalog.||) ' attempts: ' OPERATOR(pg_catalog.||) a.error"
				 "             ELSE a.error END,"
				 "        outcome = COALESCE(a.outcome::jsonb, CASE WHEN a.result" Q("=") "'retry' AND " SPENT "" Q(">=") "$12"
				 "             THEN pg_catalog.jsonb_build_object('sqlstate', 'TA001', 'message',"
				 "                  'gave up after ' OPERATOR(pg_catalog.||) " SPENT " OPERATOR(pg_catalog.||) ' attempts: ' OPERATOR(pg_catalog.||) a.error)"
				 "             END, o.outcome),"
				 "        lease_id = NULL, lease_expires_at = NULL,"
				 "        intended_name = COALESCE(a.intended_name, o.intended_name)"
				 "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3),"
				 "                   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
				 "                   pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9),"
				 "                   pg_catalog.unnest($10), pg_catalog.unnest($11))"
				 "        AS a(id, lease_id, result, http_status, error, outcome, delay_ms, unused,"
				 "             nothing_done, quiet, intended_name)"
				 "  WHERE o.id" Q("=") "a.id AND o.lease_id" Q("=") "a.lease_id::uuid AND o.status" Q("=") "$13"
				 " RETURNING o.id, o.delivery_id, o.status, o.attempts, o.next_attempt_at, o.lease_id,"
				 "           o.lease_expires_at, o.last_http_status, o.last_error, o.outcome, o.finished_at,"
				 "           a.nothing_done),"
				 " mirrored AS (" OPS_MIRROR_TO_INBOX ")"
				 " SELECT id, status, outcome::text FROM op",
				 OUT_ARRAYS + 2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_SELECT, "record operations' outcomes");

	for (row = 0; row < SPI_processed; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		null;
		int64		id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &null));

		foreach(lc, outcomes)
		{
			Operation  *op = ((OutcomeToRecord *) lfirst(lc))->op;
			char	   *written;
			char	   *outcome;
			MemoryContext old;

			if (op->id != id)
				continue;
			written = SPI_getvalue(tuple, desc, 2);
			outcome = SPI_getvalue(tuple, desc, 3);
			old = MemoryContextSwitchTo(op->context);
			op->recorded_status = pstrdup(written);
			op->recorded_outcome = outcome ? pstrdup(outcome) : NULL;
			op->intended_name_unsaved = false;
			MemoryContextSwitchTo(old);
			break;
		}
	}
	return SPI_processed;
}

/*
 * ops_record
 *		Writes the outcome of op's attempt now (write_outcomes).  Returns the
 *		status written, or NULL when the claim was lost.
 */
const char *
ops_record(Operation *op, StepResult result)
{
	OutcomeToRecord r;

	r.op = op;
	r.result = result;
	op->recorded_status = NULL;
	if (write_outcomes(list_make1(&r)) != 1)
		return NULL;
	return op->recorded_status;
}

/*
 * ops_record_later
 *		Keeps op's outcome for ops_record_batch to write with the others of
 *		its cycle.  Only for a claim that cannot have been lost meanwhile
 *		(ops_claim_may_be_lost).
 */
void
ops_record_later(Operation *op, StepResult result)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	OutcomeToRecord *r = palloc(sizeof(OutcomeToRecord));

	(void) result_name(result); /* fail now on a result that has no record */
	r->op = op;
	r->result = result;
	op->recorded_status = NULL;
	outcomes_later = lappend(outcomes_later, r);
	MemoryContextSwitchTo(old);
}

/*
 * ops_record_batch
 *		Writes the outcomes ops_record_later kept, in one statement.  Their
 *		claims cannot have been lost, so each must be written: one that is
 *		not means someone else wrote an operation in flight, and the
 *		cycle's transaction is given up (its steps with it) rather than keep
 *		steps whose outcome was not recorded.
 */
void
ops_record_batch(void)
{
	List	   *outcomes = outcomes_later;
	uint64		written;

	if (outcomes == NIL)
		return;
	written = write_outcomes(outcomes);
	if (written != (uint64) list_length(outcomes))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg_plural("tenant_airbyte: %d operation outcome was decided but only " UINT64_FORMAT " could be recorded",
							   "tenant_airbyte: %d operation outcomes were decided but only " UINT64_FORMAT " could be recorded",
							   list_length(outcomes), list_length(outcomes), written),
				 errdetail("An operation the worker had claimed was changed by another session while its request was in flight."),
				 errhint("Only the worker writes operations in flight; the cycle is retried and the operations reconcile when their leases run out.")));
	outcomes_later = NIL;
}

/*
 * IN_FLIGHT_PARAM.  ops_record() and ops_enter_step() find their row by
 * id and check that it is still in flight with a parameter, not the
 * literal 'in_flight': with the literal, the saved (generic) plan may
 * prove a partial index's predicate (status in pending, in_flight) and
 * scan all of it instead of looking the id up in the primary key, which
 * the planner rates about as cheap while the table's statistics say few
 * operations are unfinished.  During a burst that index holds thousands
 * of entries, and the scan cost 500 to 900 buffers per statement (1 ms)
 * where the primary key costs a handful.
 */

/*
 * write_steps
 *		One UPDATE for every operation in ops (Operation *) that is about to
 *		send its step's request: renews its claim and records the step and
 *		the name it decided, only under its claim (id, lease, still in
 *		flight).  Returns how many were written.
 */
static uint64
write_steps(List *ops)
{
	int			n = list_length(ops);
	Datum	   *ids = palloc(n * sizeof(Datum));
	Datum	   *leases = palloc(n * sizeof(Datum));
	Datum	   *steps = palloc(n * sizeof(Datum));
	Datum	   *names = palloc0(n * sizeof(Datum));
	bool	   *names_null = palloc0(n * sizeof(bool));
	bool	   *no_nulls = palloc0(n * sizeof(bool));
	Datum		values[6];
	Oid			types[6] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, TEXTOID};
	ListCell   *lc;
	int			rc;

	foreach(lc, ops)
	{
		Operation  *op = (Operation *) lfirst(lc);
		int			i = foreach_current_index(lc);
		char		name_null;

		ids[i] = Int64GetDatum(op->id);
		leases[i] = CStringGetTextDatum(op->lease_id);
		steps[i] = CStringGetTextDatum(op->kind->steps[op->step].name);
		names[i] = intended_name_datum(op, &name_null);
		names_null[i] = name_null == 'n';
	}
	values[0] = array_of(ids, no_nulls, n, INT8OID);
	values[1] = array_of(leases, no_nulls, n, TEXTOID);
	values[2] = array_of(steps, no_nulls, n, TEXTOID);
	values[3] = array_of(names, names_null, n, TEXTOID);
	values[4] = Int32GetDatum(tenant_airbyte_lease_ms);
	values[5] = CStringGetTextDatum("in_flight");	/* see IN_FLIGHT_PARAM */

	rc = spi_run_generic("UPDATE tenant_airbyte.operations AS o"
						 "   SET lease_expires_at = pg_catalog.clock_timestamp()"
						 "                          OPERATOR(pg_catalog.+) ($5 OPERATOR(pg_catalog.*) interval '1 millisecond'),"
						 "       step = a.step, intended_name = COALESCE(a.intended_name, o.intended_name)"
						 "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
						 "                  pg_catalog.unnest($3), pg_catalog.unnest($4))"
						 "       AS a(id, lease_id, step, intended_name)"
						 " WHERE o.id" Q("=") "a.id AND o.lease_id" Q("=") "a.lease_id::uuid AND o.status" Q("=") "$6",
						 6, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_UPDATE, "record operations' steps");
	return SPI_processed;
}

/*
 * ops_enter_step
 *		Renews the claim and records the step whose request is about to be
 *		sent: committed before it is sent, this is what makes a crash
 *		recoverable (the step says what may have happened).  False when the
 *		claim was lost.
 */
bool
ops_enter_step(Operation *op)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Oid			types[6] = {INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID};
	int			rc;

	values[0] = Int64GetDatum(op->id);
	values[1] = CStringGetTextDatum(op->lease_id);
	values[2] = Int32GetDatum(tenant_airbyte_lease_ms);
	values[3] = CStringGetTextDatum(op->kind->steps[op->step].name);
	values[4] = intended_name_datum(op, &nulls[4]);
	values[5] = CStringGetTextDatum("in_flight");	/* see IN_FLIGHT_PARAM */

	rc = spi_run("UPDATE tenant_airbyte.operations"
				 "   SET lease_expires_at = pg_catalog.clock_timestamp()"
				 "                          OPERATOR(pg_catalog.+) ($3 OPERATOR(pg_catalog.*) interval '1 millisecond'),"
				 "       step = $4, intended_name = COALESCE($5, intended_name)"
				 " WHERE id" Q("=") "$1 AND lease_id" Q("=") "$2::uuid AND status" Q("=") "$6",
				 6, types, values, nulls, false, 0);
	spi_check(rc, SPI_OK_UPDATE, "record an operation's step");
	if (SPI_processed != 1)
		return false;
	op->intended_name_unsaved = false;
	return true;
}

/*
 * ops_enter_step_later
 *		ops_enter_step, written by ops_write_steps with the other steps the
 *		transaction's operations enter, before it commits.  Only for a claim
 *		that cannot have been lost meanwhile (ops_claim_may_be_lost).
 */
void
ops_enter_step_later(Operation *op)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	steps_later = lappend(steps_later, op);
	MemoryContextSwitchTo(old);
}

/*
 * ops_write_steps
 *		Writes the steps ops_enter_step_later kept, in one statement.  As
 *		for ops_record_batch, each claim is still held, so each must be
 *		written, or the transaction (and every request it decided) is given
 *		up: a request whose step is not committed must not be sent.
 */
void
ops_write_steps(void)
{
	List	   *ops = steps_later;
	uint64		written;
	ListCell   *lc;

	if (ops == NIL)
		return;
	/* one alone (an idle worker's): the array statement costs more */
	written = list_length(ops) == 1 ? (uint64) ops_enter_step(linitial(ops)) :
		write_steps(ops);
	if (written != (uint64) list_length(ops))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg_plural("tenant_airbyte: of %d step about to send its request, only " UINT64_FORMAT " could be recorded",
							   "tenant_airbyte: of %d steps about to send their requests, only " UINT64_FORMAT " could be recorded",
							   list_length(ops), list_length(ops), written),
				 errdetail("An operation the worker had claimed was changed by another session before its request was sent."),
				 errhint("Only the worker writes operations in flight; the cycle is retried and the operations reconcile when their leases run out.")));
	foreach(lc, ops)
		((Operation *) lfirst(lc))->intended_name_unsaved = false;
	steps_later = NIL;
}

/*
 * ops_forget_later
 *		Drops what was kept to be written, once the transaction ended (its
 *		memory is gone): nothing, after a commit that wrote it all.
 */
void
ops_forget_later(void)
{
	outcomes_later = NIL;
	steps_later = NIL;
}

/* Whether op, of another tenant than tenant_id, decided name and has not written it. */
static bool
decided_unsaved(Operation *op, const char *tenant_id, const char *name)
{
	return op->intended_name_unsaved && op->intended_name != NULL &&
		strcmp(op->intended_name, name) == 0 && strcmp(op->tenant_id, tenant_id) != 0;
}

/*
 * op_name_decided_unsaved
 *		Whether an operation of another tenant decided name in this
 *		transaction and waits for it to be written with the step it
 *		enters, or with an outcome that leaves it unfinished (a retry): a
 *		name decision must treat it as intended, as it would the row.
 */
bool
op_name_decided_unsaved(const char *tenant_id, const char *name)
{
	ListCell   *lc;

	foreach(lc, steps_later)
	{
		if (decided_unsaved((Operation *) lfirst(lc), tenant_id, name))
			return true;
	}
	foreach(lc, outcomes_later)
	{
		OutcomeToRecord *r = (OutcomeToRecord *) lfirst(lc);

		if (r->result == STEP_RETRY && decided_unsaved(r->op, tenant_id, name))
			return true;
	}
	return false;
}

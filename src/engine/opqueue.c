/*-------------------------------------------------------------------------
 *
 * opqueue.c
 *	  The operations table as the worker's queue: recording requests from
 *	  backends, taking up webhook deliveries, claiming under a lease,
 *	  recording outcomes (mirrored onto the delivery an operation serves),
 *	  returning abandoned claims.  Every function runs inside a short
 *	  transaction the caller opened, with SPI connected; none waits on the
 *	  network.  Every statement is schema-qualified, operators too: the
 *	  worker runs with search_path = pg_catalog, pg_temp, but relies on it
 *	  for nothing.
 *
 * The claim (after pgmq) is one UPDATE over due rows picked with FOR
 * UPDATE SKIP LOCKED; it raises attempts then, so an operation that
 * crashes the worker every time runs out of attempts and ends dead.  A
 * result is recorded only under the claim's lease.  Operations of one
 * tenant run one at a time, in the order they were recorded: a row is
 * claimable only when no other operation of its tenant is in flight and
 * no earlier one is pending.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/value.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "opqueue.h"
#include "operation.h"
#include "tenant_airbyte.h"
#include "worker.h"

#define Q(op) " OPERATOR(pg_catalog." op ") "

/*
 * ops_insert
 *		Records a requested operation; 0 when an unfinished one of the same
 *		tenant, kind and subject exists (the request then waits).
 */
int64
ops_insert(const char *kind, const char *tenant_id, const char *subject,
		   const char *params, int64 delivery_id)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	int			rc;
	bool		isnull;

	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(tenant_id);
	values[2] = CStringGetTextDatum(subject);
	values[3] = CStringGetTextDatum(params);
	values[4] = Int64GetDatum(delivery_id);
	if (delivery_id == 0)
		nulls[4] = 'n';

	rc = spi_run("INSERT INTO tenant_airbyte.operations AS o (kind, tenant_id, subject, params, delivery_id)"
				 " VALUES ($1, $2, $3, $4::jsonb, $5)"
				 " ON CONFLICT (tenant_id, kind, subject) WHERE status" Q("=") "ANY ('{pending,in_flight}'::text[])"
				 " DO NOTHING RETURNING o.id",
				 5, types, values, nulls, false, 0);
	spi_check(rc, SPI_OK_INSERT_RETURNING, "record an operation");
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * record_for_deliveries
 *		Records the operations of n deliveries (in the order given) and links
 *		each delivery to its own, in one statement: a take-up costs one
 *		executor start, one pass over the table's constraints and index
 *		predicates, however many deliveries it serves.  A delivery whose
 *		operation cannot be recorded yet (an unfinished one of its tenant,
 *		kind and subject exists) is left as it is, and so is every later one
 *		of its tenant: the statement cannot tell that in advance, so what it
 *		recorded for those is taken back before anyone can see it.  Returns
 *		whether any delivery was left waiting.
 */
static bool
record_for_deliveries(int n, Datum *kinds, Datum *tenants, Datum *params,
					  Datum *delivery_ids)
{
	Datum		values[4];
	Oid			types[4] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	int			rc;
	uint64		recorded;
	int64	   *ids;			/* operation id of each delivery, 0 if none */
	List	   *blocked = NIL;	/* String nodes: tenants held back */
	List	   *taken_back = NIL;	/* operation ids recorded out of turn */
	int			i;

	values[0] = PointerGetDatum(construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(tenants, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(params, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(delivery_ids, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));

	/*
	 * unnest() returns the rows in array order, and ids are drawn in it.
	 * The generic plan: see spi_run_generic().
	 */
	rc = spi_run_generic("WITH d AS ("
				 " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
				 "                          pg_catalog.unnest($3), pg_catalog.unnest($4)) WITH ORDINALITY"
				 "   AS d (kind, tenant_id, params, delivery_id, ord)),"
				 " o AS ("
				 " INSERT INTO tenant_airbyte.operations AS o (kind, tenant_id, subject, params, delivery_id)"
				 " SELECT d.kind, d.tenant_id, '', d.params::jsonb, d.delivery_id FROM d ORDER BY d.ord"
				 " ON CONFLICT (tenant_id, kind, subject) WHERE status" Q("=") "ANY ('{pending,in_flight}'::text[])"
				 " DO NOTHING RETURNING o.id, o.delivery_id),"
				 " linked AS ("
				 " UPDATE tenant_airbyte.webhook_inbox AS i SET operation_id = o.id FROM o"
				 "  WHERE i.delivery_id" Q("=") "o.delivery_id)"
				 " SELECT id, delivery_id FROM o",
				 4, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_SELECT, "record the deliveries' operations");
	recorded = SPI_processed;
	if (recorded == (uint64) n)
		return false;			/* the usual case: nothing had to wait */

	ids = palloc0(sizeof(int64) * n);
	for (i = 0; i < (int) recorded; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 1, &isnull));
		int64		delivery_id = DatumGetInt64(SPI_getbinval(tuple, SPI_tuptable->tupdesc, 2, &isnull));
		int			j;

		for (j = 0; j < n; j++)
			if (DatumGetInt64(delivery_ids[j]) == delivery_id)
				ids[j] = id;
	}

	/* a tenant whose earlier delivery must wait holds back its later ones */
	for (i = 0; i < n; i++)
	{
		String	   *tenant = makeString(TextDatumGetCString(tenants[i]));

		if (ids[i] == 0)
			blocked = lappend(blocked, tenant);
		else if (list_member(blocked, tenant))
			taken_back = lappend(taken_back, &ids[i]);
	}

	if (taken_back != NIL)
	{
		Datum	   *elems = palloc(sizeof(Datum) * list_length(taken_back));
		Datum		undo[1];
		Oid			undo_types[1] = {INT8ARRAYOID};
		ListCell   *lc;

		i = 0;
		foreach(lc, taken_back)
			elems[i++] = Int64GetDatum(*(int64 *) lfirst(lc));
		undo[0] = PointerGetDatum(construct_array(elems, i, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
												  TYPALIGN_DOUBLE));
		rc = spi_run("UPDATE tenant_airbyte.webhook_inbox SET operation_id = NULL"
					 " WHERE operation_id" Q("=") "ANY ($1)",
					 1, undo_types, undo, NULL, false, 0);
		spi_check(rc, SPI_OK_UPDATE, "unlink deliveries recorded out of turn");
		rc = spi_run("DELETE FROM tenant_airbyte.operations WHERE id" Q("=") "ANY ($1)",
					 1, undo_types, undo, NULL, false, 0);
		spi_check(rc, SPI_OK_DELETE, "take back operations recorded out of turn");
	}
	return true;
}

/*
 * ops_take_up_deliveries
 *		Turns up to limit due webhook deliveries into operations: kind_of
 *		maps an event to a kind (NULL: nothing to do, the delivery is
 *		ignored).  Deliveries are taken up in order of arrival, and
 *		operations of one tenant run in the order they were recorded, so a
 *		tenant's events keep their order; one whose operation cannot be
 *		recorded yet (an unfinished one of the same kind exists) waits for
 *		it, and so do the later deliveries of its tenant (*held_back).
 *		Returns how many rows it looked at.
 */
int
ops_take_up_deliveries(int limit, const char *(*kind_of) (const char *event),
					   bool *held_back)
{
	Datum		values[1];
	Oid			types[1] = {INT4OID};
	int			rc;
	uint64		n;
	uint64		i;
	SPITupleTable *tuptable;
	int			nwork = 0;
	Datum	   *kinds;
	Datum	   *tenants;
	Datum	   *params;
	Datum	   *delivery_ids;

	values[0] = Int32GetDatum(limit);
	rc = spi_run("SELECT c.delivery_id, c.event, c.tenant_id, c.tenant_name"
				 "  FROM tenant_airbyte.webhook_inbox AS c"
				 " WHERE c.status" Q("=") "'pending' AND c.operation_id IS NULL"
				 "   AND c.next_attempt_at" Q("<=") "pg_catalog.now()"
				 " ORDER BY c.next_attempt_at, c.delivery_id"
				 " LIMIT $1 FOR UPDATE SKIP LOCKED",
				 1, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_SELECT, "find deliveries to take up");
	n = SPI_processed;
	tuptable = SPI_tuptable;
	*held_back = false;
	if (n == 0)
		return 0;

	kinds = palloc(sizeof(Datum) * n);
	tenants = palloc(sizeof(Datum) * n);
	params = palloc(sizeof(Datum) * n);
	delivery_ids = palloc(sizeof(Datum) * n);

	for (i = 0; i < n; i++)
	{
		HeapTuple	tuple = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		int64		delivery_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		char	   *event = SPI_getvalue(tuple, desc, 2);
		char	   *tenant_id = SPI_getvalue(tuple, desc, 3);
		char	   *tenant_name = SPI_getvalue(tuple, desc, 4);
		const char *kind = kind_of(event);
		Datum		uvalues[4];
		char		unulls[4] = {' ', ' ', ' ', ' '};
		Oid			utypes[4] = {INT8OID, TEXTOID, TEXTOID, INT8OID};

		if (kind != NULL && tenant_id != NULL && tenant_id[0] != '\0')
		{
			kinds[nwork] = CStringGetTextDatum(kind);
			tenants[nwork] = CStringGetTextDatum(tenant_id);
			params[nwork] = CStringGetTextDatum(psprintf("{\"tenant_name\": %s}",
														 tenant_name ? op_json_string(tenant_name) : "null"));
			delivery_ids[nwork] = Int64GetDatum(delivery_id);
			nwork++;
			continue;
		}

		/* nothing to do, or no tenant to do it for: finished now */
		uvalues[0] = Int64GetDatum(delivery_id);
		uvalues[1] = CStringGetTextDatum(kind == NULL ? "ignored" : "dead");
		if (kind == NULL)
			uvalues[2] = CStringGetTextDatum(psprintf("{\"status\": \"ignored\", \"reason\": \"no work for this event\", \"event\": %s}",
													  op_json_string(event)));
		else
			unulls[2] = 'n';
		uvalues[3] = (Datum) 0;
		unulls[3] = 'n';
		rc = spi_run("UPDATE tenant_airbyte.webhook_inbox"
					 "   SET status = $2, result = $3::jsonb, finished_at = pg_catalog.now(),"
					 "       last_error = CASE WHEN $2" Q("=") "'dead' THEN 'the delivery has no tenant id' END,"
					 "       operation_id = $4"
					 " WHERE delivery_id" Q("=") "$1",
					 4, utypes, uvalues, unulls, false, 0);
		spi_check(rc, SPI_OK_UPDATE, "finish a delivery without work");
	}

	if (nwork > 0)
		*held_back = record_for_deliveries(nwork, kinds, tenants, params, delivery_ids);
	return (int) n;
}

/*
 * Times ops_release_leases() returned operations to the queue.  A claim
 * the worker holds can be lost only that way (no one else writes an
 * operation in flight), so one made since the last time is certainly
 * still the worker's: ops_claim_may_be_lost().
 */
static uint64 lease_lapses = 0;

/*
 * ops_release_leases
 *		Returns claims to pending: at start-up all of them (one worker per
 *		cluster: every claim left over was interrupted), later only those
 *		whose lease ran out.  A claim that used its last attempt ends dead,
 *		because it was probably what stopped the worker.  Appends the ids
 *		of operations that ended dead to *dead.
 */
int
ops_release_leases(bool all, List **dead)
{
	Datum		values[2];
	Oid			types[2] = {INT4OID, BOOLOID};
	int			rc;
	uint64		i;

	values[0] = Int32GetDatum(tenant_airbyte_max_attempts);
	values[1] = BoolGetDatum(all);

	rc = spi_run("WITH op AS ("
				 " UPDATE tenant_airbyte.operations"
				 "    SET status = CASE WHEN attempts" Q(">=") "$1 THEN 'dead' ELSE 'pending' END,"
				 "        next_attempt_at = pg_catalog.now(), attempt_ended_at = pg_catalog.now(),"
				 "        finished_at = CASE WHEN attempts" Q(">=") "$1 THEN pg_catalog.now() END,"
				 "        last_error = CASE WHEN attempts" Q(">=") "$1"
				 "             THEN 'attempt ' OPERATOR(pg_catalog.||) attempts OPERATOR(pg_catalog.||) ' of ' OPERATOR(pg_catalog.||) $1 OPERATOR(pg_catalog.||) ' was interrupted (worker stopped or crashed); no attempts left'"
				 "             ELSE 'attempt ' OPERATOR(pg_catalog.||) attempts OPERATOR(pg_catalog.||) ' was interrupted (worker stopped or crashed)' END,"
				 "        outcome = CASE WHEN attempts" Q(">=") "$1"
				 "             THEN pg_catalog.jsonb_build_object('sqlstate', 'TA001', 'message',"
				 "                  'operation ' OPERATOR(pg_catalog.||) id OPERATOR(pg_catalog.||) ' gave up: attempt ' OPERATOR(pg_catalog.||) attempts OPERATOR(pg_catalog.||) ' of ' OPERATOR(pg_catalog.||) $1 OPERATOR(pg_catalog.||) ' was interrupted (worker stopped or crashed)',"
				 "                  'hint', 'Look in the server log for why the worker stopped, then call again.')"
				 "             ELSE outcome END,"
				 "        lease_id = NULL, lease_expires_at = NULL"
				 "  WHERE status" Q("=") "'in_flight'"
				 "    AND ($2 OR lease_expires_at" Q("<=") "pg_catalog.now())"
				 " RETURNING id, delivery_id, status, attempts, next_attempt_at, lease_id, lease_expires_at,"
				 "           last_http_status, last_error, outcome, finished_at, false AS nothing_done),"
				 " mirrored AS (" OPS_MIRROR_TO_INBOX ")"
				 " SELECT id, outcome::text FROM op WHERE status" Q("=") "'dead'",
				 2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_SELECT, "release leases");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		OpFinished *f = palloc(sizeof(OpFinished));

		f->id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		f->status = "dead";
		f->outcome = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		*dead = lappend(*dead, f);
	}
	rc = (int) SPI_processed;
	if (rc > 0)
		lease_lapses++;

	/* deliveries claimed without an operation (left by an older version) */
	return rc + inbox_release_leases(all);
}

/*
 * ops_claim
 *		Claims up to limit due operations, oldest first, as Operations each
 *		in its own memory context under parent.
 *
 *		The check that no earlier operation of the candidate's tenant is
 *		unfinished passes its statuses as parameters: with literals, the
 *		saved plan could prove the predicate of the partial indexes on
 *		unfinished operations and walk all of one for every candidate
 *		(5,000 buffers per claim during a burst, the statistics of the last
 *		vacuum rating it cheap); with parameters it can only look the
 *		tenant up in operations_tenant.
 */
List *
ops_claim(int limit, MemoryContext parent)
{
	Datum		values[4];
	Oid			types[4] = {INT4OID, INT4OID, TEXTOID, TEXTOID};
	List	   *ops = NIL;
	int			rc;
	uint64		i;

	values[0] = Int32GetDatum(limit);
	values[1] = Int32GetDatum(tenant_airbyte_lease_ms);
	/* parameters, not literals: see the comment above */
	values[2] = CStringGetTextDatum("in_flight");
	values[3] = CStringGetTextDatum("pending");

	rc = spi_run("WITH op AS ("
				 " UPDATE tenant_airbyte.operations AS o"
				 "    SET status = 'in_flight',"
				 "        attempts = o.attempts OPERATOR(pg_catalog.+) 1,"
				 "        lease_id = pg_catalog.gen_random_uuid(),"
				 "        lease_expires_at = pg_catalog.clock_timestamp()"
				 "                           OPERATOR(pg_catalog.+) ($2 OPERATOR(pg_catalog.*) interval '1 millisecond')"
				 "  WHERE o.id" Q("=") "ANY (ARRAY ("
				 "      SELECT c.id FROM tenant_airbyte.operations AS c"
				 "       WHERE c.status" Q("=") "'pending'"
				 "         AND c.next_attempt_at" Q("<=") "pg_catalog.now()"
				 "         AND NOT EXISTS ("
				 "             SELECT FROM tenant_airbyte.operations AS x"
				 "              WHERE x.tenant_id" Q("=") "c.tenant_id"
				 "                AND (x.status" Q("=") "$3"
				 "                     OR (x.status" Q("=") "$4 AND x.id" Q("<") "c.id)))"
				 "       ORDER BY c.next_attempt_at, c.id"
				 "       LIMIT $1 FOR UPDATE SKIP LOCKED))"
				 " RETURNING o.id, o.delivery_id, o.status, o.attempts, o.next_attempt_at, o.lease_id,"
				 "           o.lease_expires_at, o.last_http_status, o.last_error, o.outcome, o.finished_at,"
				 "           false AS nothing_done, o.kind, o.tenant_id, o.params, o.intended_name, o.step,"
				 "           o.attempt_ended_at),"
				 " mirrored AS (" OPS_MIRROR_TO_INBOX ")"
				 " SELECT id, lease_id::text, kind, tenant_id, params::text, intended_name, step,"
				 "        attempts, delivery_id, attempt_ended_at FROM op",
				 4, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_SELECT, "claim operations");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext context;
		MemoryContext old;
		Operation  *op;
		bool		isnull;
		char	   *params;
		Datum		d;

		context = AllocSetContextCreate(parent, "tenant_airbyte operation", ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(context);

		op = palloc0(sizeof(Operation));
		op->context = context;
		op->id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		strlcpy(op->lease_id, SPI_getvalue(tuple, desc, 2), sizeof(op->lease_id));
		op->kind = operation_kind_by_name(SPI_getvalue(tuple, desc, 3));
		op->kind_name = SPI_getvalue(tuple, desc, 3);
		op->tenant_id = SPI_getvalue(tuple, desc, 4);
		params = SPI_getvalue(tuple, desc, 5);
		op->params = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(params)));
		op->intended_name = SPI_getvalue(tuple, desc, 6);
		op->last_step = SPI_getvalue(tuple, desc, 7);
		op->attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 8, &isnull));
		d = SPI_getbinval(tuple, desc, 9, &isnull);
		op->delivery_id = isnull ? 0 : DatumGetInt64(d);
		d = SPI_getbinval(tuple, desc, 10, &isnull);
		op->previous_attempt_over = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
		op->claimed_after_lapses = lease_lapses;

		MemoryContextSwitchTo(old);
		ops = lappend(ops, op);
	}
	return ops;
}

/*
 * ops_claim_may_be_lost
 *		Whether op's claim may have been returned to the queue since it was
 *		made: its lease ran out and ops_release_leases() took it back.  When
 *		not, its outcome or the step it enters can be written later in the
 *		transaction, with the others (ops_record_later,
 *		ops_enter_step_later); when so, it is written at once, so that a
 *		lost claim rolls its step back (worker_step.c).
 */
bool
ops_claim_may_be_lost(Operation *op)
{
	return op->claimed_after_lapses != lease_lapses;
}

/*
 * ops_next_due
 *		When the worker must look again without being woken: *retry_at, the
 *		next retry of a pending operation or delivery, and *lease_at, the
 *		first lease of an operation or delivery in flight to run out; 0 for
 *		none.  They are apart because the worker checks leases on a timer
 *		of its own (worker_cycle.c): a lease that ran out a moment ago must
 *		not make it spin until that timer comes round.
 */
void
ops_next_due(TimestampTz *retry_at, TimestampTz *lease_at)
{
	int			rc;
	bool		isnull;
	Datum		next;

	rc = spi_run("SELECT LEAST("
				 "   (SELECT pg_catalog.min(next_attempt_at) FROM tenant_airbyte.operations"
				 "     WHERE status" Q("=") "'pending' AND next_attempt_at" Q(">") "pg_catalog.now()),"
				 "   (SELECT pg_catalog.min(next_attempt_at) FROM tenant_airbyte.webhook_inbox"
				 "     WHERE status" Q("=") "'pending' AND operation_id IS NULL"
				 "       AND next_attempt_at" Q(">") "pg_catalog.now())),"
				 " LEAST("
				 "   (SELECT pg_catalog.min(lease_expires_at) FROM tenant_airbyte.operations"
				 "     WHERE status" Q("=") "'in_flight'),"
				 "   (SELECT pg_catalog.min(lease_expires_at) FROM tenant_airbyte.webhook_inbox"
				 "     WHERE status" Q("=") "'in_flight' AND operation_id IS NULL))",
				 0, NULL, NULL, NULL, false, 1);
	spi_check(rc, SPI_OK_SELECT, "find the next due operation");

	next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*retry_at = isnull ? 0 : DatumGetTimestampTz(next);
	next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*lease_at = isnull ? 0 : DatumGetTimestampTz(next);
}

/*-------------------------------------------------------------------------
 *
 * op_retention.c
 *	  Retention of tenant_airbyte.operations: the worker deletes finished
 *	  operations older than tenant_airbyte.operation_retention_days, a
 *	  small batch at a time, from its cycle (worker.c).
 *
 * Never deleted:
 *	  - an unfinished operation (pending, in_flight): it is work to do;
 *	  - one a backend waits for or has not read the answer of yet (its
 *		hand-off slot names it, handoff.c);
 *	  - a failed or dead operation that stopped at a step which creates
 *		something in Airbyte (STEP_CREATES), until a later operation of the
 *		same tenant, kind and subject is done: that row is the record that
 *		a create may have happened, which the next attempt reconciles
 *		from (kind_provision.c, earlier_create_interrupted).
 *
 * Like the inbox's retention (inbox.c), a batch is bounded, so that a
 * large backlog never holds many row locks or writes much WAL in one
 * transaction; the worker comes back at once while batches are full.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "handoff.h"
#include "operation.h"
#include "opqueue.h"
#include "tenant_airbyte.h"
#include "worker.h"

#define Q(op) " OPERATOR(pg_catalog." op ") "

/*
 * creating_steps
 *		"kind:step" for every STEP_CREATES step of every registered kind,
 *		as a text[] (the engine knows the kinds only through the registry).
 */
static Datum
creating_steps(void)
{
	List	   *names = NIL;
	Datum	   *elems;
	ListCell   *lc;
	int			n = 0;
	int			i;

	for (i = 0; operation_kind_at(i) != NULL; i++)
	{
		const OperationKind *kind = operation_kind_at(i);

		for (int s = 0; s < kind->nsteps; s++)
			if (kind->steps[s].flags & STEP_CREATES)
				names = lappend(names, psprintf("%s:%s", kind->name, kind->steps[s].name));
	}
	elems = palloc(sizeof(Datum) * Max(1, list_length(names)));
	foreach(lc, names)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * ops_delete_finished
 *		Deletes up to batch_size finished operations past their retention,
 *		oldest first; returns how many.  Nothing when the setting is 0.
 *		Runs inside the worker's transaction, with SPI connected.
 */
int
ops_delete_finished(int batch_size)
{
	int64		waited[HANDOFF_MAX_SLOTS];
	Datum	   *waited_datums;
	int			nwaited;
	Datum		values[4];
	Oid			types[4] = {INT4OID, INT4OID, INT8ARRAYOID, TEXTARRAYOID};
	int			rc;
	int			i;

	if (tenant_airbyte_operation_retention_days <= 0)
		return 0;

	nwaited = handoff_waited_operations(waited, HANDOFF_MAX_SLOTS);
	waited_datums = palloc(sizeof(Datum) * Max(1, nwaited));
	for (i = 0; i < nwaited; i++)
		waited_datums[i] = Int64GetDatum(waited[i]);

	values[0] = Int32GetDatum(tenant_airbyte_operation_retention_days);
	values[1] = Int32GetDatum(batch_size);
	values[2] = PointerGetDatum(construct_array(waited_datums, nwaited, INT8OID,
												sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = creating_steps();

	rc = spi_run("DELETE FROM tenant_airbyte.operations"
				 " WHERE id" Q("=") "ANY (ARRAY ("
				 "     SELECT o.id FROM tenant_airbyte.operations AS o"
				 "      WHERE o.status" Q("=") "ANY ('{done,failed,dead}'::text[])"
				 "        AND o.finished_at" Q("<") "(pg_catalog.now()" Q("-") "($1" Q("*") "interval '1 day'))"
				 "        AND o.id" Q("<>") "ALL ($3)"
				 "        AND NOT (o.status" Q("=") "ANY ('{failed,dead}'::text[])"
				 "                 AND (o.kind" Q("||") "':'" Q("||") "o.step)" Q("=") "ANY ($4)"
				 "                 AND NOT EXISTS (SELECT FROM tenant_airbyte.operations AS d"
				 "                                  WHERE d.tenant_id" Q("=") "o.tenant_id"
				 "                                    AND d.kind" Q("=") "o.kind"
				 "                                    AND d.subject" Q("=") "o.subject"
				 "                                    AND d.status" Q("=") "'done'"
				 "                                    AND d.id" Q(">") "o.id))"
				 "      ORDER BY o.finished_at"
				 "      LIMIT $2"
				 "        FOR UPDATE SKIP LOCKED))",
				 4, types, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "tenant_airbyte: could not delete finished operations: %s",
			 SPI_result_code_string(rc));
	return (int) SPI_processed;
}

/*-------------------------------------------------------------------------
 *
 * backfill.c
 *	  The worker's side of provision_tenants() and pause_worker(): feeding
 *	  a backfill batch into the operations queue a few tenants at a time,
 *	  and reading the pause switch.  Both run inside the first transaction
 *	  of a cycle (worker.c), with SPI connected.
 *
 * provision_tenants() (install script, section 13) records the whole
 * batch in one statement as rows of tenant_airbyte.backfill_tenants, each
 * 'waiting'.  Each cycle this file
 *
 *	  1. settles the 'running' rows whose operation has finished: 'done'
 *		 (provisioned, already there, restored) or 'failed' (failed, dead,
 *		 or deleted);
 *	  2. turns waiting rows, in batch order, into provision operations, so
 *		 that no more of them are unfinished at a time than the window
 *		 minus the other work holding or wanting a slot (operations of
 *		 other kinds in flight or due, deliveries due), and never fewer
 *		 than budget_backfill_window(): tenant_airbyte.backfill_share of
 *		 the window.  So a batch alone uses the whole window, and as soon
 *		 as deliveries or direct calls come, it shrinks to its share as
 *		 its operations finish, the rest left to them; they are claimed
 *		 in the order they arrive, not behind 10,000 queued tenants.
 *
 * Why the whole window when nothing else waits: a provision holds its
 * slot not only while its request is out but also through the worker's
 * cycles that record its claim and its answer (two commits).  On a
 * loaded machine those cycles are slow, and half a window (16 of 32) was
 * what limited a batch to about 38 tenants/s against a stand-in that
 * allowed 100 requests/s, well below the rate the budget allowed.
 *
 * A row becomes 'running' in the same transaction that records its
 * operation, so a crash at any moment leaves either both or neither;
 * the operation itself is exactly once however often the worker dies
 * (kind_provision.c reconciles by its intended name).  A tenant that
 * already has an unfinished provision (a webhook delivery raced the
 * batch) follows that operation instead of recording a second one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "backfill.h"
#include "budget.h"
#include "opqueue.h"
#include "operation.h"
#include "worker.h"

#define Q(op) " OPERATOR(pg_catalog." op ") "

/*
 * With no batch under way the feed looks again only this often, so that
 * the worker's cycles pay for it only while there is a batch: a new batch
 * starts within this long.
 */
#define IDLE_LOOK_MS 1000

static bool feed_idle = false;
static TimestampTz next_idle_look = 0;

static int	other_work(int limit);

/*
 * backfill_read_control
 *		Reads the pause switch (worker_control.paused) into the budget.
 *		A row-less table (someone deleted it) means not paused.
 */
void
backfill_read_control(void)
{
	int			rc;
	bool		isnull;
	bool		paused = false;

	rc = spi_run("SELECT c.paused FROM tenant_airbyte.worker_control AS c LIMIT 1",
				 0, NULL, NULL, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_airbyte: could not read worker_control: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		paused = !isnull && DatumGetBool(d);
	}
	budget_set_paused(paused);
}

/*
 * other_work
 *		How many operations that are not a batch's hold a slot or are due
 *		for one, and deliveries due to be taken up, counted up to limit:
 *		what a batch leaves room for.
 */
static int
other_work(int limit)
{
	int			rc;
	bool		isnull;
	Datum		values[1];
	Oid			types[1] = {INT4OID};

	values[0] = Int32GetDatum(limit);
	rc = spi_run("SELECT ((SELECT pg_catalog.count(*) FROM"
				 "          (SELECT FROM tenant_airbyte.operations AS o"
				 "            WHERE o.status" Q("=") "ANY ('{pending,in_flight}'::text[])"
				 "              AND (o.status" Q("=") "'in_flight'"
				 "                   OR o.next_attempt_at" Q("<=") "pg_catalog.now())"
				 "              AND NOT (o.params" Q("?") "'backfill_batch')"
				 "            LIMIT $1) AS x)"
				 "     " Q("+") "(SELECT pg_catalog.count(*) FROM"
				 "          (SELECT FROM tenant_airbyte.webhook_inbox AS i"
				 "            WHERE i.status" Q("=") "'pending' AND i.operation_id IS NULL"
				 "              AND i.next_attempt_at" Q("<=") "pg_catalog.now()"
				 "            LIMIT $1) AS y))::integer",
				 1, types, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_airbyte: could not count the work beside the backfill: %s", SPI_result_code_string(rc));
	return Min(limit, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
}

/*
 * backfill_feed
 *		Settles finished rows, then records provision operations for
 *		waiting rows while fewer than the window minus the other work are
 *		unfinished, and always up to limit (the batches' share).  Returns
 *		how many it recorded.
 */
int
backfill_feed(int limit)
{
	int			rc;
	int			running;
	int			window_size;
	bool		isnull;
	uint64		n;
	uint64		i;
	SPITupleTable *tuptable;
	Datum		values[1];
	Oid			types[1] = {INT4OID};

	if (feed_idle && GetCurrentTimestamp() < next_idle_look)
		return 0;

	rc = spi_run("UPDATE tenant_airbyte.backfill_tenants AS b"
				 "   SET status = CASE WHEN o.status" Q("=") "'done' THEN 'done' ELSE 'failed' END,"
				 "       finished_at = pg_catalog.now()"
				 "  FROM tenant_airbyte.operations AS o"
				 " WHERE b.status" Q("=") "'running' AND o.id" Q("=") "b.operation_id"
				 "   AND o.status" Q("=") "ANY ('{done,failed,dead}'::text[])",
				 0, NULL, NULL, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "tenant_airbyte: could not settle backfill rows: %s", SPI_result_code_string(rc));

	/* an operation deleted by hand would hold its row, and the batch, forever */
	rc = spi_run("UPDATE tenant_airbyte.backfill_tenants AS b"
				 "   SET status = 'failed', finished_at = pg_catalog.now()"
				 " WHERE b.status" Q("=") "'running'"
				 "   AND NOT EXISTS (SELECT FROM tenant_airbyte.operations AS o"
				 "                    WHERE o.id" Q("=") "b.operation_id)",
				 0, NULL, NULL, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "tenant_airbyte: could not settle backfill rows: %s", SPI_result_code_string(rc));

	rc = spi_run("SELECT pg_catalog.count(*)::integer FROM tenant_airbyte.backfill_tenants AS b"
				 " WHERE b.status" Q("=") "'running'",
				 0, NULL, NULL, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_airbyte: could not count backfill rows: %s", SPI_result_code_string(rc));
	running = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* the batch's share, or the whole window less what others want */
	window_size = budget_current_window();
	if (window_size > limit && running < window_size)
		limit = Max(limit, window_size - other_work(window_size - limit));
	if (running >= limit)
		return 0;

	values[0] = Int32GetDatum(limit - running);
	rc = spi_run("SELECT b.batch_id, b.position, b.tenant_id, b.tenant_name"
				 "  FROM tenant_airbyte.backfill_tenants AS b"
				 " WHERE b.status" Q("=") "'waiting'"
				 " ORDER BY b.batch_id, b.position"
				 " LIMIT $1 FOR UPDATE SKIP LOCKED",
				 1, types, values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant_airbyte: could not find waiting backfill rows: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	tuptable = SPI_tuptable;

	feed_idle = running == 0 && n == 0;
	if (feed_idle)
		next_idle_look = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), IDLE_LOOK_MS);

	for (i = 0; i < n; i++)
	{
		HeapTuple	tuple = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		int64		batch_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		int32		position = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
		char	   *tenant_id = SPI_getvalue(tuple, desc, 3);
		char	   *tenant_name = SPI_getvalue(tuple, desc, 4);
		int64		operation_id;
		Datum		uvalues[3];
		Oid			utypes[3] = {INT8OID, INT4OID, INT8OID};

		operation_id = ops_insert("provision", tenant_id, "",
								  psprintf("{\"tenant_name\": %s, \"backfill_batch\": " INT64_FORMAT "}",
										   op_json_string(tenant_name), batch_id),
								  0);
		if (operation_id == 0)
		{
			/* an unfinished provision of the tenant exists: follow it */
			Datum		fvalues[1];
			Oid			ftypes[1] = {TEXTOID};

			fvalues[0] = CStringGetTextDatum(tenant_id);
			rc = spi_run("SELECT o.id FROM tenant_airbyte.operations AS o"
						 " WHERE o.tenant_id" Q("=") "$1 AND o.kind" Q("=") "'provision'"
						 "   AND o.subject" Q("=") "''"
						 "   AND o.status" Q("=") "ANY ('{pending,in_flight}'::text[])",
						 1, ftypes, fvalues, NULL, false, 1);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "tenant_airbyte: could not find a tenant's provision: %s", SPI_result_code_string(rc));
			if (SPI_processed != 1)
				continue;		/* it finished meanwhile: next cycle */
			operation_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}

		uvalues[0] = Int64GetDatum(batch_id);
		uvalues[1] = Int32GetDatum(position);
		uvalues[2] = Int64GetDatum(operation_id);
		rc = spi_run("UPDATE tenant_airbyte.backfill_tenants"
					 "   SET status = 'running', operation_id = $3"
					 " WHERE batch_id" Q("=") "$1 AND position" Q("=") "$2",
					 3, utypes, uvalues, NULL, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "tenant_airbyte: could not start a backfill row: %s", SPI_result_code_string(rc));
	}
	return (int) n;
}

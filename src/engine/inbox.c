/*-------------------------------------------------------------------------
 *
 * inbox.c
 *	  The worker's queue: claiming deliveries under a lease, recording
 *	  what became of them, returning abandoned claims, and deleting old
 *	  finished rows.  Every function here runs inside a short transaction
 *	  the caller opened (with SPI connected); none waits on the network.
 *
 * A claim (after pgmq) is one UPDATE over the due rows picked with
 * FOR UPDATE SKIP LOCKED: it sets status in_flight, a fresh lease_id, the
 * lease's end, and raises attempts then, not at the end, so that a
 * delivery that crashes the worker every time still runs out of attempts
 * and ends dead instead of crashing it forever.  A result is recorded
 * only "WHERE lease_id = <the claim's lease>": a claim that expired and
 * was taken again is never overwritten by the stale attempt.
 *
 * The claim costs what it claims, not what is queued: the due rows are
 * read in order from webhook_inbox_pending_due (next_attempt_at,
 * delivery_id) and stop at the limit, and the outer UPDATE finds them by
 * primary key ("= ANY (ARRAY (...))"; with "IN (...)" the kept generic
 * plan hash-joins against a scan of the whole table).  It used to cost
 * about 1.5 ms per claim with 2,000 deliveries queued, in every cycle.
 *
 * Deliveries of one tenant are worked on one at a time and in order of
 * arrival: a row is claimable only when no other row of its tenant is in
 * flight and no earlier one is still pending.  Otherwise a tenant.deleted
 * could overtake the tenant.created it follows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "tenant_airbyte.h"
#include "worker.h"

static void spi_check(int rc, int expected, const char *what);

/* Plans kept for the worker's life, keyed by the address of their SQL text. */
#define MAX_KEPT_PLANS 32
static struct
{
	const char *sql;
	SPIPlanPtr	plan;
}			kept_plans[MAX_KEPT_PLANS];
static int	nkept_plans = 0;

/*
 * spi_run
 *		SPI_execute_with_args, but planned once: the worker runs the same
 *		few statements for every delivery, and planning them each time cost
 *		more than running them.  sql must be a string constant (its address
 *		is the key).  A plan whose tables were dropped (DROP EXTENSION) is
 *		re-analysed by the plan cache on its next use.  Like
 *		SPI_execute_with_args(..., read_only = false), each run sees what
 *		the transaction wrote before it.
 */
int
spi_run(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls, bool read_only, long count)
{
	SPIPlanPtr	plan = NULL;
	int			i;

	for (i = 0; i < nkept_plans; i++)
	{
		if (kept_plans[i].sql == sql)
		{
			plan = kept_plans[i].plan;
			break;
		}
	}

	if (plan == NULL)
	{
		plan = SPI_prepare(sql, nargs, types);
		if (plan == NULL)
			elog(ERROR, "tenant_airbyte: could not prepare a statement: %s",
				 SPI_result_code_string(SPI_result));
		if (nkept_plans < MAX_KEPT_PLANS)
		{
			if (SPI_keepplan(plan) != 0)
				elog(ERROR, "tenant_airbyte: could not keep a plan");
			kept_plans[nkept_plans].sql = sql;
			kept_plans[nkept_plans].plan = plan;
			nkept_plans++;
		}
	}

	return SPI_execute_plan(plan, values, nulls, read_only, count);
}

/*
 * inbox_extension_present
 *		The worker acts only where the extension is installed at the
 *		version this library was built for.  Between a DROP EXTENSION and
 *		the next CREATE EXTENSION it waits; so it does after a new library
 *		was installed and the server restarted, until ALTER EXTENSION
 *		tenant_airbyte UPDATE brings the schema to the library's version
 *		(the queries here are written for that schema only).  Says so once
 *		in the log per mismatch.
 */
bool
inbox_extension_present(void)
{
	static char warned_version[64] = "";
	bool		isnull;
	char	   *installed;

	if (!OidIsValid(get_extension_oid("tenant_airbyte", true)))
		return false;
	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension"
					" WHERE extname OPERATOR(pg_catalog.=) 'tenant_airbyte'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		return false;
	installed = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));
	if (strcmp(installed, TENANT_AIRBYTE_VERSION) == 0)
	{
		warned_version[0] = '\0';
		return true;
	}
	if (strcmp(installed, warned_version) != 0)
	{
		ereport(LOG,
				(errmsg("tenant_airbyte worker: extension version %s is installed in database \"%s\", the library is %s; waiting",
						installed, tenant_airbyte_database, TENANT_AIRBYTE_VERSION),
				 errhint("Run ALTER EXTENSION tenant_airbyte UPDATE in that database.")));
		strlcpy(warned_version, installed, sizeof(warned_version));
	}
	return false;
}

/*
 * inbox_release_leases
 *		Returns claims to pending: at start-up all of them (there is one
 *		worker per cluster, so every claim left over is orphaned by a crash
 *		or a stop), later only those whose lease ran out.  A claim that has
 *		used its last attempt ends dead instead, because it was probably
 *		what stopped the worker.
 */
int
inbox_release_leases(bool all)
{
	Datum		values[2];
	Oid			types[2] = {INT4OID, BOOLOID};
	int			rc;

	values[0] = Int32GetDatum(tenant_airbyte_max_attempts);
	values[1] = BoolGetDatum(all);

	rc = spi_run(
							   "UPDATE tenant_airbyte.webhook_inbox"
							   "   SET status = CASE WHEN attempts >= $1 THEN 'dead' ELSE 'pending' END,"
							   "       next_attempt_at = pg_catalog.now(),"
							   "       finished_at = CASE WHEN attempts >= $1 THEN pg_catalog.now() END,"
							   "       last_error = CASE WHEN attempts >= $1"
							   "            THEN 'attempt ' || attempts || ' of ' || $1 || ' was interrupted (worker stopped or crashed); no attempts left'"
							   "            ELSE 'attempt ' || attempts || ' was interrupted (worker stopped or crashed)' END,"
							   "       lease_id = NULL, lease_expires_at = NULL"
							   " WHERE status = 'in_flight'"
							   "   AND ($2 OR lease_expires_at <= pg_catalog.now())",
							   2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_UPDATE, "release leases");
	return (int) SPI_processed;
}

/*
 * inbox_claim
 *		Claims up to limit due deliveries, oldest first, and returns them as
 *		Jobs, each in its own memory context under parent.
 */
List *
inbox_claim(int limit, MemoryContext parent)
{
	Datum		values[2];
	Oid			types[2] = {INT4OID, INT4OID};
	List	   *jobs = NIL;
	int			rc;
	uint64		i;

	values[0] = Int32GetDatum(limit);
	values[1] = Int32GetDatum(tenant_airbyte_lease_ms);

	rc = spi_run(
							   "UPDATE tenant_airbyte.webhook_inbox AS i"
							   "   SET status = 'in_flight',"
							   "       attempts = i.attempts + 1,"
							   "       lease_id = pg_catalog.gen_random_uuid(),"
							   "       lease_expires_at = pg_catalog.clock_timestamp()"
							   "                          + $2 * interval '1 millisecond'"
							   " WHERE i.delivery_id = ANY (ARRAY ("
							   "     SELECT c.delivery_id"
							   "       FROM tenant_airbyte.webhook_inbox AS c"
							   "      WHERE c.status = 'pending'"
							   "        AND c.next_attempt_at <= pg_catalog.now()"
							   "        AND NOT EXISTS ("
							   "            SELECT FROM tenant_airbyte.webhook_inbox AS o"
							   "             WHERE o.tenant_id = c.tenant_id"
							   "               AND (o.status = 'in_flight'"
							   "                    OR (o.status = 'pending' AND o.delivery_id < c.delivery_id)))"
							   "      ORDER BY c.next_attempt_at, c.delivery_id"
							   "      LIMIT $1"
							   "        FOR UPDATE SKIP LOCKED))"
							   " RETURNING i.delivery_id, i.lease_id::text, i.event,"
							   "           i.tenant_id, i.tenant_name, i.attempts",
							   2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_UPDATE_RETURNING, "claim deliveries");

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext context;
		MemoryContext old;
		Job		   *job;
		bool		isnull;
		char	   *lease;

		context = AllocSetContextCreate(parent, "tenant_airbyte job", ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(context);

		job = palloc0(sizeof(Job));
		job->context = context;
		job->delivery_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		lease = SPI_getvalue(tuple, desc, 2);
		strlcpy(job->lease_id, lease, sizeof(job->lease_id));
		job->event = SPI_getvalue(tuple, desc, 3);
		job->tenant_id = SPI_getvalue(tuple, desc, 4);
		job->tenant_name = SPI_getvalue(tuple, desc, 5);
		job->attempts = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));

		MemoryContextSwitchTo(old);
		jobs = lappend(jobs, job);
	}
	return jobs;
}

/*
 * inbox_record
 *		Writes the outcome of a job's attempt, provided its claim still
 *		holds.  JOB_RETRY becomes pending again after job->retry_delay_ms,
 *		or dead when this was the last attempt.  Returns false when the
 *		claim was lost (the caller then rolls back whatever it did).
 */
bool
inbox_record(Job *job, JobOutcome outcome)
{
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			types[9] = {INT8OID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT8OID, INT4OID, INT4OID};
	const char *status;
	int			rc;

	switch (outcome)
	{
		case JOB_DONE:
			status = "done";
			break;
		case JOB_IGNORED:
			status = "ignored";
			break;
		case JOB_DEAD:
			status = "dead";
			break;
		case JOB_RETRY:
			status = "retry";
			break;
		default:
			elog(ERROR, "cannot record outcome %d", (int) outcome);
	}

	values[0] = Int64GetDatum(job->delivery_id);
	values[1] = CStringGetTextDatum(job->lease_id);
	values[2] = CStringGetTextDatum(status);
	values[3] = Int32GetDatum((int32) job->http_status);
	if (job->http_status == 0)
		nulls[3] = 'n';
	values[4] = job->error ? CStringGetTextDatum(job->error) : (Datum) 0;
	if (job->error == NULL)
		nulls[4] = 'n';
	values[5] = job->result_json ? CStringGetTextDatum(job->result_json) : (Datum) 0;
	if (job->result_json == NULL)
		nulls[5] = 'n';
	values[6] = Int64GetDatum(job->retry_delay_ms);
	values[7] = Int32GetDatum(tenant_airbyte_max_attempts);
	/* an attempt that never reached Airbyte is given back (work.c) */
	values[8] = Int32GetDatum(outcome == JOB_RETRY && job->attempt_unused ? 1 : 0);

	rc = spi_run(
							   "UPDATE tenant_airbyte.webhook_inbox"
							   "   SET status = CASE WHEN $3 <> 'retry' THEN $3"
							   "                     WHEN attempts - $9 >= $8 THEN 'dead'"
							   "                     ELSE 'pending' END,"
							   "       attempts = attempts - $9,"
							   "       next_attempt_at = CASE WHEN $3 = 'retry'"
							   "            THEN pg_catalog.now() + $7 * interval '1 millisecond'"
							   "            ELSE next_attempt_at END,"
							   "       finished_at = CASE WHEN $3 = 'retry' AND attempts - $9 < $8"
							   "            THEN NULL ELSE pg_catalog.now() END,"
							   "       last_http_status = $4,"
							   "       last_error = CASE WHEN $3 = 'retry' AND attempts - $9 >= $8"
							   "            THEN 'gave up after ' || (attempts - $9) || ' attempts: ' || $5"
							   "            ELSE $5 END,"
							   "       result = COALESCE($6::jsonb, result),"
							   "       lease_id = NULL, lease_expires_at = NULL"
							   " WHERE delivery_id = $1 AND lease_id = $2::uuid"
							   "   AND status = 'in_flight'",
							   9, types, values, nulls, false, 0);
	spi_check(rc, SPI_OK_UPDATE, "record a delivery's outcome");
	return SPI_processed == 1;
}

/*
 * inbox_extend_lease
 *		Renews a claim between two requests of the same attempt, so that a
 *		long but progressing piece of work keeps it; false when it was lost.
 */
bool
inbox_extend_lease(Job *job)
{
	Datum		values[3];
	Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
	int			rc;

	values[0] = Int64GetDatum(job->delivery_id);
	values[1] = CStringGetTextDatum(job->lease_id);
	values[2] = Int32GetDatum(tenant_airbyte_lease_ms);

	rc = spi_run(
							   "UPDATE tenant_airbyte.webhook_inbox"
							   "   SET lease_expires_at = pg_catalog.clock_timestamp()"
							   "                          + $3 * interval '1 millisecond'"
							   " WHERE delivery_id = $1 AND lease_id = $2::uuid"
							   "   AND status = 'in_flight'",
							   3, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_UPDATE, "extend a lease");
	return SPI_processed == 1;
}

/*
 * inbox_delete_finished
 *		Deletes up to batch_size done or ignored rows older than
 *		tenant_airbyte.inbox_retention_days; bounded, so that a large
 *		backlog never holds locks or bloats WAL in one go.
 */
int
inbox_delete_finished(int batch_size)
{
	Datum		values[2];
	Oid			types[2] = {INT4OID, INT4OID};
	int			rc;

	values[0] = Int32GetDatum(tenant_airbyte_inbox_retention_days);
	values[1] = Int32GetDatum(batch_size);

	rc = spi_run(
							   "DELETE FROM tenant_airbyte.webhook_inbox"
							   " WHERE delivery_id IN ("
							   "     SELECT delivery_id FROM tenant_airbyte.webhook_inbox"
							   "      WHERE status IN ('done', 'ignored')"
							   "        AND finished_at < pg_catalog.now() - $1 * interval '1 day'"
							   "      LIMIT $2"
							   "        FOR UPDATE SKIP LOCKED)",
							   2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_DELETE, "delete finished deliveries");
	return (int) SPI_processed;
}

/*
 * inbox_next_due
 *		When the worker must look again without being woken: the next retry
 *		that comes due or the next lease that runs out; 0 for "nothing
 *		scheduled".  Rows already due but held back by an earlier delivery of
 *		their tenant are not counted: that delivery's own end wakes us.
 */
TimestampTz
inbox_next_due(void)
{
	int			rc;
	bool		isnull;
	Datum		next;

	rc = spi_run(
					 "SELECT LEAST("
					 "   (SELECT min(next_attempt_at) FROM tenant_airbyte.webhook_inbox"
					 "     WHERE status = 'pending' AND next_attempt_at > pg_catalog.now()),"
					 "   (SELECT min(lease_expires_at) FROM tenant_airbyte.webhook_inbox"
					 "     WHERE status = 'in_flight'))",
					 0, NULL, NULL, NULL, false, 1);
	spi_check(rc, SPI_OK_SELECT, "find the next due delivery");

	next = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(next);
}

static void
spi_check(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "tenant_airbyte: could not %s: %s", what, SPI_result_code_string(rc));
}

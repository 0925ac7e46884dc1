/*-------------------------------------------------------------------------
 *
 * inbox.c
 *	  What the worker does to the webhook inbox beyond what operations
 *	  mirror onto it (opqueue.c): returning claims left by an older
 *	  worker, deleting old finished rows; and spi_run(), the kept plans
 *	  every worker statement runs through.  Every function here runs
 *	  inside a short transaction the caller opened (with SPI connected).
 *
 * A delivery is served by an operation (webhook_inbox.operation_id):
 * opqueue.c takes it up, and while the operation runs the delivery shows
 * its status, attempts, lease and errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "tenant_airbyte.h"
#include "worker.h"

/*
 * Plans kept for the worker's life, keyed by the address of their SQL
 * text.  A hash table, not a short array: the kinds together run more
 * statements than any fixed bound would keep, and a statement left out
 * was parsed and planned again on every run.
 */
typedef struct KeptPlan
{
	const char *sql;			/* the key */
	SPIPlanPtr	plan;
} KeptPlan;
static HTAB *kept_plans = NULL;

/*
 * run_kept
 *		Runs sql with a plan prepared once for the worker's life, with
 *		cursor_options (0, or CURSOR_OPT_GENERIC_PLAN) at its preparation.
 */
static int
run_kept(const char *sql, int nargs, Oid *types, Datum *values,
		 const char *nulls, bool read_only, long count, int cursor_options)
{
	KeptPlan   *entry;
	bool		found;

	if (kept_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(const char *);
		ctl.entrysize = sizeof(KeptPlan);
		kept_plans = hash_create("tenant_airbyte kept plans", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}

	entry = (KeptPlan *) hash_search(kept_plans, &sql, HASH_FIND, NULL);
	if (entry == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, types, cursor_options);

		if (plan == NULL)
			elog(ERROR, "tenant_airbyte: could not prepare a statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "tenant_airbyte: could not keep a plan");
		entry = (KeptPlan *) hash_search(kept_plans, &sql, HASH_ENTER, &found);
		entry->plan = plan;
	}

	return SPI_execute_plan(entry->plan, values, nulls, read_only, count);
}

/*
 * spi_run
 *		SPI_execute_with_args, but prepared once: the worker runs the same
 *		few statements for every delivery, and parsing and planning them
 *		each time cost more than running them.  sql must be a string
 *		constant (its address is the key).  The plan cache still decides
 *		between a plan for the parameters' values and a generic one, as for
 *		any prepared statement.  A plan whose tables were dropped (DROP
 *		EXTENSION) is re-analysed by the plan cache on its next use.  Like
 *		SPI_execute_with_args(..., read_only = false), each run sees what
 *		the transaction wrote before it.
 */
int
spi_run(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls, bool read_only, long count)
{
	return run_kept(sql, nargs, types, values, nulls, read_only, count, 0);
}

/*
 * spi_run_generic
 *		spi_run, always with the generic plan.  For a statement over arrays
 *		of rows (unnest($1)): a plan for each call's values looks cheaper
 *		to the plan cache than the generic one, whose arrays it guesses at
 *		100 elements, so it planned the statement again on every call
 *		(planning was 5% of the worker's CPU at max_concurrency 128, most
 *		of it for the outcomes' statement), though every call wants the
 *		same plan: a nested loop over the primary key.
 */
int
spi_run_generic(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, bool read_only, long count)
{
	return run_kept(sql, nargs, types, values, nulls, read_only, count,
					CURSOR_OPT_GENERIC_PLAN);
}

/*
 * spi_check
 *		Raises an error naming what could not be done when an SPI call
 *		returned rc instead of expected.
 */
void
spi_check(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "tenant_airbyte: could not %s: %s", what, SPI_result_code_string(rc));
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
	/* a kept plan: this runs in every transaction of the worker */
	if (spi_run("SELECT extversion FROM pg_catalog.pg_extension"
				" WHERE extname OPERATOR(pg_catalog.=) 'tenant_airbyte'",
				0, NULL, NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
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
							   "   SET status = CASE WHEN attempts OPERATOR(pg_catalog.>=) $1 THEN 'dead' ELSE 'pending' END,"
							   "       next_attempt_at = pg_catalog.now(),"
							   "       finished_at = CASE WHEN attempts OPERATOR(pg_catalog.>=) $1 THEN pg_catalog.now() END,"
							   "       last_error = CASE WHEN attempts OPERATOR(pg_catalog.>=) $1"
							   "            THEN 'attempt ' OPERATOR(pg_catalog.||) attempts OPERATOR(pg_catalog.||) ' of ' OPERATOR(pg_catalog.||) $1 OPERATOR(pg_catalog.||) ' was interrupted (worker stopped or crashed); no attempts left'"
							   "            ELSE 'attempt ' OPERATOR(pg_catalog.||) attempts OPERATOR(pg_catalog.||) ' was interrupted (worker stopped or crashed)' END,"
							   "       lease_id = NULL, lease_expires_at = NULL"
							   " WHERE status OPERATOR(pg_catalog.=) 'in_flight' AND operation_id IS NULL"
							   "   AND ($2 OR lease_expires_at OPERATOR(pg_catalog.<=) pg_catalog.now())",
							   2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_UPDATE, "release leases");
	return (int) SPI_processed;
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
							   " WHERE delivery_id OPERATOR(pg_catalog.=) ANY (ARRAY ("
							   "     SELECT delivery_id FROM tenant_airbyte.webhook_inbox"
							   "      WHERE status OPERATOR(pg_catalog.=) ANY ('{done,ignored}'::text[])"
							   "        AND finished_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) ($1 OPERATOR(pg_catalog.*) interval '1 day'))"
							   "      LIMIT $2"
							   "        FOR UPDATE SKIP LOCKED))",
							   2, types, values, NULL, false, 0);
	spi_check(rc, SPI_OK_DELETE, "delete finished deliveries");
	return (int) SPI_processed;
}

/*-------------------------------------------------------------------------
 *
 * admin.c
 *	  Administration through the worker (admin.h): the superuser check, the
 *	  hand-off of an admin_* operation, and tenant_airbyte.admin_results,
 *	  where the worker leaves what Airbyte answered and the caller reads it.
 *
 * The caller reads its results with a snapshot taken after the worker
 * answered (GetLatestSnapshot()), not its transaction's: the worker
 * committed them after this transaction began, and under REPEATABLE READ
 * the transaction snapshot would never show them.  It does not delete
 * them (its transaction may be read-only or roll back); the worker's tick
 * deletes results older than ADMIN_RESULTS_KEEP.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "admin.h"
#include "airbyte_api.h"
#include "engine.h"
#include "tenant_airbyte.h"

/* How long a result is kept for a caller whose wait was interrupted. */
#define ADMIN_RESULTS_KEEP "1 hour"
/* How often the worker looks for results to delete. */
#define ADMIN_TIDY_EVERY_MS 60000

/*
 * admin_require_superuser
 *		The wrappers spend the deployment's Airbyte credentials and ignore
 *		tenants, so they are for superusers even if someone grants EXECUTE
 *		by mistake.
 */
void
admin_require_superuser(const char *function, const char *hint)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", function),
				 errdetail("Only superusers may call the Airbyte administration functions."),
				 hint ? errhint("%s", hint) : 0));
}

/* A uuid argument as text; NULL refused, naming what it is. */
char *
admin_uuid_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(n)));
}

/* A text argument that must be neither NULL nor empty. */
char *
admin_text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	char	   *s = PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));

	if (s == NULL || s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	return s;
}

/*
 * admin_unique_subject
 *		At most one unfinished operation per tenant, kind and subject may
 *		exist; a read has nothing to serialise, so each call gets its own.
 */
char *
admin_unique_subject(void)
{
	static uint64 counter = 0;

	return psprintf("%d.%lld." UINT64_FORMAT, MyProcPid,
					(long long) GetCurrentTimestamp(), ++counter);
}

/*
 * admin_run
 *		Hands an administration operation to the worker and waits for it
 *		(engine_run(): cancel, statement_timeout, no worker serving this
 *		database all answered as for the tenant functions).
 */
Jsonb *
admin_run(const char *kind, Jsonb *params, const char *subject,
		  const char *secret, int64 *operation_id)
{
	const char *status;
	Jsonb	   *outcome;

	outcome = engine_run_status(kind, ADMIN_TENANT, params, subject, secret,
								&status, operation_id);
	if (strcmp(status, "done") != 0)
		engine_raise_outcome(status, outcome, *operation_id);
	return outcome;
}

bool
admin_outcome_true(Jsonb *outcome, const char *key)
{
	JsonbValue *v = outcome && JB_ROOT_IS_OBJECT(outcome) ?
		airbyte_object_field(&outcome->root, key) : NULL;

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/*
 * results_query
 *		Runs the results query for operation_id with a fresh snapshot and
 *		calls found(value, arg) for each result, in order.
 */
static void
results_query(int64 operation_id, void (*found) (Datum value, void *arg), void *arg)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	SPIPlanPtr	plan;
	Snapshot	snapshot;
	int			rc;
	uint64		i;

	values[0] = Int64GetDatum(operation_id);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare("SELECT r.item FROM tenant_airbyte.admin_results AS r"
					   " WHERE r.operation_id OPERATOR(pg_catalog.=) $1"
					   " ORDER BY r.ordinal",
					   1, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare the administration results query");
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	rc = SPI_execute_snapshot(plan, values, NULL, snapshot, InvalidSnapshot,
							  true, false, 0);
	UnregisterSnapshot(snapshot);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the results of operation " INT64_FORMAT, operation_id);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		value = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		if (!isnull)
			found(value, arg);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
}

static void
keep_first(Datum value, void *arg)
{
	Jsonb	  **first = (Jsonb **) arg;

	if (*first == NULL)
		*first = DatumGetJsonbPCopy(value);
}

Jsonb *
admin_result(int64 operation_id)
{
	Jsonb	   *first = NULL;

	results_query(operation_id, keep_first, &first);
	return first;
}

static void
put_row(Datum value, void *arg)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;
	bool		isnull = false;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
}

void
admin_results_to_srf(int64 operation_id, FunctionCallInfo fcinfo)
{
	results_query(operation_id, put_row, fcinfo->resultinfo);
}

/* ------------------------------------------------------------------------
 * The worker's side: each runs in a step's transaction, SPI connected
 * ------------------------------------------------------------------------ */

/*
 * admin_start
 *		The first step of every administration kind: forgets what earlier
 *		attempts stored, and makes sure a token can be had.  A superuser is
 *		waiting, so missing or refused credentials are answered at once
 *		with their own error (TA002), instead of the retries with backoff
 *		that a webhook delivery gets while an administrator fixes them.
 *		Only the token fetch runs under the PG_TRY: no SQL, no locks.
 */
bool
admin_start(Operation *op, StepResult *failure)
{
	MemoryContext old = CurrentMemoryContext;
	ErrorData  *volatile error = NULL;

	admin_results_clear(op);
	PG_TRY();
	{
		(void) airbyte_bearer_token();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(op->context);
		error = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (error == NULL)
		return true;
	if (error->sqlerrcode != ERRCODE_AIRBYTE_AUTH_FAILED)
		ReThrowError(error);
	*failure = op_fail(op, error->sqlerrcode, error->message, error->detail, error->hint);
	return false;
}

void
admin_results_clear(Operation *op)
{
	Datum		values[1] = {Int64GetDatum(op->id)};
	Oid			types[1] = {INT8OID};

	if (op_spi("DELETE FROM tenant_airbyte.admin_results AS r"
			   " WHERE r.operation_id OPERATOR(pg_catalog.=) $1",
			   1, types, values, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear the results of operation " INT64_FORMAT, op->id);
}

void
admin_results_store(Operation *op, int ordinal, Jsonb *item, bool strip)
{
	Datum		values[4];
	Oid			types[4] = {INT8OID, INT4OID, JSONBOID, BOOLOID};

	values[0] = Int64GetDatum(op->id);
	values[1] = Int32GetDatum(ordinal);
	values[2] = JsonbPGetDatum(item);
	values[3] = BoolGetDatum(strip);
	if (op_spi("INSERT INTO tenant_airbyte.admin_results AS r (operation_id, ordinal, item)"
			   " VALUES ($1, $2, CASE WHEN $4 THEN $3 OPERATOR(pg_catalog.-) 'configuration'::text"
			   "                      ELSE $3 END)"
			   " ON CONFLICT (operation_id, ordinal) DO UPDATE SET item = excluded.item",
			   4, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store a result of operation " INT64_FORMAT, op->id);
}

int
admin_results_store_page(Operation *op, int ordinal, Jsonb *page, bool strip)
{
	Datum		values[4];
	Oid			types[4] = {INT8OID, INT4OID, JSONBOID, BOOLOID};
	int			length = airbyte_page_length(page);

	if (length <= 0)
		return length;
	values[0] = Int64GetDatum(op->id);
	values[1] = Int32GetDatum(ordinal);
	values[2] = JsonbPGetDatum(page);
	values[3] = BoolGetDatum(strip);
	if (op_spi("INSERT INTO tenant_airbyte.admin_results AS r (operation_id, ordinal, item)"
			   " SELECT $1, $2 OPERATOR(pg_catalog.+) e.n::integer OPERATOR(pg_catalog.-) 1,"
			   "        CASE WHEN $4 THEN e.v OPERATOR(pg_catalog.-) 'configuration'::text ELSE e.v END"
			   "   FROM pg_catalog.jsonb_array_elements($3 OPERATOR(pg_catalog.->) 'data'::text)"
			   "        WITH ORDINALITY AS e (v, n)"
			   " ON CONFLICT (operation_id, ordinal) DO UPDATE SET item = excluded.item",
			   4, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store a page of results of operation " INT64_FORMAT, op->id);
	return length;
}

/*
 * admin_results_tidy
 *		Deletes results older than ADMIN_RESULTS_KEEP, at most once every
 *		ADMIN_TIDY_EVERY_MS: their caller read them long ago, or stopped
 *		waiting and had that long to look.
 */
void
admin_results_tidy(void)
{
	static TimestampTz last = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (last != 0 && !TimestampDifferenceExceeds(last, now, ADMIN_TIDY_EVERY_MS))
		return;
	last = now;
	if (op_spi("DELETE FROM tenant_airbyte.admin_results AS r"
			   " WHERE r.created_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
			   "       OPERATOR(pg_catalog.-) interval '" ADMIN_RESULTS_KEEP "')",
			   0, NULL, NULL, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete old administration results");
}

/*
 * admin_adopt_from_page
 *		The reconciliation step both admin creates share (a workspace, a
 *		source): a create whose answer was lost may have happened, so the
 *		list is read page by page for the exact name it was to create, and
 *		the first such object no tenant and no other create owns is
 *		adopted.  Only the ownership check differs, hence taken_sql.
 */
AdminAdopt
admin_adopt_from_page(Operation *op, Jsonb *page, const char *id_key,
					  const char *taken_sql, char **adopt_id, int *page_offset)
{
	List	   *named;
	ListCell   *lc;
	int			page_length;
	Oid			types[2] = {TEXTOID, INT8OID};

	named = airbyte_page_named(page, op->intended_name, id_key, NULL, &page_length);
	foreach(lc, named)
	{
		AirbyteNamedObject *object = (AirbyteNamedObject *) lfirst(lc);
		Datum		values[2];

		values[0] = CStringGetTextDatum(object->id);
		values[1] = Int64GetDatum(op->id);
		if (op_spi(taken_sql, 2, types, values, NULL, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up %s %s", id_key, object->id);
		if (SPI_processed == 0)
		{
			*adopt_id = MemoryContextStrdup(op->context, object->id);
			return ADMIN_ADOPT_FOUND;
		}
	}
	if (airbyte_page_may_continue(page_length))
	{
		*page_offset += AIRBYTE_PAGE_LIMIT;
		return ADMIN_ADOPT_NEXT_PAGE;
	}
	return ADMIN_ADOPT_NONE;
}

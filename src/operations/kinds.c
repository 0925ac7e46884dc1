/*-------------------------------------------------------------------------
 *
 * kinds.c
 *	  The registry of operation kinds, built from kindlist.h, and helpers
 *	  the workspace kinds share: the tenant's row, a unique name, and the
 *	  create step (POST /workspaces) of provision and of drift_repair's
 *	  recreate.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "kinds.h"
#include "operation.h"

/* kinds.h declares every kind; this is the list the engine walks. */
static const OperationKind *const operation_kinds[] = {
#define OPERATION_KIND(symbol) &symbol,
#include "kindlist.h"
#undef OPERATION_KIND
	NULL
};

const OperationKind *
operation_kind_by_name(const char *name)
{
	int			i;

	if (name == NULL)
		return NULL;
	for (i = 0; operation_kinds[i] != NULL; i++)
	{
		if (strcmp(operation_kinds[i]->name, name) == 0)
			return operation_kinds[i];
	}
	return NULL;
}

const OperationKind *
operation_kind_at(int i)
{
	if (i < 0 || i >= lengthof(operation_kinds) - 1)
		return NULL;
	return operation_kinds[i];
}

/*
 * operation_kinds_tick
 *		Gives each kind that has a tick its turn (operation.h).
 */
void
operation_kinds_tick(void)
{
	int			i;

	for (i = 0; operation_kinds[i] != NULL; i++)
	{
		if (operation_kinds[i]->tick != NULL)
			operation_kinds[i]->tick();
	}
}

/*
 * kind_tenant_workspace
 *		The tenant's workspace row (any status): id, name, status, and
 *		whether it was deleted more than retention_days ago.  False when
 *		the tenant has none.  Locks the row (the worker's lock_timeout
 *		bounds the wait).
 */
bool
kind_tenant_workspace(const char *tenant_id, TenantWorkspace *ws)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, INT4OID};
	HeapTuple	tuple;
	TupleDesc	desc;

	values[0] = CStringGetTextDatum(tenant_id);
	values[1] = Int32GetDatum(tenant_airbyte_retention_days);
	if (op_spi("SELECT w.airbyte_workspace_id::text, w.airbyte_workspace_name, w.status::text,"
			   "       w.status OPERATOR(pg_catalog.=) 'deleted' AND w.deleted_at OPERATOR(pg_catalog.<=)"
			   "         (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => $2))"
			   "  FROM tenant_airbyte.tenant_airbyte_workspaces AS w"
			   " WHERE w.tenant_id OPERATOR(pg_catalog.=) $1"
			   "   FOR UPDATE",
			   2, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the tenant's workspace");
	if (SPI_processed == 0)
		return false;
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	ws->workspace_id = SPI_getvalue(tuple, desc, 1);
	ws->workspace_name = SPI_getvalue(tuple, desc, 2);
	ws->status = SPI_getvalue(tuple, desc, 3);
	ws->expired = strcmp(SPI_getvalue(tuple, desc, 4), "t") == 0;
	return true;
}

/*
 * name_taken
 *		Whether another tenant holds the workspace name or intends it (an
 *		unfinished operation's intended_name, or a name another operation
 *		decided in this transaction whose row is written later).  Both
 *		look-ups use an index (tenant_airbyte_workspaces_name,
 *		operations_intended_name): this runs for every provision, and a
 *		scan of every workspace there made the worker's cycle grow with the
 *		number of tenants.
 */
static bool
name_taken(const char *tenant_id, const char *name)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	bool		isnull;

	if (op_name_decided_unsaved(tenant_id, name))
		return true;
	values[0] = CStringGetTextDatum(tenant_id);
	values[1] = CStringGetTextDatum(name);
	if (op_spi("SELECT EXISTS (SELECT FROM tenant_airbyte.tenant_airbyte_workspaces AS w"
			   "                WHERE w.airbyte_workspace_name OPERATOR(pg_catalog.=) $2"
			   "                  AND w.tenant_id OPERATOR(pg_catalog.<>) $1)"
			   "    OR EXISTS (SELECT FROM tenant_airbyte.operations AS o"
			   "                WHERE o.intended_name OPERATOR(pg_catalog.=) $2"
			   "                  AND o.status OPERATOR(pg_catalog.=) ANY ('{pending,in_flight}'::text[])"
			   "                  AND o.tenant_id OPERATOR(pg_catalog.<>) $1)",
			   2, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not check a workspace name");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * kind_unique_workspace_name
 *		The seed's name for the tenant (8 characters of its id) unless
 *		another tenant holds or intends that name; then the first longer
 *		prefix of the id that nobody else holds or intends (the whole id
 *		when every shorter one is taken).  Decided in the worker only, so
 *		two decisions never race.  The rule itself is SQL's
 *		workspace_name_candidate(): asked once for its part before the id
 *		(id_chars = 0), to which the id's first k characters are added
 *		here, so candidates are tried one at a time, shortest first, and
 *		the usual case costs one look-up.
 */
char *
kind_unique_workspace_name(const char *tenant_id, const char *tenant_name)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	Oid			types[2] = {TEXTOID, TEXTOID};
	bool		isnull;
	char	   *stem;
	int			id_len = strlen(tenant_id);
	int			id_chars = pg_mbstrlen_with_len(tenant_id, id_len);
	int			k;

	values[0] = CStringGetTextDatum(tenant_id);
	values[1] = tenant_name ? CStringGetTextDatum(tenant_name) : (Datum) 0;
	if (tenant_name == NULL)
		nulls[1] = 'n';
	if (op_spi("SELECT tenant_airbyte.workspace_name_candidate($1, $2, 0)",
			   2, types, values, nulls, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not decide a workspace name");
	stem = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	for (k = 8;; k++)
	{
		char	   *name = psprintf("%s%.*s", stem,
									pg_mbcharcliplen(tenant_id, id_len, k), tenant_id);

		if (k >= id_chars || !name_taken(tenant_id, name))
			return name;
		pfree(name);
	}
}

/*
 * kind_workspace_create_request
 *		The create step's request: POST /workspaces with the body the kind
 *		built (the decided name and the template's fields).  The step must
 *		be marked STEP_CREATES, so that it is committed before it is sent.
 */
HttpRequest *
kind_workspace_create_request(Jsonb *body)
{
	return airbyte_prepare(HTTP_POST, "/workspaces", body);
}

/*
 * kind_workspace_created
 *		What the answer to the create leads to, for every kind that creates
 *		a workspace under op->intended_name: the new workspace's id goes to
 *		record(); an answer that may hide a create (2xx without a
 *		workspaceId, an unreadable body) is retried, and the retry looks
 *		for the workspace by its name before it creates (each kind's
 *		reconcile or find step); any other failure is op_failed().  again:
 *		the messages say "create workspace ... again" (a drift repair).
 */
StepResult
kind_workspace_created(Operation *op, AirbyteResponse *resp, bool again,
					   StepResult (*record) (Operation *op, const char *workspace_id))
{
	char	   *workspace_id = NULL;

	if (resp->outcome == AIRBYTE_OK)
		workspace_id = airbyte_workspace_id(resp->body);
	if (workspace_id != NULL)
		return record(op, workspace_id);

	/* no usable answer, but the create may have happened: retry, reconciling */
	if (resp->outcome == AIRBYTE_OK || resp->outcome == AIRBYTE_BAD_RESPONSE)
		return op_retry(op, psprintf("create workspace \"%s\"%s: %s",
									 op->intended_name, again ? " again" : "",
									 resp->message ? resp->message : "no workspaceId in the answer"));
	return op_failed(op, resp, psprintf("create workspace \"%s\"%s",
										op->intended_name, again ? " again" : ""));
}

/*-------------------------------------------------------------------------
 *
 * kinds.c
 *	  The registry of operation kinds, built from kindlist.h, and helpers
 *	  the workspace kinds share.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
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
 * kind_unique_workspace_name
 *		The seed's name for the tenant (8 characters of its id) unless
 *		another tenant holds or intends that name; then the first longer
 *		prefix of the id that nobody else holds or intends.  Decided in the
 *		worker only, so two decisions never race.
 */
char *
kind_unique_workspace_name(const char *tenant_id, const char *tenant_name)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	Oid			types[2] = {TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(tenant_id);
	values[1] = tenant_name ? CStringGetTextDatum(tenant_name) : (Datum) 0;
	if (tenant_name == NULL)
		nulls[1] = 'n';
	if (op_spi("SELECT c.n"
			   "  FROM pg_catalog.generate_series(8, GREATEST(8, pg_catalog.length($1))) AS k,"
			   "       LATERAL (SELECT tenant_airbyte.workspace_name_candidate($1, $2, k) AS n) AS c"
			   " WHERE k OPERATOR(pg_catalog.=) GREATEST(8, pg_catalog.length($1))"
			   "    OR (NOT EXISTS (SELECT FROM tenant_airbyte.tenant_airbyte_workspaces AS w"
			   "                     WHERE w.airbyte_workspace_name OPERATOR(pg_catalog.=) c.n"
			   "                       AND w.tenant_id OPERATOR(pg_catalog.<>) $1)"
			   "        AND NOT EXISTS (SELECT FROM tenant_airbyte.operations AS o"
			   "                         WHERE o.intended_name OPERATOR(pg_catalog.=) c.n"
			   "                           AND o.status OPERATOR(pg_catalog.=) ANY ('{pending,in_flight}'::text[])"
			   "                           AND o.tenant_id OPERATOR(pg_catalog.<>) $1))"
			   " ORDER BY k LIMIT 1",
			   2, types, values, nulls, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not decide a workspace name");
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

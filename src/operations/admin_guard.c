/*-------------------------------------------------------------------------
 *
 * admin_guard.c
 *	  tenant_airbyte.guard_administration_operations(), the BEFORE INSERT
 *	  and BEFORE UPDATE trigger on operations that keeps administration
 *	  operations (tenant '(administration)', kinds admin_*) to the worker
 *	  and superusers: they act on workspaces no tenant owns, so a role
 *	  that may write operations for its own tenant must not write these.
 *
 * In C, with the test on the row inside, because it fires on every write
 * of operations, several per provision.  A WHEN clause is parsed again by
 * PostgreSQL for each statement that fires the trigger, which cost the
 * worker about 2.5% of its time at full load; this test costs two string
 * comparisons.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "admin.h"
#include "tenant_airbyte.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(tenant_airbyte_guard_administration_operations);

/* Whether text column attnum of tuple equals, or starts with, expected. */
static bool
text_column_matches(HeapTuple tuple, TupleDesc desc, int attnum,
					const char *expected, bool prefix)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, desc, &isnull);
	text	   *t;
	size_t		len = strlen(expected);

	if (isnull)
		return false;
	t = DatumGetTextPP(value);
	if (prefix ? VARSIZE_ANY_EXHDR(t) < len : VARSIZE_ANY_EXHDR(t) != len)
		return false;
	return memcmp(VARDATA_ANY(t), expected, len) == 0;
}

/* Whether the row is an administration operation. */
static bool
is_administration(HeapTuple tuple, TupleDesc desc, int tenant_attnum, int kind_attnum)
{
	return text_column_matches(tuple, desc, tenant_attnum, ADMIN_TENANT, false) ||
		text_column_matches(tuple, desc, kind_attnum, ADMIN_KIND_PREFIX, true);
}

/*
 * tenant_airbyte_guard_administration_operations
 *		Lets the row through unless it is (or, for an UPDATE, was) an
 *		administration operation written by a role that is neither the
 *		worker's nor a superuser (42501).
 */
Datum
tenant_airbyte_guard_administration_operations(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	row;
	int			tenant_attnum;
	int			kind_attnum;
	bool		administration;
	Oid			user;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tenant_airbyte.guard_administration_operations() must be fired BEFORE INSERT OR UPDATE FOR EACH ROW")));

	desc = RelationGetDescr(trigdata->tg_relation);
	tenant_attnum = SPI_fnumber(desc, "tenant_id");
	kind_attnum = SPI_fnumber(desc, "kind");
	if (tenant_attnum <= 0 || kind_attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("table \"%s\" has no columns \"tenant_id\" and \"kind\"",
						RelationGetRelationName(trigdata->tg_relation))));

	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	administration = is_administration(row, desc, tenant_attnum, kind_attnum) ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		 is_administration(trigdata->tg_trigtuple, desc, tenant_attnum, kind_attnum));
	if (!administration)
		return PointerGetDatum(row);

	user = GetUserId();
	if (!superuser_arg(user) && user != get_role_oid(WORKER_ROLE, true))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the background worker records administration operations"),
				 errdetail("Operations of the admin_* kinds and of tenant '(administration)' come from the superuser airbyte_* functions."),
				 errhint("Call tenant_airbyte.airbyte_create_workspace() and the other airbyte_* functions as a superuser.")));
	return PointerGetDatum(row);
}

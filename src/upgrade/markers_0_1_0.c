/*-------------------------------------------------------------------------
 *
 * markers_0_1_0.c
 *	  Removing release 0.1.0's provisioning markers once the upgrade that
 *	  took them over has committed.
 *
 * 0.1.0 recorded "a workspace create may have been sent for this tenant"
 * as a file $PGDATA/pg_tenant_airbyte/<16 hex digits of the tenant id's
 * hash> holding the tenant id, removed when the tenant's workspace row
 * committed.  0.2.0 records the same fact as an operation row.  The
 * upgrade script (sql/tenant_airbyte--0.1.0--0.2.0.sql) reads each file
 * with pg_ls_dir() and pg_read_file(), records a provision operation that
 * the next provision of the tenant reconciles from, and calls this to
 * remove the file: only after that transaction commits, so an upgrade
 * that fails or rolls back leaves every marker where it was.
 *
 * The SQL function is created, called and dropped by the upgrade script
 * alone; no installed version has it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "fmgr.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#define MARKER_DIR_0_1_0 "pg_tenant_airbyte"

/* Marker files (paths relative to the data directory) to remove at commit. */
static List *markers_to_remove = NIL;
static bool callback_registered = false;

PG_FUNCTION_INFO_V1(tenant_airbyte_forget_0_1_0_marker);

/*
 * remove_markers_at_end
 *		Transaction callback: on commit, unlinks the queued files and
 *		fsyncs the directory; on abort, keeps them.  Either way the queue
 *		is emptied (it lives in TopMemoryContext).
 */
static void
remove_markers_at_end(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT)
		return;
	if (event == XACT_EVENT_COMMIT && markers_to_remove != NIL)
	{
		foreach(lc, markers_to_remove)
		{
			const char *path = lfirst(lc);

			if (unlink(path) != 0 && errno != ENOENT)
				elog(LOG, "tenant_airbyte: could not remove \"%s\": %m", path);
		}
		fsync_fname(MARKER_DIR_0_1_0, true);
	}
	list_free_deep(markers_to_remove);
	markers_to_remove = NIL;
}

/*
 * tenant_airbyte_forget_0_1_0_marker(name text) RETURNS void
 *		Queues the marker file of that name for removal when the current
 *		transaction commits.  The name must be a marker's: 16 lower-case
 *		hex digits, so no other file can be named.
 */
Datum
tenant_airbyte_forget_0_1_0_marker(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MemoryContext old;
	int			i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			break;
	if (i != 16 || name[i] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not the name of a tenant_airbyte 0.1.0 provisioning marker", name),
				 errdetail("A marker's name is 16 hexadecimal digits.")));

	if (!callback_registered)
	{
		RegisterXactCallback(remove_markers_at_end, NULL);
		callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	markers_to_remove = lappend(markers_to_remove, psprintf("%s/%s", MARKER_DIR_0_1_0, name));
	MemoryContextSwitchTo(old);
	PG_RETURN_VOID();
}

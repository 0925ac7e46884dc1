/*-------------------------------------------------------------------------
 *
 * provision_marker.c
 *	  The "a workspace create may have been sent for this tenant" marker:
 *	  a file in $PGDATA/pg_tenant_airbyte, fsynced before the create is
 *	  sent, removed only when a transaction that recorded the tenant's
 *	  workspace commits.
 *
 * A file rather than a table row because it must survive exactly what
 * undoes a row: the caller's rollback and a killed backend.  Why it
 * exists and how provisioning uses it: the comment at the top of
 * provision.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "provision.h"
#include "tenant_airbyte.h"

#define MARKER_DIR "pg_tenant_airbyte"

/* Markers to remove when the current transaction commits. */
typedef struct PendingClear
{
	char	   *path;
	SubTransactionId subid;
} PendingClear;

static List *pending_clears = NIL;
static bool callbacks_registered = false;

/* A marker set (or found) whose file and directory entry are not fsynced yet. */
typedef struct UnsyncedMarker
{
	char	   *path;
	char	   *tenant_id;		/* written into the file once it is durable */
} UnsyncedMarker;

/* In TopTransactionContext; synced before the transaction commits. */
static List *unsynced_markers = NIL;
static bool defer_marker_sync = false;

static void register_marker_callbacks(void);
static void marker_sync(void);

PG_FUNCTION_INFO_V1(tenant_airbyte_provision_marker);

/* Relative to the data directory, which is every backend's cwd. */
static char *
marker_path(const char *tenant_id)
{
	uint64		h = hash_bytes_extended((const unsigned char *) tenant_id,
										strlen(tenant_id), 0);

	return psprintf("%s/%016llx", MARKER_DIR, (unsigned long long) h);
}

static bool
marker_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/*
 * marker_set
 *		Makes sure the tenant's marker exists and will be durable before the
 *		caller can send a create: creates the (empty) file if needed and
 *		queues it for marker_sync, right away or, when the background worker
 *		deferred it, just before the transaction commits.  A marker that
 *		already existed is queued too: an earlier attempt may have created
 *		it and died before syncing it.
 */
static void
marker_set(const char *path, const char *tenant_id, bool existed)
{
	MemoryContext old;
	UnsyncedMarker *um;

	if (!existed)
	{
		int			fd;

		if (MakePGDirectory(MARKER_DIR) < 0 && errno != EEXIST)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", MARKER_DIR)));
		fd = OpenTransientFile(path, O_CREAT | O_WRONLY | PG_BINARY);
		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create file \"%s\": %m", path)));
		CloseTransientFile(fd);
	}

	register_marker_callbacks();
	old = MemoryContextSwitchTo(TopTransactionContext);
	um = palloc(sizeof(UnsyncedMarker));
	um->path = pstrdup(path);
	um->tenant_id = existed ? NULL : pstrdup(tenant_id);
	unsynced_markers = lappend(unsynced_markers, um);
	MemoryContextSwitchTo(old);

	if (!defer_marker_sync)
		marker_sync();
}

/*
 * marker_sync
 *		fsyncs every queued marker file, then their directory once, and only
 *		then writes the tenant id into the new ones (not synced: the
 *		existence of the file is the record, the text is for people).
 *		Batching is what makes markers cheap: one fsync of the directory
 *		for all of them, and no data block to flush with each file.
 */
static void
marker_sync(void)
{
	ListCell   *lc;

	if (unsynced_markers == NIL)
		return;

	foreach(lc, unsynced_markers)
	{
		UnsyncedMarker *um = (UnsyncedMarker *) lfirst(lc);
		int			fd = OpenTransientFile(um->path, O_RDWR | PG_BINARY);

		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", um->path)));
		if (pg_fsync(fd) != 0)
		{
			int			save_errno = errno;

			CloseTransientFile(fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not fsync file \"%s\": %m", um->path)));
		}
		CloseTransientFile(fd);
	}
	fsync_fname(MARKER_DIR, true);

	foreach(lc, unsynced_markers)
	{
		UnsyncedMarker *um = (UnsyncedMarker *) lfirst(lc);
		int			fd;

		if (um->tenant_id == NULL)
			continue;
		fd = OpenTransientFile(um->path, O_WRONLY | PG_BINARY);
		if (fd < 0)
			continue;
		if (write(fd, um->tenant_id, strlen(um->tenant_id)) < 0)
			elog(LOG, "tenant_airbyte: could not write \"%s\": %m", um->path);
		CloseTransientFile(fd);
	}
	list_free_deep(unsynced_markers);
	unsynced_markers = NIL;
}

/*
 * provision_defer_marker_sync
 *		For the background worker, which sets the markers of many deliveries
 *		in one transaction and sends their creates only after it commits:
 *		with defer, markers are fsynced together at pre-commit instead of
 *		one by one.
 */
void
provision_defer_marker_sync(bool defer)
{
	defer_marker_sync = defer;
}

/*
 * marker_xact_callback
 *		At COMMIT the recorded workspaces are durable, so their markers go.
 *		An abort keeps them: that is their whole point.  A failed unlink
 *		only costs one needless reconciliation later, so it is not an error.
 */
static void
marker_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* deferred markers become durable before the commit can start a create */
			marker_sync();
			break;
		case XACT_EVENT_COMMIT:
			foreach(lc, pending_clears)
			{
				PendingClear *pc = (PendingClear *) lfirst(lc);

				if (unlink(pc->path) != 0 && errno != ENOENT)
					elog(LOG, "tenant_airbyte: could not remove \"%s\": %m", pc->path);
			}
			pending_clears = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_ABORT:
			/* an unsynced marker stays; whoever finds it next syncs it */
			pending_clears = NIL;
			unsynced_markers = NIL;
			break;
		default:
			break;
	}
}

/* A subtransaction that aborts takes back the removals it asked for. */
static void
marker_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_clears)
		{
			PendingClear *pc = (PendingClear *) lfirst(lc);

			if (pc->subid == mySubid)
				pending_clears = foreach_delete_current(pending_clears, lc);
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_clears)
		{
			PendingClear *pc = (PendingClear *) lfirst(lc);

			if (pc->subid == mySubid)
				pc->subid = parentSubid;
		}
	}
}

static void
marker_clear_at_commit(const char *path)
{
	MemoryContext old;
	PendingClear *pc;

	register_marker_callbacks();
	old = MemoryContextSwitchTo(TopTransactionContext);
	pc = palloc(sizeof(PendingClear));
	pc->path = pstrdup(path);
	pc->subid = GetCurrentSubTransactionId();
	pending_clears = lappend(pending_clears, pc);
	MemoryContextSwitchTo(old);
}

static void
register_marker_callbacks(void)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(marker_xact_callback, NULL);
		RegisterSubXactCallback(marker_subxact_callback, NULL);
		callbacks_registered = true;
	}
}

/*
 * provision_marker(tenant_id, operation) returns boolean
 *		SQL access for provision_begin() / provision_finish().  Writes files
 *		in the data directory, hence superusers only.
 */
Datum
tenant_airbyte_provision_marker(PG_FUNCTION_ARGS)
{
	char	   *tenant_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *operation = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *path = marker_path(tenant_id);
	bool		existed = marker_exists(path);

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function provision_marker")));

	if (strcmp(operation, "set") == 0)
		marker_set(path, tenant_id, existed);
	else if (strcmp(operation, "clear_at_commit") == 0)
		marker_clear_at_commit(path);
	else if (strcmp(operation, "exists") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown marker operation \"%s\"", operation),
				 errhint("Use set, exists or clear_at_commit.")));
	PG_RETURN_BOOL(existed);
}


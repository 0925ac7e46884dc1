/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  Starts the background worker when its database exists, and gets it
 *	  out of the way of commands that need that database to themselves.
 *
 * A background worker connects to one database for life.  Were it
 * registered directly, a missing database (a typo in
 * tenant_airbyte.database, or a DROP DATABASE) would make it fail and be
 * restarted forever, and its connection would make DROP DATABASE fail with
 * "database is being accessed by other users".  So the postmaster starts
 * this small launcher instead, connected to no database: it starts the
 * worker when the database exists, waits quietly when it does not, and
 * starts the worker again when it stops.  A utility hook in every backend
 * asks the worker to disconnect before DROP DATABASE (and the other
 * commands that refuse to run while anyone is connected), and the launcher
 * then waits a few seconds before starting it again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker.h"

/* How often the launcher looks for a database (or role) that does not exist yet. */
#define LAUNCHER_NAP_MS 2000
/* The least time between two starts of the worker, so a failing one cannot spin. */
#define WORKER_RESTART_MS 5000

PGDLLEXPORT void tenant_airbyte_launcher_main(Datum main_arg);

static ProcessUtility_hook_type prev_process_utility_hook = NULL;

static void launcher_on_exit(int code, Datum arg);
static bool worker_database_exists(void);
static bool start_worker(BackgroundWorkerHandle **handle);
static void tenant_airbyte_process_utility(PlannedStmt *pstmt, const char *queryString,
										   bool readOnlyTree, ProcessUtilityContext context,
										   ParamListInfo params, QueryEnvironment *queryEnv,
										   DestReceiver *dest, QueryCompletion *qc);

/*
 * launcher_register
 *		Called from _PG_init while preloading: registers the launcher and
 *		the utility hook that frees the worker's database on demand.
 */
void
launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tenant_airbyte");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "tenant_airbyte_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tenant_airbyte launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "tenant_airbyte launcher");
	RegisterBackgroundWorker(&worker);

	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = tenant_airbyte_process_utility;
}

/*
 * tenant_airbyte_launcher_main
 *		Keeps exactly one worker running while its database exists.
 */
void
tenant_airbyte_launcher_main(Datum main_arg)
{
	BackgroundWorkerHandle *handle = NULL;
	TimestampTz last_start = 0;
	bool		reported_missing = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* shared catalogs only: enough to read pg_database */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("tenant_airbyte launcher");

	shmem_set_launcher(true);
	before_shmem_exit(launcher_on_exit, (Datum) 0);

	for (;;)
	{
		long		nap_ms = LAUNCHER_NAP_MS;
		pid_t		pid;
		TimestampTz hold_until;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (handle != NULL &&
			GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
		{
			pfree(handle);
			handle = NULL;
		}

		if (handle == NULL)
		{
			TimestampTz now = GetCurrentTimestamp();
			TimestampTz earliest = TimestampTzPlusMilliseconds(last_start, WORKER_RESTART_MS);

			if (shmem_take_relaunch_hold(&hold_until))
				nap_ms = Max(1, TimestampDifferenceMilliseconds(now, hold_until));
			else if (now < earliest)
				nap_ms = Max(1, TimestampDifferenceMilliseconds(now, earliest));
			else if (!worker_database_exists())
			{
				if (!reported_missing)
					ereport(LOG,
							(errmsg("tenant_airbyte worker waits for database \"%s\" to exist",
									tenant_airbyte_database),
							 errhint("Create the database, or point tenant_airbyte.database at the one that has the extension.")));
				reported_missing = true;
			}
			else
			{
				reported_missing = false;
				last_start = now;
				if (!start_worker(&handle))
					nap_ms = WORKER_RESTART_MS;
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

static void
launcher_on_exit(int code, Datum arg)
{
	shmem_set_launcher(false);
}

/*
 * worker_database_exists
 *		Whether the worker can start: its database exists (and its role,
 *		see below).  Reads pg_database, a shared catalog the launcher can see without
 *		being connected to any database.  A plain scan, as the autovacuum
 *		launcher does: its name index cannot be used before a database is
 *		selected.
 */
static bool
worker_database_exists(void)
{
	bool		exists = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!exists && HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		exists = strcmp(NameStr(db->datname), tenant_airbyte_database) == 0 &&
			db->datallowconn;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	/*
	 * The worker connects as its own role, which CREATE EXTENSION creates:
	 * until then there is nothing for it to do anyway.
	 */
	if (exists)
	{
		bool		role = false;

		rel = table_open(AuthIdRelationId, AccessShareLock);
		scan = table_beginscan_catalog(rel, 0, NULL);
		while (!role && HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
		{
			Form_pg_authid authid = (Form_pg_authid) GETSTRUCT(tuple);

			role = strcmp(NameStr(authid->rolname), WORKER_ROLE) == 0 && authid->rolcanlogin;
		}
		table_endscan(scan);
		table_close(rel, AccessShareLock);
		exists = role;
	}

	CommitTransactionCommand();
	return exists;
}

/*
 * start_worker
 *		Registers the worker as a dynamic background worker that reports
 *		its start and stop to us, so that we notice at once when to start
 *		it again.
 */
static bool
start_worker(BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tenant_airbyte");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "tenant_airbyte_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tenant_airbyte worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "tenant_airbyte worker");
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, handle))
	{
		ereport(WARNING,
				(errmsg("could not start the tenant_airbyte worker"),
				 errhint("Raise max_worker_processes.")));
		*handle = NULL;
		return false;
	}
	return true;
}

/*
 * database_needs_worker_gone
 *		Whether a utility statement refuses to run while another session is
 *		connected to the worker's database: dropping, renaming, moving it or
 *		using it as a template.
 */
static bool
database_needs_worker_gone(Node *parsetree)
{
	const char *dbname = NULL;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			dbname = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				dbname = ((RenameStmt *) parsetree)->subname;
			break;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
			{
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
					dbname = ((AlterDatabaseStmt *) parsetree)->dbname;
			}
			break;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) parsetree)->options)
			{
				DefElem    *option = (DefElem *) lfirst(lc);

				if (strcmp(option->defname, "template") == 0 && option->arg != NULL)
					dbname = defGetString(option);
			}
			break;
		default:
			break;
	}

	return dbname != NULL && tenant_airbyte_database != NULL &&
		strcmp(dbname, tenant_airbyte_database) == 0;
}

/*
 * statement_concerns_extension
 *		CREATE or DROP EXTENSION tenant_airbyte: the worker should look at
 *		once (at commit) whether it has an inbox to serve.
 */
static bool
statement_concerns_extension(Node *parsetree)
{
	ListCell   *lc;

	if (IsA(parsetree, CreateExtensionStmt))
		return strcmp(((CreateExtensionStmt *) parsetree)->extname, "tenant_airbyte") == 0;

	if (IsA(parsetree, DropStmt) && ((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
	{
		foreach(lc, ((DropStmt *) parsetree)->objects)
		{
			if (strcmp(strVal(lfirst(lc)), "tenant_airbyte") == 0)
				return true;
		}
	}
	return false;
}

/*
 * tenant_airbyte_process_utility
 *		Asks the worker to disconnect before a command that needs its
 *		database free; the command itself then waits (up to five seconds,
 *		PostgreSQL's own limit) for the worker to be gone.  Wakes the worker
 *		at the commit of CREATE or DROP EXTENSION tenant_airbyte.
 */
static void
tenant_airbyte_process_utility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc)
{
	if (database_needs_worker_gone(pstmt->utilityStmt))
		shmem_ask_worker_to_leave();
	if (statement_concerns_extension(pstmt->utilityStmt))
		shmem_wake_worker_at_commit();

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

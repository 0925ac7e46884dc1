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
 * then waits a few seconds before starting it again.  It asks only when the
 * command will get past PostgreSQL's own checks (ownership, CREATEDB, no
 * transaction block, ...): otherwise any login could keep the worker out
 * of its database, and interrupt its requests, by repeating a command that
 * is refused anyway.
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
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
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
static bool worker_database_exists(bool *role_missing);
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
	bool		role_missing = false;

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
			else if (!worker_database_exists(&role_missing))
			{
				if (!reported_missing && role_missing)
					ereport(LOG,
							(errmsg("tenant_airbyte worker waits for its role \"%s\" to exist",
									WORKER_ROLE),
							 errdetail("The extension's install script creates the role the worker connects as."),
							 errhint("Run CREATE EXTENSION tenant_airbyte in database \"%s\", or ALTER EXTENSION tenant_airbyte UPDATE where an older version is installed.",
									 tenant_airbyte_database)));
				else if (!reported_missing)
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
 *		see below; *role_missing says which one is missing).  Reads pg_database, a shared catalog the launcher can see without
 *		being connected to any database.  A plain scan, as the autovacuum
 *		launcher does: its name index cannot be used before a database is
 *		selected.
 */
static bool
worker_database_exists(bool *role_missing)
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
		*role_missing = !role;
		exists = role;
	}
	else
		*role_missing = false;

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
 * owns_database
 *		Whether the current user owns the database (superusers own them all),
 *		the check PostgreSQL makes before dropping, renaming or moving it.
 */
static bool
owns_database(Oid dboid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, dboid, GetUserId());
#else
	return pg_database_ownercheck(dboid, GetUserId());
#endif
}

/*
 * database_is_template
 *		pg_database.datistemplate: anyone with CREATEDB may copy such a
 *		database; any other only its owner.
 */
static bool
database_is_template(Oid dboid)
{
	HeapTuple	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	bool		is_template = false;

	if (HeapTupleIsValid(tuple))
	{
		is_template = ((Form_pg_database) GETSTRUCT(tuple))->datistemplate;
		ReleaseSysCache(tuple);
	}
	return is_template;
}

/*
 * database_needs_worker_gone
 *		Whether a utility statement refuses to run while another session is
 *		connected to the worker's database (dropping, renaming, moving it
 *		or using it as a template) and will get past the checks PostgreSQL
 *		makes before it looks for other sessions.  Those checks are repeated
 *		here, in the order dbcommands.c makes them, because the worker must
 *		be asked to leave before the command runs, and a refused command
 *		must not move it.  Where a check cannot be known in advance (a
 *		tablespace's permissions, say) the command is let move the worker:
 *		the remaining refusals are ones only a privileged role can provoke.
 */
static bool
database_needs_worker_gone(Node *parsetree, bool is_top_level)
{
	const char *dbname = NULL;
	const char *new_name = NULL;
	Oid			dboid;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			dbname = ((DropdbStmt *) parsetree)->dbname;
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
			{
				dbname = ((RenameStmt *) parsetree)->subname;
				new_name = ((RenameStmt *) parsetree)->newname;
			}
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

	if (dbname == NULL || tenant_airbyte_database == NULL ||
		strcmp(dbname, tenant_airbyte_database) != 0)
		return false;

	/* All four refuse to run in a transaction block or a function. */
	if (!is_top_level || IsTransactionBlock())
		return false;

	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid))
		return false;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			/* dropdb(): owner; not a template; not the current database */
			return owns_database(dboid) && !database_is_template(dboid) &&
				dboid != MyDatabaseId;
		case T_RenameStmt:
			/* RenameDatabase(): owner with CREATEDB; new name free; not current */
			return owns_database(dboid) && have_createdb_privilege() &&
				!OidIsValid(get_database_oid(new_name, true)) &&
				dboid != MyDatabaseId;
		case T_AlterDatabaseStmt:
			/* movedb(): owner; not the current database */
			return owns_database(dboid) && dboid != MyDatabaseId;
		case T_CreatedbStmt:
			/* createdb(): CREATEDB; a template, or one the user owns */
			return have_createdb_privilege() &&
				(database_is_template(dboid) || owns_database(dboid));
		default:
			return false;
	}
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
 *		database free and will run; the command itself then waits (up to five seconds,
 *		PostgreSQL's own limit) for the worker to be gone.  Wakes the worker
 *		at the commit of CREATE or DROP EXTENSION tenant_airbyte.
 */
static void
tenant_airbyte_process_utility(PlannedStmt *pstmt, const char *queryString,
							   bool readOnlyTree, ProcessUtilityContext context,
							   ParamListInfo params, QueryEnvironment *queryEnv,
							   DestReceiver *dest, QueryCompletion *qc)
{
	if (database_needs_worker_gone(pstmt->utilityStmt,
								   context == PROCESS_UTILITY_TOPLEVEL))
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

/*-------------------------------------------------------------------------
 *
 * handoff.c
 *	  engine_run(): a backend hands an operation to the background worker
 *	  through a slot in shared memory and waits for its outcome.
 *
 * A slot goes FREE -> FILLING (a backend reserved it and copies the
 * request in) -> REQUESTED (the worker may take it) -> ACCEPTED (the
 * worker committed the operation row; operation_id is set) -> DONE (the
 * worker recorded the outcome and copied it in) -> FREE (the backend read
 * it).  A backend whose wait is interrupted (cancel, statement_timeout,
 * termination) marks its slot abandoned: the operation goes on, and the
 * worker frees the slot instead of answering.  A request the worker has
 * not accepted yet stays REQUESTED while another unfinished operation of
 * the same tenant, kind and subject exists (operations_one_unfinished),
 * and the worker tries again after each operation it finishes.
 *
 * The secret of a request (a source's credentials) exists only in the
 * slot until the worker copies it into its own memory at acceptance, when
 * the slot's copy is wiped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "airbyte_api.h"
#include "engine.h"
#include "handoff.h"
#include "shmem.h"
#include "tenant_airbyte.h"

#define HANDOFF_SLOTS HANDOFF_MAX_SLOTS
#define HANDOFF_PAYLOAD (64 * 1024)
/* How long a waiting backend tolerates having no worker (it restarts). */
#define WORKER_GONE_GRACE_MS 15000

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_FILLING,
	SLOT_REQUESTED,
	SLOT_ACCEPTED,
	SLOT_DONE
} SlotState;

typedef struct HandoffSlot
{
	SlotState	state;
	bool		abandoned;
	uint64		generation;
	Oid			database;
	Latch	   *latch;			/* the waiting backend's */
	int			owner_pid;		/* the waiting backend */
	int64		operation_id;
	char		status[16];		/* reply: done, failed, dead, error */
	/* request: kind \0 tenant \0 params \0 subject \0 [secret \0]; reply: outcome \0 */
	bool		has_secret;
	Size		length;
	char		payload[HANDOFF_PAYLOAD];
} HandoffSlot;

typedef struct HandoffShared
{
	slock_t		mutex;
	uint64		next_generation;
	HandoffSlot slots[HANDOFF_SLOTS];
} HandoffShared;

static HandoffShared *handoff = NULL;
static bool exit_callback_registered = false;

static void abandon_slots_at_exit(int code, Datum arg);

Size
handoff_shmem_size(void)
{
	return MAXALIGN(sizeof(HandoffShared));
}

/* Called with AddinShmemInitLock held, from shmem.c's startup hook. */
void
handoff_shmem_init(void)
{
	bool		found;

	handoff = ShmemInitStruct("tenant_airbyte handoff", sizeof(HandoffShared), &found);
	if (!found)
	{
		memset(handoff, 0, sizeof(HandoffShared));
		SpinLockInit(&handoff->mutex);
	}
}

/*
 * engine_require_worker
 *		Fails at once, saying why and what to do, unless a worker serves
 *		this database: never a wait that cannot end.
 */
void
engine_require_worker(void)
{
	int			pid;
	Oid			database;
	Oid			connected_to;
	int			waited_ms = 0;

	if (!shmem_worker_serving(&pid, &database, &connected_to) || handoff == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_airbyte's background worker is not running: the library is not in shared_preload_libraries"),
				 errdetail("Only the background worker calls Airbyte; this function hands it the work and waits."),
				 errhint("Add tenant_airbyte to shared_preload_libraries, set tenant_airbyte.database to this database and restart the server.")));
	if (pid == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_airbyte's background worker is not running"),
				 errhint("It is restarted within seconds after a crash; look in the server log for why it stopped, then call again.")));

	/*
	 * Connected here but not serving yet (it looks for the extension every
	 * few seconds, e.g. right after CREATE EXTENSION): wake it and give it
	 * a moment.
	 */
	while (database != MyDatabaseId && connected_to == MyDatabaseId && pid != 0 &&
		   waited_ms < WORKER_GONE_GRACE_MS)
	{
		shmem_wake_worker();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 50;
		(void) shmem_worker_serving(&pid, &database, &connected_to);
	}
	if (database != MyDatabaseId)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant_airbyte's background worker does not serve this database"),
				 errdetail("tenant_airbyte.database is \"%s\"%s.", tenant_airbyte_database,
						   OidIsValid(database) ? "" : ", and the worker is not serving it yet"),
				 errhint("Call this function in database \"%s\", or set tenant_airbyte.database to this one and restart the server.",
						 tenant_airbyte_database)));
}

/* Reserves a free slot, waiting (interruptibly) while all are busy. */
static int
reserve_slot(void)
{
	for (;;)
	{
		int			i;

		SpinLockAcquire(&handoff->mutex);
		for (i = 0; i < HANDOFF_SLOTS; i++)
		{
			if (handoff->slots[i].state == SLOT_FREE)
			{
				HandoffSlot *slot = &handoff->slots[i];

				slot->state = SLOT_FILLING;
				slot->abandoned = false;
				slot->generation = ++handoff->next_generation;
				slot->database = MyDatabaseId;
				slot->latch = MyLatch;
				slot->owner_pid = MyProcPid;
				slot->operation_id = 0;
				slot->status[0] = '\0';
				SpinLockRelease(&handoff->mutex);
				return i;
			}
		}
		SpinLockRelease(&handoff->mutex);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
append_payload(HandoffSlot *slot, const char *s)
{
	Size		len = strlen(s) + 1;

	if (slot->length + len > HANDOFF_PAYLOAD)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the request is too large to hand to the background worker"),
				 errdetail("Its parameters and configuration take more than %d bytes.", HANDOFF_PAYLOAD)));
	memcpy(slot->payload + slot->length, s, len);
	slot->length += len;
}

/* Marks the slot abandoned, or frees it when the worker has answered. */
static void
abandon_slot(int i, uint64 generation)
{
	HandoffSlot *slot = &handoff->slots[i];

	SpinLockAcquire(&handoff->mutex);
	if (slot->generation == generation)
	{
		if (slot->state == SLOT_DONE || slot->state == SLOT_FILLING)
			slot->state = SLOT_FREE;
		else
			slot->abandoned = true;
	}
	SpinLockRelease(&handoff->mutex);
}

/* Lets go of every slot this backend still holds, as it exits. */
static void
abandon_slots_at_exit(int code, Datum arg)
{
	int			i;

	if (handoff == NULL)
		return;
	SpinLockAcquire(&handoff->mutex);
	for (i = 0; i < HANDOFF_SLOTS; i++)
	{
		HandoffSlot *slot = &handoff->slots[i];

		if (slot->state == SLOT_FREE || slot->owner_pid != MyProcPid)
			continue;
		if (slot->state == SLOT_DONE || slot->state == SLOT_FILLING)
			slot->state = SLOT_FREE;
		else
			slot->abandoned = true;
	}
	SpinLockRelease(&handoff->mutex);
}

/* Raises the error a failed or dead operation recorded. */
void
engine_raise_outcome(const char *status, Jsonb *outcome, int64 operation_id)
{
	char	   *sqlstate = outcome ? airbyte_string_field(outcome, "sqlstate") : NULL;
	char	   *message = outcome ? airbyte_string_field(outcome, "message") : NULL;
	char	   *detail = outcome ? airbyte_string_field(outcome, "detail") : NULL;
	char	   *hint = outcome ? airbyte_string_field(outcome, "hint") : NULL;
	int			code = ERRCODE_AIRBYTE_UNAVAILABLE;

	if (sqlstate != NULL && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);

	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", message ? message : "the operation failed"),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 operation_id > 0 ? errcontext("operation " INT64_FORMAT " (%s)", operation_id, status) : 0));
}

/*
 * engine_run
 *		See engine.h.
 */
Jsonb *
engine_run(const char *kind, const char *tenant_id, Jsonb *params,
		   const char *subject, const char *secret)
{
	const char *status;
	int64		operation_id;
	Jsonb	   *outcome = engine_run_status(kind, tenant_id, params, subject, secret,
											&status, &operation_id);

	if (strcmp(status, "done") != 0)
		engine_raise_outcome(status, outcome, operation_id);
	return outcome;
}

/*
 * engine_run_status
 *		engine_run() that returns a failed operation's outcome (its error)
 *		too, with *status saying how it ended.
 */
Jsonb *
engine_run_status(const char *kind, const char *tenant_id, Jsonb *params,
				  const char *subject, const char *secret,
				  const char **status_out, int64 *operation_id_out)
{
	volatile int i;
	volatile uint64 generation;
	HandoffSlot *volatile slot;
	char		status[16];
	char	   *volatile outcome_text = NULL;
	volatile int64 operation_id = 0;

	engine_require_worker();

	/*
	 * A backend terminated while it waits (FATAL) never reaches the
	 * PG_CATCH below; its slot is let go at exit instead.
	 */
	if (!exit_callback_registered)
	{
		before_shmem_exit(abandon_slots_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}

	i = reserve_slot();
	slot = &handoff->slots[i];
	generation = slot->generation;

	PG_TRY();
	{
		TimestampTz gone_since = 0;

		slot->length = 0;
		slot->has_secret = secret != NULL;
		append_payload(slot, kind);
		append_payload(slot, tenant_id);
		append_payload(slot, params ? JsonbToCString(NULL, &params->root, VARSIZE(params)) : "{}");
		append_payload(slot, subject ? subject : "");
		if (secret != NULL)
			append_payload(slot, secret);

		SpinLockAcquire(&handoff->mutex);
		slot->state = SLOT_REQUESTED;
		SpinLockRelease(&handoff->mutex);
		shmem_wake_worker();

		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		for (;;)
		{
			SlotState	state;
			int			pid;
			Oid			database;
			Oid			connected_to;

			SpinLockAcquire(&handoff->mutex);
			state = slot->state;
			operation_id = slot->operation_id;
			SpinLockRelease(&handoff->mutex);
			if (state == SLOT_DONE)
				break;

			if (!shmem_worker_serving(&pid, &database, &connected_to) || pid == 0 ||
				database != MyDatabaseId)
			{
				TimestampTz now = GetCurrentTimestamp();

				if (gone_since == 0)
					gone_since = now;
				else if (TimestampDifferenceExceeds(gone_since, now, WORKER_GONE_GRACE_MS))
				{
					if (operation_id > 0)
						ereport(ERROR,
								(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								 errmsg("tenant_airbyte's background worker stopped while operation " INT64_FORMAT " was under way", operation_id),
								 errhint("The operation is recorded and completes when the worker is back; see tenant_airbyte.operations, or call again.")));
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("tenant_airbyte's background worker stopped before it took up the request"),
							 errhint("Nothing was sent to Airbyte; look in the server log for why it stopped, then call again.")));
				}
			}
			else
				gone_since = 0;

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		pgstat_report_wait_end();

		strlcpy(status, slot->status, sizeof(status));
		outcome_text = pnstrdup(slot->payload, strnlen(slot->payload, HANDOFF_PAYLOAD));
		SpinLockAcquire(&handoff->mutex);
		slot->state = SLOT_FREE;
		SpinLockRelease(&handoff->mutex);
	}
	PG_CATCH();
	{
		pgstat_report_wait_end();
		abandon_slot(i, generation);
		PG_RE_THROW();
	}
	PG_END_TRY();

	*status_out = pstrdup(status);
	*operation_id_out = operation_id;
	return outcome_text[0] ?
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(outcome_text))) : NULL;
}

/* ------------------------------------------------------------------------
 * The worker's side
 * ------------------------------------------------------------------------ */

/*
 * handoff_take_requests
 *		Copies out every request for this database that waits to be
 *		accepted (in the current memory context).  They stay REQUESTED
 *		until handoff_accepted() or handoff_reply_request().
 */
List *
handoff_take_requests(void)
{
	List	   *requests = NIL;
	int			i;

	if (handoff == NULL)
		return NIL;

	for (i = 0; i < HANDOFF_SLOTS; i++)
	{
		HandoffSlot *slot = &handoff->slots[i];
		HandoffRequest *request;
		const char *p;
		bool		take;

		SpinLockAcquire(&handoff->mutex);
		take = slot->state == SLOT_REQUESTED && slot->database == MyDatabaseId;
		SpinLockRelease(&handoff->mutex);
		if (!take)
			continue;

		/* REQUESTED: only the worker touches the payload now */
		request = palloc0(sizeof(HandoffRequest));
		request->slot = i;
		request->generation = slot->generation;
		p = slot->payload;
		request->kind = pstrdup(p);
		p += strlen(p) + 1;
		request->tenant_id = pstrdup(p);
		p += strlen(p) + 1;
		request->params = pstrdup(p);
		p += strlen(p) + 1;
		request->subject = pstrdup(p);
		p += strlen(p) + 1;
		request->secret = slot->has_secret ? pstrdup(p) : NULL;
		requests = lappend(requests, request);
	}
	return requests;
}

/* The slot of request, if it still is that request's. */
static HandoffSlot *
slot_of(HandoffRequest *request)
{
	HandoffSlot *slot = &handoff->slots[request->slot];

	return slot->generation == request->generation ? slot : NULL;
}

/*
 * handoff_accepted
 *		The operation row of request is committed: wipe the secret, note the
 *		operation, and free the slot at once when its backend stopped
 *		waiting before it was accepted.
 */
void
handoff_accepted(HandoffRequest *request, int64 operation_id)
{
	HandoffSlot *slot;

	SpinLockAcquire(&handoff->mutex);
	slot = slot_of(request);
	if (slot != NULL && slot->state == SLOT_REQUESTED)
	{
		explicit_bzero(slot->payload, slot->length);
		slot->length = 0;
		slot->operation_id = operation_id;
		slot->state = slot->abandoned ? SLOT_FREE : SLOT_ACCEPTED;
	}
	SpinLockRelease(&handoff->mutex);
}

/* Fills a slot's reply and wakes its backend; called with the mutex held. */
static void
answer_slot(HandoffSlot *slot, const char *status, const char *outcome)
{
	Size		len = outcome ? strlen(outcome) : 0;

	if (slot->abandoned)
	{
		explicit_bzero(slot->payload, slot->length);
		slot->state = SLOT_FREE;
		return;
	}
	strlcpy(slot->status, status, sizeof(slot->status));
	if (len >= HANDOFF_PAYLOAD)
		len = 0;				/* cannot happen with our outcomes; answer without it */
	memcpy(slot->payload, outcome ? outcome : "", len);
	slot->payload[len] = '\0';
	slot->length = len + 1;
	slot->state = SLOT_DONE;
	SetLatch(slot->latch);
}

/*
 * handoff_reply_request
 *		Answers a request that never became an operation (refused before
 *		anything was recorded).
 */
void
handoff_reply_request(HandoffRequest *request, const char *status, const char *outcome)
{
	HandoffSlot *slot;

	SpinLockAcquire(&handoff->mutex);
	slot = slot_of(request);
	if (slot != NULL && slot->state == SLOT_REQUESTED)
		answer_slot(slot, status, outcome);
	SpinLockRelease(&handoff->mutex);
}

/*
 * handoff_reply
 *		The outcome of operation_id is committed: answer whoever waits for it.
 */
void
handoff_reply(int64 operation_id, const char *status, const char *outcome)
{
	int			i;

	if (handoff == NULL)
		return;
	SpinLockAcquire(&handoff->mutex);
	for (i = 0; i < HANDOFF_SLOTS; i++)
	{
		HandoffSlot *slot = &handoff->slots[i];

		if (slot->state == SLOT_ACCEPTED && slot->operation_id == operation_id &&
			slot->database == MyDatabaseId)
			answer_slot(slot, status, outcome);
	}
	SpinLockRelease(&handoff->mutex);
}

/* Whether a backend waits for operation_id (and would see an early error). */
bool
handoff_has_waiter(int64 operation_id)
{
	bool		found = false;
	int			i;

	if (handoff == NULL)
		return false;
	SpinLockAcquire(&handoff->mutex);
	for (i = 0; i < HANDOFF_SLOTS && !found; i++)
	{
		HandoffSlot *slot = &handoff->slots[i];

		found = slot->state == SLOT_ACCEPTED && slot->operation_id == operation_id &&
			!slot->abandoned;
	}
	SpinLockRelease(&handoff->mutex);
	return found;
}

/*
 * handoff_waited_operations
 *		The operations that a backend still waits for or has not read the
 *		answer of yet (accepted or answered slots), at most max of them
 *		into ids; returns how many.  Retention keeps these rows.
 */
int
handoff_waited_operations(int64 *ids, int max)
{
	int			n = 0;
	int			i;

	if (handoff == NULL)
		return 0;
	SpinLockAcquire(&handoff->mutex);
	for (i = 0; i < HANDOFF_SLOTS && n < max; i++)
	{
		HandoffSlot *slot = &handoff->slots[i];

		if ((slot->state == SLOT_ACCEPTED || slot->state == SLOT_DONE) &&
			slot->operation_id > 0)
			ids[n++] = slot->operation_id;
	}
	SpinLockRelease(&handoff->mutex);
	return n;
}

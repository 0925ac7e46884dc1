/*-------------------------------------------------------------------------
 *
 * worker_step.c
 *	  One step of one operation, as a cycle of the background worker
 *	  (worker_cycle.c) takes it: in a subtransaction of its own, so that a
 *	  step that fails is retried later without undoing the others of the
 *	  cycle, with the failure logged and, for a lock held by the caller's
 *	  own transaction, told to the waiting caller at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "opqueue.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "worker_internal.h"

/*
 * worker_run_step
 *		One step of one operation, in its own subtransaction: start it
 *		(first) or act on its finished request, then either record the step
 *		whose request goes next or record the outcome.  While the claim
 *		cannot have been lost, the step is written later, with the others
 *		the transaction enters, before it commits (ops_write_steps); so is
 *		the outcome with outcome_later, for the caller to write with the
 *		others of its cycle (ops_record_batch) before anything reads them;
 *		its recorded_status is set then.  An error inside
 *		rolls back only this operation's step and counts as a transient
 *		failure; one that is a lock timeout is reported to a waiting caller
 *		at once, because its own transaction may hold that lock.
 */
StepResult
worker_run_step(Operation *job, bool first, CURLcode result, bool outcome_later)
{
	MemoryContext old_context = CurrentMemoryContext;
	ResourceOwner old_owner = CurrentResourceOwner;
	volatile StepResult outcome = STEP_FAIL;
	volatile bool lost = false;

	job->recorded_status = NULL;
	job->error_early_reply = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old_context);

	PG_TRY();
	{
		outcome = first ? engine_start(job) : engine_answer(job, result);

		if (outcome == STEP_SEND && !ops_claim_may_be_lost(job))
			ops_enter_step_later(job);
		else if (outcome == STEP_SEND)
			lost = !ops_enter_step(job);
		else if (outcome_later && !ops_claim_may_be_lost(job))
			ops_record_later(job, outcome);
		else
			lost = ops_record(job, outcome) == NULL;

		if (lost)
		{
			ereport(LOG,
					(errmsg("tenant_airbyte: operation " INT64_FORMAT " (tenant \"%s\") lost its claim; its result is discarded",
							job->id, job->tenant_id)));
			RollbackAndReleaseCurrentSubTransaction();
			job->recorded_status = NULL;
		}
		else
			ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old_context);
		CurrentResourceOwner = old_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		MemoryContext job_old;
		bool		lock = false;

		MemoryContextSwitchTo(old_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old_context);
		CurrentResourceOwner = old_owner;

		lock = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
		/* a name decided by the step that failed was not recorded */
		if (job->intended_name_unsaved)
		{
			job->intended_name = job->intended_name_before;
			job->intended_name_unsaved = false;
		}
		job_old = MemoryContextSwitchTo(job->context);
		job->error = lock ?
			psprintf("a lock the operation needs is held by another transaction: %s", edata->message) :
			psprintf("internal error: %s", edata->message);
		if (lock)
			job->error_early_reply =
				psprintf("{\"sqlstate\": \"55P03\", \"message\": %s, \"hint\": %s}",
						 op_json_string(psprintf("operation " INT64_FORMAT " (%s for tenant \"%s\") waits for a lock that another transaction holds, possibly the caller's own",
												 job->id, job->kind_name, job->tenant_id)),
						 op_json_string("Call it outside a transaction that has written this tenant's rows. The operation goes on and completes once the lock is free; its outcome is in tenant_airbyte.operations."));
		job->outcome = NULL;
		MemoryContextSwitchTo(job_old);
		job->http_status = 0;
		job->retry_delay_ms = lock ? 1000 : engine_retry_delay_ms(job, -1);
		job->attempt_unused = lock;
		FreeErrorData(edata);

		outcome = STEP_RETRY;
		lost = ops_record(job, STEP_RETRY) == NULL;
	}
	PG_END_TRY();

	/*
	 * Airbyte cannot be reached at all: the operation rides the outage out
	 * (those attempts are not counted), but a caller waiting for it hears
	 * now rather than after the outage.
	 */
	if (!lost && outcome == STEP_RETRY && job->attempt_unused && !job->quiet &&
		job->error_early_reply == NULL && job->outcome != NULL)
		job->error_early_reply = MemoryContextStrdup(job->context, job->outcome);

	if (!lost && (outcome == STEP_RETRY || outcome == STEP_FAIL) && !job->quiet)
	{
		bool		unused = outcome == STEP_RETRY && job->attempt_unused;
		bool		last = outcome == STEP_FAIL ||
			(!unused && job->attempts >= tenant_airbyte_max_attempts);

		/* LOG, not WARNING: it is news for the server log, not for a client */
		if (job->delivery_id != 0)
			ereport(LOG,
					(errmsg("tenant_airbyte: delivery " INT64_FORMAT " (%s, tenant \"%s\") attempt %d of %d failed%s: %s",
							job->delivery_id, engine_event_of_kind(job->kind_name), job->tenant_id,
							job->attempts, tenant_airbyte_max_attempts,
							last ? " for good" : unused ? " without reaching Airbyte (not counted)" : "",
							job->error ? job->error : "unknown error"),
					 last ? 0 : errdetail("Retrying in %ld ms.", job->retry_delay_ms)));
		else
			ereport(LOG,
					(errmsg("tenant_airbyte: operation " INT64_FORMAT " (%s, tenant \"%s\") attempt %d of %d failed%s: %s",
							job->id, job->kind_name, job->tenant_id,
							job->attempts, tenant_airbyte_max_attempts,
							last ? " for good" : unused ? " without reaching Airbyte (not counted)" : "",
							job->error ? job->error : "unknown error"),
					 last ? 0 : errdetail("Retrying in %ld ms.", job->retry_delay_ms)));
		shmem_set_last_error("operation " INT64_FORMAT " (tenant %s): %s",
							 job->id, job->tenant_id,
							 job->error ? job->error : "unknown error");
	}
	return lost ? STEP_FAIL : outcome;
}

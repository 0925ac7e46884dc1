/*-------------------------------------------------------------------------
 *
 * work.c
 *	  What the worker does for each kind of delivery, one step at a time:
 *	  decide the next Airbyte request inside a transaction, and act on its
 *	  answer inside the next one.
 *
 *	  tenant.created	provision the tenant's workspace (exactly once)
 *	  tenant.updated	rename the tenant's workspace
 *	  tenant.deleted	deprovision the tenant (soft delete, cancel jobs)
 *	  anything else		ignored: recorded, nothing to do
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "tenant_airbyte.h"
#include "worker.h"

/*
 * work_start
 *		The first step of a freshly claimed delivery.
 */
JobOutcome
work_start(Job *job)
{
	if (strcmp(job->event, "tenant.created") != 0 &&
		strcmp(job->event, "tenant.updated") != 0 &&
		strcmp(job->event, "tenant.deleted") != 0)
	{
		job->result_json = MemoryContextStrdup(job->context,
											   "{\"status\": \"ignored\", \"reason\": \"no work for this event\"}");
		return JOB_IGNORED;
	}

	if (job->tenant_id == NULL || job->tenant_id[0] == '\0')
	{
		job->error = MemoryContextStrdup(job->context, "the delivery has no tenant id");
		return JOB_DEAD;
	}

	job->error = MemoryContextStrdup(job->context, "not implemented yet");
	return JOB_DEAD;
}

/*
 * work_http_done
 *		Acts on the answer to the job's request.
 */
JobOutcome
work_http_done(Job *job, CURLcode result)
{
	job->error = MemoryContextStrdup(job->context, "not implemented yet");
	return JOB_DEAD;
}

/*
 * work_retry_delay_ms
 *		How long a transient failure waits before the next attempt.
 */
long
work_retry_delay_ms(Job *job, long retry_after_ms)
{
	return 1000;
}

/*
 * work_release
 *		Frees what a job holds outside its memory context (curl handles).
 */
void
work_release(Job *job)
{
	if (job->easy != NULL)
	{
		curl_easy_cleanup(job->easy);
		job->easy = NULL;
	}
}

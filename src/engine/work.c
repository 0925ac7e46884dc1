/*-------------------------------------------------------------------------
 *
 * work.c
 *	  What the worker does for each kind of delivery, one step at a time:
 *	  decide the next Airbyte request inside a transaction, perform it
 *	  outside (worker.c), and act on its answer inside the next one.
 *
 *	  tenant.created	provision the tenant's workspace, exactly once
 *						(the client's provisioning steps, provision.h)
 *	  tenant.updated	rename the tenant's workspace (PATCH /workspaces/{id})
 *	  tenant.deleted	deprovision: cancel the workspace's running jobs,
 *						then soft-delete the tenant's row (the workspace
 *						itself goes after retention_days, in
 *						purge_deleted_tenants())
 *	  anything else		ignored: recorded, nothing to do
 *
 * Requests are built, classified and retried by the client's code
 * (airbyte_api.h, retry.h); this file only chains them.  Each step is
 * idempotent, so a delivery retried after any failure, or re-claimed after
 * a crash, simply starts again from the top.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "airbyte_api.h"
#include "retry.h"
#include "tenant_airbyte.h"
#include "work.h"
#include "worker.h"

/* How often a request that is safe to repeat is sent within one attempt. */
#define WORK_REQUEST_TRIES 5

static JobOutcome start(Job *job);
static JobOutcome http_done(Job *job, CURLcode result);
static JobOutcome rename_start(Job *job, WorkState *state);
static JobOutcome rename_done(Job *job, WorkState *state, AirbyteResponse *resp);
static JobOutcome deprovision_start(Job *job, WorkState *state);
static JobOutcome deprovision_done(Job *job, WorkState *state, AirbyteResponse *resp);
static JobOutcome deprovision_next(Job *job, WorkState *state);
static bool active_workspace(const char *tenant_id, char **workspace_id, char **workspace_name);
static char *workspace_name_for(const char *tenant_name, const char *tenant_id);

/*
 * work_start
 *		The first step of a freshly claimed delivery.  Steps run in the job's
 *		memory context, so that the requests they prepare (and what they
 *		read) live as long as the job, across transactions.
 */
JobOutcome
work_start(Job *job)
{
	MemoryContext old = MemoryContextSwitchTo(job->context);
	JobOutcome	outcome = start(job);

	MemoryContextSwitchTo(old);
	return outcome;
}

/*
 * work_http_done
 *		Acts on the answer to the job's request.
 */
JobOutcome
work_http_done(Job *job, CURLcode result)
{
	MemoryContext old = MemoryContextSwitchTo(job->context);
	JobOutcome	outcome = http_done(job, result);

	MemoryContextSwitchTo(old);
	return outcome;
}

static JobOutcome
start(Job *job)
{
	WorkState  *state;
	bool		created = strcmp(job->event, "tenant.created") == 0;
	bool		updated = strcmp(job->event, "tenant.updated") == 0;
	bool		deleted = strcmp(job->event, "tenant.deleted") == 0;

	if (!created && !updated && !deleted)
	{
		set_result(job, "{\"status\": \"ignored\", \"reason\": \"no work for this event\", \"event\": %s}",
				   json_string(job->event));
		return JOB_IGNORED;
	}

	if (job->tenant_id == NULL || job->tenant_id[0] == '\0')
	{
		job->error = MemoryContextStrdup(job->context, "the delivery has no tenant id");
		return JOB_DEAD;
	}

	state = MemoryContextAllocZero(job->context, sizeof(WorkState));
	job->work_state = state;

	if (updated)
		return rename_start(job, state);
	if (deleted)
		return deprovision_start(job, state);

	return provision_start(job, state);
}

static JobOutcome
http_done(Job *job, CURLcode result)
{
	WorkState  *state = (WorkState *) job->work_state;
	AirbyteResponse resp;

	http_request_complete(state->request, result);
	airbyte_classify(state->request, &resp);
	job->http_status = resp.http_status;

	switch (state->step)
	{
		case STEP_RENAME:
			return rename_done(job, state, &resp);
		case STEP_PURGE_WORKSPACE:
		case STEP_LIST_WORKSPACES:
		case STEP_CREATE_WORKSPACE:
		case STEP_DELETE_ORPHAN:
			return provision_done(job, state, &resp);
		case STEP_LIST_JOBS:
		case STEP_CANCEL_JOB:
			return deprovision_done(job, state, &resp);
	}
	elog(ERROR, "unknown work step %d", (int) state->step);
	return JOB_DEAD;			/* keep compiler quiet */
}

/*
 * work_retry_delay_ms
 *		Full-jitter exponential backoff for the attempt that just failed, or
 *		the server's Retry-After when it asks for longer (retry.c).
 */
long
work_retry_delay_ms(Job *job, long retry_after_ms)
{
	return (long) retry_delay_ms(job->attempts, RETRY_BASE_MS, RETRY_CAP_MS,
								 pg_prng_double(&pg_global_prng_state),
								 retry_after_ms);
}

/*
 * work_release
 *		Frees the job's curl handle now rather than when its memory goes.
 */
void
work_release(Job *job)
{
	WorkState  *state = (WorkState *) job->work_state;

	if (state != NULL && state->request != NULL)
		http_request_free(state->request);
	job->easy = NULL;
}

/* ------------------------------------------------------------------------
 * tenant.updated: rename the workspace
 * ------------------------------------------------------------------------ */

static JobOutcome
rename_start(Job *job, WorkState *state)
{
	char	   *new_name;

	if (!active_workspace(job->tenant_id, &state->workspace_id, &state->workspace_name))
	{
		set_result(job, "{\"status\": \"not_found\", \"tenant_id\": %s}",
				   json_string(job->tenant_id));
		return JOB_IGNORED;
	}
	if (job->tenant_name == NULL || job->tenant_name[0] == '\0')
	{
		set_result(job, "{\"status\": \"unchanged\", \"reason\": \"the delivery has no tenant name\"}");
		return JOB_IGNORED;
	}

	new_name = workspace_name_for(job->tenant_name, job->tenant_id);
	if (strcmp(new_name, state->workspace_name) == 0)
	{
		set_result(job, "{\"status\": \"unchanged\", \"workspace_id\": %s, \"workspace_name\": %s}",
				   json_string(state->workspace_id), json_string(new_name));
		return JOB_DONE;
	}
	state->workspace_name = new_name;

	return send_request(job, state, STEP_RENAME,
				airbyte_prepare_rename_workspace(state->workspace_id, state->workspace_name));
}

static JobOutcome
rename_done(Job *job, WorkState *state, AirbyteResponse *resp)
{
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK)
		return failed(job, state, resp, "rename workspace");

	values[0] = CStringGetTextDatum(job->tenant_id);
	values[1] = CStringGetTextDatum(state->workspace_id);
	values[2] = CStringGetTextDatum(state->workspace_name);
	if (work_spi("UPDATE tenant_airbyte.tenant_airbyte_workspaces"
							  "   SET airbyte_workspace_name = $3"
							  " WHERE tenant_id = $1 AND airbyte_workspace_id = $2::uuid",
							  3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the workspace's new name");

	set_result(job, "{\"status\": \"renamed\", \"tenant_id\": %s, \"workspace_id\": %s, \"workspace_name\": %s}",
			   json_string(job->tenant_id), json_string(state->workspace_id),
			   json_string(state->workspace_name));
	return JOB_DONE;
}

/* ------------------------------------------------------------------------
 * tenant.deleted: cancel running jobs, then soft-delete
 * ------------------------------------------------------------------------ */

static JobOutcome
deprovision_start(Job *job, WorkState *state)
{
	if (!active_workspace(job->tenant_id, &state->workspace_id, &state->workspace_name))
	{
		set_result(job, "{\"status\": \"not_found\", \"tenant_id\": %s}",
				   json_string(job->tenant_id));
		return JOB_DONE;
	}

	state->page_offset = 0;
	return send_request(job, state, STEP_LIST_JOBS,
				airbyte_prepare_list_jobs(state->workspace_id, "running",
										  AIRBYTE_PAGE_LIMIT, 0));
}

static JobOutcome
deprovision_done(Job *job, WorkState *state, AirbyteResponse *resp)
{
	if (state->step == STEP_LIST_JOBS)
	{
		int			length;

		if (resp->outcome != AIRBYTE_OK)
			return failed(job, state, resp, "list running jobs");

		length = airbyte_page_length(resp->body);
		state->job_ids = list_concat(state->job_ids, airbyte_page_job_ids(resp->body));

		if (length >= AIRBYTE_PAGE_LIMIT)
		{
			state->page_offset += AIRBYTE_PAGE_LIMIT;
			return send_request(job, state, STEP_LIST_JOBS,
						airbyte_prepare_list_jobs(state->workspace_id, "running",
												  AIRBYTE_PAGE_LIMIT, state->page_offset));
		}
		return deprovision_next(job, state);
	}

	/* STEP_CANCEL_JOB: a job that ended meanwhile (404) needs no cancelling */
	if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
		return failed(job, state, resp, "cancel job");
	if (resp->outcome == AIRBYTE_OK)
		state->cancelled++;
	return deprovision_next(job, state);
}

/*
 * deprovision_next
 *		Cancels the next running job, or, when none is left, marks the
 *		tenant's row deleted.
 */
static JobOutcome
deprovision_next(Job *job, WorkState *state)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	if (state->job_ids != NIL)
	{
		char	   *job_id = (char *) linitial(state->job_ids);

		state->job_ids = list_delete_first(state->job_ids);
		state->current_job_id = pg_strtoint64(job_id);
		return send_request(job, state, STEP_CANCEL_JOB,
							airbyte_prepare_cancel_job(state->current_job_id));
	}

	values[0] = CStringGetTextDatum(job->tenant_id);
	values[1] = CStringGetTextDatum(state->workspace_id);
	if (work_spi("UPDATE tenant_airbyte.tenant_airbyte_workspaces"
							  "   SET status = 'deleted', deleted_at = pg_catalog.now()"
							  " WHERE tenant_id = $1 AND airbyte_workspace_id = $2::uuid"
							  "   AND status <> 'deleted'",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark the tenant deleted");

	set_result(job, "{\"status\": \"deprovisioned\", \"action\": \"soft_deleted\", \"retention_days\": %d, "
			   "\"tenant_id\": %s, \"workspace_id\": %s, \"cancelled_jobs\": %d}",
			   tenant_airbyte_retention_days, json_string(job->tenant_id),
			   json_string(state->workspace_id), state->cancelled);
	return JOB_DONE;
}

/* ------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------ */

/*
 * send_request
 *		Makes request the job's next one: it is performed once the current
 *		transaction commits.  It was prepared in job->context, so it
 *		survives that commit.
 */
JobOutcome
send_request(Job *job, WorkState *state, WorkStep step, HttpRequest *request)
{
	if (state->request != NULL)
		http_request_free(state->request);
	state->request = request;
	state->step = step;
	state->tries = 1;
	job->easy = request->easy;
	job->start_after_ms = 0;
	return JOB_HTTP;
}

/*
 * prepare_again
 *		A fresh copy of the request in flight, to send it once more.
 */
static HttpRequest *
prepare_again(WorkState *state)
{
	switch (state->step)
	{
		case STEP_RENAME:
			return airbyte_prepare_rename_workspace(state->workspace_id, state->workspace_name);
		case STEP_LIST_JOBS:
			return airbyte_prepare_list_jobs(state->workspace_id, "running",
											 AIRBYTE_PAGE_LIMIT, state->page_offset);
		case STEP_CANCEL_JOB:
			return airbyte_prepare_cancel_job(state->current_job_id);
		case STEP_PURGE_WORKSPACE:
		case STEP_DELETE_ORPHAN:
			return airbyte_prepare_delete_workspace(state->workspace_id);
		case STEP_LIST_WORKSPACES:
			return airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, state->page_offset, false);
		case STEP_CREATE_WORKSPACE:
			break;
	}
	elog(ERROR, "step %d cannot be sent again", (int) state->step);
	return NULL;				/* keep compiler quiet */
}

/*
 * failed
 *		Turns an unsuccessful answer into the job's outcome.  A transient
 *		failure of a request that is safe to repeat (everything but the
 *		create) is first retried in place, after a backoff, up to
 *		WORK_REQUEST_TRIES times: a reconcile that lists ten pages should
 *		not start over from the first page because the seventh got a 429.
 *		After that, transient failures (and a refused token, which an
 *		operator can fix) end the attempt and the delivery is retried after
 *		a backoff; everything else is permanent.
 */
JobOutcome
failed(Job *job, WorkState *state, AirbyteResponse *resp, const char *action)
{
	job->http_status = resp->http_status;
	job->error = psprintf("%s: %s", action, resp->message ? resp->message : "failed");

	if (resp->outcome == AIRBYTE_TRANSIENT && state->step != STEP_CREATE_WORKSPACE &&
		state->tries < WORK_REQUEST_TRIES)
	{
		int			tries = state->tries;
		long		delay = (long) retry_delay_ms(tries, RETRY_BASE_MS, RETRY_CAP_MS,
												  pg_prng_double(&pg_global_prng_state),
												  resp->retry_after_ms);

		ereport(LOG,
				(errmsg("tenant_airbyte: delivery " INT64_FORMAT " (%s, tenant \"%s\") request %d of attempt %d failed, sending it again in %ld ms: %s",
						job->delivery_id, job->event, job->tenant_id, tries,
						job->attempts, delay, job->error)));
		(void) send_request(job, state, state->step, prepare_again(state));
		state->tries = tries + 1;
		job->start_after_ms = delay;
		return JOB_HTTP;
	}

	switch (resp->outcome)
	{
		case AIRBYTE_TRANSIENT:
			job->retry_delay_ms = work_retry_delay_ms(job, (long) resp->retry_after_ms);

			/*
			 * No connection to Airbyte was ever made (refused, no route,
			 * name not resolved): the attempt did nothing, so it is given
			 * back.  An outage of any length then delays deliveries instead
			 * of killing them; attempts still count every request Airbyte
			 * saw, and every crash (they are raised at claim time).
			 */
			job->attempt_unused = resp->http_status == 0 &&
				!resp->may_have_taken_effect;
			return JOB_RETRY;
		case AIRBYTE_UNAUTHORIZED:
			airbyte_forget_token();
			job->retry_delay_ms = work_retry_delay_ms(job, -1);
			return JOB_RETRY;
		default:
			return JOB_DEAD;
	}
}

/*
 * active_workspace
 *		The tenant's active workspace id and name; false when it has none.
 */
static bool
active_workspace(const char *tenant_id, char **workspace_id, char **workspace_name)
{
	Datum		values[1];
	Oid			types[1] = {TEXTOID};

	values[0] = CStringGetTextDatum(tenant_id);
	if (work_spi("SELECT airbyte_workspace_id::text, airbyte_workspace_name"
							  "  FROM tenant_airbyte.tenant_airbyte_workspaces"
							  " WHERE tenant_id = $1 AND status = 'active'",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the tenant's workspace");
	if (SPI_processed == 0)
		return false;

	*workspace_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*workspace_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	return true;
}

/*
 * workspace_name_for
 *		The tenant's workspace name, by the same rule provisioning uses.
 */
static char *
workspace_name_for(const char *tenant_name, const char *tenant_id)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(tenant_name);
	values[1] = CStringGetTextDatum(tenant_id);
	if (work_spi("SELECT tenant_airbyte.workspace_name_for($2, $1)",
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not compute the workspace name");
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * work_spi
 *		spi_run (a kept plan) that leaves the caller's memory context
 *		current: SPI itself returns in its own procedure context, which dies
 *		with the transaction, and a step's allocations must outlive it.
 *		Callers pass read_only = false even to read: a read-only query would
 *		use the cycle's first snapshot and miss what earlier steps of the
 *		same cycle wrote (a workspace recorded a moment ago).
 */
int
work_spi(const char *sql, int nargs, Oid *types, Datum *values,
		 const char *nulls, bool read_only, long count)
{
	MemoryContext old = CurrentMemoryContext;
	int			rc = spi_run(sql, nargs, types, values, nulls, read_only, count);

	MemoryContextSwitchTo(old);
	return rc;
}

/*
 * set_result
 *		What the finished work produced, as JSON text for webhook_inbox.result,
 *		kept in the job's memory.
 */
void
set_result(Job *job, const char *fmt,...)
{
	StringInfoData buf;
	MemoryContext old = MemoryContextSwitchTo(job->context);

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	job->result_json = buf.data;
	MemoryContextSwitchTo(old);
}

/* A JSON string literal for s, escaped by PostgreSQL's own escape_json. */
char *
json_string(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, s ? s : "");
	return buf.data;
}

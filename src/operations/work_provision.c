/*-------------------------------------------------------------------------
 *
 * work_provision.c
 *	  tenant.created in the worker: the client's exactly-once provisioning
 *	  (see the comment at the top of provision.c) cut into steps, with
 *	  every Airbyte request made outside any transaction.
 *
 *	  begin		provision_begin(tenant, name, nowait => true) in the cycle's
 *				transaction: done (already_exists, restored), busy (someone
 *				else is provisioning this tenant: retry later), purge (an
 *				expired soft-deleted workspace goes first), or create, which
 *				has set the tenant's marker before we can send anything.
 *	  reconcile	when the marker was already set (an earlier attempt may
 *				have created the workspace), every page of GET /workspaces
 *				is read and a workspace with the tenant's name that no row
 *				maps is adopted instead of creating another.
 *	  create	POST /workspaces.  Any failure after which the create may
 *				have happened is retried; the marker makes the retry
 *				reconcile first.
 *	  finish	provision_finish() records the row (and clears the marker at
 *				commit) in the same transaction that marks the delivery
 *				done; if the tenant got a workspace meanwhile (a direct
 *				provision_tenant() won the race), the one we created is
 *				deleted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "airbyte_api.h"
#include "tenant_airbyte.h"
#include "work.h"
#include "worker.h"

static JobOutcome finish(Job *job, WorkState *state, const char *workspace_id, bool created);
static const char *adoptable_workspace(List *ids);

/*
 * provision_start
 *		Step 1: decide, under the tenant's lock, taken without waiting.
 */
JobOutcome
provision_start(Job *job, WorkState *state)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	Oid			types[2] = {TEXTOID, TEXTOID};
	HeapTuple	tuple;
	TupleDesc	desc;
	char	   *action;
	char	   *reconcile;

	values[0] = CStringGetTextDatum(job->tenant_id);
	if (job->tenant_name != NULL)
		values[1] = CStringGetTextDatum(job->tenant_name);
	else
		nulls[1] = 'n';

	if (work_spi("SELECT d->>'action', d->>'workspace_name', d->>'reconcile',"
							  "       d->>'workspace_id', d->'result'"
							  "  FROM tenant_airbyte.provision_begin($1, $2, true) AS d",
							  2, types, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "provision_begin() returned nothing");

	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	action = SPI_getvalue(tuple, desc, 1);

	if (strcmp(action, "done") == 0)
	{
		set_result(job, "%s", SPI_getvalue(tuple, desc, 5));
		return JOB_DONE;
	}

	if (strcmp(action, "busy") == 0)
	{
		job->error = pstrdup("the tenant is being provisioned by another session");
		job->retry_delay_ms = work_retry_delay_ms(job, -1);
		return JOB_RETRY;
	}

	if (strcmp(action, "purge") == 0)
	{
		state->workspace_id = SPI_getvalue(tuple, desc, 4);
		return send_request(job, state, STEP_PURGE_WORKSPACE,
							airbyte_prepare_delete_workspace(state->workspace_id));
	}

	if (strcmp(action, "create") != 0)
		elog(ERROR, "provision_begin() returned unknown action \"%s\"", action);

	state->workspace_name = SPI_getvalue(tuple, desc, 2);
	reconcile = SPI_getvalue(tuple, desc, 3);
	if (reconcile != NULL && strcmp(reconcile, "true") == 0)
	{
		state->page_offset = 0;
		return send_request(job, state, STEP_LIST_WORKSPACES,
							airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, 0, false));
	}
	return send_request(job, state, STEP_CREATE_WORKSPACE,
						airbyte_prepare_create_workspace(state->workspace_name, NULL));
}

/*
 * provision_done
 *		Acts on the answer to one of provisioning's requests.
 */
JobOutcome
provision_done(Job *job, WorkState *state, AirbyteResponse *resp)
{
	switch (state->step)
	{
		case STEP_PURGE_WORKSPACE:
			{
				Datum		values[2];
				Oid			types[2] = {TEXTOID, TEXTOID};

				if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
					return failed(job, state, resp, "delete the expired workspace");

				values[0] = CStringGetTextDatum(job->tenant_id);
				values[1] = CStringGetTextDatum(state->workspace_id);
				if (work_spi("SELECT tenant_airbyte.provision_forget($1, $2::uuid)",
										  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
					elog(ERROR, "provision_forget() failed");
				return provision_start(job, state);
			}

		case STEP_LIST_WORKSPACES:
			{
				const char *adopt;

				if (resp->outcome != AIRBYTE_OK)
					return failed(job, state, resp, "list workspaces to reconcile");

				adopt = adoptable_workspace(airbyte_page_workspaces_named(resp->body,
																		  state->workspace_name));
				if (adopt != NULL)
					return finish(job, state, adopt, false);

				if (airbyte_page_length(resp->body) >= AIRBYTE_PAGE_LIMIT)
				{
					state->page_offset += AIRBYTE_PAGE_LIMIT;
					return send_request(job, state, STEP_LIST_WORKSPACES,
										airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT,
																		state->page_offset,
																		false));
				}
				return send_request(job, state, STEP_CREATE_WORKSPACE,
									airbyte_prepare_create_workspace(state->workspace_name, NULL));
			}

		case STEP_CREATE_WORKSPACE:
			{
				char	   *workspace_id = NULL;

				if (resp->outcome == AIRBYTE_OK)
					workspace_id = airbyte_workspace_id(resp->body);
				if (workspace_id != NULL)
					return finish(job, state, workspace_id, true);

				/* no usable answer, but the create may have happened: retry, reconciling */
				if (resp->outcome == AIRBYTE_OK || resp->outcome == AIRBYTE_BAD_RESPONSE)
				{
					job->error = psprintf("create workspace: %s",
										  resp->message ? resp->message : "no workspaceId in the answer");
					job->retry_delay_ms = work_retry_delay_ms(job, -1);
					return JOB_RETRY;
				}
				return failed(job, state, resp, "create workspace");
			}

		case STEP_DELETE_ORPHAN:
			if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
				ereport(LOG,
						(errmsg("tenant_airbyte: delivery " INT64_FORMAT " (tenant \"%s\") could not delete surplus workspace %s: %s",
								job->delivery_id, job->tenant_id, state->workspace_id,
								resp->message ? resp->message : "failed"),
						 errhint("Delete it with tenant_airbyte.airbyte_delete_workspace().")));
			set_result(job, "%s", state->result);
			return JOB_DONE;

		default:
			elog(ERROR, "unexpected provisioning step %d", (int) state->step);
	}
	return JOB_DEAD;			/* keep compiler quiet */
}

/*
 * finish
 *		Step 3: record the workspace (this transaction also marks the
 *		delivery done).  When the tenant had one already and we created
 *		this one, delete ours before calling it done.
 */
static JobOutcome
finish(Job *job, WorkState *state, const char *workspace_id, bool created)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	char	   *orphan;

	values[0] = CStringGetTextDatum(job->tenant_id);
	if (job->tenant_name != NULL)
		values[1] = CStringGetTextDatum(job->tenant_name);
	else
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(workspace_id);

	if (work_spi("SELECT d::text, d->>'orphan_workspace_id'"
							  "  FROM tenant_airbyte.provision_finish($1, $2, $3::uuid) AS d",
							  3, types, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "provision_finish() returned nothing");

	state->result = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	orphan = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	if (orphan != NULL && created)
	{
		state->workspace_id = orphan;
		return send_request(job, state, STEP_DELETE_ORPHAN,
							airbyte_prepare_delete_workspace(orphan));
	}

	set_result(job, "%s", state->result);
	return JOB_DONE;
}

/*
 * adoptable_workspace
 *		The first of ids (workspaces named like the tenant's) that no row
 *		maps yet, or NULL.
 */
static const char *
adoptable_workspace(List *ids)
{
	ListCell   *lc;

	foreach(lc, ids)
	{
		const char *id = (const char *) lfirst(lc);
		Datum		values[1];
		Oid			types[1] = {TEXTOID};

		values[0] = CStringGetTextDatum(id);
		if (work_spi("SELECT FROM tenant_airbyte.tenant_airbyte_workspaces"
								  " WHERE airbyte_workspace_id = $1::uuid",
								  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up workspace %s", id);
		if (SPI_processed == 0)
			return id;
	}
	return NULL;
}

/*-------------------------------------------------------------------------
 *
 * work.h
 *	  Internal to the worker's work items: where a delivery's chain of
 *	  Airbyte requests stands, and the helpers work.c (dispatch, rename,
 *	  deprovision) and work_provision.c (provision) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WORK_H
#define TENANT_AIRBYTE_WORK_H

#include "airbyte_api.h"
#include "worker.h"

/* Which request of its chain a delivery has in flight. */
typedef enum WorkStep
{
	STEP_RENAME,				/* PATCH /workspaces/{id} */
	STEP_LIST_JOBS,				/* GET /jobs?status=running, one page */
	STEP_CANCEL_JOB,			/* DELETE /jobs/{id} */
	STEP_PURGE_WORKSPACE,		/* DELETE /workspaces/{id} of an expired row */
	STEP_LIST_WORKSPACES,		/* GET /workspaces, one page (reconcile) */
	STEP_CREATE_WORKSPACE,		/* POST /workspaces */
	STEP_DELETE_ORPHAN			/* DELETE /workspaces/{id} we made in vain */
} WorkStep;

typedef struct WorkState
{
	WorkStep	step;
	HttpRequest *request;		/* the request in flight, in job->context */
	char	   *workspace_id;
	char	   *workspace_name;
	int			page_offset;	/* list steps */
	List	   *job_ids;		/* STEP_CANCEL_JOB: decimal job ids left */
	int			cancelled;
	int64		current_job_id; /* STEP_CANCEL_JOB */
	int			tries;			/* of the request in flight, from 1 */
	char	   *result;			/* provisioning result kept across a step */
} WorkState;

/* work.c */
extern JobOutcome send_request(Job *job, WorkState *state, WorkStep step,
							   HttpRequest *request);
extern JobOutcome failed(Job *job, WorkState *state, AirbyteResponse *resp,
						 const char *action);
extern void set_result(Job *job, const char *fmt,...) pg_attribute_printf(2, 3);
extern char *json_string(const char *s);
extern int	work_spi(const char *sql, int nargs, Oid *types, Datum *values,
					 const char *nulls, bool read_only, long count);

/* work_provision.c */
extern JobOutcome provision_start(Job *job, WorkState *state);
extern JobOutcome provision_done(Job *job, WorkState *state, AirbyteResponse *resp);

#endif							/* TENANT_AIRBYTE_WORK_H */

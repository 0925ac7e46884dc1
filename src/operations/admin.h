/*-------------------------------------------------------------------------
 *
 * admin.h
 *	  Administration through the worker: what the superuser airbyte_*
 *	  wrappers (airbyte_sql.c, sources.c) and their operation kinds
 *	  (kind_admin_workspaces.c, kind_admin_sources.c) share.
 *
 * A wrapper checks that its caller is a superuser, hands an operation of
 * an admin_* kind to the worker (engine_run(), under the reserved tenant
 * ADMIN_TENANT) and waits like every tenant function.  What Airbyte
 * answered (a workspace, a page of sources ...) is not put in the
 * operation's outcome, which BYPASSRLS administrators may read, but in
 * tenant_airbyte.admin_results, which has forced row-level security, no
 * policy and no grant: the worker writes it, a superuser caller reads it
 * after the worker committed, by operation id and ordinal, so a list of
 * any length goes through and no hand-off slot limits it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_ADMIN_H
#define TENANT_AIRBYTE_ADMIN_H

#include "fmgr.h"
#include "utils/jsonb.h"

#include "operation.h"

/*
 * The tenant id of every administration operation.  No tenant can have it
 * in practice, and none can see it: a restrictive policy on operations
 * hides these rows from every role under row-level security, and a
 * trigger lets only the worker and superusers write them.
 */
#define ADMIN_TENANT "(administration)"
/* What the name of every administration kind starts with. */
#define ADMIN_KIND_PREFIX "admin_"

/* --- the caller's side (admin.c) --- */
extern void admin_require_superuser(const char *function, const char *hint);
extern char *admin_uuid_arg(FunctionCallInfo fcinfo, int n, const char *what);
extern char *admin_text_arg(FunctionCallInfo fcinfo, int n, const char *what);
/* A subject no other call shares: reads never wait for each other. */
extern char *admin_unique_subject(void);
/* engine_run() under ADMIN_TENANT; *operation_id for admin_result*(). */
extern Jsonb *admin_run(const char *kind, Jsonb *params, const char *subject,
						const char *secret, int64 *operation_id);
/* Whether outcome's member key is JSON true. */
extern bool admin_outcome_true(Jsonb *outcome, const char *key);
/* The operation's first result (ordinal 0), or NULL. */
extern Jsonb *admin_result(int64 operation_id);
/* Every result of the operation, in order, into a materialized SRF. */
extern void admin_results_to_srf(int64 operation_id, FunctionCallInfo fcinfo);

/* --- the worker's side (admin.c) --- */
/*
 * The first step of every admin kind: admin_results_clear(), and missing
 * or refused credentials answered at once (false, *failure set).
 */
extern bool admin_start(Operation *op, StepResult *failure);
/* Forgets what earlier attempts of op stored (an attempt starts over). */
extern void admin_results_clear(Operation *op);
/* Stores one result; strip: without its "configuration" member. */
extern void admin_results_store(Operation *op, int ordinal, Jsonb *item, bool strip);
/* Stores a list page's "data" from ordinal on; returns the page length. */
extern int	admin_results_store_page(Operation *op, int ordinal, Jsonb *page, bool strip);
/* A kind's tick: deletes results nobody can be waiting for any more. */
extern void admin_results_tidy(void);

/* What one page of a create's reconciliation list showed. */
typedef enum AdminAdopt
{
	ADMIN_ADOPT_FOUND,			/* *adopt_id is the object to adopt */
	ADMIN_ADOPT_NEXT_PAGE,		/* none here, *page_offset moved on: send again */
	ADMIN_ADOPT_NONE			/* none in the whole list */
} AdminAdopt;

/*
 * Looks through a list page for an object named exactly op->intended_name
 * that nobody owns yet: taken_sql returns a row when the object whose id
 * is $1 (text) is recorded, or was adopted by an operation other than $2.
 */
extern AdminAdopt admin_adopt_from_page(Operation *op, Jsonb *page, const char *id_key,
										const char *taken_sql, char **adopt_id,
										int *page_offset);

#endif							/* TENANT_AIRBYTE_ADMIN_H */

/*-------------------------------------------------------------------------
 *
 * kind_provision.c
 *	  provision: exactly one Airbyte workspace for a tenant.
 *
 *	  step		request					answer leads to
 *	  decide	-						already_exists / restored: done;
 *										expired soft-deleted row: purge;
 *										else name decided once, then
 *										reconcile if a create may have been
 *										sent before (by this operation, or
 *										by an earlier one of the tenant
 *										that ended failed or dead after
 *										it, such as 0.1.0's interrupted
 *										create the upgrade took over),
 *										create otherwise
 *	  purge		DELETE /workspaces/{id}	row forgotten, decide again
 *	  reconcile	GET /workspaces page	one shared pass (below); then a
 *										workspace named exactly
 *										intended_name that no row maps:
 *										adopted, done; none: create
 *	  create	POST /workspaces		recorded, done (provisioned); an
 *										unknown outcome: retry, which
 *										reconciles first
 *
 * Airbyte's create has no idempotency key and workspaces cannot be looked
 * up by name, so the operation row is the record that a create may have
 * been sent: operations.step = 'create' is committed before the request
 * goes out, and a later attempt that finds it lists the workspaces and
 * adopts the one with the operation's intended_name.  That name is
 * decided once per operation and is unique across tenants (kinds.c), so
 * an adopted workspace can only be this operation's.  Operations of one
 * tenant run one at a time (opqueue.c), so no rename can come between a
 * lost create and its retry.
 *
 * ONE RECONCILIATION PASS SERVES ALL.  After a crash with many creates
 * interrupted, each of them must look before it creates again, and
 * listing 20,000 workspaces takes 200 pages.  The pass is shared: the
 * first operation that needs one lists every page into the worker's
 * memory (the scan below); any operation whose earlier attempt had ended
 * before that pass began can decide from it, and one that comes while the
 * pass is under way waits for it (op_wait, attempts not counted).  So
 * recovery costs one pass, ceil(W / 100) pages, plus the creates still
 * needed.  An operation whose earlier attempt ended after the pass began
 * (a create that timed out meanwhile) starts a fresh pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "kinds.h"

typedef struct ProvisionState
{
	char	   *purge_workspace_id;
	int			page_offset;
	Jsonb	   *create_body;	/* POST /workspaces: the name, and the
								 * pipeline template's regionId and
								 * notifications */
} ProvisionState;

/* The shared reconciliation pass, in the worker's memory. */
#define SCAN_STALL_MS 60000		/* a pass that made no progress this long is
								 * abandoned (its operation died) */
#define SCAN_WAIT_MS 100		/* how often a waiting operation looks again */

static struct
{
	MemoryContext context;
	int64		driver;			/* the operation listing pages; 0: none */
	bool		complete;
	TimestampTz started_at;
	TimestampTz progress_at;
	List	   *names;			/* char *, parallel to ids */
	List	   *ids;
}			scan;

/* Starts a fresh pass driven by op. */
static void
scan_start(Operation *op)
{
	if (scan.context == NULL)
		scan.context = AllocSetContextCreate(TopMemoryContext, "tenant_airbyte workspace scan",
											 ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(scan.context);
	scan.names = scan.ids = NIL;
	scan.driver = op->id;
	scan.complete = false;
	scan.started_at = scan.progress_at = GetCurrentTimestamp();
}

/* Adds a page of workspaces to the pass. */
static void
scan_add_page(Jsonb *body)
{
	MemoryContext old = MemoryContextSwitchTo(scan.context);
	ListCell   *lc;

	foreach(lc, airbyte_page_named(body, NULL, "workspaceId", NULL, NULL))
	{
		AirbyteNamedObject *workspace = (AirbyteNamedObject *) lfirst(lc);

		scan.names = lappend(scan.names, workspace->name);
		scan.ids = lappend(scan.ids, workspace->id);
	}
	scan.progress_at = GetCurrentTimestamp();
	MemoryContextSwitchTo(old);
}

/* The ids of the pass's workspaces named exactly name. */
static List *
scan_named(const char *name)
{
	List	   *found = NIL;
	ListCell   *ln,
			   *li;

	forboth(ln, scan.names, li, scan.ids)
	{
		if (strcmp((char *) lfirst(ln), name) == 0)
			found = lappend(found, lfirst(li));
	}
	return found;
}

static ProvisionState *
state_of(Operation *op)
{
	if (op->state == NULL)
		op->state = MemoryContextAllocZero(op->context, sizeof(ProvisionState));
	return (ProvisionState *) op->state;
}

static StepResult adopt_or_create(Operation *op);

static StepResult
workspace_result(Operation *op, const char *status, const char *id, const char *name)
{
	return op_done(op, "{\"status\": %s, \"tenant_id\": %s, \"workspace_id\": %s, \"workspace_name\": %s}",
				   op_json_string(status), op_json_string(op->tenant_id),
				   op_json_string(id), op_json_string(name));
}

/*
 * workspace_body
 *		The create request: the decided name, plus what the tenant's
 *		pipeline template sets for its workspace (regionId, notifications;
 *		nothing without a template).
 */
static Jsonb *
workspace_body(Operation *op)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	bool		isnull;

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(op->intended_name);
	/* most tenants have no template: skip rendering one then */
	if (op_spi("SELECT pg_catalog.jsonb_build_object('name', $2)"
			   "       OPERATOR(pg_catalog.||) CASE WHEN tenant_airbyte.template_for_tenant($1) IS NULL"
			   "                                    THEN '{}'::jsonb"
			   "                                    ELSE tenant_airbyte.pipeline_workspace_fields($1) END",
			   2, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not build the workspace's create request");
	return DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * earlier_create_interrupted
 *		Whether an earlier provision operation of this tenant ended failed
 *		or dead at a step that may have sent the create (create, reconcile)
 *		and no provision has been done since: then this one must look
 *		before it creates, like a retry.  The upgrade from 0.1.0 records an
 *		interrupted create (its provisioning marker) this way.  Sets
 *		previous_attempt_over to when that earlier attempt ended, so the
 *		reconciliation pass used began after it.
 */
static bool
earlier_create_interrupted(Operation *op)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, INT8OID};
	bool		isnull;
	Datum		ended;

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = Int64GetDatum(op->id);
	if (op_spi("SELECT pg_catalog.max(coalesce(o.attempt_ended_at, o.finished_at))"
			   "  FROM tenant_airbyte.operations AS o"
			   " WHERE o.tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND o.kind OPERATOR(pg_catalog.=) 'provision'"
			   "   AND o.status OPERATOR(pg_catalog.=) ANY ('{failed,dead}'::text[])"
			   "   AND o.step OPERATOR(pg_catalog.=) ANY ('{create,reconcile}'::text[])"
			   "   AND o.id OPERATOR(pg_catalog.<) $2"
			   "   AND NOT EXISTS (SELECT FROM tenant_airbyte.operations AS d"
			   "                    WHERE d.tenant_id OPERATOR(pg_catalog.=) o.tenant_id"
			   "                      AND d.kind OPERATOR(pg_catalog.=) 'provision'"
			   "                      AND d.status OPERATOR(pg_catalog.=) 'done'"
			   "                      AND d.id OPERATOR(pg_catalog.>) o.id)",
			   2, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look for an interrupted create");
	ended = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	if (DatumGetTimestampTz(ended) > op->previous_attempt_over)
		op->previous_attempt_over = DatumGetTimestampTz(ended);
	return true;
}

/* decide: what the tenant's row, and the operation's own past, call for. */
static StepResult
decide(Operation *op, AirbyteResponse *resp)
{
	TenantWorkspace ws;

	if (kind_tenant_workspace(op->tenant_id, &ws))
	{
		if (strcmp(ws.status, "deleted") != 0)
			return workspace_result(op, "already_exists", ws.workspace_id, ws.workspace_name);
		if (!ws.expired)
		{
			Datum		values[1];
			Oid			types[1] = {TEXTOID};

			values[0] = CStringGetTextDatum(op->tenant_id);
			if (op_spi("UPDATE tenant_airbyte.tenant_airbyte_workspaces"
					   "   SET status = 'active', deleted_at = NULL"
					   " WHERE tenant_id OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not restore the tenant's workspace");
			return workspace_result(op, "restored", ws.workspace_id, ws.workspace_name);
		}
		state_of(op)->purge_workspace_id = ws.workspace_id;
		return op_goto(op, "purge");
	}

	if (op->intended_name == NULL)
		op_set_intended_name(op, kind_unique_workspace_name(op->tenant_id,
															op_param(op, "tenant_name")));
	state_of(op)->create_body = workspace_body(op);

	/* an earlier attempt may have created it: look before creating */
	if (strcmp(op->last_step, "create") == 0 || strcmp(op->last_step, "reconcile") == 0 ||
		earlier_create_interrupted(op))
	{
		TimestampTz now = GetCurrentTimestamp();

		if (scan.complete && scan.started_at >= op->previous_attempt_over)
			return adopt_or_create(op);
		if (scan.driver != 0 && scan.driver != op->id &&
			scan.started_at >= op->previous_attempt_over &&
			!TimestampDifferenceExceeds(scan.progress_at, now, SCAN_STALL_MS))
			return op_wait(op, SCAN_WAIT_MS, "waiting for the reconciliation pass under way");
		scan_start(op);
		state_of(op)->page_offset = 0;
		return op_goto(op, "reconcile");
	}
	return op_goto(op, "create");
}

static HttpRequest *
build_purge(Operation *op)
{
	return airbyte_prepare_delete_workspace(state_of(op)->purge_workspace_id);
}

static StepResult
purged(Operation *op, AirbyteResponse *resp)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	if (resp->outcome != AIRBYTE_OK && resp->outcome != AIRBYTE_NOT_FOUND)
		return op_failed(op, resp, "delete the expired workspace");

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(state_of(op)->purge_workspace_id);
	if (op_spi("DELETE FROM tenant_airbyte.tenant_airbyte_workspaces"
			   " WHERE tenant_id OPERATOR(pg_catalog.=) $1"
			   "   AND airbyte_workspace_id OPERATOR(pg_catalog.=) $2::uuid"
			   "   AND status OPERATOR(pg_catalog.=) 'deleted'",
			   2, types, values, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not forget the expired workspace");
	return op_goto(op, "decide");
}

static HttpRequest *
build_list_page(Operation *op)
{
	return airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, state_of(op)->page_offset, false);
}

/* Records the tenant's workspace row; the operation is done. */
static StepResult
record(Operation *op, const char *workspace_id)
{
	Datum		values[3];
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = CStringGetTextDatum(workspace_id);
	values[2] = CStringGetTextDatum(op->intended_name);
	if (op_spi("INSERT INTO tenant_airbyte.tenant_airbyte_workspaces"
			   " (tenant_id, airbyte_workspace_id, airbyte_workspace_name)"
			   " VALUES ($1, $2::uuid, $3)",
			   3, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the tenant's workspace");
	return workspace_result(op, "provisioned", workspace_id, op->intended_name);
}

/* The first of ids (workspaces named intended_name) that no row maps. */
static const char *
unmapped(List *ids)
{
	ListCell   *lc;

	foreach(lc, ids)
	{
		const char *id = (const char *) lfirst(lc);
		Datum		values[1];
		Oid			types[1] = {TEXTOID};

		values[0] = CStringGetTextDatum(id);
		if (op_spi("SELECT FROM tenant_airbyte.tenant_airbyte_workspaces"
				   " WHERE airbyte_workspace_id OPERATOR(pg_catalog.=) $1::uuid",
				   1, types, values, NULL, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up workspace %s", id);
		if (SPI_processed == 0)
			return id;
	}
	return NULL;
}

/* Decides from the completed pass: adopt the workspace, or create it. */
static StepResult
adopt_or_create(Operation *op)
{
	const char *adopt = unmapped(scan_named(op->intended_name));

	if (adopt != NULL)
		return record(op, pstrdup(adopt));
	return op_goto(op, "create");
}

static StepResult
listed(Operation *op, AirbyteResponse *resp)
{
	if (scan.driver != op->id)
		return op_goto(op, "decide");	/* the pass was taken over; decide anew */
	if (resp->outcome != AIRBYTE_OK)
	{
		StepResult	result = op_failed(op, resp, "list workspaces to reconcile");

		if (result != STEP_SEND)
			scan.driver = 0;	/* abandoned; the next one starts afresh */
		return result;
	}

	scan_add_page(resp->body);
	if (airbyte_page_may_continue(airbyte_page_length(resp->body)))
	{
		state_of(op)->page_offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	scan.complete = true;
	scan.driver = 0;
	return adopt_or_create(op);
}

static HttpRequest *
build_create(Operation *op)
{
	return kind_workspace_create_request(state_of(op)->create_body);
}

/* recorded, done; an unknown outcome retries, reconciling first (kinds.c) */
static StepResult
created(Operation *op, AirbyteResponse *resp)
{
	return kind_workspace_created(op, resp, false, record);
}

static const OperationStep provision_steps[] = {
	{"decide", NULL, decide, 0},
	{"purge", build_purge, purged, 0},
	{"reconcile", build_list_page, listed, 0},
	{"create", build_create, created, STEP_CREATES},
};

const OperationKind provision_kind = {
	"provision", provision_steps, lengthof_steps(provision_steps)
};

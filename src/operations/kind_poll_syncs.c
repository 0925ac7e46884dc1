/*-------------------------------------------------------------------------
 *
 * kind_poll_syncs.c
 *	  poll_syncs: every tenant_airbyte.sync_poll_interval_s, the worker
 *	  reads the jobs of each workspace that has connections that changed
 *	  since the previous round, and records each one's status, rows and
 *	  bytes in tenant_syncs, including the jobs Airbyte started on a
 *	  connection's cron schedule.
 *
 *	  step		request						answer leads to
 *	  next		-							the next workspace: list; none
 *											left: the next poll recorded, done
 *	  list		GET /jobs?workspaceIds=		each job of a tenant connection
 *				&orderBy=updatedAt|DESC		recorded (changed rows only); a
 *				&updatedAtStart=&offset=	full page: the next page; else
 *											next; a failed list is skipped,
 *											next
 *
 * Every page, not only the newest: a workspace whose jobs changed more
 * than a page's worth (100) between two rounds would otherwise lose the
 * older transitions for good.  So that a round does not read a
 * workspace's whole history every time, it asks only for jobs updated
 * since the previous round began (updatedAtStart), less POLL_OVERLAP_S
 * for the difference between our clock and Airbyte's and for jobs whose
 * update became visible late; a round that skipped a workspace keeps the
 * previous bound, so the next one reads what it missed.  The first round
 * of a chain reads everything.  Pages are ordered by updatedAt, newest
 * first: a job updated while a round pages through moves to the front,
 * which can show another job twice (recorded once) but never hides one.
 *
 * One poll serves every tenant, so it is an operation of its own pseudo
 * tenant, POLL_TENANT: a tenant's own operations run one at a time in the
 * order they were recorded, and a poll waiting for its time must not hold
 * back a tenant's trigger_sync().  The poll records the next one, due
 * sync_poll_interval_s later, in the transaction that ends it, while any
 * connection exists; recording a connection starts the chain again (a
 * trigger, section 7 of the install script).  Two subjects, "0" and "1",
 * alternate, because an unfinished operation cannot record another of
 * its own tenant, kind and subject.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "kinds.h"

#define POLL_TENANT "tenant_airbyte.sync_poll"
/* How far before the previous round's start a round looks back. */
#define POLL_OVERLAP_S 300

typedef struct PollState
{
	List	   *workspaces;		/* char *, still to list */
	char	   *current;
	int			offset;			/* of the page of current being read */
	const char *updated_since;	/* this round's updatedAtStart; NULL: all */
	char	   *next_since;		/* the next round's, if nothing is skipped */
	int			recorded;
	int			pages;
	int			skipped;
} PollState;

/* Records the next poll, unless there is nothing left to follow. */
static void
schedule_next_poll(Operation *op)
{
	PollState  *state = (PollState *) op->state;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};
	const char *subject = op_param(op, "round");
	const char *since = state->skipped > 0 ? state->updated_since : state->next_since;

	values[0] = CStringGetTextDatum(subject != NULL && strcmp(subject, "1") == 0 ? "0" : "1");
	values[1] = Int32GetDatum(tenant_airbyte_sync_poll_interval_s);
	values[2] = since ? CStringGetTextDatum(since) : (Datum) 0;
	if (since == NULL)
		nulls[2] = 'n';
	if (op_spi("INSERT INTO tenant_airbyte.operations AS o (kind, tenant_id, subject, params, next_attempt_at)"
			   " SELECT 'poll_syncs', '" POLL_TENANT "', $1,"
			   "        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('round', $1, 'updated_since', $3)),"
			   "        pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $2)"
			   "  WHERE EXISTS (SELECT FROM tenant_airbyte.tenant_connections)"
			   " ON CONFLICT DO NOTHING",
			   3, types, values, nulls, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the next sync poll");
}

/*
 * round_start
 *		The round's bounds: what the previous round left (params), and
 *		where the next one starts, from the database's clock now, in the
 *		date-time form the API takes.
 */
static void
round_start(Operation *op, PollState *state)
{
	Datum		values[1];
	Oid			types[1] = {INT4OID};

	state->updated_since = op_param(op, "updated_since");
	values[0] = Int32GetDatum(POLL_OVERLAP_S);
	if (op_spi("SELECT pg_catalog.to_char(pg_catalog.timezone('UTC',"
			   "         pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1)),"
			   "       'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
			   1, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the clock for the sync poll");
	state->next_since = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

static StepResult
next_workspace(Operation *op, AirbyteResponse *resp)
{
	PollState  *state = (PollState *) op->state;

	if (state == NULL)
	{
		state = MemoryContextAllocZero(op->context, sizeof(PollState));
		op->state = state;
		round_start(op, state);
		if (op_spi("SELECT DISTINCT c.airbyte_workspace_id::text FROM tenant_airbyte.tenant_connections AS c"
				   " ORDER BY 1",
				   0, NULL, NULL, NULL, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the workspaces with connections");
		for (uint64 i = 0; i < SPI_processed; i++)
			state->workspaces = lappend(state->workspaces,
										SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	if (state->workspaces == NIL)
	{
		schedule_next_poll(op);
		return op_done(op, "{\"status\": \"polled\", \"recorded\": %d, \"pages\": %d,"
					   " \"skipped_workspaces\": %d, \"updated_since\": %s}",
					   state->recorded, state->pages, state->skipped,
					   state->updated_since ? op_json_string(state->updated_since) : "null");
	}
	state->current = linitial(state->workspaces);
	state->workspaces = list_delete_first(state->workspaces);
	state->offset = 0;
	return op_goto(op, "list");
}

static HttpRequest *
build_list(Operation *op)
{
	PollState  *state = (PollState *) op->state;

	return airbyte_prepare(HTTP_GET,
						   psprintf("/jobs?workspaceIds=%s&orderBy=updatedAt%%7CDESC&limit=%d&offset=%d%s%s",
									state->current, AIRBYTE_PAGE_LIMIT, state->offset,
									state->updated_since ? "&updatedAtStart=" : "",
									state->updated_since ? state->updated_since : ""),
						   NULL);
}

/* A field of a job as text (strings as they are, numbers in decimal), or NULL. */
static char *
job_field(JsonbContainer *job, const char *key)
{
	JsonbValue *v = airbyte_object_field(job, key);

	if (v == NULL)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	return NULL;
}

static StepResult
listed(Operation *op, AirbyteResponse *resp)
{
	PollState  *state = (PollState *) op->state;
	JsonbContainer *data = resp->outcome == AIRBYTE_OK ? airbyte_page_data(resp->body) : NULL;

	if (data == NULL)
	{
		/* one workspace's failure must not stop everyone's polling */
		state->skipped++;
		return op_goto(op, "next");
	}
	for (uint32 i = 0; i < JsonContainerSize(data); i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(data, i);
		Datum		values[8];
		char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		Oid			types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		const char *keys[7] = {"connectionId", "jobId", "jobType", "status", "rowsSynced", "bytesSynced", "startTime"};

		if (item == NULL || item->type != jbvBinary)
			continue;
		for (int k = 0; k < 7; k++)
		{
			char	   *v = job_field(item->val.binary.data, keys[k]);

			values[k] = v ? CStringGetTextDatum(v) : (Datum) 0;
			if (v == NULL)
				nulls[k] = 'n';
		}
		if (nulls[0] == 'n' || nulls[1] == 'n' || nulls[3] == 'n')
			continue;
		values[7] = CStringGetTextDatum(state->current);
		if (op_spi("INSERT INTO tenant_airbyte.tenant_syncs AS s"
				   "  (tenant_id, airbyte_connection_id, airbyte_job_id, job_type, status,"
				   "   rows_synced, bytes_synced, started_at)"
				   " SELECT c.tenant_id, c.airbyte_connection_id, $2::bigint, coalesce($3, 'sync'), $4,"
				   "        $5::bigint, $6::bigint, coalesce($7::timestamptz, pg_catalog.now())"
				   "   FROM tenant_airbyte.tenant_connections AS c"
				   "  WHERE c.airbyte_connection_id OPERATOR(pg_catalog.=) $1::uuid"
				   "    AND c.airbyte_workspace_id OPERATOR(pg_catalog.=) $8::uuid"
				   " ON CONFLICT (tenant_id, airbyte_job_id) DO UPDATE"
				   "    SET status = EXCLUDED.status, rows_synced = EXCLUDED.rows_synced,"
				   "        bytes_synced = EXCLUDED.bytes_synced"
				   "  WHERE s.status OPERATOR(pg_catalog.<>) EXCLUDED.status"
				   "     OR s.rows_synced IS DISTINCT FROM EXCLUDED.rows_synced"
				   "     OR s.bytes_synced IS DISTINCT FROM EXCLUDED.bytes_synced",
				   8, types, values, nulls, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a job's status");
		state->recorded += (int) SPI_processed;
	}
	state->pages++;
	if (airbyte_page_may_continue((int) JsonContainerSize(data)))
	{
		state->offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}
	return op_goto(op, "next");
}

static const OperationStep poll_syncs_steps[] = {
	{"next", NULL, next_workspace, 0},
	{"list", build_list, listed, 0},
};

const OperationKind poll_syncs_kind = {
	"poll_syncs", poll_syncs_steps, lengthof_steps(poll_syncs_steps)
};

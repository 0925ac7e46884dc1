/*-------------------------------------------------------------------------
 *
 * kind_reconcile.c
 *	  reconcile: compare the extension's rows with what Airbyte holds
 *	  (drift), report each difference and, unless it is a dry run, record
 *	  one operation per repair.
 *
 *	  step		request							answer leads to
 *	  start		-								the first listing: every live
 *												workspace; list.  A periodic
 *												run while reconcile_interval_s
 *												is 0: nothing to do
 *	  list		GET /workspaces?includeDeleted=	every page of the current
 *				&limit=&offset=, then for		listing kept; the next page,
 *				batches of the rows' workspaces	or the next listing (queued
 *				GET /sources, /destinations,	after the workspaces: the
 *				/connections?workspaceIds=		children of the recorded ones
 *				&limit=&offset=					Airbyte holds); none left:
 *												compare
 *	  compare	-								drift_compare() (section 12 of
 *												the install script): the run,
 *												its findings and the repairs
 *												recorded together; done
 *
 * HOW A LISTING OF EVERY WORKSPACE FITS THE STEP MODEL.  A step has one
 * request in flight; the kind keeps a queue of listings in its state and
 * the list step builds its request from the head of the queue, so each
 * page (of any listing) is one round of the same step: op_send() after a
 * page that was full (the next page) or after a listing ended (the next
 * listing).  What the pages held stays in the operation's memory as one
 * JSON array; the comparison is one SQL function over that array and the
 * rows, in the transaction of the compare step.  The children of up to
 * WORKSPACES_PER_LISTING workspaces are listed by one request
 * (workspaceIds takes a list, comma-separated as the spec's example
 * writes it), so 20,000 tenants cost 200 workspace pages
 * plus about 3 x 20,000 / 20 child pages, not 60,000 requests.  The
 * listing with includeDeleted=true is sent only when a recorded workspace
 * is missing from the live one: Airbyte's WorkspaceResponse does not say
 * whether a workspace is deleted, so the two listings together tell a
 * deleted workspace from one Airbyte never had.
 *
 * Only GET requests: a dry run changes nothing in Airbyte.  Reads are safe
 * to repeat, so a failed page is sent again in place (op_failed), and an
 * interrupted run (worker restart) simply starts over at its first step;
 * nothing is recorded before the compare step.
 *
 * Runs of reconcile() are operations of the pseudo tenant RECONCILE_TENANT
 * (one at a time: a second call waits for the first); the periodic run
 * every tenant_airbyte.reconcile_interval_s is one of PERIODIC_TENANT, so
 * that a periodic run waiting for its time never holds back a call.  Each
 * periodic run records the next one when it ends (two subjects alternate,
 * as for poll_syncs), and the worker's tick (reconcile_tick(), at most
 * once a second) starts the chain when the setting is turned on, and
 * again after a run that ended failed or dead: backing off, so that an
 * Airbyte that keeps refusing the listing is not listed again at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "kinds.h"

#define PERIODIC_TENANT "tenant_airbyte.reconcile_periodic"

/*
 * A periodic run after one that ended failed or dead waits this long, twice
 * as long after each further failure, at most reconcile_interval_s.
 */
#define RETRY_FIRST_S 10

/* Workspaces whose children one list request asks for. */
#define WORKSPACES_PER_LISTING 20

typedef struct Listing
{
	const char *object;			/* workspace, workspace_any, source,
								 * destination, connection */
	char	   *workspace_ids;	/* comma-separated; NULL for workspaces */
} Listing;

typedef struct ReconcileState
{
	bool		dry_run;
	bool		periodic;
	TimestampTz started_at;
	List	   *queue;			/* Listing *, head is being listed */
	int			offset;
	int			objects;
	int			pages;
	StringInfoData listed;		/* JSON array text: {"o": ..., "d": ...} */
} ReconcileState;

static void schedule_next(Operation *op, int failures);

static ReconcileState *
state_of(Operation *op)
{
	return (ReconcileState *) op->state;
}

static Listing *
new_listing(const char *object, char *workspace_ids)
{
	Listing    *l = palloc(sizeof(Listing));

	l->object = object;
	l->workspace_ids = workspace_ids;
	return l;
}

/* start: a fresh run (every claim starts here: a restart lists again). */
static StepResult
start(Operation *op, AirbyteResponse *resp)
{
	ReconcileState *state = palloc0(sizeof(ReconcileState));
	const char *dry_run = op_param(op, "dry_run");
	const char *periodic = op_param(op, "periodic");

	state->dry_run = dry_run == NULL || strcmp(dry_run, "false") != 0;
	state->periodic = periodic != NULL && strcmp(periodic, "true") == 0;
	if (state->periodic && tenant_airbyte_reconcile_interval_s == 0)
		return op_nothing_to_do(op, "{\"status\": \"off\", \"reason\": \"tenant_airbyte.reconcile_interval_s is 0\"}");

	state->started_at = GetCurrentTimestamp();
	state->queue = list_make1(new_listing("workspace", NULL));
	initStringInfo(&state->listed);
	appendStringInfoChar(&state->listed, '[');
	op->state = state;
	return op_goto(op, "list");
}

static HttpRequest *
build_list(Operation *op)
{
	ReconcileState *state = state_of(op);
	Listing    *l = (Listing *) linitial(state->queue);

	if (strcmp(l->object, "workspace") == 0 || strcmp(l->object, "workspace_any") == 0)
		return airbyte_prepare_list_workspaces(AIRBYTE_PAGE_LIMIT, state->offset,
											   strcmp(l->object, "workspace_any") == 0);
	return airbyte_prepare(HTTP_GET,
						   psprintf("/%ss?workspaceIds=%s&limit=%d&offset=%d",
									l->object, l->workspace_ids,
									AIRBYTE_PAGE_LIMIT, state->offset),
						   NULL);
}

/* Keeps a page's objects, tagged with what was listed. */
static void
keep_page(ReconcileState *state, const char *object, Jsonb *body)
{
	JsonbContainer *data = airbyte_page_data(body);

	for (uint32 i = 0; data != NULL && i < JsonContainerSize(data); i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(data, i);

		if (item == NULL || item->type != jbvBinary)
			continue;
		if (state->objects > 0)
			appendStringInfoChar(&state->listed, ',');
		appendStringInfo(&state->listed, "{\"o\": \"%s\", \"d\": ", object);
		(void) JsonbToCString(&state->listed, item->val.binary.data, item->val.binary.len);
		appendStringInfoChar(&state->listed, '}');
		state->objects++;
	}
}

/*
 * queue_children
 *		After the live workspaces: the sources, destinations and connections
 *		of every recorded workspace Airbyte holds, WORKSPACES_PER_LISTING at
 *		a time; first the listing with deleted workspaces when a recorded
 *		one is missing.
 */
static void
queue_children(Operation *op)
{
	ReconcileState *state = state_of(op);
	Datum		values[1];
	Oid			types[1] = {TEXTOID};
	List	   *present = NIL;
	bool		missing = false;
	ListCell   *lc;
	StringInfoData batch;
	int			in_batch = 0;
	static const char *const children[] = {"source", "destination", "connection"};

	values[0] = CStringGetTextDatum(psprintf("%s]", state->listed.data));
	if (op_spi("SELECT p.workspace_id, p.present"
			   "  FROM tenant_airbyte.drift_present_workspaces($1::jsonb) AS p",
			   1, types, values, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the recorded workspaces");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		if (strcmp(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2), "t") == 0)
			present = lappend(present, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		else
			missing = true;
	}

	if (missing)
		state->queue = lappend(state->queue, new_listing("workspace_any", NULL));
	initStringInfo(&batch);
	foreach(lc, present)
	{
		if (in_batch > 0)
			appendStringInfoChar(&batch, ',');
		appendStringInfoString(&batch, (char *) lfirst(lc));
		if (++in_batch == WORKSPACES_PER_LISTING || lnext(present, lc) == NULL)
		{
			for (int k = 0; k < lengthof(children); k++)
				state->queue = lappend(state->queue, new_listing(children[k], pstrdup(batch.data)));
			resetStringInfo(&batch);
			in_batch = 0;
		}
	}
}

static StepResult
listed(Operation *op, AirbyteResponse *resp)
{
	ReconcileState *state = state_of(op);
	Listing    *l = (Listing *) linitial(state->queue);

	if (resp->outcome != AIRBYTE_OK)
	{
		StepResult	result = op_failed(op, resp, psprintf("list %ss to reconcile", l->object));

		/*
		 * A periodic run that ends here (failed, or dead with its attempts
		 * used up, as opqueue.c decides) records its successor now, backing
		 * off, rather than leaving it to the next tick, which an idle worker
		 * may only reach a minute later.
		 */
		if (state->periodic && tenant_airbyte_reconcile_interval_s > 0 &&
			(result == STEP_FAIL ||
			 (result == STEP_RETRY && !op->attempt_unused &&
			  op->attempts >= tenant_airbyte_max_attempts)))
		{
			const char *failures = op_param(op, "failures");

			schedule_next(op, (failures ? atoi(failures) : 0) + 1);
		}
		return result;
	}

	state->pages++;
	keep_page(state, l->object, resp->body);
	if (airbyte_page_length(resp->body) >= AIRBYTE_PAGE_LIMIT)
	{
		state->offset += AIRBYTE_PAGE_LIMIT;
		return op_send(op);
	}

	/* this listing is complete: the next one */
	state->queue = list_delete_first(state->queue);
	state->offset = 0;
	if (strcmp(l->object, "workspace") == 0)
		queue_children(op);
	if (state->queue != NIL)
		return op_send(op);
	return op_goto(op, "compare");
}

/*
 * backoff_s
 *		How long the periodic run after failures failed runs in a row
 *		waits: RETRY_FIRST_S, doubling, at most reconcile_interval_s.
 *		Mirrored in reconcile_tick()'s SQL.
 */
static double
backoff_s(int failures)
{
	double		wait = RETRY_FIRST_S;

	while (--failures > 0 && wait < tenant_airbyte_reconcile_interval_s)
		wait *= 2;
	return Min(wait, (double) tenant_airbyte_reconcile_interval_s);
}

/*
 * schedule_next
 *		A periodic run records the next one: due reconcile_interval_s later
 *		after a success (failures 0), after backoff_s(failures) when it
 *		ended failed.  Recorded before this run's end is, in the same
 *		transaction, so the two alternate subjects ("round").
 */
static void
schedule_next(Operation *op, int failures)
{
	Datum		values[3];
	Oid			types[3] = {TEXTOID, FLOAT8OID, INT4OID};
	const char *round = op_param(op, "round");

	values[0] = CStringGetTextDatum(round != NULL && strcmp(round, "1") == 0 ? "0" : "1");
	values[1] = Float8GetDatum(failures > 0 ? backoff_s(failures) :
							   (double) tenant_airbyte_reconcile_interval_s);
	values[2] = Int32GetDatum(failures);
	if (op_spi("INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params, next_attempt_at)"
			   " VALUES ('reconcile', '" PERIODIC_TENANT "', $1,"
			   "         pg_catalog.jsonb_build_object('dry_run', 'false'::text, 'periodic', 'true'::text, 'round', $1,"
			   "                                       'failures', $3::text),"
			   "         pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $2))"
			   " ON CONFLICT DO NOTHING",
			   3, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the next reconciliation");
}

static StepResult
compare(Operation *op, AirbyteResponse *resp)
{
	ReconcileState *state = state_of(op);
	Datum		values[6];
	Oid			types[6] = {INT8OID, BOOLOID, BOOLOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	char	   *summary;

	appendStringInfoChar(&state->listed, ']');
	values[0] = Int64GetDatum(op->id);
	values[1] = BoolGetDatum(state->dry_run);
	values[2] = BoolGetDatum(state->periodic);
	values[3] = CStringGetTextDatum(tenant_airbyte_orphan_policy == ORPHAN_POLICY_DELETE ? "delete" : "report");
	values[4] = CStringGetTextDatum(state->listed.data);
	values[5] = TimestampTzGetDatum(state->started_at);
	if (op_spi("SELECT tenant_airbyte.drift_compare($1, $2, $3, $4, $5::jsonb, $6)::text",
			   6, types, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compare the rows with Airbyte");
	summary = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (state->periodic && tenant_airbyte_reconcile_interval_s > 0)
		schedule_next(op, 0);
	ereport(LOG,
			(errmsg("tenant_airbyte: reconciliation %s" INT64_FORMAT " listed %d Airbyte objects in %d pages: %s",
					state->periodic ? "(periodic) " : "", op->id, state->objects, state->pages, summary)));
	return op_done(op, "%s", summary);
}

/*
 * reconcile_tick
 *		Called by the worker at most once a second: with
 *		reconcile_interval_s on and no periodic run recorded, records one.
 *		After a run that ended done (or none yet) it is due an interval
 *		after the last periodic run finished, at once when there was none;
 *		after a run that ended failed or dead without recording its
 *		successor (a failure outside its listing, the worker killed until
 *		its attempts ran out), it backs off as schedule_next() does, from
 *		when that run finished.  The count of failed runs in a row travels
 *		in the new run's params ("failures"), which worker_status shows
 *		(reconcile_failures, reconcile_next_at); a string, as op_param()
 *		reads only strings.
 */
static void
reconcile_tick(void)
{
	Datum		values[2];
	Oid			types[2] = {INT4OID, INT4OID};

	if (tenant_airbyte_reconcile_interval_s <= 0)
		return;
	values[0] = Int32GetDatum(tenant_airbyte_reconcile_interval_s);
	values[1] = Int32GetDatum(RETRY_FIRST_S);
	if (op_spi("INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params, next_attempt_at)"
			   " SELECT 'reconcile', '" PERIODIC_TENANT "', '0',"
			   "        pg_catalog.jsonb_build_object('dry_run', 'false'::text, 'periodic', 'true'::text, 'round', '0'::text,"
			   "                                      'failures', l.failures::text),"
			   "        CASE WHEN l.failures OPERATOR(pg_catalog.>) 0"
			   "             THEN GREATEST(pg_catalog.now(),"
			   "                           l.finished_at OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs =>"
			   "                             LEAST($1::double precision,"
			   "                                   $2 OPERATOR(pg_catalog.*) pg_catalog.power(2::double precision,"
			   "                                     LEAST(l.failures OPERATOR(pg_catalog.-) 1, 30)))))"
			   "             ELSE GREATEST(pg_catalog.now(),"
			   "                           (SELECT pg_catalog.max(r.finished_at) FROM tenant_airbyte.reconcile_runs AS r"
			   "                             WHERE r.periodic) OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => $1))"
			   "        END"
			   "   FROM (SELECT CASE WHEN o.status OPERATOR(pg_catalog.=) ANY ('{failed,dead}'::text[])"
			   "                     THEN coalesce((o.params OPERATOR(pg_catalog.->>) 'failures')::integer, 0)"
			   "                          OPERATOR(pg_catalog.+) 1"
			   "                     ELSE 0 END AS failures,"
			   "                o.finished_at"
			   "           FROM (SELECT) AS one"
			   "           LEFT JOIN LATERAL"
			   "                (SELECT f.status, f.params, f.finished_at FROM tenant_airbyte.operations AS f"
			   "                  WHERE f.tenant_id OPERATOR(pg_catalog.=) '" PERIODIC_TENANT "'"
			   "                    AND f.kind OPERATOR(pg_catalog.=) 'reconcile'"
			   "                    AND f.status OPERATOR(pg_catalog.=) ANY ('{done,failed,dead}'::text[])"
			   "                  ORDER BY f.id DESC LIMIT 1) AS o ON true) AS l"
			   "  WHERE NOT EXISTS (SELECT FROM tenant_airbyte.operations AS o"
			   "                     WHERE o.tenant_id OPERATOR(pg_catalog.=) '" PERIODIC_TENANT "'"
			   "                       AND o.kind OPERATOR(pg_catalog.=) 'reconcile'"
			   "                       AND o.status OPERATOR(pg_catalog.=) ANY ('{pending,in_flight}'::text[]))"
			   " ON CONFLICT DO NOTHING",
			   2, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the periodic reconciliation");
}

static const OperationStep reconcile_steps[] = {
	{"start", NULL, start, 0},
	{"list", build_list, listed, 0},
	{"compare", NULL, compare, 0},
};

const OperationKind reconcile_kind = {
	"reconcile", reconcile_steps, lengthof_steps(reconcile_steps), reconcile_tick
};

/*-------------------------------------------------------------------------
 *
 * webhook_intake.c
 *	  receive_webhook(): verify, parse, route and store one Frontegg
 *	  delivery in webhook_inbox; and webhook_work(), the routing table.
 *
 * receive_webhook() is the one statement the shim runs for every delivery,
 * each in its own transaction, so its fixed cost per call is the intake's
 * ceiling (bench/webhookd_ingest measures it).  It is written in C so that a call costs
 * one JSON parse and one saved INSERT plan: in PL/pgSQL every call
 * re-initialised each statement's executor state and re-parsed the SQL
 * routing function, which was most of the time spent per delivery.
 *
 * Order of checks (README.md "Webhook intake"): size (413), authenticity
 * (401, src/intake/webhook_verify.c), JSON and tenant id (400), dedupe (200,
 * against webhook_dedupe, which outlives the inbox rows), then one inbox
 * row: pending work (202) or an ignored event (200).
 * Nothing is stored unless every check passed.
 *
 * The body is parsed by PostgreSQL itself (convert_from(body, 'UTF8') and
 * jsonb_in), once; the parsed value is what is stored as the payload.
 * The row is inserted through a saved SPI plan with parameters, never
 * through SQL text built from the delivery.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "tenant_airbyte.h"
#include "webhook.h"

/* Longest tenant id accepted, in characters (the column is varchar(255)). */
#define TENANT_ID_MAX_CHARS 255

/* How much of an event name goes into a message, in characters. */
#define MESSAGE_EVENT_CHARS 100

PG_FUNCTION_INFO_V1(tenant_airbyte_receive_webhook);
PG_FUNCTION_INFO_V1(tenant_airbyte_webhook_work);

/*
 * The routing table: which event keys (Frontegg's eventKey, the shim's
 * route names, the seed's eventType) are work, and which work.  Every other
 * event is accepted, recorded and ignored.
 */
typedef struct WebhookRoute
{
	const char *event_key;
	const char *work;
} WebhookRoute;

static const WebhookRoute webhook_routes[] = {
	{"frontegg.tenant.created", "tenant.created"},
	{"tenant-created", "tenant.created"},
	{"tenant.created", "tenant.created"},
	{"frontegg.tenant.updated", "tenant.updated"},
	{"tenant-updated", "tenant.updated"},
	{"tenant.updated", "tenant.updated"},
	{"frontegg.tenant.deleted", "tenant.deleted"},
	{"tenant-deleted", "tenant.deleted"},
	{"tenant.deleted", "tenant.deleted"},
};

/*
 * The headers kept with a delivery (lower-cased names), for tracing where it
 * came from and matching it with the sender's own logs.  An allowlist, not
 * a blocklist: senders and proxies invent credential headers under any name
 * (x-apikey, x-auth, authorisation, x-sig, x-forwarded-client-cert, ...),
 * and a list of forbidden words cannot foresee them all.  Nothing here is a
 * secret or a signature; add a name only after checking that.
 */
static const char *const kept_header_names[] = {
	"content-type",
	"content-length",
	"user-agent",
	"webhook-id",				/* standard-webhooks: signed, not secret */
	"webhook-timestamp",
	"x-request-id",
	"x-correlation-id",
	"traceparent",
	"tracestate",
	"x-forwarded-for",
	"x-forwarded-proto",
	"x-forwarded-host",
	"x-real-ip",
	"forwarded",
};

/* Statements, prepared once per backend and kept (SPI_keepplan). */
/*
 * The key goes into webhook_dedupe and the row into webhook_inbox in one
 * statement: a key seen before (even one whose inbox row is long gone)
 * inserts nothing.  Both ON CONFLICT clauses wait for a concurrent insert
 * of the same key to commit or roll back, so racing copies become one row.
 */
static const char insert_sql[] =
"WITH new_key AS ("
"  INSERT INTO tenant_airbyte.webhook_dedupe AS d (dedupe_key) VALUES ($8)"
"  ON CONFLICT (dedupe_key) DO NOTHING"
"  RETURNING d.dedupe_key)"
" INSERT INTO tenant_airbyte.webhook_inbox AS i"
"       (event, event_key, tenant_id, tenant_name, body, payload, headers,"
"        dedupe_key, status, finished_at)"
" SELECT $1, $2, $3, $4, $5, $6, $7, k.dedupe_key, $9, $10 FROM new_key AS k"
" ON CONFLICT (dedupe_key) DO NOTHING"
" RETURNING i.delivery_id";

static const char lookup_sql[] =
"SELECT i.delivery_id FROM tenant_airbyte.webhook_inbox AS i"
" WHERE i.dedupe_key OPERATOR(pg_catalog.=) $1";

static const char key_known_sql[] =
"SELECT FROM tenant_airbyte.webhook_dedupe AS d"
" WHERE d.dedupe_key OPERATOR(pg_catalog.=) $1";

/*
 * A few keys past dedupe_retention_days, deleted with each new delivery:
 * the table stays bounded without a job of its own, and SKIP LOCKED keeps
 * concurrent intakes from waiting for each other.
 */
#define DEDUPE_PURGE_PER_DELIVERY 4
static const char purge_sql[] =
"DELETE FROM tenant_airbyte.webhook_dedupe AS d"
" WHERE d.ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
"   SELECT e.ctid FROM tenant_airbyte.webhook_dedupe AS e"
"    WHERE e.received_at OPERATOR(pg_catalog.<) $1"
"    ORDER BY e.received_at LIMIT 4"
"    FOR UPDATE SKIP LOCKED))";

static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr lookup_plan = NULL;
static SPIPlanPtr key_known_plan = NULL;
static SPIPlanPtr purge_plan = NULL;

/*
 * webhook_work_for
 *		The work an event key asks for, or NULL when it asks for none (or is
 *		NULL).  Keys compare byte for byte, as text equality does.
 */
static const char *
webhook_work_for(const char *event_key)
{
	int			i;

	if (event_key == NULL)
		return NULL;
	for (i = 0; i < lengthof(webhook_routes); i++)
		if (strcmp(event_key, webhook_routes[i].event_key) == 0)
			return webhook_routes[i].work;
	return NULL;
}

/*
 * left_chars
 *		The first n characters of s (server encoding), as left(s, n) does;
 *		for putting client-chosen text into a message of bounded size.
 */
static char *
left_chars(const char *s, int n)
{
	return pnstrdup(s, pg_mbcharcliplen(s, strlen(s), n));
}

/*
 * object_member
 *		The value of key in a JSON object container, as the -> operator
 *		finds it; NULL when the container is not an object, the key is
 *		absent, or (as nullif(..., 'null') said in SQL) the value is JSON
 *		null, when null_is_absent.
 */
static JsonbValue *
object_member(JsonbContainer *container, const char *key, bool null_is_absent)
{
	JsonbValue	k;
	JsonbValue *v;

	if (!JsonContainerIsObject(container))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(container, JB_FOBJECT, &k);
	if (v != NULL && null_is_absent && v->type == jbvNull)
		return NULL;
	return v;
}

/*
 * nested_member
 *		payload #> '{outer,inner}' (JSON null counted as absent): only an
 *		object is looked into, as jsonb_extract_path does for a key that is
 *		not an array index.
 */
static JsonbValue *
nested_member(Jsonb *payload, const char *outer, const char *inner)
{
	JsonbValue *v = object_member(&payload->root, outer, false);

	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return object_member(v->val.binary.data, inner, true);
}

/*
 * first_present
 *		The first of up to four candidates that is not NULL (coalesce).
 */
static JsonbValue *
first_present(JsonbValue *a, JsonbValue *b, JsonbValue *c, JsonbValue *d)
{
	return a ? a : b ? b : c ? c : d;
}

/*
 * string_value
 *		A JSON string's text as a NUL-terminated copy.  jsonb_in refuses
 *		\u0000, so the text cannot contain a NUL byte.
 */
static char *
string_value(JsonbValue *v)
{
	Assert(v->type == jbvString);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * is_blank
 *		True when s is empty or only spaces (btrim(s) = '').
 */
static bool
is_blank(const char *s)
{
	while (*s == ' ')
		s++;
	return *s == '\0';
}

/*
 * parse_body
 *		The body as jsonb, parsed by PostgreSQL exactly as
 *		convert_from(body, 'UTF8')::jsonb does; NULL when that refuses it
 *		with a data exception (class 22: invalid UTF-8, not JSON, \u0000,
 *		a number out of range) or a program limit (class 54: nesting too
 *		deep).  PostgreSQL 15 parsers report those only by raising, so they
 *		are caught in a subtransaction, the one safe way to continue after
 *		an error; anything else (out of memory, cancel) propagates.
 */
static Jsonb *
parse_body(bytea *body)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Jsonb	   *volatile payload = NULL;

	BeginInternalSubTransaction(NULL);
	/* Allocate the result in the caller's context, which outlives this. */
	MemoryContextSwitchTo(oldcontext);

	PG_TRY();
	{
		NameData	utf8;
		Datum		text_body;

		namestrcpy(&utf8, "UTF8");
		text_body = DirectFunctionCall2(pg_convert_from,
										PointerGetDatum(body),
										NameGetDatum(&utf8));
		payload = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													 CStringGetDatum(TextDatumGetCString(text_body))));

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (category != ERRCODE_DATA_EXCEPTION &&
			category != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ReThrowError(edata);
		FreeErrorData(edata);
		payload = NULL;
	}
	PG_END_TRY();

	return payload;
}

/*
 * header_is_kept
 *		Whether a lower-cased header name is on the allowlist above.
 */
static bool
header_is_kept(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(kept_header_names); i++)
		if (strcmp(name, kept_header_names[i]) == 0)
			return true;
	return false;
}

/*
 * kept_headers
 *		The headers to store with the delivery: names lower-cased (with
 *		the database's rules, as lower() does), values as given, only those
 *		on the allowlist (kept_header_names).  Where two names become
 *		the same once lower-cased, the later one in the object's order
 *		wins, as jsonb_object_agg() over jsonb_each() decided before.
 */
static Jsonb *
kept_headers(Jsonb *headers)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (headers != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken token;

		if (!JB_ROOT_IS_OBJECT(headers))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot call %s on a non-object", "jsonb_each")));

		it = JsonbIteratorInit(&headers->root);
		while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			JsonbValue	key;
			char	   *name;

			if (token != WJB_KEY)
				continue;
			name = str_tolower(v.val.string.val, v.val.string.len,
							   DEFAULT_COLLATION_OID);
			token = JsonbIteratorNext(&it, &v, true);
			Assert(token == WJB_VALUE);
			if (!header_is_kept(name))
				continue;

			key.type = jbvString;
			key.val.string.val = name;
			key.val.string.len = strlen(name);
			pushJsonbValue(&state, WJB_KEY, &key);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * saved_plan
 *		A statement prepared once per backend and kept; the plan cache
 *		revalidates it after DDL.  A generic plan from the start: the
 *		statements are single-row and their plan never depends on values.
 */
static SPIPlanPtr
saved_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/*
 * returned_id
 *		The bigint in the first column of the only row SPI returned, or
 *		false when there was none.
 */
static bool
returned_id(int64 *id)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	*id = DatumGetInt64(d);
	return true;
}

/* What receive_webhook() answers. */
typedef struct WebhookAnswer
{
	int			http_status;
	bool		has_delivery_id;
	int64		delivery_id;
	char	   *message;
} WebhookAnswer;

/* A delivery that passed every check, ready to store. */
typedef struct WebhookDelivery
{
	const char *event;			/* the inbox row's event */
	const char *event_key;
	const char *tenant_id;		/* NULL when ignored without a usable one */
	const char *tenant_name;
	bytea	   *body;
	Jsonb	   *payload;
	Jsonb	   *headers;		/* only the allowlisted ones */
	const char *dedupe_key;
	bool		ignored;
} WebhookDelivery;

/*
 * purge_expired_keys
 *		Deletes up to DEDUPE_PURGE_PER_DELIVERY dedupe keys older than
 *		tenant_airbyte.dedupe_retention_days.
 */
static void
purge_expired_keys(void)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		cutoff;
	int			ret;

	StaticAssertStmt(DEDUPE_PURGE_PER_DELIVERY == 4, "purge_sql says LIMIT 4");
	cutoff = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
								 (TimestampTz) tenant_airbyte_dedupe_retention_days * USECS_PER_DAY);
	ret = SPI_execute_plan(saved_plan(&purge_plan, purge_sql, 1, types),
						   &cutoff, NULL, false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "purging webhook_dedupe failed: %s", SPI_result_code_string(ret));
}

/*
 * store_delivery
 *		One inbox row for the delivery, or the id of the earlier row with
 *		the same dedupe key (*delivery_id_known false when that row has been
 *		deleted since, but the key is still remembered in webhook_dedupe).
 *		ON CONFLICT waits for a concurrent insert of the same key to
 *		finish, so racing copies become one row; if the earlier key is
 *		purged between the INSERT and the lookups, insert again.  Returns
 *		true when this call inserted the row.
 */
static bool
store_delivery(const WebhookDelivery *d, int64 *delivery_id, bool *delivery_id_known)
{
	Oid			insert_types[10] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID,
	JSONBOID, JSONBOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Oid			lookup_types[1] = {TEXTOID};
	Datum		values[10];
	char		nulls[10];
	Datum		key;
	int			ret;
	bool		inserted = false;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(d->event);
	values[1] = CStringGetTextDatum(d->event_key);
	if (d->tenant_id != NULL)
		values[2] = CStringGetTextDatum(d->tenant_id);
	else
		nulls[2] = 'n';
	if (d->tenant_name != NULL)
		values[3] = CStringGetTextDatum(d->tenant_name);
	else
		nulls[3] = 'n';
	values[4] = PointerGetDatum(d->body);
	values[5] = JsonbPGetDatum(d->payload);
	values[6] = JsonbPGetDatum(d->headers);
	key = CStringGetTextDatum(d->dedupe_key);
	values[7] = key;
	values[8] = CStringGetTextDatum(d->ignored ? "ignored" : "pending");
	/* finished_at: an ignored delivery is finished when it arrives (now()). */
	if (d->ignored)
		values[9] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	else
		nulls[9] = 'n';

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	for (;;)
	{
		ret = SPI_execute_plan(saved_plan(&insert_plan, insert_sql, 10, insert_types),
							   values, nulls, false, 0);
		if (ret != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "inserting into webhook_inbox failed: %s",
				 SPI_result_code_string(ret));
		if (returned_id(delivery_id))
		{
			inserted = true;
			*delivery_id_known = true;
			purge_expired_keys();
			break;
		}

		/* Same delivery as an earlier one: answer with its id. */
		ret = SPI_execute_plan(saved_plan(&lookup_plan, lookup_sql, 1, lookup_types),
							   &key, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "looking up a duplicate delivery failed: %s",
				 SPI_result_code_string(ret));
		if (returned_id(delivery_id))
		{
			*delivery_id_known = true;
			break;
		}

		/* Its inbox row is gone, but the key is remembered: still a duplicate. */
		ret = SPI_execute_plan(saved_plan(&key_known_plan, key_known_sql, 1, lookup_types),
							   &key, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "looking up a dedupe key failed: %s",
				 SPI_result_code_string(ret));
		if (SPI_processed > 0)
		{
			*delivery_id_known = false;
			break;
		}
		/* The earlier key was purged between the statements. */
		CHECK_FOR_INTERRUPTS();
	}

	SPI_finish();
	return inserted;
}

/*
 * receive_delivery
 *		Everything receive_webhook() decides, in README order; stores the
 *		delivery when it is accepted.
 */
static void
receive_delivery(const char *event, Jsonb *headers, Datum body_datum,
				 bool body_isnull, WebhookAnswer *answer)
{
	bytea	   *body;
	const char *problem;
	char	   *dedupe_key;
	Jsonb	   *payload;
	JsonbValue *v;
	const char *body_event = NULL;
	const char *route_work;
	const char *body_work;
	const char *event_key;
	const char *work;
	JsonbValue *tenant;
	JsonbValue *tenant_name;
	char	   *tenant_id_text = NULL;
	char	   *tenant_name_text = NULL;
	const char *tenant_problem = NULL;
	WebhookDelivery d;

	memset(answer, 0, sizeof(*answer));

	/* 413, then 401: nothing is looked at before it is known authentic. */
	if (!body_isnull && (problem = webhook_size_problem(body_datum)) != NULL)
	{
		answer->http_status = 413;
		answer->message = (char *) problem;
		return;
	}
	if (body_isnull)
	{
		body = palloc(VARHDRSZ);
		SET_VARSIZE(body, VARHDRSZ);
	}
	else
		body = DatumGetByteaPP(body_datum);
	problem = webhook_authenticate(headers, VARDATA_ANY(body),
								   VARSIZE_ANY_EXHDR(body), &dedupe_key);
	if (problem != NULL)
	{
		answer->http_status = 401;
		answer->message = (char *) problem;
		return;
	}

	/* PostgreSQL's own parser; anything it refuses is a 400, never an error. */
	payload = parse_body(body);
	if (payload == NULL)
	{
		answer->http_status = 400;
		answer->message = "body is not valid JSON";
		return;
	}
	if (!JB_ROOT_IS_OBJECT(payload))
	{
		answer->http_status = 400;
		answer->message = "body is not a JSON object";
		return;
	}

	/* The event: from the route, from the body, and they must agree. */
	if ((v = object_member(&payload->root, "eventKey", false)) != NULL)
	{
		if (v->type != jbvString)
		{
			answer->http_status = 400;
			answer->message = "eventKey is not a JSON string";
			return;
		}
		body_event = string_value(v);
	}
	else if ((v = object_member(&payload->root, "eventType", false)) != NULL &&
			 v->type == jbvString)
		body_event = string_value(v);
	if (event == NULL && body_event == NULL)
	{
		answer->http_status = 400;
		answer->message = "no event: the route names none and the body has no eventKey";
		return;
	}
	route_work = webhook_work_for(event);
	body_work = webhook_work_for(body_event);
	if (event != NULL && body_event != NULL &&
		!(route_work == NULL ? body_work == NULL :
		  body_work != NULL && strcmp(route_work, body_work) == 0))
	{
		answer->http_status = 400;
		answer->message = psprintf("the route (%s) and the body's event (%s) disagree",
								   left_chars(event, MESSAGE_EVENT_CHARS),
								   left_chars(body_event, MESSAGE_EVENT_CHARS));
		return;
	}
	event_key = body_event != NULL ? body_event : event;
	work = route_work != NULL ? route_work : body_work;

	/* The tenant, from every place Frontegg payloads put it. */
	tenant = first_present(nested_member(payload, "eventContext", "tenantId"),
						   nested_member(payload, "tenant", "tenantId"),
						   object_member(&payload->root, "tenantId", true),
						   object_member(&payload->root, "orgId", true));
	tenant_name = first_present(nested_member(payload, "tenant", "name"),
								object_member(&payload->root, "tenantName", true),
								object_member(&payload->root, "name", true),
								NULL);
	if (tenant == NULL)
		tenant_problem = "body has no tenant id (eventContext.tenantId, tenant.tenantId, tenantId or orgId)";
	else if (tenant->type != jbvString)
		tenant_problem = "tenant id is not a JSON string";
	else
	{
		char	   *id = string_value(tenant);
		int			chars = pg_mbstrlen_with_len(id, strlen(id));

		if (is_blank(id))
			tenant_problem = "tenant id is empty";
		else if (chars > TENANT_ID_MAX_CHARS)
			tenant_problem = psprintf("tenant id is %d characters long; at most %d are accepted",
									  chars, TENANT_ID_MAX_CHARS);
		else if (tenant_name != NULL && tenant_name->type != jbvString)
			tenant_problem = "tenant name is not a JSON string";
		else
		{
			tenant_id_text = id;
			tenant_name_text = tenant_name ? string_value(tenant_name) : NULL;
		}
	}

	if (work != NULL && tenant_problem != NULL)
	{
		answer->http_status = 400;
		answer->message = (char *) tenant_problem;
		return;
	}
	/* A rename without a name has nothing to do. */
	if (work != NULL && strcmp(work, "tenant.updated") == 0 && tenant_name_text == NULL)
		work = NULL;

	d.event = work != NULL ? work : event_key;
	d.event_key = event_key;
	d.tenant_id = tenant_id_text;
	d.tenant_name = tenant_name_text;
	d.body = body;
	d.payload = payload;
	d.headers = kept_headers(headers);
	d.dedupe_key = dedupe_key;
	d.ignored = (work == NULL);

	if (!store_delivery(&d, &answer->delivery_id, &answer->has_delivery_id))
	{
		answer->http_status = 200;
		answer->message = answer->has_delivery_id ?
			"duplicate delivery: already received" :
			"duplicate delivery: already received (its inbox row has since been deleted)";
	}
	else if (work == NULL)
	{
		answer->http_status = 200;
		answer->message = psprintf("ignored: %s needs no work",
								   left_chars(event_key, MESSAGE_EVENT_CHARS));
	}
	else
	{
		answer->http_status = 202;
		answer->message = psprintf("accepted: %s", work);
	}
}

/*
 * tenant_airbyte_receive_webhook
 *		receive_webhook(event text, headers jsonb, body bytea)
 *		RETURNS TABLE (http_status int, delivery_id bigint, message text)
 *
 *		One row: see receive_delivery().  SECURITY DEFINER in SQL, so the
 *		shim's role needs EXECUTE on this function and nothing else.
 */
Datum
tenant_airbyte_receive_webhook(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *event = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *headers = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	WebhookAnswer answer;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	InitMaterializedSRF(fcinfo, 0);

	receive_delivery(event, headers, PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
					 PG_ARGISNULL(2), &answer);

	values[0] = Int32GetDatum(answer.http_status);
	values[1] = Int64GetDatum(answer.delivery_id);
	nulls[1] = !answer.has_delivery_id;
	values[2] = CStringGetTextDatum(answer.message);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	return (Datum) 0;
}

/*
 * tenant_airbyte_webhook_work
 *		webhook_work(event_key text) RETURNS text: the routing table above,
 *		for SQL (tests, operators); NULL when the event needs no work.
 */
Datum
tenant_airbyte_webhook_work(PG_FUNCTION_ARGS)
{
	const char *work = webhook_work_for(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (work == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(work));
}

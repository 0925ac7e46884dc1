/*-------------------------------------------------------------------------
 *
 * airbyte_json.c
 *	  Building and reading the JSON bodies of Airbyte requests and answers
 *	  with PostgreSQL's jsonb: small objects of strings, answers parsed
 *	  without throwing, fields of WorkspaceResponse and list pages.
 *
 * JSON is built with pushJsonbValue and read with
 * findJsonbValueFromContainer; answers are validated with PostgreSQL's own
 * JSON lexer before jsonb_in sees them, so a malformed answer is an
 * outcome (AIRBYTE_BAD_RESPONSE), not an ERROR thrown from deep inside.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdarg.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "airbyte_api.h"

/*
 * airbyte_json_object
 *		{"k1": "v1", ...} from npairs (key, value) C strings; a NULL value
 *		leaves its key out, which is how optional fields stay absent.
 */
Jsonb *
airbyte_json_object(int npairs, ...)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	va_list		args;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	va_start(args, npairs);
	for (int i = 0; i < npairs; i++)
	{
		const char *key = va_arg(args, const char *);
		const char *value = va_arg(args, const char *);
		JsonbValue	k,
					v;

		if (value == NULL)
			continue;
		k.type = jbvString;
		k.val.string.val = (char *) key;
		k.val.string.len = strlen(key);
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	va_end(args);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * airbyte_parse_json
 *		Checks encoding and syntax with the non-throwing JSON parser first,
 *		so that only text jsonb_in will accept reaches it.
 */
Jsonb *
airbyte_parse_json(const char *text, size_t len)
{
	JsonLexContext *lex;

	if (text == NULL || len == 0 || len > PG_INT32_MAX || strlen(text) != len)
		return NULL;
	if (!pg_verifymbstr(text, (int) len, true))
		return NULL;
	lex = ta_json_lex_context(text, len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* A top-level field of an object, or NULL. */
JsonbValue *
airbyte_object_field(JsonbContainer *container, const char *key)
{
	JsonbValue	k;

	if (container == NULL || !JsonContainerIsObject(container))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(container, JB_FOBJECT, &k);
}

/* A string field of an object container, palloc'd, or NULL. */
static char *
container_string_field(JsonbContainer *container, const char *key)
{
	JsonbValue *v = airbyte_object_field(container, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

char *
airbyte_string_field(Jsonb *body, const char *key)
{
	return body ? container_string_field(&body->root, key) : NULL;
}

char *
airbyte_workspace_id(Jsonb *body)
{
	return airbyte_string_field(body, "workspaceId");
}

/* The "data" array of a list response, or NULL. */
JsonbContainer *
airbyte_page_data(Jsonb *body)
{
	JsonbValue *v = body ? airbyte_object_field(&body->root, "data") : NULL;

	if (v == NULL || v->type != jbvBinary ||
		!JsonContainerIsArray(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

int
airbyte_page_length(Jsonb *body)
{
	JsonbContainer *data = airbyte_page_data(body);

	return data ? (int) JsonContainerSize(data) : -1;
}

/*
 * airbyte_page_named
 *		Airbyte's list endpoints cannot filter by name, so every kind that
 *		adopts an object whose create answer was lost (a workspace, source,
 *		destination or connection) reads list pages and asks this of each:
 *		which objects on the page carry exactly the name the operation
 *		decided.  Objects without a string name and id are skipped.
 */
List *
airbyte_page_named(Jsonb *body, const char *name, const char *id_key,
				   const char *extra_key, int *page_length)
{
	JsonbContainer *data = airbyte_page_data(body);
	List	   *found = NIL;

	if (page_length != NULL)
		*page_length = data ? (int) JsonContainerSize(data) : -1;
	if (data == NULL)
		return NIL;
	for (uint32 i = 0; i < JsonContainerSize(data); i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(data, i);
		AirbyteNamedObject *object;
		char	   *item_name;
		char	   *id;

		if (item == NULL || item->type != jbvBinary)
			continue;
		item_name = container_string_field(item->val.binary.data, "name");
		id = container_string_field(item->val.binary.data, id_key);
		if (item_name == NULL || id == NULL ||
			(name != NULL && strcmp(item_name, name) != 0))
			continue;
		object = palloc(sizeof(AirbyteNamedObject));
		object->name = item_name;
		object->id = id;
		object->extra = extra_key ?
			container_string_field(item->val.binary.data, extra_key) : NULL;
		found = lappend(found, object);
	}
	return found;
}

/*
 * airbyte_page_id_named
 *		The first object of the page with that name, for kinds whose names
 *		are unique in their workspace (a second one cannot be theirs).
 */
char *
airbyte_page_id_named(Jsonb *body, const char *name, const char *id_key,
					  int *page_length)
{
	List	   *found = airbyte_page_named(body, name, id_key, NULL, page_length);

	if (found == NIL)
		return NULL;
	return ((AirbyteNamedObject *) linitial(found))->id;
}

List *
airbyte_page_job_ids(Jsonb *body)
{
	JsonbContainer *data = airbyte_page_data(body);
	List	   *ids = NIL;

	if (data == NULL)
		return NIL;
	for (uint32 i = 0; i < JsonContainerSize(data); i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(data, i);
		JsonbValue *id;

		if (item == NULL || item->type != jbvBinary)
			continue;
		id = airbyte_object_field(item->val.binary.data, "jobId");
		if (id != NULL && id->type == jbvNumeric)
			ids = lappend(ids, DatumGetCString(DirectFunctionCall1(numeric_out,
																   NumericGetDatum(id->val.numeric))));
		else if (id != NULL && id->type == jbvString)
			ids = lappend(ids, pnstrdup(id->val.string.val, id->val.string.len));
	}
	return ids;
}


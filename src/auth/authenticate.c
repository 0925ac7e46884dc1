/*-------------------------------------------------------------------------
 *
 * authenticate.c
 *	  authenticate(token): verifies a Frontegg access token (RS256, keys in
 *	  tenant_airbyte.jwt_keys) and sets the tenant context that row-level
 *	  security enforces, for the current transaction only.
 *
 * This replaces the seed's application-side tenant middleware: the tenant
 * an application acts for comes from a token only Frontegg can sign, not
 * from a value the application chooses.  An application role needs
 * nothing but EXECUTE on it; the setting tenant_airbyte.tenant_id stays
 * PGC_SUSET for everyone else.
 *
 * It also puts the tenant's data schema on the transaction's search_path
 * (pg_catalog, <data schema>, <the path before>), so the application can
 * say "SELECT * FROM orders".  That is why the SQL function is not
 * SECURITY DEFINER: a function with its own SET search_path gets the
 * caller's path back when it returns, and would undo exactly that.  What
 * SECURITY DEFINER gave it is done here for the one step that needs it:
 * the key lookup runs as the function's owner (jwt_keys is readable by
 * administrators only) with search_path pinned to pg_catalog, pg_temp.
 *
 * It never makes a network call.  A token whose kid no stored key has,
 * with tenant_airbyte.jwks_url set, asks the worker to fetch the JWKS
 * (jwks_refresh.c) and is refused saying so; a key that vanished from the
 * fetched JWKS (jwt_keys.removed_at) is accepted for
 * tenant_airbyte.jwks_grace_s more, then refused.
 *
 * Every refusal is SQLSTATE 28000 (invalid_authorization_specification)
 * with a message naming the check that failed.  Neither the message nor
 * the server log contains the token: errhidestmt() keeps the statement,
 * which may carry the token as a literal, out of the log.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "jwks_refresh.h"
#include "jwt.h"
#include "pg_compat.h"
#include "tenant_airbyte.h"
#include "tenant_data.h"

/* Longest tenant id the schema stores (tenant_id varchar(255)). */
#define TENANT_ID_MAX_LENGTH 255

/* The claims authenticate() returns; everything else stays in the token. */
static const char *const returned_claims[] = {
	"email", "permissions", "roles", "sub", "tenantId", "tenantIds", "type"
};

PG_FUNCTION_INFO_V1(tenant_airbyte_authenticate);
PG_FUNCTION_INFO_V1(tenant_airbyte_jwk_problem);

/*
 * reject_with_hint
 *		Raises the refusal of a token: which check failed, optionally why
 *		and what an operator can do about it.
 */
pg_noreturn static void
reject_with_hint(const char *check, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("access token rejected: %s", check),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errhidestmt(true)));
}

/*
 * reject
 *		The refusal of a token that is simply not acceptable.
 */
pg_noreturn static void
reject(const char *check, const char *detail)
{
	reject_with_hint(check, detail, NULL);
}

/*
 * find_key
 *		The JWK and issuer stored for kid, copied into the caller's memory
 *		context, and when the key vanished from the fetched JWKS (0 if it
 *		did not); false when there is none.  Runs as key_reader (the owner of
 *		authenticate()) with search_path pinned, the two things SECURITY
 *		DEFINER with SET search_path would give; an error on the way is
 *		cleaned up by the (sub)transaction abort, which restores both.
 */
static bool
find_key(const char *kid, Oid key_reader, Jsonb **jwk, char **issuer,
		 TimestampTz *removed_at)
{
	MemoryContext caller_context = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		found = false;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(key_reader,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	args[0] = CStringGetTextDatum(kid);
	SPI_connect();
	*removed_at = 0;
	if (SPI_execute_with_args("SELECT k.jwk, k.issuer, k.removed_at FROM tenant_airbyte.jwt_keys AS k"
							  " WHERE k.kid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read tenant_airbyte.jwt_keys");

	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		MemoryContext spi_context;

		spi_context = MemoryContextSwitchTo(caller_context);
		d = SPI_getbinval(tuple, desc, 1, &isnull);
		*jwk = isnull ? NULL : DatumGetJsonbPCopy(d);
		d = SPI_getbinval(tuple, desc, 2, &isnull);
		*issuer = isnull ? NULL : TextDatumGetCString(d);
		d = SPI_getbinval(tuple, desc, 3, &isnull);
		*removed_at = isnull ? 0 : DatumGetTimestampTz(d);
		MemoryContextSwitchTo(spi_context);
		found = (*jwk != NULL);
	}
	SPI_finish();

	AtEOXact_GUC(true, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return found;
}

/*
 * verify_signature
 *		Selects the key by the token's kid and checks the RS256 signature.
 *		Returns the issuer the key was loaded for (may be NULL).
 */
static char *
verify_signature(const JwtToken *token, Oid key_reader)
{
	bool		wrong_type;
	char	   *kid = jwt_member_string(token->header, "kid", &wrong_type);
	Jsonb	   *jwk;
	char	   *key_issuer;
	TimestampTz removed_at;
	JwtPublicKey *key;
	const char *problem;
	bool		valid;

	if (kid == NULL || kid[0] == '\0')
		reject("token header has no kid", NULL);
	if (!find_key(kid, key_reader, &jwk, &key_issuer, &removed_at))
	{
		const char *detail = strlen(kid) <= 64 ?
			psprintf("No key with kid \"%s\" is loaded.", kid) : NULL;

		if (jwks_ask_for_refresh())
			reject_with_hint("unknown signing key (kid), a refresh of the signing keys was requested",
							 detail,
							 "The worker fetches tenant_airbyte.jwks_url within a minute: try again shortly.");
		reject_with_hint("unknown signing key (kid)", detail,
						 "If the issuer rotated its keys, load its current JWKS with tenant_airbyte.load_jwks(), or set tenant_airbyte.jwks_url.");
	}
	if (removed_at != 0 &&
		GetCurrentTimestamp() >= TimestampTzPlusMilliseconds(removed_at,
															 (int64) tenant_airbyte_jwks_grace_s * 1000))
		reject_with_hint("signing key was removed from the issuer's JWKS",
						 psprintf("The key left tenant_airbyte.jwks_url at %s; its grace period (tenant_airbyte.jwks_grace_s) is over.",
								  timestamptz_to_str(removed_at)),
						 "Sign in again to get a token signed with the issuer's current key.");

	key = jwt_rsa_public_key(jwk, &problem);
	if (key == NULL)
		reject_with_hint("the stored signing key is unusable", problem,
						 "Load the issuer's JWKS again with tenant_airbyte.load_jwks().");
	valid = jwt_verify_rs256(token, key);
	jwt_free_public_key(key);
	if (!valid)
		reject("signature does not verify", NULL);
	return key_issuer;
}

/*
 * audience_matches
 *		aud may be one string or an array of strings (RFC 7519 4.1.3).
 */
static bool
audience_matches(Jsonb *claims, const char *audience)
{
	JsonbValue *aud = jwt_member(claims, "aud");
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	size_t		len = strlen(audience);

	if (aud == NULL)
		return false;
	if (aud->type == jbvString)
		return aud->val.string.len == len &&
			memcmp(aud->val.string.val, audience, len) == 0;
	if (aud->type != jbvBinary)
		return false;

	it = JsonbIteratorInit(aud->val.binary.data);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_ELEM && v.type == jbvString &&
			v.val.string.len == len &&
			memcmp(v.val.string.val, audience, len) == 0)
			return true;
	}
	return false;
}

/*
 * type_allowed
 *		Is type one of the comma-separated tenant_airbyte.jwt_allowed_types?
 */
static bool
type_allowed(const char *type)
{
	const char *p = tenant_airbyte_jwt_allowed_types ? tenant_airbyte_jwt_allowed_types : "";
	size_t		len = strlen(type);

	while (*p != '\0')
	{
		const char *start;
		const char *end;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > start && (size_t) (end - start) == len &&
			strncmp(start, type, len) == 0)
			return true;
	}
	return false;
}

/*
 * check_claims
 *		exp/nbf, iss, aud, type and tenantId; returns the tenant id.
 */
static char *
check_claims(Jsonb *claims, const char *key_issuer)
{
	bool		wrong_type;
	const char *problem;
	char	   *iss;
	char	   *type;
	char	   *tenant;
	const char *expected_issuer;

	problem = jwt_check_times(claims, (int64) time(NULL),
							  tenant_airbyte_jwt_leeway_s, true);
	if (problem != NULL)
		reject(problem, NULL);

	iss = jwt_member_string(claims, "iss", &wrong_type);
	if (iss == NULL)
		reject("token has no issuer (iss)", NULL);
	expected_issuer = tenant_airbyte_jwt_issuer;
	if (expected_issuer != NULL && expected_issuer[0] != '\0')
	{
		if (strcmp(iss, expected_issuer) != 0)
			reject("issuer (iss) is not tenant_airbyte.jwt_issuer", NULL);
	}
	else if (key_issuer == NULL)
		reject_with_hint("no issuer is configured", NULL,
						 "Set tenant_airbyte.jwt_issuer to the Frontegg base URL, or load the keys with load_jwks(jwks, issuer).");
	if (key_issuer != NULL && strcmp(iss, key_issuer) != 0)
		reject("issuer (iss) is not the issuer the signing key was loaded for", NULL);

	if (tenant_airbyte_jwt_audience != NULL && tenant_airbyte_jwt_audience[0] != '\0' &&
		!audience_matches(claims, tenant_airbyte_jwt_audience))
		reject("audience (aud) does not include tenant_airbyte.jwt_audience", NULL);

	type = jwt_member_string(claims, "type", &wrong_type);
	if (type == NULL)
		reject("token has no type claim", NULL);
	if (!type_allowed(type))
		reject("token type is not in tenant_airbyte.jwt_allowed_types", NULL);

	tenant = jwt_member_string(claims, "tenantId", &wrong_type);
	if (tenant == NULL)
		reject("token has no tenantId", NULL);
	if (strspn(tenant, " ") == strlen(tenant) ||
		pg_mbstrlen(tenant) > TENANT_ID_MAX_LENGTH)
		reject("token tenantId is empty or longer than 255 characters", NULL);
	return tenant;
}

/*
 * returned_claims_jsonb
 *		The claims an application needs, as a new jsonb object.
 */
static Jsonb *
returned_claims_jsonb(Jsonb *claims)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	int			i;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < lengthof(returned_claims); i++)
	{
		JsonbValue *value = jwt_member(claims, returned_claims[i]);
		JsonbValue	key;

		if (value == NULL)
			continue;
		key.type = jbvString;
		key.val.string.val = unconstify(char *, returned_claims[i]);
		key.val.string.len = strlen(returned_claims[i]);
		pushJsonbValue(&state, WJB_KEY, &key);
		pushJsonbValue(&state, WJB_VALUE, value);
	}
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

/*
 * function_owner
 *		The owner of the SQL function being called: the role authenticate()
 *		reads the signing keys as.
 */
static Oid
function_owner(Oid function)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", function);
	owner = ((Form_pg_proc) GETSTRUCT(tuple))->proowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * The search_path this transaction had before its first authenticate(),
 * and the one authenticate() set: a second call in the same transaction
 * (another token, another tenant) replaces the data schema instead of
 * stacking a second one in front of the first.
 */
#if PG_VERSION_NUM >= 170000
#define CURRENT_LOCAL_XID (MyProc->vxid.lxid)
#else
#define CURRENT_LOCAL_XID (MyProc->lxid)
#endif

static LocalTransactionId path_transaction = InvalidLocalTransactionId;
static char *path_before = NULL;
static char *path_set = NULL;

/*
 * set_tenant_search_path
 *		search_path = pg_catalog, <tenant's data schema>, <path before>,
 *		for the rest of the transaction (GUC_ACTION_LOCAL, like the tenant
 *		context).  pg_catalog stays first so that a table or function in a
 *		data schema can never stand in for a built-in one.
 */
static void
set_tenant_search_path(const char *tenant)
{
	const char *current = namespace_search_path ? namespace_search_path : "";
	const char *before = current;
	char	   *path;

	if (path_transaction == CURRENT_LOCAL_XID && path_set != NULL &&
		strcmp(current, path_set) == 0)
		before = path_before;

	path = psprintf("pg_catalog, %s%s%s",
					quote_identifier(tenant_data_schema_name(tenant)),
					before[0] != '\0' ? ", " : "", before);

	(void) set_config_option("search_path", path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);

	{
		char	   *new_before = MemoryContextStrdup(TopMemoryContext, before);
		char	   *new_set = MemoryContextStrdup(TopMemoryContext,
												  namespace_search_path ? namespace_search_path : path);

		if (path_before != NULL)
			pfree(path_before);
		if (path_set != NULL)
			pfree(path_set);
		path_before = new_before;
		path_set = new_set;
	}
	path_transaction = CURRENT_LOCAL_XID;
	pfree(path);
}

/*
 * tenant_airbyte_authenticate
 *		authenticate(token text) returns jsonb.
 *
 * Order of checks: shape and alg first (cheap, and an HS256 or "none"
 * token never reaches key selection), then the signature, and only then
 * the claims, so that nothing unsigned influences the answer.  On success
 * tenant_airbyte.tenant_id and search_path are set with GUC_ACTION_LOCAL:
 * they end with the transaction (COMMIT or ROLLBACK), and never survive
 * on a pooled connection.  tenant_airbyte.tenant_id is PGC_SUSET; setting
 * it from here, in PGC_SUSET context, is what makes this function the one
 * way an application role gets a tenant context.
 */
Datum
tenant_airbyte_authenticate(PG_FUNCTION_ARGS)
{
	char	   *token;
	JwtToken	jwt;
	const char *problem;
	char	   *key_issuer;
	char	   *tenant;

	if (PG_ARGISNULL(0))
		reject("no token was given", NULL);
	token = text_to_cstring(PG_GETARG_TEXT_PP(0));

	problem = jwt_decode(token, strlen(token), &jwt);
	if (problem != NULL)
		reject("malformed token", problem);
	if (strcmp(jwt.alg, "RS256") != 0)
		reject("token algorithm is not RS256", NULL);

	key_issuer = verify_signature(&jwt, function_owner(fcinfo->flinfo->fn_oid));
	tenant = check_claims(jwt.claims, key_issuer);

	(void) set_config_option("tenant_airbyte.tenant_id", tenant,
							 PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	set_tenant_search_path(tenant);

	PG_RETURN_JSONB_P(returned_claims_jsonb(jwt.claims));
}

/*
 * tenant_airbyte_jwk_problem
 *		jwk_problem(jwk jsonb) returns text: NULL when authenticate() can
 *		verify RS256 signatures with this JWK, otherwise why not.  load_jwks()
 *		uses it to refuse a bad key when it is loaded rather than when a
 *		user first presents a token.
 */
Datum
tenant_airbyte_jwk_problem(PG_FUNCTION_ARGS)
{
	Jsonb	   *jwk = PG_GETARG_JSONB_P(0);
	const char *problem;
	JwtPublicKey *key = jwt_rsa_public_key(jwk, &problem);

	if (key == NULL)
		PG_RETURN_TEXT_P(cstring_to_text(problem));
	jwt_free_public_key(key);
	PG_RETURN_NULL();
}

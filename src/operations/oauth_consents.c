/*-------------------------------------------------------------------------
 *
 * oauth_consents.c
 *	  The life of an OAuth consent as the worker records it (the table is
 *	  section 10 of the install script):
 *
 *	  initiate_oauth	records the consent (pending) before it asks Airbyte
 *						for the consent URL, and forgets it when Airbyte
 *						refuses;
 *	  create_source		with a consent_id parameter (complete_oauth(),
 *						oauth_callback()): claims it (completing) before the
 *						create may be sent, gives it back (pending) when the
 *						create fails for good before any source exists, and
 *						marks it used with the source it created.
 *
 * The claim is what makes a consent complete once even when two
 * completions race: only one operation can move it out of pending, the
 * other fails with the same error complete_oauth() gives.  The SHA-256 of
 * the secret_id (computed by complete_oauth(), a parameter) is what
 * recognises a replay; the secret_id itself is only in op->secret.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "oauth_consents.h"

/*
 * oauth_consent_record
 *		The initiate_oauth operation's consent row, from its parameters; a
 *		retried operation finds it there already.
 */
void
oauth_consent_record(Operation *op)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, JSONBOID};

	values[0] = CStringGetTextDatum(op->tenant_id);
	values[1] = JsonbPGetDatum(op->params);
	if (op_spi("INSERT INTO tenant_airbyte.oauth_consents"
			   " (consent_id, tenant_id, source_type, redirect_url, source_name, configuration,"
			   "  expires_at, status)"
			   " SELECT (p OPERATOR(pg_catalog.->>) 'consent_id')::pg_catalog.uuid, $1,"
			   "   p OPERATOR(pg_catalog.->>) 'source_type',"
			   "   p OPERATOR(pg_catalog.->>) 'redirect_url',"
			   "   p OPERATOR(pg_catalog.->>) 'name',"
			   "   COALESCE(p OPERATOR(pg_catalog.->) 'configuration', '{}'::pg_catalog.jsonb),"
			   "   (p OPERATOR(pg_catalog.->>) 'expires_at')::pg_catalog.timestamptz, 'pending'"
			   "   FROM (SELECT $2::pg_catalog.jsonb AS p) AS x"
			   " ON CONFLICT (consent_id) DO NOTHING",
			   2, types, values, NULL, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record the OAuth consent");
}

/* oauth_consent_forget: Airbyte gave no consent URL; nobody can use it. */
void
oauth_consent_forget(Operation *op)
{
	Datum		values[1];
	Oid			types[1] = {TEXTOID};

	values[0] = CStringGetTextDatum(op_param(op, "consent_id"));
	if (op_spi("DELETE FROM tenant_airbyte.oauth_consents"
			   " WHERE consent_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid"
			   "   AND status OPERATOR(pg_catalog.=) 'pending'",
			   1, types, values, NULL, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete the OAuth consent");
}

/*
 * oauth_consent_claim
 *		Moves the operation's consent from pending to completing, unless
 *		this operation holds it already (a retry).  False, with the failure
 *		complete_oauth() would have given, when it expired or another
 *		completion took it in the meantime.
 */
bool
oauth_consent_claim(Operation *op, StepResult *failure)
{
	Datum		values[3];
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	const char *consent_id = op_param(op, "consent_id");

	values[0] = CStringGetTextDatum(consent_id);
	values[1] = Int64GetDatum(op->id);
	values[2] = CStringGetTextDatum(op_param(op, "secret_sha256"));
	if (op_spi("UPDATE tenant_airbyte.oauth_consents AS c"
			   "   SET status = 'completing', operation_id = $2,"
			   "       secret_sha256 = pg_catalog.decode($3, 'hex')"
			   " WHERE c.consent_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid"
			   "   AND (c.operation_id OPERATOR(pg_catalog.=) $2"
			   "        OR (c.status OPERATOR(pg_catalog.=) 'pending'"
			   "            AND c.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()"
			   "            AND NOT EXISTS (SELECT FROM tenant_airbyte.oauth_consents AS u"
			   "                             WHERE u.secret_sha256 OPERATOR(pg_catalog.=)"
			   "                                   pg_catalog.decode($3, 'hex'))))",
			   3, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not claim the OAuth consent");
	if (SPI_processed == 1)
		return true;

	if (op_spi("SELECT c.status, c.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
			   "  FROM tenant_airbyte.oauth_consents AS c"
			   " WHERE c.consent_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid",
			   1, types, values, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the OAuth consent");
	if (SPI_processed == 0)
		*failure = op_fail(op, ERRCODE_NO_DATA_FOUND,
						   psprintf("no pending OAuth consent %s", consent_id), NULL,
						   "Start the consent with initiate_oauth(tenant_id, source_type, redirect_url) for this tenant.");
	else if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "pending") == 0 &&
			 strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), "t") == 0)
		*failure = op_fail(op, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
						   psprintf("OAuth consent %s expired", consent_id), NULL,
						   "A consent must be completed within tenant_airbyte.oauth_consent_ttl_s seconds; start a new one with initiate_oauth().");
	else
		*failure = op_fail(op, ERRCODE_DUPLICATE_OBJECT,
						   psprintf("OAuth consent %s was already used", consent_id),
						   "Another completion, or the same secret_id, got there first.",
						   "A consent completes once; start a new one with initiate_oauth().");
	return false;
}

/*
 * oauth_consent_release
 *		The create failed for good and no source exists: the consent is
 *		pending again (and the secret_id forgotten), so the user's consent
 *		is not burnt by a refused attempt.
 */
void
oauth_consent_release(Operation *op)
{
	Datum		values[1];
	Oid			types[1] = {INT8OID};

	values[0] = Int64GetDatum(op->id);
	if (op_spi("UPDATE tenant_airbyte.oauth_consents AS c"
			   "   SET status = 'pending', operation_id = NULL, secret_sha256 = NULL"
			   " WHERE c.operation_id OPERATOR(pg_catalog.=) $1"
			   "   AND c.status OPERATOR(pg_catalog.=) 'completing'",
			   1, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not release the OAuth consent");
}

/* oauth_consent_used: the consent created source_id. */
void
oauth_consent_used(Operation *op, const char *source_id)
{
	Datum		values[2];
	Oid			types[2] = {INT8OID, TEXTOID};

	values[0] = Int64GetDatum(op->id);
	values[1] = CStringGetTextDatum(source_id);
	if (op_spi("UPDATE tenant_airbyte.oauth_consents AS c"
			   "   SET status = 'used', used_at = pg_catalog.now(),"
			   "       airbyte_source_id = $2::pg_catalog.uuid"
			   " WHERE c.operation_id OPERATOR(pg_catalog.=) $1",
			   2, types, values, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark the OAuth consent used");
}

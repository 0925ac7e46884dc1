/*-------------------------------------------------------------------------
 *
 * webhook_verify.c
 *	  Is a webhook delivery authentic?  The three schemes of
 *	  tenant_airbyte.webhook_auth, the size bound, and the dedupe key.
 *
 * receive_webhook() (src/intake/webhook_intake.c) calls webhook_size_problem() and
 * webhook_authenticate() first and acts on nothing that did not pass;
 * webhook_verify() is the same pair as an SQL function.  The schemes
 * (doc/configuration.md, "Webhooks"):
 *
 *	frontegg-jwt       x-webhook-secret holds an HS256 JWT signed with the
 *	                   secret; exp and nbf enforced when present, and iat
 *	                   no older than tenant_airbyte.webhook_max_age_s; a
 *	                   token with neither exp nor iat is refused.  The
 *	                   token covers its own claims only, not the body: see
 *	                   doc/security.md for what that leaves open.
 *	hmac-sha256        x-frontegg-signature is the lowercase hex
 *	                   HMAC-SHA256 of the raw body.
 *	standard-webhooks  webhook-id, webhook-timestamp, webhook-signature
 *	                   ("v1,<base64>" entries) over "id.timestamp.body",
 *	                   key = base64 after "whsec_", 5 minutes tolerance.
 *
 * Every comma-separated secret of tenant_airbyte.webhook_secret is tried,
 * so a secret can be rotated without refusing deliveries.  With no secret
 * every delivery is refused and a LOG line says why: there is no way to
 * turn verification off.  Messages name the check that failed and never
 * contain a secret or an expected signature.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "access/detoast.h"
#include "access/htup_details.h"
#include "common/base64.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "jwt.h"
#include "pg_compat.h"
#include "tenant_airbyte.h"
#include "webhook.h"

/* standard-webhooks: how far webhook-timestamp may be from our clock. */
#define STANDARD_WEBHOOKS_TOLERANCE_S 300

/* A webhook-id longer than this is hashed to make the dedupe key. */
#define WEBHOOK_ID_MAX_KEY_LENGTH 200

#define SHA256_LENGTH 32

/* A configured secret as bytes (HMAC keys may contain any byte). */
typedef struct WebhookKey
{
	unsigned char *bytes;
	int			len;
} WebhookKey;

typedef enum HeaderLookup
{
	HEADER_ABSENT,
	HEADER_FOUND,
	HEADER_NOT_TEXT,
	HEADER_REPEATED
} HeaderLookup;

PG_FUNCTION_INFO_V1(tenant_airbyte_webhook_verify);

/*
 * configured_secrets
 *		The comma-separated secrets of tenant_airbyte.webhook_secret, with
 *		surrounding blanks removed and empty entries dropped.
 */
static List *
configured_secrets(void)
{
	List	   *secrets = NIL;
	const char *p = tenant_airbyte_webhook_secret ? tenant_airbyte_webhook_secret : "";

	while (*p != '\0')
	{
		const char *start = p;
		const char *end;

		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		if (*p == ',')
			p++;
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > start)
		{
			WebhookKey *key = palloc(sizeof(WebhookKey));

			key->bytes = (unsigned char *) pnstrdup(start, end - start);
			key->len = end - start;
			secrets = lappend(secrets, key);
		}
	}
	return secrets;
}

/*
 * header_value
 *		Finds a header by name, ignoring case as HTTP does.  A name that
 *		appears twice (say X-Webhook-Secret and x-webhook-secret) is
 *		reported as repeated instead of picking one, since which one a
 *		proxy would have used is unknowable.
 */
static HeaderLookup
header_value(Jsonb *headers, const char *name, char **value)
{
	size_t		namelen = strlen(name);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	int			found = 0;
	bool		not_text = false;

	*value = NULL;
	if (headers == NULL || !JB_ROOT_IS_OBJECT(headers))
		return HEADER_ABSENT;

	it = JsonbIteratorInit(&headers->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		match;

		if (token != WJB_KEY)
			continue;
		match = (v.val.string.len == namelen &&
				 pg_strncasecmp(v.val.string.val, name, namelen) == 0);
		(void) JsonbIteratorNext(&it, &v, true);	/* its WJB_VALUE */
		if (!match)
			continue;
		found++;
		if (v.type == jbvString)
			*value = pnstrdup(v.val.string.val, v.val.string.len);
		else
			not_text = true;
	}

	if (found == 0)
		return HEADER_ABSENT;
	if (found > 1)
		return HEADER_REPEATED;
	return not_text ? HEADER_NOT_TEXT : HEADER_FOUND;
}

/*
 * require_header
 *		The value of a header the scheme needs, or NULL and *problem set.
 */
static char *
require_header(Jsonb *headers, const char *name, const char **problem)
{
	char	   *value;

	switch (header_value(headers, name, &value))
	{
		case HEADER_FOUND:
			if (value[0] != '\0')
				return value;
			*problem = psprintf("%s header is empty", name);
			break;
		case HEADER_ABSENT:
			*problem = psprintf("missing %s header", name);
			break;
		case HEADER_NOT_TEXT:
			*problem = psprintf("%s header is not a string", name);
			break;
		case HEADER_REPEATED:
			*problem = psprintf("%s header appears more than once", name);
			break;
	}
	return NULL;
}

/*
 * hmac_sha256
 *		HMAC-SHA256 of data under key into out (32 bytes).
 */
static bool
hmac_sha256(const WebhookKey *key, const char *data, size_t len,
			unsigned char *out)
{
	unsigned int outlen = 0;

	if (HMAC(EVP_sha256(), key->bytes, key->len,
			 (const unsigned char *) data, len, out, &outlen) == NULL ||
		outlen != SHA256_LENGTH)
	{
		ERR_clear_error();
		return false;
	}
	return true;
}

/*
 * verify_frontegg_jwt
 *		Frontegg's scheme: the x-webhook-secret header is an HS256 JWT
 *		signed with the hook's secret.  Only HS256 is accepted, whatever the
 *		token claims, so "none" and RS/HS confusion are impossible.  The
 *		token must also be fresh, so a captured header stops working once
 *		the sender would have stopped retrying.
 */
static const char *
verify_frontegg_jwt(Jsonb *headers, List *secrets)
{
	const char *problem = NULL;
	char	   *value = require_header(headers, "x-webhook-secret", &problem);
	JwtToken	token;
	ListCell   *lc;
	bool		matched = false;

	if (value == NULL)
		return problem;
	if ((problem = jwt_decode(value, strlen(value), &token)) != NULL)
		return psprintf("x-webhook-secret: %s", problem);
	if (strcmp(token.alg, "HS256") != 0)
		return "x-webhook-secret: token algorithm is not HS256";

	foreach(lc, secrets)
	{
		WebhookKey *key = lfirst(lc);

		if (jwt_verify_hs256(&token, key->bytes, key->len))
			matched = true;
	}
	if (!matched)
		return "x-webhook-secret: signature does not match any configured secret";

	problem = jwt_check_times(token.claims, (int64) time(NULL),
							  tenant_airbyte_jwt_leeway_s, false);
	if (problem == NULL)
		problem = jwt_check_issued_at(token.claims, (int64) time(NULL),
									  tenant_airbyte_jwt_leeway_s,
									  tenant_airbyte_webhook_max_age_s);
	if (problem != NULL)
		return psprintf("x-webhook-secret: %s", problem);
	return NULL;
}

/*
 * decode_lower_hex
 *		Decodes exactly 2 * len lowercase hex digits into out; false for any
 *		other text.
 */
static bool
decode_lower_hex(const char *text, unsigned char *out, int len)
{
	int			i;

	if ((int) strlen(text) != 2 * len)
		return false;
	for (i = 0; i < 2 * len; i++)
		if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
			return false;
	hex_decode(text, 2 * len, (char *) out);
	return true;
}

/*
 * verify_hmac_sha256
 *		The seed's scheme: x-frontegg-signature is the lowercase hex
 *		HMAC-SHA256 of the raw body.
 */
static const char *
verify_hmac_sha256(Jsonb *headers, const char *body, int len, List *secrets)
{
	const char *problem = NULL;
	char	   *value = require_header(headers, "x-frontegg-signature", &problem);
	unsigned char given[SHA256_LENGTH];
	unsigned char mac[SHA256_LENGTH];
	ListCell   *lc;
	bool		matched = false;

	if (value == NULL)
		return problem;
	if (!decode_lower_hex(value, given, SHA256_LENGTH))
		return "x-frontegg-signature is not 64 lowercase hexadecimal digits";

	foreach(lc, secrets)
	{
		if (hmac_sha256(lfirst(lc), body, len, mac) &&
			CRYPTO_memcmp(mac, given, SHA256_LENGTH) == 0)
			matched = true;
	}
	if (!matched)
		return "x-frontegg-signature does not match any configured secret";
	return NULL;
}

/*
 * standard_webhooks_keys
 *		The HMAC keys of standard-webhooks: each secret's base64 after the
 *		"whsec_" prefix.  A secret that does not decode is a configuration
 *		mistake; it is skipped with a LOG line that does not show it.
 */
static List *
standard_webhooks_keys(List *secrets)
{
	List	   *keys = NIL;
	ListCell   *lc;

	foreach(lc, secrets)
	{
		WebhookKey *secret = lfirst(lc);
		const char *text = (const char *) secret->bytes;
		int			len = secret->len;
		WebhookKey *key = palloc(sizeof(WebhookKey));

		if (len > 6 && strncmp(text, "whsec_", 6) == 0)
		{
			text += 6;
			len -= 6;
		}
		key->bytes = palloc(pg_b64_dec_len(len) + 1);
		key->len = ta_b64_decode(text, len, key->bytes, pg_b64_dec_len(len));
		if (key->len <= 0)
		{
			ereport(LOG,
					(errmsg("tenant_airbyte: skipped entry %d of tenant_airbyte.webhook_secret: not a standard-webhooks secret",
							foreach_current_index(lc) + 1),
					 errhint("A standard-webhooks secret is \"whsec_\" followed by base64.")));
			continue;
		}
		keys = lappend(keys, key);
	}
	return keys;
}

/*
 * verify_standard_webhooks
 *		The Standard Webhooks scheme (standardwebhooks.com).  The signed
 *		content binds the id and the timestamp to the body, so webhook-id
 *		can be trusted as the dedupe key; *webhook_id returns it.
 */
static const char *
verify_standard_webhooks(Jsonb *headers, const char *body, int len,
						 List *secrets, char **webhook_id)
{
	const char *problem = NULL;
	char	   *id;
	char	   *timestamp;
	char	   *signatures;
	char	   *endptr;
	int64		sent_at;
	List	   *keys;
	StringInfoData content;
	unsigned char *macs;
	int			nkeys;
	int			nv1 = 0;
	bool		matched = false;
	char	   *entry;
	char	   *saveptr = NULL;
	ListCell   *lc;

	if ((id = require_header(headers, "webhook-id", &problem)) == NULL ||
		(timestamp = require_header(headers, "webhook-timestamp", &problem)) == NULL ||
		(signatures = require_header(headers, "webhook-signature", &problem)) == NULL)
		return problem;

	errno = 0;
	sent_at = strtoi64(timestamp, &endptr, 10);
	if (errno != 0 || *endptr != '\0' || timestamp[0] < '0' || timestamp[0] > '9')
		return "webhook-timestamp is not a Unix time in seconds";
	if (sent_at < (int64) time(NULL) - STANDARD_WEBHOOKS_TOLERANCE_S ||
		sent_at > (int64) time(NULL) + STANDARD_WEBHOOKS_TOLERANCE_S)
		return "webhook-timestamp is more than 5 minutes away from the server's clock";

	keys = standard_webhooks_keys(secrets);
	if (keys == NIL)
	{
		ereport(LOG,
				(errmsg("tenant_airbyte: refused a webhook delivery: no entry of tenant_airbyte.webhook_secret is a standard-webhooks secret")));
		return "no configured secret is a standard-webhooks secret";
	}

	initStringInfo(&content);
	appendStringInfo(&content, "%s.%s.", id, timestamp);
	appendBinaryStringInfo(&content, body, len);

	nkeys = list_length(keys);
	macs = palloc0(nkeys * SHA256_LENGTH);
	foreach(lc, keys)
	{
		if (!hmac_sha256(lfirst(lc), content.data, content.len,
						 macs + foreach_current_index(lc) * SHA256_LENGTH))
			return "could not compute HMAC-SHA256";
	}

	/* Space-separated "version,base64" entries; only v1 is defined. */
	for (entry = strtok_r(signatures, " ", &saveptr); entry != NULL;
		 entry = strtok_r(NULL, " ", &saveptr))
	{
		unsigned char given[SHA256_LENGTH + 3];
		int			elen = strlen(entry);
		int			glen;
		int			k;

		if (strncmp(entry, "v1,", 3) != 0)
			continue;
		nv1++;
		if (pg_b64_dec_len(elen - 3) > (int) sizeof(given))
			continue;
		glen = ta_b64_decode(entry + 3, elen - 3, given, sizeof(given));
		if (glen != SHA256_LENGTH)
			continue;
		for (k = 0; k < nkeys; k++)
			if (CRYPTO_memcmp(macs + k * SHA256_LENGTH, given, SHA256_LENGTH) == 0)
				matched = true;
	}
	if (nv1 == 0)
		return "webhook-signature has no v1 signature";
	if (!matched)
		return "webhook-signature does not match any configured secret";

	*webhook_id = id;
	return NULL;
}

/*
 * sha256_hex
 *		Lowercase hex SHA-256 of data, with OpenSSL.
 */
static char *
sha256_hex(const char *data, size_t len)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	char	   *hex = palloc(2 * SHA256_LENGTH + 1);

	if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
		digest_len != SHA256_LENGTH)
	{
		ERR_clear_error();
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("OpenSSL could not compute a SHA-256 digest")));
	}
	hex_encode((const char *) digest, SHA256_LENGTH, hex);
	hex[2 * SHA256_LENGTH] = '\0';
	return hex;
}

/*
 * dedupe_key
 *		What makes two deliveries the same: the signed webhook-id under
 *		standard-webhooks, otherwise the SHA-256 of the raw body.  (Under the
 *		other schemes a webhook-id header is not covered by any signature,
 *		so a replayed body with a new id must still be recognised.)
 */
static char *
dedupe_key(const char *webhook_id, const char *body, int len)
{
	if (webhook_id == NULL)
		return psprintf("sha256:%s", sha256_hex(body, len));
	if (strlen(webhook_id) <= WEBHOOK_ID_MAX_KEY_LENGTH)
		return psprintf("webhook-id:%s", webhook_id);
	return psprintf("webhook-id-sha256:%s", sha256_hex(webhook_id, strlen(webhook_id)));
}

/*
 * webhook_size_problem
 *		The 413 message when the body (a bytea datum, possibly toasted) is
 *		larger than tenant_airbyte.webhook_max_bytes, otherwise NULL.  The
 *		size is known without detoasting a body we are about to refuse.
 */
char *
webhook_size_problem(Datum body)
{
	Size		size = toast_raw_datum_size(body) - VARHDRSZ;

	if (size <= (Size) tenant_airbyte_webhook_max_bytes)
		return NULL;
	return psprintf("body is %zu bytes, more than tenant_airbyte.webhook_max_bytes (%d)",
					size, tenant_airbyte_webhook_max_bytes);
}

/*
 * webhook_authenticate
 *		The 401 message when the delivery is not authentic under
 *		tenant_airbyte.webhook_auth, otherwise NULL and *dedupe_key_out set
 *		to what identifies the delivery.  headers may be NULL.
 */
const char *
webhook_authenticate(Jsonb *headers, const char *body, int len,
					 char **dedupe_key_out)
{
	List	   *secrets = configured_secrets();
	const char *message;
	char	   *webhook_id = NULL;

	*dedupe_key_out = NULL;
	if (secrets == NIL)
	{
		ereport(LOG,
				(errmsg("tenant_airbyte: refused a webhook delivery because tenant_airbyte.webhook_secret is not set"),
				 errhint("Set tenant_airbyte.webhook_secret to the webhook's secret and reload the configuration.")));
		return "no webhook secret is configured";
	}
	if (tenant_airbyte_webhook_auth == WEBHOOK_AUTH_HMAC_SHA256)
		message = verify_hmac_sha256(headers, body, len, secrets);
	else if (tenant_airbyte_webhook_auth == WEBHOOK_AUTH_STANDARD_WEBHOOKS)
		message = verify_standard_webhooks(headers, body, len, secrets, &webhook_id);
	else
		message = verify_frontegg_jwt(headers, secrets);

	if (message == NULL)
		*dedupe_key_out = dedupe_key(webhook_id, body, len);
	return message;
}

/*
 * tenant_airbyte_webhook_verify
 *		webhook_verify(headers jsonb, body bytea,
 *		               OUT http_status int, OUT message text, OUT dedupe_key text)
 *
 *		413 when the body exceeds tenant_airbyte.webhook_max_bytes, 401 when
 *		the delivery is not authentic; otherwise http_status and message are
 *		NULL and dedupe_key identifies the delivery.  The same checks as
 *		receive_webhook() makes first, callable on their own.
 */
Datum
tenant_airbyte_webhook_verify(PG_FUNCTION_ARGS)
{
	Jsonb	   *headers = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	int			status = 0;
	const char *message = NULL;
	char	   *key = NULL;
	const char *body = "";
	int			len = 0;
	TupleDesc	tupdesc;
	Datum		values[3] = {0};
	bool		nulls[3] = {true, true, true};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (!PG_ARGISNULL(1) &&
		(message = webhook_size_problem(PG_GETARG_DATUM(1))) != NULL)
		status = 413;
	else
	{
		if (!PG_ARGISNULL(1))
		{
			bytea	   *raw = PG_GETARG_BYTEA_PP(1);

			body = VARDATA_ANY(raw);
			len = VARSIZE_ANY_EXHDR(raw);
		}
		if ((message = webhook_authenticate(headers, body, len, &key)) != NULL)
			status = 401;
	}

	if (status != 0)
	{
		values[0] = Int32GetDatum(status);
		nulls[0] = false;
		values[1] = CStringGetTextDatum(message);
		nulls[1] = false;
	}
	else
	{
		values[2] = CStringGetTextDatum(key);
		nulls[2] = false;
	}

	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

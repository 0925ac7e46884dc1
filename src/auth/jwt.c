/*-------------------------------------------------------------------------
 *
 * jwt.c
 *	  JSON Web Tokens (RFC 7515/7519) in their compact form: base64url,
 *	  decoding header and claims, the time claims, and HS256 and RS256
 *	  signatures.
 *
 * Shared by webhook verification (Frontegg's x-webhook-secret, an HS256
 * token) and authenticate() (Frontegg access tokens, RS256), so that there
 * is one token parser to review.  Nothing here raises an error for bad
 * input: functions return NULL/false or a short description of what was
 * wrong, and each caller turns that into its own answer (a 401 for a
 * webhook, SQLSTATE 28000 for authenticate()).  Descriptions never quote
 * the token.
 *
 * JSON is parsed by PostgreSQL's jsonb_in; base64 is common/base64.h;
 * every cryptographic operation is OpenSSL's, and MACs are compared with
 * CRYPTO_memcmp so that the comparison takes the same time wherever the
 * first difference is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include "access/xact.h"
#include "common/base64.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"

#include "jwt.h"
#include "pg_compat.h"

/* Smallest RSA modulus we accept, in bits (RFC 7518 section 3.3). */
#define JWT_RSA_MIN_BITS 2048

/*
 * jwt_base64url_decode
 *		Decodes unpadded base64url (RFC 7515 section 2) into a palloc'd
 *		buffer.  Returns false for any character outside the alphabet or an
 *		impossible length, so that "=" padding, "+", "/" and whitespace,
 *		which some encoders emit, are refused rather than guessed at.
 */
bool
jwt_base64url_decode(const char *src, int len, unsigned char **dst, int *dstlen)
{
	int			padded_len = len + (4 - len % 4) % 4;
	char	   *padded;
	int			decoded_len;
	int			i;

	if (len % 4 == 1)
		return false;

	padded = palloc(padded_len + 1);
	for (i = 0; i < len; i++)
	{
		char		c = src[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			padded[i] = c;
		else if (c == '-')
			padded[i] = '+';
		else if (c == '_')
			padded[i] = '/';
		else
		{
			pfree(padded);
			return false;
		}
	}
	for (; i < padded_len; i++)
		padded[i] = '=';
	padded[padded_len] = '\0';

	*dst = palloc(pg_b64_dec_len(padded_len) + 1);
	decoded_len = ta_b64_decode(padded, padded_len, *dst,
								pg_b64_dec_len(padded_len));
	pfree(padded);
	if (decoded_len < 0)
		return false;
	(*dst)[decoded_len] = '\0';
	*dstlen = decoded_len;
	return true;
}

/*
 * jwt_parse_json_object
 *		Parses UTF-8 text with PostgreSQL's JSON parser and returns it as
 *		jsonb, or NULL when it is not valid JSON or not an object.
 *
 * jsonb_in raises errors, and not only for syntax: a number such as 1e1001
 * overflows numeric and deep nesting exhausts the stack.  Input that comes
 * from the network must not turn into an ERROR, so the parse runs in a
 * subtransaction and data exceptions (class 22) and program limits
 * (class 54) become NULL; any other error, such as a query cancel, is
 * re-thrown.
 */
Jsonb *
jwt_parse_json_object(const char *data, int len)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	Jsonb	   *volatile result = NULL;
	char	   *copy;

	if (!pg_verify_mbstr(PG_UTF8, data, len, true))
		return NULL;
	copy = pnstrdup(data, len);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		char	   *text = pg_any_to_server(copy, len, PG_UTF8);

		result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;

		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		if (category != ERRCODE_DATA_EXCEPTION &&
			category != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ReThrowError(edata);
		FreeErrorData(edata);
		result = NULL;
	}
	PG_END_TRY();

	pfree(copy);
	if (result != NULL && !JB_ROOT_IS_OBJECT(result))
		return NULL;
	return result;
}

/*
 * jwt_decode
 *		Splits a compact JWS into its three parts, decodes them and parses
 *		the header and the claims.  Returns NULL on success, otherwise what
 *		was malformed.  The signature is NOT checked here: callers must call
 *		jwt_verify_hs256() or jwt_verify_rs256() before trusting any claim.
 */
const char *
jwt_decode(const char *token, int len, JwtToken *out)
{
	const char *end = token + len;
	const char *dot1;
	const char *dot2;
	unsigned char *header_json;
	unsigned char *claims_json;
	int			header_len;
	int			claims_len;
	bool		wrong_type;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return "token is empty";
	if (len > JWT_MAX_LENGTH)
		return "token is too long";

	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', end - dot1 - 1) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', end - dot2 - 1) != NULL)
		return "token is not three dot-separated parts";

	if (!jwt_base64url_decode(token, dot1 - token, &header_json, &header_len))
		return "token header is not base64url";
	if (!jwt_base64url_decode(dot1 + 1, dot2 - dot1 - 1, &claims_json, &claims_len))
		return "token payload is not base64url";
	if (!jwt_base64url_decode(dot2 + 1, end - dot2 - 1,
							  &out->signature, &out->signature_len))
		return "token signature is not base64url";

	out->header = jwt_parse_json_object((char *) header_json, header_len);
	if (out->header == NULL)
		return "token header is not a JSON object";
	out->claims = jwt_parse_json_object((char *) claims_json, claims_len);
	if (out->claims == NULL)
		return "token payload is not a JSON object";

	out->alg = jwt_member_string(out->header, "alg", &wrong_type);
	if (out->alg == NULL)
		return "token header has no alg";

	/* RFC 7515 4.1.11: extensions we do not understand must be refused. */
	if (jwt_member(out->header, "crit") != NULL)
		return "token header lists critical extensions (crit), which are not supported";

	out->signing_input = token;
	out->signing_input_len = dot2 - token;
	return NULL;
}

/*
 * jwt_member
 *		The value of a key of a JSON object, or NULL when absent.
 */
JsonbValue *
jwt_member(Jsonb *object, const char *key)
{
	JsonbValue	k;

	if (object == NULL || !JB_ROOT_IS_OBJECT(object))
		return NULL;
	k.type = jbvString;
	k.val.string.val = unconstify(char *, key);
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&object->root, JB_FOBJECT, &k);
}

/*
 * jwt_member_string
 *		The value of a key as a palloc'd C string; NULL when absent, or
 *		when not a JSON string, in which case *wrong_type is set.
 */
char *
jwt_member_string(Jsonb *object, const char *key, bool *wrong_type)
{
	JsonbValue *v = jwt_member(object, key);

	*wrong_type = false;
	if (v == NULL)
		return NULL;
	if (v->type != jbvString)
	{
		*wrong_type = true;
		return NULL;
	}
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * numeric_cmp_int64
 *		Compares a JSON number with an integer without converting it: a
 *		float conversion could overflow on a hostile value such as 1e400.
 */
static int
numeric_cmp_int64(Numeric value, int64 other)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
											 NumericGetDatum(value),
											 NumericGetDatum(int64_to_numeric(other))));
}

/*
 * jwt_check_times
 *		Checks exp and nbf (seconds since the epoch) against now, allowing
 *		leeway_s seconds of clock difference either way.  A token without
 *		exp is refused when require_exp, since it would never expire.
 */
const char *
jwt_check_times(Jsonb *claims, int64 now, int leeway_s, bool require_exp)
{
	JsonbValue *exp = jwt_member(claims, "exp");
	JsonbValue *nbf = jwt_member(claims, "nbf");

	if (exp == NULL)
	{
		if (require_exp)
			return "token has no exp claim";
	}
	else if (exp->type != jbvNumeric)
		return "token exp claim is not a number";
	else if (numeric_cmp_int64(exp->val.numeric, now - leeway_s) <= 0)
		return "token has expired (exp)";

	if (nbf != NULL)
	{
		if (nbf->type != jbvNumeric)
			return "token nbf claim is not a number";
		if (numeric_cmp_int64(nbf->val.numeric, now + leeway_s) > 0)
			return "token is not valid yet (nbf)";
	}
	return NULL;
}

/*
 * jwt_check_issued_at
 *		Freshness for tokens that may carry no exp (Frontegg's webhook
 *		header): a token with neither exp nor iat would be good for ever, so
 *		it is refused; iat must not be in the future (beyond leeway_s) nor
 *		older than max_age_s.  A replayed header is then good only as long
 *		as its sender would still retry with it.
 */
const char *
jwt_check_issued_at(Jsonb *claims, int64 now, int leeway_s, int max_age_s)
{
	JsonbValue *iat = jwt_member(claims, "iat");

	if (iat == NULL)
	{
		if (jwt_member(claims, "exp") == NULL)
			return "token has neither exp nor iat, so it would never expire";
		return NULL;
	}
	if (iat->type != jbvNumeric)
		return "token iat claim is not a number";
	if (numeric_cmp_int64(iat->val.numeric, now + leeway_s) > 0)
		return "token was issued in the future (iat)";
	if (numeric_cmp_int64(iat->val.numeric, now - (int64) max_age_s - leeway_s) < 0)
		return psprintf("token was issued more than %d seconds ago (iat), the limit of tenant_airbyte.webhook_max_age_s",
						max_age_s);
	return NULL;
}

/*
 * jwt_verify_hs256
 *		True when the token says HS256 and its signature is the HMAC-SHA256
 *		of its signing input under key.  The alg is checked here too, so
 *		that a caller cannot verify a token of another kind by mistake.
 */
bool
jwt_verify_hs256(const JwtToken *token, const unsigned char *key, int keylen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (token->alg == NULL || strcmp(token->alg, "HS256") != 0 || keylen <= 0)
		return false;
	if (HMAC(EVP_sha256(), key, keylen,
			 (const unsigned char *) token->signing_input,
			 token->signing_input_len, mac, &maclen) == NULL)
	{
		ERR_clear_error();
		return false;
	}
	if (token->signature_len != (int) maclen)
		return false;
	return CRYPTO_memcmp(mac, token->signature, maclen) == 0;
}

/*
 * jwk_bignum
 *		A base64url member of a JWK as an OpenSSL big number, or NULL.
 */
static BIGNUM *
jwk_bignum(Jsonb *jwk, const char *member)
{
	bool		wrong_type;
	char	   *text = jwt_member_string(jwk, member, &wrong_type);
	unsigned char *bytes;
	int			nbytes;

	if (text == NULL || text[0] == '\0' ||
		!jwt_base64url_decode(text, strlen(text), &bytes, &nbytes))
		return NULL;
	return BN_bin2bn(bytes, nbytes, NULL);
}

/*
 * jwt_rsa_public_key
 *		Builds an OpenSSL public key from a JWK (RFC 7517) with kty RSA and
 *		members n and e, checking that it is meant for RS256 signatures
 *		(alg, use) and at least 2048 bits long.  Returns NULL and sets
 *		*error when the JWK is unusable.  Free the key with
 *		jwt_free_public_key().
 */
JwtPublicKey *
jwt_rsa_public_key(Jsonb *jwk, const char **error)
{
	bool		wrong_type;
	char	   *kty = jwt_member_string(jwk, "kty", &wrong_type);
	char	   *alg = jwt_member_string(jwk, "alg", &wrong_type);
	char	   *use = jwt_member_string(jwk, "use", &wrong_type);
	BIGNUM	   *n = NULL;
	BIGNUM	   *e = NULL;
	OSSL_PARAM_BLD *builder = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY   *pkey = NULL;

	*error = NULL;
	if (kty == NULL || strcmp(kty, "RSA") != 0)
		*error = "key type (kty) is not RSA";
	else if (alg != NULL && strcmp(alg, "RS256") != 0)
		*error = "key algorithm (alg) is not RS256";
	else if (use != NULL && strcmp(use, "sig") != 0)
		*error = "key use is not sig";
	if (*error != NULL)
		return NULL;

	n = jwk_bignum(jwk, "n");
	e = jwk_bignum(jwk, "e");
	if (n == NULL || e == NULL)
		*error = "key has no valid base64url modulus (n) or exponent (e)";
	else if (BN_num_bits(n) < JWT_RSA_MIN_BITS)
		*error = "key modulus is shorter than 2048 bits";
	else if (!BN_is_odd(e) || BN_is_one(e))
		*error = "key exponent (e) is not an odd number greater than 1";
	else
	{
		builder = OSSL_PARAM_BLD_new();
		if (builder != NULL &&
			OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
			OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, e) == 1)
			params = OSSL_PARAM_BLD_to_param(builder);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		if (params == NULL || ctx == NULL ||
			EVP_PKEY_fromdata_init(ctx) != 1 ||
			EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		{
			pkey = NULL;
			*error = "OpenSSL could not build an RSA key from n and e";
		}
	}

	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(builder);
	BN_free(n);
	BN_free(e);
	ERR_clear_error();
	return pkey;
}

/*
 * jwt_free_public_key
 *		Releases a key made by jwt_rsa_public_key().
 */
void
jwt_free_public_key(JwtPublicKey *key)
{
	EVP_PKEY_free(key);
}

/*
 * jwt_verify_rs256
 *		True when the token says RS256 and its signature is a valid
 *		RSASSA-PKCS1-v1_5 SHA-256 signature of its signing input by key.
 */
bool
jwt_verify_rs256(const JwtToken *token, JwtPublicKey *key)
{
	EVP_MD_CTX *md;
	bool		valid = false;

	if (token->alg == NULL || strcmp(token->alg, "RS256") != 0 || key == NULL)
		return false;

	md = EVP_MD_CTX_new();
	if (md != NULL &&
		EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		EVP_DigestVerify(md, token->signature, token->signature_len,
						 (const unsigned char *) token->signing_input,
						 token->signing_input_len) == 1)
		valid = true;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return valid;
}

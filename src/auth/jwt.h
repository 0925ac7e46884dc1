/*-------------------------------------------------------------------------
 *
 * jwt.h
 *	  JSON Web Tokens (RFC 7519) in their compact form: decoding, claims,
 *	  time checks, HS256 and RS256 signatures.  See jwt.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_JWT_H
#define TENANT_AIRBYTE_JWT_H

#include "utils/jsonb.h"

/* Longest token we look at; real ones are well under 8 kB. */
#define JWT_MAX_LENGTH 65536

/* Opaque OpenSSL key, so that callers need not include OpenSSL headers. */
typedef struct evp_pkey_st JwtPublicKey;

/* A decoded token.  Its signature is not verified by jwt_decode(). */
typedef struct JwtToken
{
	const char *signing_input;	/* "header.payload" exactly as received */
	int			signing_input_len;
	unsigned char *signature;	/* decoded signature bytes */
	int			signature_len;
	Jsonb	   *header;			/* JOSE header, a JSON object */
	Jsonb	   *claims;			/* payload, a JSON object */
	char	   *alg;			/* the header's alg */
} JwtToken;

extern bool jwt_base64url_decode(const char *src, int len,
								 unsigned char **dst, int *dstlen);
extern Jsonb *jwt_parse_json_object(const char *data, int len);
extern const char *jwt_decode(const char *token, int len, JwtToken *token_out);

extern JsonbValue *jwt_member(Jsonb *object, const char *key);
extern char *jwt_member_string(Jsonb *object, const char *key, bool *wrong_type);
extern const char *jwt_check_times(Jsonb *claims, int64 now, int leeway_s,
								   bool require_exp);
extern const char *jwt_check_issued_at(Jsonb *claims, int64 now, int leeway_s,
									   int max_age_s);

extern bool jwt_verify_hs256(const JwtToken *token,
							 const unsigned char *key, int keylen);
extern JwtPublicKey *jwt_rsa_public_key(Jsonb *jwk, const char **error);
extern void jwt_free_public_key(JwtPublicKey *key);
extern bool jwt_verify_rs256(const JwtToken *token, JwtPublicKey *key);

#endif							/* TENANT_AIRBYTE_JWT_H */

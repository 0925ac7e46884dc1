/*-------------------------------------------------------------------------
 *
 * frontegg_fetch.h
 *	  Verify by fetch: asking Frontegg's own API about a tenant instead of
 *	  trusting a webhook body (frontegg_fetch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_FRONTEGG_FETCH_H
#define TENANT_AIRBYTE_FRONTEGG_FETCH_H

#include "airbyte_api.h"
#include "http_client.h"

/* What Frontegg said about a tenant. */
typedef enum FronteggTenantAnswer
{
	FRONTEGG_TENANT_EXISTS,		/* the tenant exists; *name is its name (may be NULL) */
	FRONTEGG_TENANT_GONE,		/* unknown to Frontegg, or deleted */
	FRONTEGG_TRANSIENT,			/* no answer, 408/425/429/5xx: try again later */
	FRONTEGG_UNAUTHORIZED,		/* 401/403: the vendor token was refused */
	FRONTEGG_FAILED				/* anything else: a configuration or protocol problem */
} FronteggTenantAnswer;

/* True when frontegg_api_url, frontegg_client_id and frontegg_api_key are all set. */
extern bool frontegg_fetch_enabled(void);

/* POST <frontegg_api_url>/auth/vendor/ with {clientId, secret}. */
extern HttpRequest *frontegg_prepare_vendor_auth(void);

/*
 * frontegg_read_vendor_token
 *		The token of a finished vendor-auth request and its lifetime in
 *		seconds; NULL and *problem set when there is none.
 */
extern char *frontegg_read_vendor_token(AirbyteResponse *resp, int *expires_in,
										const char **problem);

/*
 * The vendor token this process holds (NULL: none, or about to expire),
 * keeping a new one, and dropping one Frontegg refused.
 */
extern const char *frontegg_cached_token(void);
extern void frontegg_remember_token(const char *token, int expires_in);
extern void frontegg_forget_token(void);

/* GET <frontegg_api_url>/tenants/resources/tenants/v1/<tenant_id>. */
extern HttpRequest *frontegg_prepare_get_tenant(const char *tenant_id,
												const char *vendor_token);

/*
 * What a finished get-tenant request says (its answer classified by
 * airbyte_classify()); *problem set unless EXISTS/GONE.
 */
extern FronteggTenantAnswer frontegg_read_tenant(AirbyteResponse *resp,
												 const char *tenant_id,
												 char **name,
												 const char **problem);

/*
 * frontegg_lookup_tenant
 *		Both requests synchronously, in a backend, with the vendor token
 *		cached per process until shortly before it expires (and fetched
 *		again once after a 401).
 */
extern FronteggTenantAnswer frontegg_lookup_tenant(const char *tenant_id,
												   char **name,
												   const char **problem);

#endif							/* TENANT_AIRBYTE_FRONTEGG_FETCH_H */

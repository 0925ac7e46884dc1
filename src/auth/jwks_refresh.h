/*-------------------------------------------------------------------------
 *
 * jwks_refresh.h
 *	  Signing keys that refresh themselves: the settings, the shared flag a
 *	  backend raises when a token names an unknown kid, and the worker's
 *	  side (fetch tenant_airbyte.jwks_url, apply it).  See jwks_refresh.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_JWKS_REFRESH_H
#define TENANT_AIRBYTE_JWKS_REFRESH_H

#include <curl/curl.h>

#include "http_multi.h"

/* Settings (doc/configuration.md) */
extern char *tenant_airbyte_jwks_url;
extern int	tenant_airbyte_jwks_refresh_s;
extern int	tenant_airbyte_jwks_grace_s;

/* _PG_init */
extern void jwks_define_settings(void);
extern void jwks_shmem_request(void);

/* a backend (authenticate()) */
extern bool jwks_ask_for_refresh(void);

/* the worker, outside any transaction */
extern long jwks_worker_tick(HttpWindow *window);
extern bool jwks_worker_owns(void *owner);
extern void jwks_worker_done(CURLcode result);
extern void jwks_worker_abandon(void);
extern int	jwks_worker_in_flight(void);

#endif							/* TENANT_AIRBYTE_JWKS_REFRESH_H */

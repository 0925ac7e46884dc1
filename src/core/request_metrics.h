/*-------------------------------------------------------------------------
 *
 * request_metrics.h
 *	  Counters and latency histograms of Airbyte requests, in shared
 *	  memory, for tenant_airbyte.metrics().  See request_metrics.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_REQUEST_METRICS_H
#define TENANT_AIRBYTE_REQUEST_METRICS_H

#include "http_client.h"

/* _PG_init, while preloading: reserve the shared memory */
extern void request_metrics_register(void);

/* http_request_complete(): count one finished request (never ERRORs) */
extern void request_metrics_observe(HttpRequest *req);

#endif							/* TENANT_AIRBYTE_REQUEST_METRICS_H */

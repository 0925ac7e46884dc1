/*-------------------------------------------------------------------------
 *
 * sources.h
 *	  What the source kinds (kind_source.c) take from sources.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_SOURCES_H
#define TENANT_AIRBYTE_SOURCES_H

#include "airbyte_api.h"

/* Blanks every string of configuration that could be a secret from resp. */
extern void sources_scrub_response(AirbyteResponse *resp, Jsonb *configuration);

#endif							/* TENANT_AIRBYTE_SOURCES_H */

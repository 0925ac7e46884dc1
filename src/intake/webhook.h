/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Webhook intake: the checks of webhook_verify.c that
 *	  receive_webhook() (webhook_intake.c) makes before it stores anything.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WEBHOOK_H
#define TENANT_AIRBYTE_WEBHOOK_H

#include "utils/jsonb.h"

extern char *webhook_size_problem(Datum body);
extern const char *webhook_authenticate(Jsonb *headers, const char *body,
										int len, char **dedupe_key_out);

#endif							/* TENANT_AIRBYTE_WEBHOOK_H */

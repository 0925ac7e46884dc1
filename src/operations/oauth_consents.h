/*-------------------------------------------------------------------------
 *
 * oauth_consents.h
 *	  The worker's side of tenant_airbyte.oauth_consents: what the
 *	  initiate_oauth and create_source kinds record about a consent.
 *	  Internal to src/operations/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_OAUTH_CONSENTS_H
#define TENANT_AIRBYTE_OAUTH_CONSENTS_H

#include "operation.h"

extern void oauth_consent_record(Operation *op);
extern void oauth_consent_forget(Operation *op);
extern bool oauth_consent_claim(Operation *op, StepResult *failure);
extern void oauth_consent_release(Operation *op);
extern void oauth_consent_used(Operation *op, const char *source_id);

#endif							/* TENANT_AIRBYTE_OAUTH_CONSENTS_H */

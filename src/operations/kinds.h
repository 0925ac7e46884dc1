/*-------------------------------------------------------------------------
 *
 * kinds.h
 *	  Helpers the workspace kinds (kind_*.c) share.  Internal to
 *	  src/operations/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_KINDS_H
#define TENANT_AIRBYTE_KINDS_H

#include "operation.h"
#include "tenant_airbyte.h"

typedef struct TenantWorkspace
{
	char	   *workspace_id;
	char	   *workspace_name;
	char	   *status;			/* active, suspended, deleted */
	bool		expired;		/* deleted longer than retention_days ago */
} TenantWorkspace;

extern bool kind_tenant_workspace(const char *tenant_id, TenantWorkspace *ws);
extern char *kind_unique_workspace_name(const char *tenant_id, const char *tenant_name);

/* the create step of every kind that creates a workspace by its name */
extern HttpRequest *kind_workspace_create_request(Jsonb *body);
extern StepResult kind_workspace_created(Operation *op, AirbyteResponse *resp,
										 bool again,
										 StepResult (*record) (Operation *op,
															   const char *workspace_id));

#define lengthof_steps(steps) ((int) (sizeof(steps) / sizeof((steps)[0])))

/* Every registered kind, declared once for the file that defines it. */
#define OPERATION_KIND(symbol) extern const OperationKind symbol;
#include "kindlist.h"
#undef OPERATION_KIND

#endif							/* TENANT_AIRBYTE_KINDS_H */

/*-------------------------------------------------------------------------
 *
 * handoff.h
 *	  Request slots in shared memory between backends that call the SQL
 *	  functions and the worker that carries out their operations.  The
 *	  backend side is engine_run() (engine.h); this is the worker's side.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_HANDOFF_H
#define TENANT_AIRBYTE_HANDOFF_H

/* A request as the worker copies it out of its slot. */
typedef struct HandoffRequest
{
	int			slot;
	uint64		generation;
	char	   *kind;
	char	   *tenant_id;
	char	   *params;			/* JSON text */
	char	   *subject;
	char	   *secret;			/* NULL: none */
} HandoffRequest;

extern Size handoff_shmem_size(void);
extern void handoff_shmem_init(void);

/* the worker */
extern List *handoff_take_requests(void);
extern void handoff_accepted(HandoffRequest *request, int64 operation_id);
extern void handoff_reply_request(HandoffRequest *request, const char *status,
								  const char *outcome);
extern void handoff_reply(int64 operation_id, const char *status,
						  const char *outcome);
extern bool handoff_has_waiter(int64 operation_id);
extern int	handoff_waited_operations(int64 *ids, int max);

#define HANDOFF_MAX_SLOTS 64

#endif							/* TENANT_AIRBYTE_HANDOFF_H */

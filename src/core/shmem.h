/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared state between the background worker, its launcher and every
 *	  backend: who the worker is, what it is doing, and the commit-time
 *	  wake-up.  See shmem.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_SHMEM_H
#define TENANT_AIRBYTE_SHMEM_H

#include "datatype/timestamp.h"

/* What the worker is doing, shown by worker_status and pg_stat_activity. */
typedef enum WorkerState
{
	WORKER_STATE_STOPPED = 0,
	WORKER_STATE_STARTING,
	WORKER_STATE_WAITING_FOR_DATABASE,
	WORKER_STATE_WAITING_FOR_EXTENSION,
	WORKER_STATE_IDLE,
	WORKER_STATE_WORKING
} WorkerState;

/* A copy of the shared state, taken under its lock. */
typedef struct WorkerStatusSnapshot
{
	int			pid;
	WorkerState state;
	TimestampTz started_at;
	int			in_flight;
	uint64		commit_wakeups;
	uint64		deliveries_finished;
	TimestampTz last_error_at;
	char		last_error[256];
} WorkerStatusSnapshot;

extern void shmem_request(void);
extern bool shmem_attached(void);

/* the launcher */
extern void shmem_set_launcher(bool running);
extern bool shmem_take_relaunch_hold(TimestampTz *hold_until);

/* the worker */
extern void shmem_set_worker(bool running);
extern void shmem_set_state(WorkerState state);
extern void shmem_set_serving(bool serving);
extern void shmem_set_in_flight(int in_flight);
extern void shmem_count_finished(int n);
extern void shmem_set_last_error(const char *fmt,...) pg_attribute_printf(1, 2);
extern bool shmem_take_wake(void);
extern bool shmem_leave_requested(void);

/* any backend */
extern bool shmem_worker_serving(int *pid, Oid *database, Oid *connected_to);
extern void shmem_wake_worker(void);
extern void shmem_wake_worker_at_commit(void);
extern void shmem_ask_worker_to_leave(void);
extern void shmem_snapshot(WorkerStatusSnapshot *snapshot);
extern const char *worker_state_name(WorkerState state);

#endif							/* TENANT_AIRBYTE_SHMEM_H */

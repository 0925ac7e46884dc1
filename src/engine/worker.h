/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  What the background worker's files share: launcher.c starts it,
 *	  worker.c runs its loop, inbox.c keeps the webhook inbox tidy and
 *	  runs kept plans, opqueue.c is its queue of operations.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WORKER_H
#define TENANT_AIRBYTE_WORKER_H

/* The role the worker connects as (created by the install script). */
#define WORKER_ROLE "tenant_airbyte_worker"
/* How long the worker waits for a row lock before it gives the step up. */
#define WORKER_LOCK_TIMEOUT "200ms"

/* launcher.c */
extern void launcher_register(void);

/* inbox.c: each runs inside a transaction with SPI connected */
extern int	spi_run(const char *sql, int nargs, Oid *types, Datum *values,
					const char *nulls, bool read_only, long count);
extern int	spi_run_generic(const char *sql, int nargs, Oid *types, Datum *values,
							const char *nulls, bool read_only, long count);
extern void spi_check(int rc, int expected, const char *what);
extern bool inbox_extension_present(void);
extern int	inbox_release_leases(bool all);
extern int	inbox_delete_finished(int batch_size);

/* op_retention.c */
extern int	ops_delete_finished(int batch_size);

#endif							/* TENANT_AIRBYTE_WORKER_H */

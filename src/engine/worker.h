/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background worker's unit of work (a claimed delivery) and the
 *	  functions its files share: launcher.c starts it, worker.c runs it,
 *	  inbox.c keeps its queue, work.c does what each event asks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_WORKER_H
#define TENANT_AIRBYTE_WORKER_H

#include <curl/curl.h>

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* How a delivery's attempt ended, or that it needs an HTTP request first. */
typedef enum JobOutcome
{
	JOB_HTTP,					/* perform job->easy, then call work_http_done */
	JOB_DONE,					/* finished; job->result says how */
	JOB_IGNORED,				/* nothing to do for this event */
	JOB_RETRY,					/* transient failure: try again after a delay */
	JOB_DEAD,					/* permanent failure: never retried */
	JOB_LOST					/* the claim was lost: record nothing */
} JobOutcome;

/*
 * Job
 *		One claimed delivery, alive from its claim to the transaction that
 *		records its outcome; it spans several transactions and HTTP
 *		requests, so it lives in its own memory context.
 */
typedef struct Job
{
	MemoryContext context;

	/* the claim */
	int64		delivery_id;
	char		lease_id[37];	/* uuid as text */
	char	   *event;
	char	   *tenant_id;
	char	   *tenant_name;
	int			attempts;		/* including this one */

	/* the work in progress, owned by work.c */
	void	   *work_state;
	CURL	   *easy;			/* the request to perform when JOB_HTTP */
	long		start_after_ms; /* ... not before this many ms from now */

	/* the outcome */
	long		http_status;	/* 0: no HTTP answer */
	char	   *error;			/* why it failed; never a secret */
	char	   *result_json;	/* what it produced, for webhook_inbox.result */
	long		retry_delay_ms; /* for JOB_RETRY */
	bool		attempt_unused; /* JOB_RETRY: Airbyte was never reached */
} Job;

/* launcher.c */
extern void launcher_register(void);

/* inbox.c: each runs inside a transaction with SPI connected */
extern int	spi_run(const char *sql, int nargs, Oid *types, Datum *values,
					const char *nulls, bool read_only, long count);
extern bool inbox_extension_present(void);
extern int	inbox_release_leases(bool all);
extern List *inbox_claim(int limit, MemoryContext parent);
extern bool inbox_record(Job *job, JobOutcome outcome);
extern bool inbox_extend_lease(Job *job);
extern int	inbox_delete_finished(int batch_size);
extern TimestampTz inbox_next_due(void);

/* work.c: each runs inside a subtransaction */
extern JobOutcome work_start(Job *job);
extern JobOutcome work_http_done(Job *job, CURLcode result);
extern long work_retry_delay_ms(Job *job, long retry_after_ms);
extern void work_release(Job *job);

#endif							/* TENANT_AIRBYTE_WORKER_H */

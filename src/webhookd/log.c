/*-------------------------------------------------------------------------
 *
 * log.c
 *	  The shim's log: one line per request or event, to a file or stderr.
 *
 * Lines are written whole under a mutex and flushed at once, so a log
 * shipper never sees half a line and a crash loses nothing.  SIGHUP
 * reopens the file, which is how logrotate's "postrotate" hands over.
 * Callers never pass header values here (they may hold the secret).
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file = NULL;	/* NULL: stderr */
static char *log_path = NULL;

/*
 * log_open
 *		Start logging to path (append), or to stderr when path is NULL.
 */
bool
log_open(const char *path)
{
	if (path == NULL)
		return true;
	log_path = strdup(path);
	log_file = fopen(path, "a");
	if (log_file == NULL)
	{
		fprintf(stderr, "tenant_airbyte_webhookd: could not open log file \"%s\": %s\n",
				path, strerror(errno));
		return false;
	}
	return true;
}

/*
 * log_reopen
 *		Reopen the log file by name after it was rotated away.  When the
 *		new file cannot be opened the old one is kept, so no line is lost.
 */
bool
log_reopen(void)
{
	FILE	   *fresh;

	if (log_path == NULL)
		return true;
	fresh = fopen(log_path, "a");
	if (fresh == NULL)
	{
		log_message("could not reopen log file \"%s\": %s; still writing to the old one",
					log_path, strerror(errno));
		return false;
	}
	pthread_mutex_lock(&log_lock);
	fclose(log_file);
	log_file = fresh;
	pthread_mutex_unlock(&log_lock);
	return true;
}

/*
 * log_message
 *		Write one timestamped line (UTC, milliseconds).
 */
void
log_message(const char *fmt,...)
{
	char		line[1024];
	struct timespec now;
	struct tm	tm;
	size_t		used;
	va_list		args;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	used = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	used += snprintf(line + used, sizeof(line) - used, ".%03ldZ [%ld] ",
					 now.tv_nsec / 1000000, (long) getpid());
	va_start(args, fmt);
	vsnprintf(line + used, sizeof(line) - used, fmt, args);
	va_end(args);

	pthread_mutex_lock(&log_lock);
	fprintf(log_file ? log_file : stderr, "%s\n", line);
	fflush(log_file ? log_file : stderr);
	pthread_mutex_unlock(&log_lock);
}

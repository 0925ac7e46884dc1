/*-------------------------------------------------------------------------
 *
 * http_multi.c
 *	  A sliding window of HTTP requests on one curl multi handle, driven
 *	  from the worker's own wait so that a latch (new work, SIGTERM,
 *	  SIGHUP) and a socket becoming ready both wake it.
 *
 * The caller adds prepared easy handles while fewer than
 * tenant_airbyte.max_concurrency are in flight, waits, and takes finished
 * ones out; each finished request frees a slot that the caller refills at
 * once.  There are no batches and no sleeps: the window stays full as long
 * as there is work.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION)
 * and when it next needs to run (CURLMOPT_TIMERFUNCTION); we put those
 * sockets into a PostgreSQL WaitEventSet beside the latch and postmaster
 * death, and hand readiness back with curl_multi_socket_action().  This
 * has no limit on descriptor numbers (unlike curl_multi_fdset) and no
 * polling interval (unlike waiting on curl and checking the latch in turn).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http_multi.h"
#include "pg_compat.h"
#include "tenant_airbyte.h"

typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN, _OUT or _INOUT */
} WatchedSocket;

typedef struct Transfer
{
	CURL	   *easy;
	void	   *owner;
} Transfer;

struct HttpWindow
{
	CURLM	   *multi;
	int			running;		/* as curl counts them */

	Transfer   *transfers;		/* the requests added and not yet taken out */
	int			ntransfers;
	int			maxtransfers;

	WatchedSocket *sockets;
	int			nsockets;
	int			maxsockets;

	/* when curl next wants control, or -1 for "no timer" */
	TimestampTz timer_deadline;
	bool		timer_set;
};

static int	socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp);
static int	timer_callback(CURLM *multi, long timeout_ms, void *userp);
static void socket_action(HttpWindow *window, curl_socket_t fd, int flags);

/*
 * http_window_create
 *		One multi handle for the worker's life, so that connections to
 *		Airbyte are kept alive and reused from one request to the next.
 */
HttpWindow *
http_window_create(void)
{
	HttpWindow *window = MemoryContextAllocZero(TopMemoryContext, sizeof(HttpWindow));

	window->multi = curl_multi_init();
	if (window->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a curl multi handle")));

	curl_multi_setopt(window->multi, CURLMOPT_SOCKETFUNCTION, socket_callback);
	curl_multi_setopt(window->multi, CURLMOPT_SOCKETDATA, window);
	curl_multi_setopt(window->multi, CURLMOPT_TIMERFUNCTION, timer_callback);
	curl_multi_setopt(window->multi, CURLMOPT_TIMERDATA, window);
	curl_multi_setopt(window->multi, CURLMOPT_MAXCONNECTS, (long) tenant_airbyte_max_concurrency);

	window->maxtransfers = 64;
	window->transfers = MemoryContextAlloc(TopMemoryContext, window->maxtransfers * sizeof(Transfer));
	window->maxsockets = 64;
	window->sockets = MemoryContextAlloc(TopMemoryContext, window->maxsockets * sizeof(WatchedSocket));
	return window;
}

/*
 * http_window_destroy
 *		Abandons whatever is in flight; the owners' deliveries come back
 *		through their leases.
 */
void
http_window_destroy(HttpWindow *window)
{
	while (window->ntransfers > 0)
		http_window_remove(window, window->transfers[0].easy);
	curl_multi_cleanup(window->multi);
	pfree(window->transfers);
	pfree(window->sockets);
	pfree(window);
}

int
http_window_in_flight(HttpWindow *window)
{
	return window->ntransfers;
}

/*
 * http_window_add
 *		Starts a prepared request.  The caller keeps the window within
 *		tenant_airbyte.max_concurrency; owner comes back with the result.
 */
void
http_window_add(HttpWindow *window, CURL *easy, void *owner)
{
	CURLMcode	rc;

	if (window->ntransfers == window->maxtransfers)
	{
		window->maxtransfers *= 2;
		window->transfers = repalloc(window->transfers, window->maxtransfers * sizeof(Transfer));
	}

	rc = curl_multi_add_handle(window->multi, easy);
	if (rc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start an HTTP request: %s", curl_multi_strerror(rc))));

	window->transfers[window->ntransfers].easy = easy;
	window->transfers[window->ntransfers].owner = owner;
	window->ntransfers++;
}

/*
 * http_window_remove
 *		Takes a request out of the window, finished or not; the easy handle
 *		stays the caller's.
 */
void
http_window_remove(HttpWindow *window, CURL *easy)
{
	int			i;

	for (i = 0; i < window->ntransfers; i++)
	{
		if (window->transfers[i].easy == easy)
		{
			curl_multi_remove_handle(window->multi, easy);
			window->transfers[i] = window->transfers[window->ntransfers - 1];
			window->ntransfers--;
			return;
		}
	}
}

/*
 * http_window_take_any
 *		Takes some request out of the window, finished or not, so that the
 *		caller can abandon everything in flight.
 */
bool
http_window_take_any(HttpWindow *window, CURL **easy, void **owner)
{
	if (window->ntransfers == 0)
		return false;
	*easy = window->transfers[0].easy;
	*owner = window->transfers[0].owner;
	http_window_remove(window, *easy);
	return true;
}

/*
 * http_window_wait
 *		Sleeps until a watched socket is ready, curl's own timer runs out,
 *		the latch is set or timeout_ms passes, and lets curl act on what
 *		happened.  Returns true when the latch was set.
 */
bool
http_window_wait(HttpWindow *window, long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent  *events;
	int			nevents;
	int			i;
	bool		latch_set = false;
	TimestampTz now = GetCurrentTimestamp();

	if (window->timer_set)
	{
		long		timer_ms = TimestampDifferenceMilliseconds(now, window->timer_deadline);

		if (timeout_ms < 0 || timer_ms < timeout_ms)
			timeout_ms = timer_ms;
	}

	set = ta_wait_event_set(2 + window->nsockets);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < window->nsockets; i++)
	{
		int			events = 0;

		if (window->sockets[i].what & CURL_POLL_IN)
			events |= WL_SOCKET_READABLE;
		if (window->sockets[i].what & CURL_POLL_OUT)
			events |= WL_SOCKET_WRITEABLE;
		if (events == 0)
			continue;			/* CURL_POLL_NONE: known, not watched now */
		AddWaitEventToSet(set, events, window->sockets[i].fd, NULL, NULL);
	}

	events = palloc(sizeof(WaitEvent) * (2 + window->nsockets));
	nevents = WaitEventSetWait(set, timeout_ms, events, 2 + window->nsockets,
							   PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);

	for (i = 0; i < nevents; i++)
	{
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
		}
		else
		{
			int			flags = 0;

			if (events[i].events & WL_SOCKET_READABLE)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				flags |= CURL_CSELECT_OUT;
			socket_action(window, events[i].fd, flags);
		}
	}
	pfree(events);

	if (window->timer_set && GetCurrentTimestamp() >= window->timer_deadline)
	{
		window->timer_set = false;
		socket_action(window, CURL_SOCKET_TIMEOUT, 0);
	}

	return latch_set;
}

/*
 * http_window_next_done
 *		Takes one finished request out of the window: its easy handle, curl's
 *		result and the owner given to http_window_add.  False when none has
 *		finished.
 */
bool
http_window_next_done(HttpWindow *window, CURL **easy, CURLcode *result, void **owner)
{
	CURLMsg    *msg;
	int			remaining;

	while ((msg = curl_multi_info_read(window->multi, &remaining)) != NULL)
	{
		int			i;

		if (msg->msg != CURLMSG_DONE)
			continue;

		for (i = 0; i < window->ntransfers; i++)
		{
			if (window->transfers[i].easy == msg->easy_handle)
			{
				*easy = msg->easy_handle;
				*result = msg->data.result;
				*owner = window->transfers[i].owner;
				http_window_remove(window, *easy);
				return true;
			}
		}
	}
	return false;
}

/*
 * socket_action
 *		Hands one readiness event (or a timeout) to curl.
 */
static void
socket_action(HttpWindow *window, curl_socket_t fd, int flags)
{
	CURLMcode	rc;

	rc = curl_multi_socket_action(window->multi, fd, flags, &window->running);
	if (rc != CURLM_OK)
		ereport(WARNING,
				(errmsg("curl_multi_socket_action failed: %s", curl_multi_strerror(rc))));
}

/*
 * socket_callback
 *		curl tells us to watch a socket for reading and/or writing, or to
 *		forget it.
 */
static int
socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	HttpWindow *window = (HttpWindow *) userp;
	int			i;

	for (i = 0; i < window->nsockets; i++)
		if (window->sockets[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < window->nsockets)
			window->sockets[i] = window->sockets[--window->nsockets];
		return 0;
	}

	if (i == window->nsockets)
	{
		if (window->nsockets == window->maxsockets)
		{
			window->maxsockets *= 2;
			window->sockets = repalloc(window->sockets, window->maxsockets * sizeof(WatchedSocket));
		}
		window->sockets[i].fd = fd;
		window->nsockets++;
	}
	window->sockets[i].what = what;
	return 0;
}

/*
 * timer_callback
 *		curl asks to be called back after timeout_ms (0: as soon as
 *		possible; -1: no timer).
 */
static int
timer_callback(CURLM *multi, long timeout_ms, void *userp)
{
	HttpWindow *window = (HttpWindow *) userp;

	if (timeout_ms < 0)
		window->timer_set = false;
	else
	{
		window->timer_set = true;
		window->timer_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	}
	return 0;
}

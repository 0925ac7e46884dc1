/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Keeps slow or greedy clients from using up the shim's connections.
 *
 * libmicrohttpd closes a connection that stays silent for --timeout
 * seconds, but a client that trickles one header line every few seconds
 * is never silent that long, and with enough such connections (slowloris)
 * every slot is taken and everyone else is refused.  This file tracks
 * every open connection and enforces three rules:
 *
 *	  deadline	 a connection has --request-timeout seconds, from its
 *				 opening or from its previous answer, to deliver one whole
 *				 request (headers and body); trickling does not extend it.
 *	  per peer	 one address holds at most --max-connections-per-ip
 *				 connections; a new one past that replaces the address's
 *				 oldest connection that is still waiting for its request,
 *				 or is closed itself when all of them are being served.
 *	  headroom	 once fewer than one in eight slots is free, each new
 *				 connection closes the oldest waiting connection of the
 *				 address that holds the most, so the library's hard limit
 *				 (which refuses newcomers) is never reached by waiters.
 *
 * A connection is "waiting" until its request is complete and "busy"
 * from then until its answer is sent; busy connections are never closed
 * here (the database call is bounded by its own timeouts).  Closing is a
 * shutdown() of the socket, which wakes the connection's thread, whose
 * read then ends and libmicrohttpd closes and forgets the connection.
 * The table is guarded by one mutex, and libmicrohttpd tells us that a
 * connection is gone before it closes its socket, so a descriptor is
 * never shut down after it was reused.  A small hash table counts the
 * open connections per address, so each new connection costs one pass
 * over the table, not one per address (an attacker must not be able to
 * make accepting expensive).
 *
 * Nothing here reads request data: the rules see only addresses and
 * times.
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct GuardSlot
{
	bool		in_use;
	bool		busy;			/* request complete, answer not yet sent */
	bool		closing;		/* shut down here, waiting for the library */
	int			fd;
	int			family;
	unsigned char addr[16];
	double		opened;
	double		deadline;		/* for the request now awaited */
};

/* the address of a connection whose peer the library could not tell */
#define PEER_UNKNOWN (-1)

/* open connections of one address, in the open-addressing table below */
typedef struct PeerCount
{
	int			family;			/* AF_UNSPEC: an empty entry */
	unsigned char addr[16];
	unsigned int count;
} PeerCount;

static GuardOptions options;
static GuardSlot *slots;
static unsigned int nslots;
static PeerCount *peers;
static unsigned int npeers;		/* a power of two, at least twice nslots */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t reaper;
static bool reaper_running;
static bool reaper_stop;

/* closed connections by reason, for /metrics and the log */
static unsigned long long closed_count[GUARD_CLOSE_REASON_COUNT];

/*
 * peer_key
 *		The address a connection counts against: IPv4 (also when mapped
 *		into IPv6) or IPv6, port ignored.
 */
static void
peer_key(const struct sockaddr *peer, int *family, unsigned char *addr)
{
	memset(addr, 0, 16);
	*family = PEER_UNKNOWN;
	if (peer == NULL)
		return;
	if (peer->sa_family == AF_INET)
	{
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *) peer)->sin_addr, 4);
	}
	else if (peer->sa_family == AF_INET6)
	{
		const struct in6_addr *a = &((const struct sockaddr_in6 *) peer)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a))
		{
			*family = AF_INET;
			memcpy(addr, a->s6_addr + 12, 4);
		}
		else
		{
			*family = AF_INET6;
			memcpy(addr, a->s6_addr, 16);
		}
	}
}

/* same_peer: do two connections count against the same address? */
static bool
same_peer(const GuardSlot *a, const GuardSlot *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, 16) == 0;
}

/*
 * oldest_waiting
 *		The longest-open waiting connection, of the given peer's address
 *		when like is not NULL, never the one excluded (lock held).
 */
static GuardSlot *
oldest_waiting(const GuardSlot *like, const GuardSlot *exclude)
{
	GuardSlot  *best = NULL;
	unsigned int i;

	for (i = 0; i < nslots; i++)
	{
		GuardSlot  *s = &slots[i];

		if (!s->in_use || s->busy || s->closing || s == exclude)
			continue;
		if (like != NULL && !same_peer(s, like))
			continue;
		if (best == NULL || s->opened < best->opened)
			best = s;
	}
	return best;
}

/* peer_hash: where an address's entry starts looking (FNV-1a) */
static unsigned int
peer_hash(const GuardSlot *slot)
{
	uint32_t	h = 2166136261u;
	int			i;

	for (i = 0; i < 16; i++)
		h = (h ^ slot->addr[i]) * 16777619u;
	h = (h ^ (uint32_t) slot->family) * 16777619u;
	return h & (npeers - 1);
}

/*
 * peer_entry
 *		The counting entry of a slot's address; with create, make it when
 *		missing (there is always room: twice as many entries as slots).
 */
static PeerCount *
peer_entry(const GuardSlot *slot, bool create)
{
	unsigned int i = peer_hash(slot);

	for (;;)
	{
		PeerCount  *e = &peers[i];

		if (e->family == AF_UNSPEC)
		{
			if (!create)
				return NULL;
			e->family = slot->family;
			memcpy(e->addr, slot->addr, 16);
			e->count = 0;
			return e;
		}
		if (e->family == slot->family && memcmp(e->addr, slot->addr, 16) == 0)
			return e;
		i = (i + 1) & (npeers - 1);
	}
}

/*
 * peer_forget
 *		One connection of this address fewer; an entry that reaches zero
 *		is removed, shifting back the entries after it so that lookups
 *		never stop early (linear probing without tombstones).
 */
static void
peer_forget(const GuardSlot *slot)
{
	PeerCount  *e = peer_entry(slot, false);
	unsigned int hole;
	unsigned int i;

	if (e == NULL || --e->count > 0)
		return;
	hole = (unsigned int) (e - peers);
	e->family = AF_UNSPEC;
	for (i = (hole + 1) & (npeers - 1); peers[i].family != AF_UNSPEC;
		 i = (i + 1) & (npeers - 1))
	{
		GuardSlot	probe;
		unsigned int home;

		probe.family = peers[i].family;
		memcpy(probe.addr, peers[i].addr, 16);
		home = peer_hash(&probe);
		/* move it into the hole unless its home lies between hole and i */
		if (((i - home) & (npeers - 1)) >= ((i - hole) & (npeers - 1)))
		{
			peers[hole] = peers[i];
			peers[i].family = AF_UNSPEC;
			hole = i;
		}
	}
}

/* peer_count: open connections of this slot's address (lock held) */
static unsigned int
peer_count(const GuardSlot *like)
{
	PeerCount  *e = peer_entry(like, false);

	return e ? e->count : 0;
}

/* close_slot: shut the connection down (lock held) */
static void
close_slot(GuardSlot *slot, GuardCloseReason reason)
{
	shutdown(slot->fd, SHUT_RDWR);
	slot->closing = true;
	peer_forget(slot);
	closed_count[reason]++;
}

/*
 * make_headroom
 *		Too few free slots: close the oldest waiting connection of the
 *		address with the most connections (lock held).
 */
static void
make_headroom(const GuardSlot *fresh)
{
	GuardSlot  *greediest = NULL;
	unsigned int most = 0;
	GuardSlot  *victim;
	unsigned int i;

	for (i = 0; i < nslots; i++)
	{
		GuardSlot  *s = &slots[i];
		unsigned int n;

		if (!s->in_use || s->busy || s->closing || s == fresh)
			continue;
		n = peer_count(s);
		if (n > most)
		{
			most = n;
			greediest = s;
		}
	}
	if (greediest == NULL)
		return;					/* everyone is being served */
	victim = oldest_waiting(greediest, fresh);
	if (victim != NULL)
		close_slot(victim, GUARD_CLOSED_HEADROOM);
}

/*
 * guard_opened
 *		A connection was accepted: track it and apply the per-address and
 *		headroom rules.  Returns its slot (NULL if the table is full,
 *		which the library's own limit prevents).
 */
GuardSlot *
guard_opened(int fd, const struct sockaddr *peer)
{
	GuardSlot  *slot = NULL;
	unsigned int open = 0;
	unsigned int i;
	double		now = monotonic_seconds();

	pthread_mutex_lock(&lock);
	for (i = 0; i < nslots; i++)
	{
		if (slots[i].in_use)
		{
			if (!slots[i].closing)
				open++;
		}
		else if (slot == NULL)
			slot = &slots[i];
	}
	if (slot != NULL)
	{
		memset(slot, 0, sizeof(*slot));
		slot->in_use = true;
		slot->fd = fd;
		slot->opened = now;
		slot->deadline = now + options.request_timeout_s;
		peer_key(peer, &slot->family, slot->addr);
		peer_entry(slot, true)->count++;
		open++;

		if (options.max_per_peer > 0 && peer_count(slot) > options.max_per_peer)
		{
			GuardSlot  *victim = oldest_waiting(slot, slot);

			close_slot(victim != NULL ? victim : slot, GUARD_CLOSED_PER_PEER);
			open--;
		}
		if (open > nslots - options.headroom)
			make_headroom(slot);
	}
	pthread_mutex_unlock(&lock);
	return slot;
}

/* guard_busy: the request is complete; its answer is being made */
void
guard_busy(GuardSlot *slot)
{
	if (slot == NULL)
		return;
	pthread_mutex_lock(&lock);
	slot->busy = true;
	pthread_mutex_unlock(&lock);
}

/*
 * guard_answered
 *		The answer went out: the connection waits for its next request
 *		(keep-alive), with a fresh deadline.
 */
void
guard_answered(GuardSlot *slot)
{
	if (slot == NULL)
		return;
	pthread_mutex_lock(&lock);
	slot->busy = false;
	slot->deadline = monotonic_seconds() + options.request_timeout_s;
	pthread_mutex_unlock(&lock);
}

/* guard_closed: the library is about to close the socket; forget it */
void
guard_closed(GuardSlot *slot)
{
	if (slot == NULL)
		return;
	pthread_mutex_lock(&lock);
	if (!slot->closing)
		peer_forget(slot);
	slot->in_use = false;
	pthread_mutex_unlock(&lock);
}

/* guard_closed_total: connections closed by one rule so far */
unsigned long long
guard_closed_total(GuardCloseReason reason)
{
	unsigned long long n;

	pthread_mutex_lock(&lock);
	n = closed_count[reason];
	pthread_mutex_unlock(&lock);
	return n;
}

/*
 * reap
 *		The reaper thread: four times a second, close the waiting
 *		connections past their deadline; every ten seconds in which the
 *		guard closed anything, say so in one log line (one line per
 *		connection would let an attacker flood the log).
 */
static void *
reap(void *arg)
{
	unsigned long long reported[GUARD_CLOSE_REASON_COUNT] = {0};
	double		next_report = monotonic_seconds() + 10;

	(void) arg;
	pthread_mutex_lock(&lock);
	while (!reaper_stop)
	{
		struct timespec until;
		double		now = monotonic_seconds();
		unsigned int i;

		for (i = 0; i < nslots; i++)
		{
			GuardSlot  *s = &slots[i];

			if (s->in_use && !s->busy && !s->closing && now > s->deadline)
				close_slot(s, GUARD_CLOSED_DEADLINE);
		}
		if (now >= next_report)
		{
			unsigned long long d[GUARD_CLOSE_REASON_COUNT];
			int			r;
			bool		any = false;

			for (r = 0; r < GUARD_CLOSE_REASON_COUNT; r++)
			{
				d[r] = closed_count[r] - reported[r];
				reported[r] = closed_count[r];
				any |= d[r] > 0;
			}
			if (any)
			{
				/* log_message takes its own lock, never this one */
				pthread_mutex_unlock(&lock);
				log_message("closed %llu connection(s) without a complete request within %u s, %llu over the per-address limit, %llu to keep slots free",
							d[GUARD_CLOSED_DEADLINE], options.request_timeout_s,
							d[GUARD_CLOSED_PER_PEER], d[GUARD_CLOSED_HEADROOM]);
				pthread_mutex_lock(&lock);
			}
			next_report = now + 10;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000 * 1000;
		if (until.tv_nsec >= 1000 * 1000 * 1000)
		{
			until.tv_sec++;
			until.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&wake, &lock, &until);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * guard_start
 *		Size the table for the library's connection limit and start the
 *		reaper.
 */
bool
guard_start(const GuardOptions *opts)
{
	options = *opts;
	nslots = options.max_connections;
	if (options.headroom >= nslots)
		options.headroom = nslots > 1 ? nslots - 1 : 0;
	slots = calloc(nslots, sizeof(GuardSlot));
	for (npeers = 16; npeers < 2 * nslots; npeers *= 2)
		;
	peers = calloc(npeers, sizeof(PeerCount));
	if (slots == NULL || peers == NULL)
		return false;
	reaper_stop = false;
	if (pthread_create(&reaper, NULL, reap, NULL) != 0)
		return false;
	reaper_running = true;
	return true;
}

/* guard_stop: stop the reaper (the connections are the library's) */
void
guard_stop(void)
{
	if (!reaper_running)
		return;
	pthread_mutex_lock(&lock);
	reaper_stop = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(reaper, NULL);
	reaper_running = false;
}

/*-------------------------------------------------------------------------
 *
 * allow.c
 *	  Source-address rules given with --allow CIDR.
 *
 * Frontegg's webhook signature does not cover the body, so restricting
 * who may connect at all is a cheap second fence.  With no rule every
 * peer is allowed; with rules, a peer must fall inside one of them.
 * IPv4 peers that reach an IPv6 socket arrive as ::ffff:a.b.c.d and are
 * matched against IPv4 rules as what they are.
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * allow_parse
 *		Read "ADDRESS[/PREFIX]" into a rule; a bare address is a single
 *		host.  Host bits beyond the prefix are cleared so that matching is
 *		a plain prefix compare.
 */
bool
allow_parse(const char *text, AllowRule *rule)
{
	char		address[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t		addrlen = slash ? (size_t) (slash - text) : strlen(text);
	int			maxbits;
	int			i;

	if (addrlen == 0 || addrlen >= sizeof(address))
		return false;
	memcpy(address, text, addrlen);
	address[addrlen] = '\0';

	memset(rule, 0, sizeof(*rule));
	if (inet_pton(AF_INET, address, rule->addr) == 1)
	{
		rule->family = AF_INET;
		maxbits = 32;
	}
	else if (inet_pton(AF_INET6, address, rule->addr) == 1)
	{
		rule->family = AF_INET6;
		maxbits = 128;
	}
	else
		return false;

	if (slash)
	{
		char	   *end;
		long		bits;

		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno != 0 || end == slash + 1 || *end != '\0' ||
			bits < 0 || bits > maxbits)
			return false;
		rule->prefix = (int) bits;
	}
	else
		rule->prefix = maxbits;

	for (i = 0; i < maxbits / 8; i++)
	{
		int			keep = rule->prefix - i * 8;

		if (keep <= 0)
			rule->addr[i] = 0;
		else if (keep < 8)
			rule->addr[i] &= (unsigned char) (0xff << (8 - keep));
	}
	return true;
}

/* prefix_equal: do the first "bits" bits of a and b agree? */
static bool
prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int			whole = bits / 8;
	int			rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/*
 * allow_match
 *		Is this peer inside one of the rules?  An empty rule set allows
 *		everyone (the default listen address is loopback).
 */
bool
allow_match(const AllowRule *rules, int nrules, const struct sockaddr *peer)
{
	unsigned char v4[4];
	const unsigned char *v6 = NULL;
	bool		have_v4 = false;
	int			i;

	if (nrules == 0)
		return true;
	if (peer == NULL)
		return false;

	if (peer->sa_family == AF_INET)
	{
		memcpy(v4, &((const struct sockaddr_in *) peer)->sin_addr, 4);
		have_v4 = true;
	}
	else if (peer->sa_family == AF_INET6)
	{
		const struct in6_addr *a = &((const struct sockaddr_in6 *) peer)->sin6_addr;

		v6 = a->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
		{
			memcpy(v4, a->s6_addr + 12, 4);
			have_v4 = true;
		}
	}
	else
		return false;

	for (i = 0; i < nrules; i++)
	{
		if (rules[i].family == AF_INET && have_v4 &&
			prefix_equal(rules[i].addr, v4, rules[i].prefix))
			return true;
		if (rules[i].family == AF_INET6 && v6 != NULL &&
			prefix_equal(rules[i].addr, v6, rules[i].prefix))
			return true;
	}
	return false;
}

/* peer_to_text: the peer's address for the log, "?" when unknown */
void
peer_to_text(const struct sockaddr *peer, char *buf, size_t len)
{
	const void *addr = NULL;

	if (peer != NULL && peer->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *) peer)->sin_addr;
	else if (peer != NULL && peer->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *) peer)->sin6_addr;
	if (addr == NULL || inet_ntop(peer->sa_family, addr, buf, len) == NULL)
		snprintf(buf, len, "?");
}

/*-------------------------------------------------------------------------
 *
 * pg_compat.h
 *	  The few PostgreSQL server APIs whose shape differs between the
 *	  supported major versions (15, 17 and 18), behind one name each.
 *
 * Every version difference the extension meets lives here, so the rest
 * of the code is written once, against these names:
 *
 *	pg_noreturn			  18 dropped pg_attribute_noreturn(), which went after
 *						  a declaration, for pg_noreturn, which goes before
 *						  it; on 15 and 17 pg_noreturn is defined here.
 *	ta_json_lex_context	  17 gave makeJsonLexContextCstringLen a first
 *						  argument (a context to fill, or NULL for a new one)
 *						  and a size_t length.
 *	ta_wait_event_set	  17 made CreateWaitEventSet take a ResourceOwner
 *						  instead of a MemoryContext; the set is freed by its
 *						  caller with FreeWaitEventSet on every version.
 *	ta_b64_decode		  18 made pg_b64_decode write to uint8 * instead of
 *						  char *.
 *
 * Include it after postgres.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_PG_COMPAT_H
#define TENANT_AIRBYTE_PG_COMPAT_H

#include "common/base64.h"
#include "common/jsonapi.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#if PG_VERSION_NUM < 150000
#error "tenant_airbyte needs PostgreSQL 15 or later"
#endif

#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * ta_json_lex_context
 *		A new lexer over len bytes of json in the given encoding.
 */
static inline JsonLexContext *
ta_json_lex_context(const char *json, size_t len, int encoding,
					bool need_escapes)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, encoding, need_escapes);
#else
	return makeJsonLexContextCstringLen((char *) json, (int) len, encoding,
										need_escapes);
#endif
}

/*
 * ta_wait_event_set
 *		A wait event set for nevents events, owned by no resource owner (the
 *		worker waits outside transactions): the caller frees it.
 */
static inline WaitEventSet *
ta_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(CurrentMemoryContext, nevents);
#endif
}

/*
 * ta_b64_decode
 *		Decodes len bytes of base64 at src into dst (dstlen bytes of room);
 *		the decoded length, or -1 when src is not base64.
 */
static inline int
ta_b64_decode(const char *src, int len, void *dst, int dstlen)
{
#if PG_VERSION_NUM >= 180000
	return pg_b64_decode(src, len, (uint8 *) dst, dstlen);
#else
	return pg_b64_decode(src, len, (char *) dst, dstlen);
#endif
}

#endif							/* TENANT_AIRBYTE_PG_COMPAT_H */

/*-------------------------------------------------------------------------
 *
 * request.c
 *	  Refuse requests whose framing or target is ambiguous.
 *
 * libmicrohttpd parses HTTP, and it is lenient where leniency lets two
 * parsers disagree about where a request ends (request smuggling): with
 * two Content-Length headers it uses the first, with Content-Length and
 * Transfer-Encoding it uses the latter, and it unescapes "%00" in a path
 * into a NUL that ends the string, so "/api/webhooks/frontegg%00/x" reads
 * as "/api/webhooks/frontegg".  A proxy in front may decide otherwise, and
 * the bytes one of them takes for a body the other runs as a request.
 * This file inspects what the library hands over (the raw request target,
 * the headers as parsed) and says whether the request is unambiguous; the
 * caller answers 400 and closes the connection when it is not.  There is
 * no HTTP parsing here.  The one case the library refuses itself, a
 * Content-Length that is not a number, it answers wrongly; see
 * request_answer_for_library.
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/*
 * request_target_problem
 *		NULL when the raw request target (as sent, before unescaping) is
 *		acceptable, else why not.  Control characters and an encoded NUL
 *		never belong in a path; routes are matched against the raw path,
 *		so other escapes simply match no route (404).
 */
const char *
request_target_problem(const char *raw)
{
	const unsigned char *p;

	for (p = (const unsigned char *) raw; *p != '\0'; p++)
	{
		if (*p < 0x21 || *p == 0x7f)
			return "control character in the request target";
		if (p[0] == '%' && p[1] == '0' && p[2] == '0')
			return "encoded NUL in the request target";
	}
	return NULL;
}

/*
 * raw_path_equals
 *		Does the raw target's path (up to '?') equal path exactly?
 */
bool
raw_path_equals(const char *raw, const char *path)
{
	size_t		len = strcspn(raw, "?");

	return len == strlen(path) && strncmp(raw, path, len) == 0;
}

typedef struct Framing
{
	int			content_length;	/* headers seen */
	int			transfer_encoding;
	bool		bad_length;		/* a Content-Length that is not digits */
	bool		bad_encoding;	/* a Transfer-Encoding other than chunked */
	bool		bad_name;		/* a field name that is not a token */
	bool		bad_value;		/* a control character in a value */
	int			host;			/* Host headers seen */
} Framing;

/* is_token_char: RFC 9110 tchar */
static bool
is_token_char(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		(c >= 'A' && c <= 'Z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* inspect_header: note what one header says about framing (a callback) */
static enum MHD_Result
inspect_header(void *cls, enum MHD_ValueKind kind, const char *key,
			   const char *value)
{
	Framing    *f = cls;
	const unsigned char *p;

	(void) kind;
	if (key == NULL || key[0] == '\0')
	{
		f->bad_name = true;
		return MHD_YES;
	}
	for (p = (const unsigned char *) key; *p != '\0'; p++)
		if (!is_token_char(*p))
			f->bad_name = true;
	if (value == NULL)
		value = "";
	for (p = (const unsigned char *) value; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			f->bad_value = true;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		f->host++;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
	{
		f->content_length++;
		if (value[0] == '\0' || strspn(value, "0123456789") != strlen(value))
			f->bad_length = true;
	}
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
	{
		f->transfer_encoding++;
		if (strcasecmp(value, "chunked") != 0)
			f->bad_encoding = true;
	}
	return MHD_YES;
}

/*
 * request_framing_problem
 *		NULL when the body's length is stated exactly one way, else why
 *		not: at most one Content-Length of digits only, or else at most one
 *		Transfer-Encoding that is exactly "chunked", never both; every
 *		field name a token, since a name like "Content-Length " is one
 *		header to a lenient parser and another to a strict one; no control
 *		characters in values (RFC 9110 5.5); and, for HTTP/1.1, exactly one
 *		Host (RFC 9112 3.2).
 */
const char *
request_framing_problem(struct MHD_Connection *conn, const char *version)
{
	Framing		f;

	memset(&f, 0, sizeof(f));
	MHD_get_connection_values(conn, MHD_HEADER_KIND, inspect_header, &f);
	if (f.bad_name)
		return "malformed header field name";
	if (f.bad_value)
		return "control character in a header value";
	if (f.host > 1 ||
		(f.host == 0 && version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0))
		return "HTTP/1.1 needs exactly one Host header";
	if (f.content_length > 1)
		return "more than one Content-Length";
	if (f.content_length > 0 && f.transfer_encoding > 0)
		return "both Content-Length and Transfer-Encoding";
	if (f.bad_length)
		return "malformed Content-Length";
	if (f.transfer_encoding > 1)
		return "more than one Transfer-Encoding";
	if (f.bad_encoding)
		return "Transfer-Encoding other than chunked";
	return NULL;
}

/*
 * request_answer_for_library
 *		Answer 400 (or 413) on the connection's socket ourselves and shut
 *		it down, in place of an error answer libmicrohttpd is about to
 *		write wrongly.
 *
 * libmicrohttpd 0.9.75 to 0.9.77 refuse a Content-Length that is not a
 * number ("-1", "1 2") or overflows, before any application callback,
 * but then write the error's status line and headers twice, and a proxy
 * or client reads the second copy as a body or a second response.  The
 * library reports the refusal through its logger first, in the
 * connection's own thread (one thread per connection), which is where
 * this is called: the single answer written here goes out before the
 * library's, and the shutdown makes the library's own writes fail, so it
 * closes the connection having sent nothing more.  Over TLS the answer
 * goes through the connection's GnuTLS session.
 */
void
request_answer_for_library(struct MHD_Connection *conn, int status,
						   const char *message)
{
	const union MHD_ConnectionInfo *info;
	char		answer[512];
	int			len;
	int			fd;

	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info == NULL)
		return;
	fd = info->connect_fd;
	len = snprintf(answer, sizeof(answer),
				   "HTTP/1.1 %d %s\r\nConnection: close\r\n"
				   "Content-Type: text/plain; charset=utf-8\r\n"
				   "Content-Length: %zu\r\n\r\n%s\n",
				   status, status == 413 ? "Content Too Large" : "Bad Request",
				   strlen(message) + 1, message);
	if (len < 0 || (size_t) len >= sizeof(answer))
		return;
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (info != NULL && info->tls_session != NULL)
		(void) gnutls_record_send((gnutls_session_t) info->tls_session, answer, len);
	else
		(void) send(fd, answer, len, MSG_NOSIGNAL);
	shutdown(fd, SHUT_RDWR);
}

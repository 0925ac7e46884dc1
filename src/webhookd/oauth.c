/*-------------------------------------------------------------------------
 *
 * oauth.c
 *	  GET /api/oauth/callback?consent=<id>&secret_id=...: the end of an
 *	  OAuth consent, so that a SaaS needs no endpoint of its own.
 *
 * initiate_oauth() gave Airbyte this URL (with consent=<id>) as the
 * redirect; after the user approves, Airbyte sends the browser here with
 * secret_id appended.  The shim calls tenant_airbyte.oauth_callback(), the
 * one function its role may run for this: it completes that pending,
 * unexpired, unused consent and nothing else, creating the tenant's source.
 * The user is then sent (302) to --oauth-done-url with the outcome in the
 * query (?status=ok&source_id=<uuid> or ?status=error&reason=<word>), or,
 * without that option, shown a plain HTML page that names what failed.
 *
 * The secret_id is a credential: it goes to the database as a statement
 * parameter only, and into no log line (the access log writes paths
 * without their query, http.c).
 *
 *-------------------------------------------------------------------------
 */
#include "webhookd.h"
#include "http_internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char oauth_callback_sql[] =
"SELECT r OPERATOR(pg_catalog.->>) 'source_id'"
"  FROM tenant_airbyte.oauth_callback($1::pg_catalog.uuid, $2) AS r";

/* set: fill in a failed outcome */
static void
set_error(OAuthOutcome *outcome, int http_status, const char *reason,
		  const char *message)
{
	outcome->ok = false;
	outcome->http_status = http_status;
	snprintf(outcome->reason, sizeof(outcome->reason), "%s", reason);
	snprintf(outcome->message, sizeof(outcome->message), "%s", message);
}

/*
 * reason_for
 *		The done page's word for a refusal, and the status of the plain
 *		page, from the SQLSTATE oauth_callback() raised (see its comment in
 *		the install script).
 */
static void
reason_for(const char *sqlstate, int *http_status, const char **reason)
{
	static const struct
	{
		const char *sqlstate;
		int			status;
		const char *reason;
	}			map[] = {
		{"P0002", 404, "no_pending_consent"},
		{"42710", 409, "already_used"},
		{"55000", 410, "expired"},
		{"22P02", 400, "bad_consent_id"},
		{"22023", 400, "bad_request"},
		{"42501", 500, "shim_not_permitted"},
		{"57014", 504, "timeout"},
		{"0A000", 502, "not_supported"},
	};
	size_t		i;

	for (i = 0; sqlstate != NULL && i < sizeof(map) / sizeof(map[0]); i++)
	{
		if (strcmp(sqlstate, map[i].sqlstate) == 0)
		{
			*http_status = map[i].status;
			*reason = map[i].reason;
			return;
		}
	}
	if (sqlstate != NULL && strncmp(sqlstate, "TA", 2) == 0)
	{
		*http_status = 502;
		*reason = "airbyte_error";
		return;
	}
	*http_status = 500;
	*reason = "internal_error";
}

/*
 * oauth_complete
 *		Run oauth_callback() for one consent and say how it went.
 */
void
oauth_complete(const char *consent_id, const char *secret_id, OAuthOutcome *outcome)
{
	const char *values[2];
	int			retry_after = 1;
	PGresult   *res;

	memset(outcome, 0, sizeof(*outcome));
	values[0] = consent_id;
	values[1] = secret_id;
	res = pool_exec(oauth_callback_sql, 2, values, &retry_after);
	if (res == NULL)
	{
		set_error(outcome, 503, "database_unavailable",
				  "The database is unavailable; open the link again in a moment.");
		return;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
	{
		outcome->ok = true;
		outcome->http_status = 200;
		snprintf(outcome->source_id, sizeof(outcome->source_id), "%s", PQgetvalue(res, 0, 0));
	}
	else
	{
		const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *reason;
		int			status;

		reason_for(sqlstate, &status, &reason);
		set_error(outcome, status, reason,
				  primary ? primary : "the consent could not be completed");
	}
	pool_clear(res);
}

/* html_escape: text for an HTML page (malloc'd; NULL when out of memory) */
static char *
html_escape(const char *s)
{
	size_t		n = strlen(s);
	char	   *out = malloc(n * 6 + 1);
	char	   *o = out;

	if (out == NULL)
		return NULL;
	for (; *s; s++)
	{
		const char *e = NULL;

		switch (*s)
		{
			case '&':
				e = "&amp;";
				break;
			case '<':
				e = "&lt;";
				break;
			case '>':
				e = "&gt;";
				break;
			case '"':
				e = "&quot;";
				break;
			case '\'':
				e = "&#39;";
				break;
		}
		if (e != NULL)
		{
			strcpy(o, e);
			o += strlen(e);
		}
		else
			*o++ = *s;
	}
	*o = '\0';
	return out;
}

/* looks_like_uuid: only such a consent id is worth a log line */
static bool
looks_like_uuid(const char *s)
{
	size_t		i;

	for (i = 0; s[i] != '\0'; i++)
		if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
			  (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return i == 36;
}

/*
 * handle_oauth_callback
 *		The route's answer: complete the consent, then 302 to the done URL
 *		or a page.
 */
enum MHD_Result
handle_oauth_callback(struct MHD_Connection *conn, Request *req)
{
	const char *consent = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "consent");
	const char *secret_id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "secret_id");
	OAuthOutcome outcome;
	char	   *escaped;
	char	   *page;
	size_t		page_len;
	enum MHD_Result ret;

	guard_busy(req->slot);
	memset(&outcome, 0, sizeof(outcome));
	if (consent == NULL || consent[0] == '\0')
		set_error(&outcome, 400, "no_consent",
				  "The link carries no consent id: it must be the redirect URL initiate_oauth() gave Airbyte.");
	else if (secret_id == NULL || secret_id[0] == '\0')
		set_error(&outcome, 400, "not_approved",
				  "The consent was not approved: Airbyte sent no secret_id.");
	else
		oauth_complete(consent, secret_id, &outcome);

	if (outcome.ok)
		log_message("oauth callback: consent %s completed, source %s",
					consent, outcome.source_id);
	else
		log_message("oauth callback: consent %s failed (%s): %s",
					consent && looks_like_uuid(consent) ? consent : "(malformed)",
					outcome.reason, outcome.message);

	if (http_options.oauth_done_url != NULL)
	{
		const char *url = http_options.oauth_done_url;
		const char *sep = strchr(url, '?') ? "&" : "?";
		char		location[2048];

		if (outcome.ok)
			snprintf(location, sizeof(location), "%s%sstatus=ok&source_id=%s",
					 url, sep, outcome.source_id);
		else
			snprintf(location, sizeof(location), "%s%sstatus=error&reason=%s",
					 url, sep, outcome.reason);
		return respond_located(conn, req, 302, "text/plain; charset=utf-8", "", 0, 0,
							   NULL, location);
	}

	escaped = html_escape(outcome.ok ? outcome.source_id : outcome.message);
	if (escaped == NULL)
		return respond_text(conn, req, 503, "out of memory, retry later", 1, NULL);
	page_len = strlen(escaped) + 512;
	page = malloc(page_len);
	if (page == NULL)
	{
		free(escaped);
		return respond_text(conn, req, 503, "out of memory, retry later", 1, NULL);
	}
	if (outcome.ok)
		snprintf(page, page_len,
				 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Connected</title></head>\n"
				 "<body><h1>Account connected</h1>\n<p>The source was created: <code id=\"source_id\">%s</code>.</p>\n"
				 "<p>You can close this page.</p></body></html>\n", escaped);
	else
		snprintf(page, page_len,
				 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Not connected</title></head>\n"
				 "<body><h1>The account was not connected</h1>\n<p id=\"reason\">%s</p>\n"
				 "<p>%s</p></body></html>\n", outcome.reason, escaped);
	ret = respond_located(conn, req, outcome.http_status, "text/html; charset=utf-8",
						  page, strlen(page), 0, NULL, NULL);
	free(page);
	free(escaped);
	return ret;
}

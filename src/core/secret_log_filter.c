/*-------------------------------------------------------------------------
 *
 * secret_log_filter.c
 *	  Keeps the values of the extension's secret settings, and the
 *	  credentials passed to its functions, out of the server log.
 *
 * PostgreSQL itself writes 'parameter "x" changed to "value"' when a reload
 * changes a setting, the text of statements (log_statement,
 * log_min_duration_statement, a failing statement's STATEMENT line), and
 * for the extended protocol their bind parameters ('DETAIL:  parameters:
 * $1 = ...').  Any of those may carry a secret: an ALTER SYSTEM on one of
 * the secret settings, a source's configuration, an access token given to
 * authenticate(), the headers the shim passes to receive_webhook().  The
 * secrets are GUC_SUPERUSER_ONLY, but a log file is read by more people
 * and tools than the superuser.  An emit_log_hook, installed in every
 * process that loads the library (the postmaster too, when preloaded),
 * rewrites those messages before they are written.
 *
 * The rule is deliberately coarse, so that it does not depend on which
 * protocol or logging setting produced a line: a statement "carries
 * credentials" when its text (or, for EXECUTE, the text of the prepared
 * statement) calls one of the credential-taking functions below or names a
 * secret setting.  Every statement or parameter line of such a statement
 * is replaced by a notice naming the function or setting; an error raised
 * while it runs is logged without the statement, without its context
 * (which can quote parameters or JSON input) and, for invalid input,
 * without the detail (which quotes the offending token).  Names are
 * matched after removing comments, white space and double quotes and
 * folding case, so "tenant_airbyte"."client_secret", tenant_airbyte .
 * client_id and tenant_airbyte./ * * /client_secret are all recognised.  A
 * false positive only hides a line that did not need hiding.
 *
 * Not covered (doc/security.md): a function of the application's own that
 * passes credentials on (name it in no log-visible statement, or keep
 * log_statement below 'all'), Unicode-escaped identifiers (U&"..."), and
 * extensions that write statements elsewhere (pg_stat_statements keeps
 * parameters as $n; auto_explain with log_parameter_max_length).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/prepare.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#include "tenant_airbyte.h"

static emit_log_hook_type previous_emit_log_hook = NULL;
static ProcessUtility_hook_type previous_process_utility_hook = NULL;

/* Settings whose values must never reach a log (lower case). */
static const char *const secret_setting_names[] = {
	"tenant_airbyte.api_token",
	"tenant_airbyte.client_id",
	"tenant_airbyte.client_secret",
	"tenant_airbyte.webhook_secret",
	"tenant_airbyte.frontegg_client_id",
	"tenant_airbyte.frontegg_api_key",
	NULL
};

/*
 * Functions whose arguments are credentials: a source's configuration, an
 * access token, a delivery's headers, an OAuth app's or a destination's
 * configuration, a password.  Matched as "name(" in the normalised text,
 * so "create_source(" covers airbyte_create_source() too.
 */
static const char *const credential_function_names[] = {
	"create_source",
	"create_shopify_source",
	"create_facebook_marketing_source",
	"create_google_ads_source",
	"check_source_configuration",
	"complete_oauth",
	"oauth_complete",
	"oauth_callback",
	"set_oauth_app",
	"set_pipeline_template",
	"rotate_loader_password",
	"authenticate",
	"receive_webhook",
	"webhook_verify",
	NULL
};

/*
 * The query string of the last EXECUTE whose prepared statement carries
 * credentials (in TopMemoryContext), so that its STATEMENT line and errors
 * are filtered although "EXECUTE name(...)" names no function.
 */
static char *credential_execute_text = NULL;

static void filter_secret_log_lines(ErrorData *edata);
static void note_credential_execute(PlannedStmt *pstmt, const char *queryString,
									bool readOnlyTree, ProcessUtilityContext context,
									ParamListInfo params, QueryEnvironment *queryEnv,
									DestReceiver *dest, QueryCompletion *qc);

/*
 * install_secret_log_filter
 *		Called once from _PG_init; chains to any hooks installed before.
 */
void
install_secret_log_filter(void)
{
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = filter_secret_log_lines;
	previous_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = note_credential_execute;
}

/*
 * normalised
 *		text without white space and double quotes, in lower case (ASCII
 *		only: every name we look for is ASCII), and without comments when
 *		skip_comments.  Nested block comments are skipped as the SQL lexer
 *		skips them.  String literals are not treated specially, so a "--"
 *		inside one would hide the rest of its line: callers look at both
 *		forms.
 */
static char *
normalised(const char *text, bool skip_comments)
{
	char	   *out = palloc(strlen(text) + 1);
	char	   *o = out;
	const char *p = text;

	while (*p != '\0')
	{
		if (skip_comments && p[0] == '/' && p[1] == '*')
		{
			int			depth = 1;

			p += 2;
			while (*p != '\0' && depth > 0)
			{
				if (p[0] == '/' && p[1] == '*')
				{
					depth++;
					p += 2;
				}
				else if (p[0] == '*' && p[1] == '/')
				{
					depth--;
					p += 2;
				}
				else
					p++;
			}
			continue;
		}
		if (skip_comments && p[0] == '-' && p[1] == '-')
		{
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
			*p == '\f' || *p == '\v' || *p == '"')
		{
			p++;
			continue;
		}
		*o++ = (*p >= 'A' && *p <= 'Z') ? *p + ('a' - 'A') : *p;
		p++;
	}
	*o = '\0';
	return out;
}

/*
 * credential_named_in
 *		The secret setting or credential-taking function (as "name()") that
 *		text names, or NULL.  *is_setting tells which of the two it is.
 */
static const char *
credential_named_in(const char *text, bool *is_setting)
{
	const char *found = NULL;

	if (text == NULL || text[0] == '\0')
		return NULL;
	for (int pass = 0; found == NULL && pass < 2; pass++)
	{
		char	   *norm = normalised(text, pass == 0);

		for (int i = 0; found == NULL && secret_setting_names[i] != NULL; i++)
		{
			if (strstr(norm, secret_setting_names[i]) != NULL)
			{
				found = secret_setting_names[i];
				*is_setting = true;
			}
		}
		for (int i = 0; found == NULL && credential_function_names[i] != NULL; i++)
		{
			char	   *call = psprintf("%s(", credential_function_names[i]);

			if (strstr(norm, call) != NULL)
			{
				found = credential_function_names[i];
				*is_setting = false;
			}
			pfree(call);
		}
		pfree(norm);
	}
	return found;
}

/*
 * is_statement_line
 *		One of PostgreSQL's lines that show a statement's text (and, in the
 *		detail, its parameters or the prepared statement's text):
 *		log_statement's "statement: %s" and "%s %s%s%s: %s" (execute of an
 *		extended-protocol portal), and log_min_duration_statement's
 *		"duration: %s ms  statement: %s", "... parse %s: %s",
 *		"... bind %s%s%s: %s" and "... %s %s%s%s: %s".  Matched on the
 *		untranslated format (message_id), so lc_messages does not matter.
 */
static bool
is_statement_line(const char *message_id)
{
	return strstr(message_id, "statement: %s") != NULL ||
		strstr(message_id, "parse %s: %s") != NULL ||
		strstr(message_id, "bind %s%s%s: %s") != NULL ||
		strstr(message_id, "%s %s%s%s: %s") != NULL;
}

/*
 * current_statement_credential
 *		What the statement now running (debug_query_string) names, looking
 *		through an EXECUTE to its prepared statement; NULL for none.
 */
static const char *
current_statement_credential(bool *is_setting)
{
	const char *found = credential_named_in(debug_query_string, is_setting);

	if (found == NULL && debug_query_string != NULL &&
		credential_execute_text != NULL &&
		strcmp(debug_query_string, credential_execute_text) == 0)
	{
		found = "a prepared statement";
		*is_setting = false;
	}
	return found;
}

/*
 * not_logged_message
 *		The notice that replaces a statement line.
 */
static char *
not_logged_message(const char *name, bool is_setting)
{
	if (is_setting)
		return psprintf("statement not logged: it names the secret setting \"%s\"", name);
	if (strcmp(name, "a prepared statement") == 0)
		return pstrdup("statement not logged: it executes a prepared statement that passes credentials");
	return psprintf("statement not logged: it passes credentials to %s()", name);
}

/*
 * raised_by_plpgsql
 *		Whether the error comes from a RAISE in a PL/pgSQL function.
 */
static bool
raised_by_plpgsql(const ErrorData *edata)
{
	const char *file = edata->filename;
	size_t		len = file ? strlen(file) : 0;

	return len >= 9 && strcmp(file + len - 9, "pl_exec.c") == 0;
}

/*
 * filter_secret_log_lines
 *		The hook: see the file header.
 */
static void
filter_secret_log_lines(ErrorData *edata)
{
	const char *name = NULL;
	bool		is_setting = false;

	if (!edata->output_to_server)
		goto chain;

	if (edata->message_id != NULL &&
		(strcmp(edata->message_id, "parameter \"%s\" changed to \"%s\"") == 0 ||
		 strcmp(edata->message_id, "invalid value for parameter \"%s\": \"%s\"") == 0) &&
		(name = credential_named_in(edata->message, &is_setting)) != NULL &&
		is_setting)
	{
		edata->message = psprintf("parameter \"%s\" changed (value not logged)", name);
		edata->detail = NULL;
		edata->detail_log = NULL;
		goto chain;
	}

	if (edata->message_id != NULL && is_statement_line(edata->message_id))
	{
		name = credential_named_in(edata->message, &is_setting);
		if (name == NULL)
			name = credential_named_in(edata->detail, &is_setting);
		if (name == NULL)
			name = current_statement_credential(&is_setting);
		if (name != NULL)
		{
			/* the detail holds the bind parameters or the prepared text */
			edata->message = not_logged_message(name, is_setting);
			edata->detail = NULL;
			edata->detail_log = NULL;
			edata->context = NULL;
			edata->hide_stmt = true;
		}
		goto chain;
	}

	/* Anything else raised while such a statement runs. */
	if (current_statement_credential(&is_setting) != NULL)
	{
		edata->hide_stmt = true;
		/* "JSON data, line 1: ...", "... with parameters: $1 = ..." */
		edata->context = NULL;
		/*
		 * PostgreSQL's input errors quote the token they refused.  The
		 * extension's own PL/pgSQL checks (RAISE, from pl_exec.c) name
		 * fields and allowed values, never a value given: their detail
		 * stays, for the client's sake as much as the log's (this hook's
		 * changes reach both).
		 */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_DATA_EXCEPTION &&
			!raised_by_plpgsql(edata))
		{
			edata->detail = NULL;
			edata->detail_log = NULL;
		}
	}

chain:
	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

/*
 * note_credential_execute
 *		A ProcessUtility hook: before an EXECUTE runs, looks up its prepared
 *		statement and, when that carries credentials, remembers the query
 *		string so that filter_secret_log_lines() treats it as carrying them.
 */
static void
note_credential_execute(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, ExecuteStmt) && queryString != NULL)
	{
		PreparedStatement *prepared = FetchPreparedStatement(((ExecuteStmt *) parsetree)->name, false);
		bool		is_setting;

		if (prepared != NULL &&
			credential_named_in(prepared->plansource->query_string, &is_setting) != NULL)
		{
			if (credential_execute_text != NULL)
				pfree(credential_execute_text);
			credential_execute_text = MemoryContextStrdup(TopMemoryContext, queryString);
		}
	}

	if (previous_process_utility_hook)
		previous_process_utility_hook(pstmt, queryString, readOnlyTree, context,
									  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

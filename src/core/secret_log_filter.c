/*-------------------------------------------------------------------------
 *
 * secret_log_filter.c
 *	  Keeps the values of the extension's secret settings out of the
 *	  server log.
 *
 * PostgreSQL itself writes 'parameter "x" changed to "value"' when a reload
 * changes a setting, and the text of statements (log_statement, failing
 * statements) that may be an ALTER SYSTEM carrying a secret.  The secrets
 * are GUC_SUPERUSER_ONLY, but a log file is read by more people and tools
 * than the superuser.  An emit_log_hook, installed in every process that
 * loads the library (the postmaster too, when preloaded), rewrites those
 * messages before they are written.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tcop/tcopprot.h"
#include "utils/elog.h"

#include "tenant_airbyte.h"

static emit_log_hook_type previous_emit_log_hook = NULL;

/* Settings whose values must never reach a log. */
static const char *const secret_setting_names[] = {
	"tenant_airbyte.api_token",
	"tenant_airbyte.client_id",
	"tenant_airbyte.client_secret",
	"tenant_airbyte.webhook_secret",
	NULL
};

/*
 * Functions whose arguments are credentials (a source's configuration, an
 * access token, a pipeline template's destination password): a statement
 * that calls them is not logged either.  A
 * substring match, so "create_source" covers airbyte_create_source too.
 */
static const char *const credential_function_names[] = {
	"create_source",
	"create_shopify_source",
	"create_facebook_marketing_source",
	"create_google_ads_source",
	"set_pipeline_template",	/* a destination's configuration: a password */
	NULL
};

static void filter_secret_log_lines(ErrorData *edata);

/*
 * install_secret_log_filter
 *		Called once from _PG_init; chains to any hook installed before.
 */
void
install_secret_log_filter(void)
{
	previous_emit_log_hook = emit_log_hook;
	emit_log_hook = filter_secret_log_lines;
}

/*
 * secret_setting_named_in
 *		The first secret setting whose name appears in text, or NULL.  A
 *		substring test (case-insensitive, as setting names are) is enough:
 *		a false positive only redacts a line that did not need it.
 */
static const char *
secret_setting_named_in(const char *text)
{
	if (text == NULL)
		return NULL;
	for (int i = 0; secret_setting_names[i] != NULL; i++)
	{
		if (strcasestr(text, secret_setting_names[i]) != NULL)
			return secret_setting_names[i];
	}
	return NULL;
}

/* The first credential-taking function named in text, or NULL. */
static const char *
credential_function_named_in(const char *text)
{
	if (text == NULL)
		return NULL;
	for (int i = 0; credential_function_names[i] != NULL; i++)
	{
		if (strcasestr(text, credential_function_names[i]) != NULL)
			return credential_function_names[i];
	}
	return NULL;
}

/* Is this one of PostgreSQL's log_statement / log_duration lines? */
static bool
is_statement_line(const char *message_id)
{
	return strncmp(message_id, "statement: ", 11) == 0 ||
		strstr(message_id, "statement: %s") != NULL ||
		strncmp(message_id, "execute %s", 10) == 0;
}

/*
 * filter_secret_log_lines
 *		The hook.  It matches PostgreSQL's untranslated message formats
 *		(message_id), so it works whatever lc_messages says.
 */
static void
filter_secret_log_lines(ErrorData *edata)
{
	const char *secret_name;

	if (edata->output_to_server && edata->message_id != NULL)
	{
		secret_name = secret_setting_named_in(edata->message);

		if (secret_name != NULL &&
			strcmp(edata->message_id, "parameter \"%s\" changed to \"%s\"") == 0)
		{
			edata->message = psprintf("parameter \"%s\" changed (value not logged)",
									  secret_name);
		}
		else if (secret_name != NULL && is_statement_line(edata->message_id))
		{
			edata->message = psprintf("statement not logged: it names the secret setting \"%s\"",
									  secret_name);
		}
		else if (is_statement_line(edata->message_id) &&
				 credential_function_named_in(edata->message) != NULL)
		{
			/* the detail holds the bind parameters, i.e. the credentials */
			edata->message = psprintf("statement not logged: it passes credentials to %s()",
									  credential_function_named_in(edata->message));
			edata->detail = NULL;
		}
	}

	/* A failing statement that names a secret: log the error, not the text. */
	if (!edata->hide_stmt &&
		(secret_setting_named_in(debug_query_string) != NULL ||
		 credential_function_named_in(debug_query_string) != NULL))
		edata->hide_stmt = true;

	if (previous_emit_log_hook)
		previous_emit_log_hook(edata);
}

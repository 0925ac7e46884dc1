/*-------------------------------------------------------------------------
 *
 * tenant_airbyte.c
 *	  Module initialisation: every setting the extension reads, and the
 *	  tenant context that row-level security policies compare against.
 *
 * The library works in two ways.  Loaded through shared_preload_libraries
 * it also starts the background worker; loaded on first use by a backend
 * (CREATE EXTENSION, or the first call of one of its functions) the SQL
 * functions still work, because every setting is defined here in either
 * case.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>

#include <curl/curl.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "budget.h"
#include "jwks_refresh.h"
#include "request_metrics.h"
#include "shmem.h"
#include "tenant_airbyte.h"
#include "tenant_data.h"
#include "worker.h"

PG_MODULE_MAGIC;

/* Longest tenant id the schema stores (tenant_id varchar(255)). */
#define TENANT_ID_MAX_LENGTH 255

char	   *tenant_airbyte_api_url = NULL;
char	   *tenant_airbyte_api_token = NULL;
char	   *tenant_airbyte_ca_file = NULL;
char	   *tenant_airbyte_client_id = NULL;
char	   *tenant_airbyte_client_secret = NULL;
char	   *tenant_airbyte_webhook_secret = NULL;
char	   *tenant_airbyte_frontegg_api_url = NULL;
char	   *tenant_airbyte_frontegg_client_id = NULL;
char	   *tenant_airbyte_frontegg_api_key = NULL;
int			tenant_airbyte_webhook_auth = WEBHOOK_AUTH_FRONTEGG_JWT;
int			tenant_airbyte_webhook_max_bytes = 1024 * 1024;
int			tenant_airbyte_webhook_max_age_s = 3 * 86400;
char	   *tenant_airbyte_database = NULL;
int			tenant_airbyte_max_concurrency = 32;
int			tenant_airbyte_max_attempts = 10;
int			tenant_airbyte_http_timeout_ms = 30000;
int			tenant_airbyte_lease_ms = 120000;
int			tenant_airbyte_retention_days = 30;
int			tenant_airbyte_sync_poll_interval_s = 30;
int			tenant_airbyte_inbox_retention_days = 7;
int			tenant_airbyte_operation_retention_days = 30;
int			tenant_airbyte_dedupe_retention_days = 90;
int			tenant_airbyte_max_retry_after_s = 300;
char	   *tenant_airbyte_jwt_issuer = NULL;
char	   *tenant_airbyte_jwt_audience = NULL;
int			tenant_airbyte_jwt_leeway_s = 30;
int			tenant_airbyte_oauth_consent_ttl_s = 1800;
char	   *tenant_airbyte_jwt_allowed_types = NULL;
char	   *tenant_airbyte_tenant_id = NULL;
int			tenant_airbyte_orphan_policy = ORPHAN_POLICY_REPORT;
int			tenant_airbyte_reconcile_interval_s = 0;

bool		tenant_airbyte_preloaded = false;

static const struct config_enum_entry webhook_auth_options[] = {
	{"frontegg-jwt", WEBHOOK_AUTH_FRONTEGG_JWT, false},
	{"hmac-sha256", WEBHOOK_AUTH_HMAC_SHA256, false},
	{"standard-webhooks", WEBHOOK_AUTH_STANDARD_WEBHOOKS, false},
	{NULL, 0, false}
};

static const struct config_enum_entry orphan_policy_options[] = {
	{"report", ORPHAN_POLICY_REPORT, false},
	{"delete", ORPHAN_POLICY_DELETE, false},
	{NULL, 0, false}
};

void		_PG_init(void);

static void define_settings(void);
static bool check_api_url(char **newval, void **extra, GucSource source);
static bool check_ca_file(char **newval, void **extra, GucSource source);
static bool check_frontegg_api_url(char **newval, void **extra, GucSource source);
static bool check_tenant_id(char **newval, void **extra, GucSource source);

/*
 * _PG_init
 *		Defines the settings, then lets the parts that need the postmaster
 *		(shared memory, the background worker) register themselves when we
 *		are being preloaded.
 */
void
_PG_init(void)
{
	tenant_data_define_settings();
	jwks_define_settings();
	define_settings();
	budget_define_settings();	/* src/engine/budget.c */
	install_secret_log_filter();

	if (process_shared_preload_libraries_in_progress)
	{
		tenant_airbyte_preloaded = true;
		shmem_request();
		jwks_shmem_request();
		request_metrics_register();
		budget_register();
		launcher_register();
	}
}

/*
 * define_settings
 *		Every setting (doc/configuration.md lists them).  Secrets are
 *		PGC_SIGHUP so they can only come from the server's configuration, and
 *		GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL so that no other role can read
 *		them through SHOW, current_setting() or pg_settings.
 */
static void
define_settings(void)
{
	const int	secret_flags = GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL;

	DefineCustomStringVariable("tenant_airbyte.api_url",
							   "Base URL of the Airbyte API, up to and including /v1.",
							   "Airbyte Cloud is https://api.airbyte.com/v1; a self-managed "
							   "Airbyte serves the same API at <host>/api/public/v1.",
							   &tenant_airbyte_api_url,
							   "https://api.airbyte.com/v1",
							   PGC_SIGHUP, 0,
							   check_api_url, NULL, NULL);

	/*
	 * For a self-managed Airbyte behind a private certificate authority.
	 * Verification stays on either way; this only says whom to trust.
	 */
	DefineCustomStringVariable("tenant_airbyte.ca_file",
							   "File of PEM certificate authorities that Airbyte's TLS certificate is verified against.",
							   "Empty: the system's default trust store. An absolute path, readable by the server.",
							   &tenant_airbyte_ca_file, "",
							   PGC_SIGHUP, 0,
							   check_ca_file, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.api_token",
							   "Bearer token for the Airbyte API.",
							   "Leave empty to use client credentials instead.",
							   &tenant_airbyte_api_token, "",
							   PGC_SIGHUP, secret_flags,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.client_id",
							   "Airbyte application client id for the client-credentials flow.",
							   NULL,
							   &tenant_airbyte_client_id, "",
							   PGC_SIGHUP, secret_flags,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.client_secret",
							   "Airbyte application client secret for the client-credentials flow.",
							   NULL,
							   &tenant_airbyte_client_secret, "",
							   PGC_SIGHUP, secret_flags,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.webhook_secret",
							   "Secret(s) that Frontegg webhook deliveries are verified with.",
							   "A comma-separated list is accepted so that a secret can be "
							   "rotated without downtime. With no secret every delivery is refused.",
							   &tenant_airbyte_webhook_secret, "",
							   PGC_SIGHUP, secret_flags,
							   NULL, NULL, NULL);

	/*
	 * Verify by fetch (src/intake/frontegg_fetch.c): off unless all three
	 * are set.  The client id is hidden like the key, as Airbyte's is.
	 */
	DefineCustomStringVariable("tenant_airbyte.frontegg_api_url",
							   "Frontegg API host for verify by fetch, e.g. https://api.frontegg.com (EU) or https://api.us.frontegg.com.",
							   "Empty (the default) turns verify by fetch off.",
							   &tenant_airbyte_frontegg_api_url, "",
							   PGC_SIGHUP, 0,
							   check_frontegg_api_url, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.frontegg_client_id",
							   "Frontegg environment client id for verify by fetch.",
							   NULL,
							   &tenant_airbyte_frontegg_client_id, "",
							   PGC_SIGHUP, secret_flags,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.frontegg_api_key",
							   "Frontegg environment API key for verify by fetch.",
							   NULL,
							   &tenant_airbyte_frontegg_api_key, "",
							   PGC_SIGHUP, secret_flags,
							   NULL, NULL, NULL);

	DefineCustomEnumVariable("tenant_airbyte.webhook_auth",
							 "How webhook deliveries are authenticated.",
							 NULL,
							 &tenant_airbyte_webhook_auth,
							 WEBHOOK_AUTH_FRONTEGG_JWT,
							 webhook_auth_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.webhook_max_bytes",
							"Largest webhook body accepted; larger ones get 413.",
							NULL,
							&tenant_airbyte_webhook_max_bytes,
							1024 * 1024, 1024, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	/*
	 * Long enough for every honest retry of a delivery: Frontegg does not
	 * publish how long it retries (doc/configuration.md), and a retry
	 * refused as stale would be lost, so the default is generous.
	 */
	DefineCustomIntVariable("tenant_airbyte.webhook_max_age_s",
							"Oldest frontegg-jwt webhook token (by its iat claim) still accepted.",
							"A token with neither exp nor iat is always refused.",
							&tenant_airbyte_webhook_max_age_s,
							3 * 86400, 60, 30 * 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * PostgreSQL allows PGC_POSTMASTER settings to be defined only while
	 * shared_preload_libraries are loaded.  Loaded later, in one backend,
	 * there is no worker for the setting to direct, so it is defined as
	 * PGC_SIGHUP merely to keep its value visible.
	 */
	DefineCustomStringVariable("tenant_airbyte.database",
							   "Database whose webhook inbox the background worker serves.",
							   process_shared_preload_libraries_in_progress ? NULL :
							   "No effect: tenant_airbyte is not in shared_preload_libraries, so there is no worker.",
							   &tenant_airbyte_database, "postgres",
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.max_concurrency",
							"Most Airbyte requests the worker keeps in flight at once.",
							NULL,
							&tenant_airbyte_max_concurrency,
							32, 1, 1024,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.max_attempts",
							"Attempts at a delivery before it is marked dead.",
							NULL,
							&tenant_airbyte_max_attempts,
							10, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.http_timeout_ms",
							"Total time one Airbyte request may take.",
							"The connect timeout is the smaller of this and 10 seconds.",
							&tenant_airbyte_http_timeout_ms,
							30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.lease_ms",
							"How long the worker owns a claimed delivery before another claim may take it.",
							NULL,
							&tenant_airbyte_lease_ms,
							120000, 1000, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.retention_days",
							"Days a soft-deleted tenant keeps its Airbyte workspace before purge_deleted_tenants() removes it.",
							NULL,
							&tenant_airbyte_retention_days,
							30, 0, 3650,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.sync_poll_interval_s",
							"Seconds between two reads of the tenants' Airbyte jobs into tenant_syncs.",
							NULL,
							&tenant_airbyte_sync_poll_interval_s,
							30, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.inbox_retention_days",
							"Days finished (done or ignored) inbox rows are kept.",
							NULL,
							&tenant_airbyte_inbox_retention_days,
							7, 0, 3650,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.operation_retention_days",
							"Days finished operations are kept; 0 keeps them for ever.",
							"The worker deletes older done, failed and dead operations in small batches; it keeps one a waiting call still reads and a failed create that no later operation has settled.",
							&tenant_airbyte_operation_retention_days,
							30, 0, 3650,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.dedupe_retention_days",
							"Days the dedupe key of an accepted delivery is kept, however soon its inbox row is deleted.",
							"A delivery replayed within this time is a duplicate and is not acted on again.",
							&tenant_airbyte_dedupe_retention_days,
							90, 1, 3650,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.max_retry_after_s",
							"Longest wait a server's Retry-After header may ask for before the next attempt.",
							"A longer Retry-After is capped to this, and the error recorded for the attempt says so.",
							&tenant_airbyte_max_retry_after_s,
							300, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.jwt_issuer",
							   "Issuer (iss) that authenticate() requires: the Frontegg base URL.",
							   NULL,
							   &tenant_airbyte_jwt_issuer, "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.jwt_audience",
							   "Audience (aud) that authenticate() requires, when set.",
							   NULL,
							   &tenant_airbyte_jwt_audience, "",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.jwt_leeway_s",
							"Clock leeway allowed when checking exp and nbf of tokens.",
							NULL,
							&tenant_airbyte_jwt_leeway_s,
							30, 0, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("tenant_airbyte.jwt_allowed_types",
							   "Comma-separated token types (the type claim) that authenticate() accepts.",
							   NULL,
							   &tenant_airbyte_jwt_allowed_types,
							   "userToken,userApiToken,tenantApiToken,userAccessToken,tenantAccessToken",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	/*
	 * PGC_SUSET: a role that is not a superuser can set its tenant context
	 * only if granted SET ON PARAMETER, or through authenticate().
	 */
	DefineCustomStringVariable("tenant_airbyte.tenant_id",
							   "Tenant whose rows row-level security lets this session see.",
							   "Empty means no tenant: a tenant-scoped role then sees nothing.",
							   &tenant_airbyte_tenant_id, "",
							   PGC_SUSET, 0,
							   check_tenant_id, NULL, NULL);

	/* drift (src/operations/kind_reconcile.c, doc/operations.md) */
	DefineCustomEnumVariable("tenant_airbyte.orphan_policy",
							 "What reconcile(dry_run => false) does with an Airbyte object this extension would have named but no row records.",
							 "report: list it only; delete: delete it in Airbyte.",
							 &tenant_airbyte_orphan_policy,
							 ORPHAN_POLICY_REPORT, orphan_policy_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("tenant_airbyte.reconcile_interval_s",
							"Seconds between two reconciliations with Airbyte run by the worker; 0 turns them off.",
							NULL,
							&tenant_airbyte_reconcile_interval_s,
							0, 0, 604800,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	/*
	 * How long a user has to approve an OAuth consent before it can no
	 * longer be completed: long enough for a consent screen and a login,
	 * short enough that a leaked consent link goes stale.
	 */
	DefineCustomIntVariable("tenant_airbyte.oauth_consent_ttl_s",
							"How long an OAuth consent started by initiate_oauth() can be completed.",
							NULL,
							&tenant_airbyte_oauth_consent_ttl_s,
							1800, 60, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("tenant_airbyte");
}

/*
 * url_host_is_loopback
 *		Whether an http(s) URL names this host (localhost, 127.0.0.0/8 or
 *		::1), read with libcurl's URL parser, the one that will use it.
 */
bool
url_host_is_loopback(const char *url)
{
	CURLU	   *handle = curl_url();
	char	   *host = NULL;
	bool		loopback = false;

	if (handle == NULL)
		return false;
	if (curl_url_set(handle, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(handle, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		struct in_addr v4;

		if (pg_strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
			loopback = true;
		else if (inet_pton(AF_INET, host, &v4) == 1)
			loopback = (ntohl(v4.s_addr) >> 24) == 127;
	}
	curl_free(host);
	curl_url_cleanup(handle);
	return loopback;
}

/*
 * check_api_url
 *		https:// anywhere, plain http:// only to this host: the bearer token
 *		and client secret travel in every request, and anything other than
 *		http(s) would reach libcurl as a file:, ftp: or other scheme.
 */
static bool
check_api_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL)
		return true;
	if (pg_strncasecmp(*newval, "https://", 8) == 0)
		return true;
	if (pg_strncasecmp(*newval, "http://", 7) == 0)
	{
		if (url_host_is_loopback(*newval))
			return true;
		GUC_check_errdetail("tenant_airbyte.api_url may use plain http:// only for a server on this host (localhost, 127.0.0.1 or ::1).");
		GUC_check_errhint("Use the https:// URL of the Airbyte API, or put a TLS proxy on this host in front of it.");
		return false;
	}

	GUC_check_errdetail("tenant_airbyte.api_url must start with https:// (or http:// for a server on this host).");
	return false;
}

/*
 * check_ca_file
 *		A relative path would be read relative to the data directory,
 *		which nobody means; refuse it rather than fail every request.
 *		Whether the file exists is checked by libcurl on each request, so
 *		a file replaced later is picked up and a missing one is reported
 *		in the request's error.
 */
static bool
check_ca_file(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' || is_absolute_path(*newval))
		return true;

	GUC_check_errdetail("tenant_airbyte.ca_file must be an absolute path.");
	return false;
}

/*
 * check_frontegg_api_url
 *		Empty (off), or an http(s) URL for the same reason as api_url.
 */
static bool
check_frontegg_api_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0' ||
		pg_strncasecmp(*newval, "https://", 8) == 0 ||
		pg_strncasecmp(*newval, "http://", 7) == 0)
		return true;

	GUC_check_errdetail("tenant_airbyte.frontegg_api_url must be empty or start with https:// (or http:// for a local server).");
	return false;
}

/*
 * check_tenant_id
 *		A tenant context longer than any stored tenant id can match nothing;
 *		refusing it early turns a silent empty result into a clear error.
 */
static bool
check_tenant_id(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && pg_mbstrlen(*newval) > TENANT_ID_MAX_LENGTH)
	{
		GUC_check_errdetail("A tenant id is at most %d characters long.", TENANT_ID_MAX_LENGTH);
		return false;
	}
	return true;
}

PG_FUNCTION_INFO_V1(tenant_airbyte_current_tenant);

/*
 * tenant_airbyte_current_tenant
 *		The tenant context that row-level security compares against: NULL
 *		when unset or empty, so that a session without context matches no row.
 *
 * It lives in C rather than SQL so that calling it loads the library, and
 * with it the PGC_SUSET definition of tenant_airbyte.tenant_id: a value an
 * unprivileged role put into the placeholder before that is then discarded
 * instead of being trusted.
 */
Datum
tenant_airbyte_current_tenant(PG_FUNCTION_ARGS)
{
	if (tenant_airbyte_tenant_id == NULL || tenant_airbyte_tenant_id[0] == '\0')
		PG_RETURN_NULL();

	PG_RETURN_TEXT_P(cstring_to_text(tenant_airbyte_tenant_id));
}

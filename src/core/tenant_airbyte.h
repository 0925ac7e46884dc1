/*-------------------------------------------------------------------------
 *
 * tenant_airbyte.h
 *	  Declarations shared by the files of the tenant_airbyte extension:
 *	  the settings defined in tenant_airbyte.c and the SQLSTATEs we raise.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANT_AIRBYTE_H
#define TENANT_AIRBYTE_H

#ifndef TENANT_AIRBYTE_VERSION
#define TENANT_AIRBYTE_VERSION "unknown"
#endif

#define TENANT_AIRBYTE_USER_AGENT "tenant_airbyte/" TENANT_AIRBYTE_VERSION

/*
 * SQLSTATEs of Airbyte failures: class "TA", documented in README.md
 * ("Errors from Airbyte").  Raised by airbyte_report_error() (airbyte_api.c).
 *
 *	 TA000	Airbyte rejected the request (HTTP 4xx other than 401/403/404)
 *	 TA001	Airbyte could not be reached or stayed unavailable (connection
 *			errors, timeouts, 429 and 5xx after the retries)
 *	 TA002	Airbyte refused the credentials (401, 403)
 *	 TA003	the Airbyte object does not exist (404)
 *	 TA004	Airbyte's answer could not be used (not JSON, too large, a
 *			required field missing)
 */
#define ERRCODE_AIRBYTE_REJECTED		MAKE_SQLSTATE('T','A','0','0','0')
#define ERRCODE_AIRBYTE_UNAVAILABLE		MAKE_SQLSTATE('T','A','0','0','1')
#define ERRCODE_AIRBYTE_AUTH_FAILED		MAKE_SQLSTATE('T','A','0','0','2')
#define ERRCODE_AIRBYTE_NOT_FOUND		MAKE_SQLSTATE('T','A','0','0','3')
#define ERRCODE_AIRBYTE_BAD_RESPONSE	MAKE_SQLSTATE('T','A','0','0','4')

/* Values of tenant_airbyte.webhook_auth */
typedef enum WebhookAuthScheme
{
	WEBHOOK_AUTH_FRONTEGG_JWT,
	WEBHOOK_AUTH_HMAC_SHA256,
	WEBHOOK_AUTH_STANDARD_WEBHOOKS
} WebhookAuthScheme;

/* Settings (see tenant_airbyte.c and doc/configuration.md) */
extern char *tenant_airbyte_api_url;
extern char *tenant_airbyte_api_token;
extern char *tenant_airbyte_ca_file;
extern char *tenant_airbyte_client_id;
extern char *tenant_airbyte_client_secret;
extern char *tenant_airbyte_webhook_secret;
extern char *tenant_airbyte_frontegg_api_url;
extern char *tenant_airbyte_frontegg_client_id;
extern char *tenant_airbyte_frontegg_api_key;
extern int	tenant_airbyte_webhook_auth;
extern int	tenant_airbyte_webhook_max_bytes;
extern int	tenant_airbyte_webhook_max_age_s;
extern char *tenant_airbyte_database;
extern int	tenant_airbyte_max_concurrency;
extern int	tenant_airbyte_max_attempts;
extern int	tenant_airbyte_http_timeout_ms;
extern int	tenant_airbyte_lease_ms;
extern int	tenant_airbyte_retention_days;
extern int	tenant_airbyte_sync_poll_interval_s;
extern int	tenant_airbyte_inbox_retention_days;
extern int	tenant_airbyte_operation_retention_days;
extern int	tenant_airbyte_dedupe_retention_days;
extern int	tenant_airbyte_max_retry_after_s;
extern char *tenant_airbyte_jwt_issuer;
extern char *tenant_airbyte_jwt_audience;
extern int	tenant_airbyte_jwt_leeway_s;
extern int	tenant_airbyte_oauth_consent_ttl_s;
extern char *tenant_airbyte_jwt_allowed_types;
extern char *tenant_airbyte_tenant_id;

/* tenant_airbyte.orphan_policy */
typedef enum OrphanPolicy
{
	ORPHAN_POLICY_REPORT,
	ORPHAN_POLICY_DELETE
} OrphanPolicy;
extern int	tenant_airbyte_orphan_policy;
extern int	tenant_airbyte_reconcile_interval_s;

/* True when the library was loaded through shared_preload_libraries. */
extern bool tenant_airbyte_preloaded;

/* tenant_airbyte.c: whether an http(s) URL names this host */
extern bool url_host_is_loopback(const char *url);

/* secret_log_filter.c */
extern void install_secret_log_filter(void);

#endif							/* TENANT_AIRBYTE_H */

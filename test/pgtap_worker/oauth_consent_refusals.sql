--
-- oauth_consent_refusals: what complete_oauth() and oauth_callback()
-- refuse before anything reaches Airbyte, and who may touch OAuth apps.
-- Tenants A and B are provisioned and A starts a consent; then B's
-- application role cannot complete A's consent (by A's tenant id or its
-- own), an expired consent and a consent already used are refused, a
-- replayed secret_id is refused whatever consent it comes with, the shim's
-- entry point refuses unknown, used and expired consents too, credentials
-- in an OAuth source's configuration are refused, and OAuth apps are for
-- superusers only.  The round trip itself (a real secret_id from the
-- stand-in's consent page) is test/integration/oauth_consent.t.  One
-- transaction, rolled back; what the worker committed is deleted after it.
--
BEGIN;
SELECT plan(22);

CREATE ROLE tap_oauth_app;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.initiate_oauth(text, text, text),
	tenant_airbyte.initiate_oauth_consent(text, text, text, text, jsonb),
	tenant_airbyte.complete_oauth(text, text, text, text, jsonb)
	TO tap_oauth_app;
CREATE ROLE tap_oauth_shim;
GRANT EXECUTE ON FUNCTION tenant_airbyte.oauth_callback(uuid, text) TO tap_oauth_shim;

-- The worker commits what it records (consents too): start from none.
DELETE FROM tenant_airbyte.oauth_consents WHERE tenant_id IN ('tap-oauth-a', 'tap-oauth-b');
SELECT ok(tenant_airbyte.provision_tenant('tap-oauth-a', 'Tap OAuth A') ->> 'status' IN ('provisioned', 'already_exists'),
	'tenant A is provisioned');
SELECT ok(tenant_airbyte.provision_tenant('tap-oauth-b', 'Tap OAuth B') ->> 'status' IN ('provisioned', 'already_exists'),
	'tenant B is provisioned');

CREATE TEMP TABLE consent (c jsonb) ON COMMIT DROP;
GRANT SELECT, INSERT ON consent TO tap_oauth_app, tap_oauth_shim;

-- A's application starts a consent.
SET LOCAL tenant_airbyte.tenant_id = 'tap-oauth-a';
SET LOCAL ROLE tap_oauth_app;
INSERT INTO consent SELECT tenant_airbyte.initiate_oauth_consent('tap-oauth-a', 'facebook-marketing',
	'https://app.example/oauth/done?from=tap', 'Meta Ads - tap', '{"account_ids": ["111"]}');
SELECT ok((SELECT c ->> 'consent_url' FROM consent) LIKE 'http%/oauth/consent?ticket=%',
	'initiate_oauth_consent returns Airbyte''s consent URL');
SELECT is((SELECT c ->> 'redirect_url' FROM consent),
	'https://app.example/oauth/done?from=tap&consent=' || (SELECT c ->> 'consent_id' FROM consent),
	'... and the redirect URL Airbyte was given, carrying the consent id');
SELECT throws_ok($$SELECT * FROM tenant_airbyte.oauth_consents$$, '42501', NULL,
	'the application role cannot read the consents table');
RESET ROLE;
SELECT is((SELECT status || ' ' || tenant_id || ' ' || source_type || ' ' || (expires_at > now() + interval '10 minutes')::text
			 FROM tenant_airbyte.oauth_consents
			WHERE consent_id = (SELECT (c ->> 'consent_id')::uuid FROM consent)),
	'pending tap-oauth-a facebook-marketing true',
	'the consent is recorded pending, for A and its source type, expiring later');

-- B's application cannot complete A's consent.
SET LOCAL tenant_airbyte.tenant_id = 'tap-oauth-b';
SET LOCAL ROLE tap_oauth_app;
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'facebook-marketing', 'stolen-secret', 'Planted')$$,
	'42501', 'permission denied for tenant "tap-oauth-a"',
	'B''s role cannot complete A''s consent by passing A''s tenant id');
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-b', 'facebook-marketing', 'stolen-secret', 'Planted')$$,
	'P0002', 'no pending OAuth consent for tenant "tap-oauth-b" and source type "facebook-marketing"',
	'... nor with its own tenant id: B has no pending consent');
RESET ROLE;

-- A's application, with the wrong source type, or credentials.
SET LOCAL tenant_airbyte.tenant_id = 'tap-oauth-a';
SET LOCAL ROLE tap_oauth_app;
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'google-ads', 'some-secret', 'Google')$$,
	'P0002', NULL, 'a consent for facebook-marketing does not complete a google-ads source');
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'facebook-marketing', 'some-secret', 'Meta',
		'{"credentials": {"auth_type": "Service", "access_token": "x"}}')$$,
	'22023', NULL, 'credentials in an OAuth source''s configuration are refused');
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'shopify', 'some-secret', 'Shop')$$,
	'22023', 'shopify sources do not use Airbyte''s OAuth consent flow',
	'shopify is refused with the way it connects');
RESET ROLE;

-- Expired.
UPDATE tenant_airbyte.oauth_consents SET expires_at = now() - interval '1 second'
 WHERE consent_id = (SELECT (c ->> 'consent_id')::uuid FROM consent);
SET LOCAL ROLE tap_oauth_app;
SELECT throws_like($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'facebook-marketing', 'late-secret', 'Meta')$$,
	'OAuth consent for tenant "tap-oauth-a" and source type "facebook-marketing" expired at %',
	'an expired consent is refused');
RESET ROLE;
SET LOCAL ROLE tap_oauth_shim;
SELECT throws_ok(format($$SELECT tenant_airbyte.oauth_callback(%L, 'late-secret')$$, (SELECT c ->> 'consent_id' FROM consent)),
	'55000', NULL, '... through the shim''s entry point too');
RESET ROLE;

-- Used, and a replayed secret_id (as the worker leaves a completed consent).
UPDATE tenant_airbyte.oauth_consents
   SET expires_at = now() + interval '10 minutes', status = 'used', used_at = now(),
	   secret_sha256 = sha256(convert_to('used-secret', 'UTF8'))
 WHERE consent_id = (SELECT (c ->> 'consent_id')::uuid FROM consent);
INSERT INTO tenant_airbyte.oauth_consents (consent_id, tenant_id, source_type, redirect_url, expires_at)
VALUES (gen_random_uuid(), 'tap-oauth-a', 'facebook-marketing', 'https://app.example/cb?consent=x', now() + interval '10 minutes');
SET LOCAL ROLE tap_oauth_app;
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'facebook-marketing', 'used-secret', 'Meta again')$$,
	'42710', 'this OAuth secret_id was already used',
	'a replayed secret_id is refused, although another consent is pending');
RESET ROLE;
SET LOCAL ROLE tap_oauth_shim;
SELECT throws_ok(format($$SELECT tenant_airbyte.oauth_callback(%L, 'fresh-secret')$$, (SELECT c ->> 'consent_id' FROM consent)),
	'42710', NULL, 'the shim cannot complete a consent that was already used');
SELECT throws_ok($$SELECT tenant_airbyte.oauth_callback(gen_random_uuid(), 'fresh-secret')$$,
	'P0002', NULL, 'the shim cannot complete a consent that does not exist');
SELECT throws_ok($$SELECT tenant_airbyte.complete_oauth('tap-oauth-a', 'facebook-marketing', 'x', 'y')$$,
	'42501', NULL, 'the shim''s role can run nothing but oauth_callback()');
RESET ROLE;

-- OAuth apps: superusers only, the secret readable by no one else.
SELECT lives_ok($$SELECT tenant_airbyte.set_oauth_app('facebook-marketing',
	'{"credentials": {"client_id": "tap-client", "client_secret": "tap-client-secret"}}')$$,
	'a superuser sets an OAuth app');
GRANT EXECUTE ON FUNCTION tenant_airbyte.set_oauth_app(text, jsonb),
	tenant_airbyte.apply_oauth_apps() TO tap_oauth_app;
GRANT SELECT ON tenant_airbyte.oauth_apps TO tap_oauth_app;
SET LOCAL ROLE tap_oauth_app;
SELECT throws_ok($$SELECT tenant_airbyte.set_oauth_app('facebook-marketing', '{"credentials": {}}')$$,
	'42501', NULL, 'a role granted EXECUTE on set_oauth_app still cannot set an app');
SELECT throws_ok($$SELECT tenant_airbyte.apply_oauth_apps()$$,
	'42501', NULL, '... nor apply the apps');
SELECT is_empty($$SELECT configuration FROM tenant_airbyte.oauth_apps$$,
	'a role granted SELECT on oauth_apps still reads no app (row-level security)');
RESET ROLE;
SELECT is(tenant_airbyte.drop_oauth_app('facebook-marketing'), true, 'a superuser drops the app');

SELECT * FROM finish();
ROLLBACK;

-- The worker committed what it recorded for A and B (their workspaces,
-- operations and consents): remove it, so that the files after this one
-- find only their own tenants.
DELETE FROM tenant_airbyte.operations WHERE tenant_id IN ('tap-oauth-a', 'tap-oauth-b');
DELETE FROM tenant_airbyte.oauth_consents WHERE tenant_id IN ('tap-oauth-a', 'tap-oauth-b');
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id IN ('tap-oauth-a', 'tap-oauth-b');

--
-- jwks_and_authenticate: load_jwks() accepts a Frontegg JWKS document and
-- refuses unusable ones clearly; authenticate() returns the claims an
-- application needs, sets the tenant context for the transaction only,
-- and refuses bad tokens with SQLSTATE 28000 naming the failed check.
-- The token (tenant org-jwks-a, expires in 2100) was signed once with the
-- openssl command line; its private key was discarded.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;

\set n 'uL9DmFzD1UPWP2-i5s0SdKy0rc1XTxNdmlQS3Hp3vQJfrxxrpWCPFgE4iBgxfx4gJfl0OMc-DIlE7ghq4R2QbHqjlCmfxo6rB8XyHJbtHAacVxWP0mC_1Z1YN95TreAdzC6YeY3h60iLAamNj8gKYzyfSGhcKuL8wpG4cm157_-24ggelYuFF474OLgt3Ndz697kLe8sLa8LmgBhbOUcxI0O5dccOqgNTd6q8LVW7Pl-ONd8cjISvYcHxWjcd0oiKWAq0I30U-bZoqYjYK5FrpJufYilTwiQRSH9T3FC24b5Oc989yZw9_BRzKhZOQE60MNONTUlDfh_HAZ1_oVxfQ'
\set token 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcC1rZXktMSJ9.eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYSIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWEiXSwicm9sZXMiOlsiYWRtaW4iXX0.GPIzg1s-5cv6Xv6aBdJ6aFYNYbMgBXiebJHzHqD5OuP0oSCq35lDeq_5ggTGfMT49T7varzuPEWwMgtPjoFZqgMYEv_bvFvshx_FdJBCQVcYzVRblDD7xyLox6J3ZFeDCIdvhVck4yPbqVMHG5VjOoKEk9O5uOY_VvI-O3g2DrPq-shoS4S-lgXKdel2oN2YCp-yJ9TvQzoOBEzkOjW4TOlgF0c-McI2cLjA5MK0YTb3AhdnSJVidQfDHnMXG_brbAsa-Lhc80MvHB1MZc2cUiyNImzaaTPYFgLPaFoq30PzkGku5f5KCA541qSWme3VxrVblKJP6zIIQrkss8cjRA'

-- Bad documents: each refused with a reason, nothing stored.
\set VERBOSITY terse
SELECT tenant_airbyte.load_jwks('{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.load_jwks('{"keys": {}}');
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'n', :'n', 'e', 'AQAB'))));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'kid', 'k1', 'n', :'n', 'e', 'AQAB'),
	jsonb_build_object('kty', 'RSA', 'kid', 'k1', 'n', :'n', 'e', 'AQAB'))));
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'kid', 'short', 'n', left(:'n', 171), 'e', 'AQAB'))));
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'kid', 'even-e', 'n', :'n', 'e', 'AQA'))));
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'kid', 'not-b64', 'n', 'n+/=', 'e', 'AQAB'))));
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'kid', 'hs', 'alg', 'HS256', 'n', :'n', 'e', 'AQAB'))));
SELECT tenant_airbyte.load_jwks('{"keys": [{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "AA", "y": "AA"}]}');
\set VERBOSITY default
SELECT count(*) AS keys_stored FROM tenant_airbyte.jwt_keys;

-- A JWKS as Frontegg publishes it; keys that are not RSA signing keys are skipped.
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'use', 'sig', 'alg', 'RS256', 'kid', 'tap-key-1', 'n', :'n', 'e', 'AQAB'),
	jsonb_build_object('kty', 'EC', 'kid', 'ec-1', 'crv', 'P-256', 'x', 'AA', 'y', 'AA'))),
	'https://tap.frontegg.test') AS keys_loaded;
SELECT kid, issuer, jwk ->> 'kty' AS kty FROM tenant_airbyte.jwt_keys;

-- The token verifies; the context lasts until the end of the transaction.
BEGIN;
SELECT jsonb_pretty(tenant_airbyte.authenticate(:'token'));
SELECT tenant_airbyte.current_tenant();
COMMIT;
SELECT tenant_airbyte.current_tenant() IS NULL AS context_gone_after_commit;
BEGIN;
SELECT tenant_airbyte.authenticate(:'token') ->> 'tenantId' AS tenant;
ROLLBACK;
SELECT tenant_airbyte.current_tenant() IS NULL AS context_gone_after_rollback;

-- Refusals, each naming its check.
SELECT tenant_airbyte.authenticate(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.authenticate('');
SELECT tenant_airbyte.authenticate('abc.def');
SELECT tenant_airbyte.authenticate(split_part(:'token', '.', 1) || '.!!.' || split_part(:'token', '.', 3));
SELECT tenant_airbyte.authenticate(translate(encode('{"alg":"none","kid":"tap-key-1"}', 'base64'), '+/=', '-_')
	|| '.' || split_part(:'token', '.', 2) || '.');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.authenticate(translate(encode('{"alg":"HS256","kid":"tap-key-1"}', 'base64'), '+/=', '-_')
	|| '.' || split_part(:'token', '.', 2) || '.' || split_part(:'token', '.', 3));
SELECT tenant_airbyte.authenticate(split_part(:'token', '.', 1) || '.' || split_part(:'token', '.', 2) || '.'
	|| translate(encode(sha256('forged'), 'base64'), '+/=', '-_'));
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The key was loaded for https://tap.frontegg.test: with no issuer recorded
-- and tenant_airbyte.jwt_issuer unset, nothing is trusted.
UPDATE tenant_airbyte.jwt_keys SET issuer = NULL;
SELECT tenant_airbyte.authenticate(:'token');
UPDATE tenant_airbyte.jwt_keys SET issuer = 'https://other.frontegg.test';
SELECT tenant_airbyte.authenticate(:'token');

-- Loading a newer document retires the keys it no longer lists.
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(
	jsonb_build_object('kty', 'RSA', 'kid', 'tap-key-2', 'n', :'n', 'e', 'AQAB'))),
	'https://other.frontegg.test') AS keys_loaded;
SELECT kid FROM tenant_airbyte.jwt_keys ORDER BY kid;
SELECT tenant_airbyte.authenticate(:'token');

DELETE FROM tenant_airbyte.jwt_keys;

--
-- jwks_refresh_apply: what the worker does with a JWKS it fetched from
-- tenant_airbyte.jwks_url (apply_jwks()), without the network.  A document
-- that cannot be used changes no key and says why; a usable one adds its
-- keys as fetched, starts the grace period of fetched keys it no longer
-- lists, and never touches keys loaded by hand.  jwks_url is https://, or
-- http:// to this host only.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
DELETE FROM tenant_airbyte.jwt_keys;

\set n 'uL9DmFzD1UPWP2-i5s0SdKy0rc1XTxNdmlQS3Hp3vQJfrxxrpWCPFgE4iBgxfx4gJfl0OMc-DIlE7ghq4R2QbHqjlCmfxo6rB8XyHJbtHAacVxWP0mC_1Z1YN95TreAdzC6YeY3h60iLAamNj8gKYzyfSGhcKuL8wpG4cm157_-24ggelYuFF474OLgt3Ndz697kLe8sLa8LmgBhbOUcxI0O5dccOqgNTd6q8LVW7Pl-ONd8cjISvYcHxWjcd0oiKWAq0I30U-bZoqYjYK5FrpJufYilTwiQRSH9T3FC24b5Oc989yZw9_BRzKhZOQE60MNONTUlDfh_HAZ1_oVxfQ'
\set url 'https://regress.frontegg.test/.well-known/jwks.json'
SELECT jsonb_build_object('kty', 'RSA', 'use', 'sig', 'alg', 'RS256', 'kid', 'f1', 'n', :'n', 'e', 'AQAB') AS f1,
       jsonb_build_object('kty', 'RSA', 'kid', 'f2', 'n', :'n', 'e', 'AQAB') AS f2,
       jsonb_build_object('kty', 'RSA', 'kid', 'hand', 'n', :'n', 'e', 'AQAB') AS hand \gset

-- Unusable documents: an error each (the caller's transaction rolls back).
SELECT tenant_airbyte.apply_jwks('{"keys": [', :'url');
SELECT tenant_airbyte.apply_jwks('[]', :'url');
SELECT tenant_airbyte.apply_jwks('{"keys": []}', :'url');
SELECT tenant_airbyte.apply_jwks(jsonb_build_object('keys', jsonb_build_array(
	'{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "AA", "y": "AA"}'::jsonb,
	jsonb_build_object('kty', 'RSA', 'use', 'enc', 'kid', 'enc-1', 'n', :'n', 'e', 'AQAB'),
	jsonb_build_object('kty', 'RSA', 'alg', 'RS512', 'kid', 'rs512', 'n', :'n', 'e', 'AQAB'),
	jsonb_build_object('kty', 'RSA', 'kid', 'short', 'n', left(:'n', 171), 'e', 'AQAB'),
	jsonb_build_object('kty', 'RSA', 'n', :'n', 'e', 'AQAB')))::text, :'url');
SELECT count(*) AS keys_stored FROM tenant_airbyte.jwt_keys;

-- A key loaded by hand, then a usable document: its usable keys are stored
-- as fetched (for tenant_airbyte.jwt_issuer, unset here), the unusable one
-- skipped, the hand-loaded key left alone although the JWKS lists it.
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(:'hand'::jsonb)),
								'https://regress.frontegg.test');
SELECT tenant_airbyte.apply_jwks(jsonb_build_object('keys', jsonb_build_array(
	:'f1'::jsonb, :'f2'::jsonb,
	'{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": "AA", "y": "AA"}'::jsonb,
	jsonb_set(:'hand'::jsonb, '{e}', '"AQAB"')))::text, :'url') AS usable;
SELECT kid, issuer, fetched_from, removed_at IS NOT NULL AS removed
  FROM tenant_airbyte.jwt_keys ORDER BY kid;

-- The issuer rotates: f1 vanishes, f3 appears.  f1 enters its grace
-- period (removed_at), the hand-loaded key is still not the refresh's.
SELECT tenant_airbyte.apply_jwks(jsonb_build_object('keys', jsonb_build_array(
	:'f2'::jsonb, jsonb_set(:'f2'::jsonb, '{kid}', '"f3"')))::text, :'url') AS usable;
SELECT kid, fetched_from IS NOT NULL AS fetched, removed_at IS NOT NULL AS removed
  FROM tenant_airbyte.jwt_keys ORDER BY kid;

-- A broken document later changes nothing: f1 keeps its removed_at, f2
-- and f3 stay published.
SELECT tenant_airbyte.apply_jwks('{"keys": []}', :'url');
SELECT kid, removed_at IS NOT NULL AS removed FROM tenant_airbyte.jwt_keys ORDER BY kid;

-- f1 published again: out of its grace period.  load_jwks() of a fetched
-- key makes it hand-loaded, and a later refresh that omits it keeps it.
SELECT tenant_airbyte.apply_jwks(jsonb_build_object('keys', jsonb_build_array(
	:'f1'::jsonb, :'f2'::jsonb))::text, :'url') AS usable;
SELECT tenant_airbyte.load_jwks(jsonb_build_object('keys', jsonb_build_array(:'hand'::jsonb, :'f2'::jsonb)),
								'https://regress.frontegg.test');
SELECT tenant_airbyte.apply_jwks(jsonb_build_object('keys', jsonb_build_array(:'f1'::jsonb))::text, :'url') AS usable;
SELECT kid, fetched_from IS NOT NULL AS fetched, removed_at IS NOT NULL AS removed
  FROM tenant_airbyte.jwt_keys ORDER BY kid;

-- Only administrators apply keys or read the refresh's state.
CREATE ROLE regress_jwks_user;
SET ROLE regress_jwks_user;
\set VERBOSITY sqlstate
SELECT tenant_airbyte.apply_jwks('{"keys": []}', 'https://x.test/jwks.json');
SELECT * FROM tenant_airbyte.jwks_state();
\set VERBOSITY default
RESET ROLE;
DROP ROLE regress_jwks_user;

-- jwks_url: https:// anywhere, http:// to this host only, nothing else.
ALTER SYSTEM SET tenant_airbyte.jwks_url = 'file:///etc/passwd';
ALTER SYSTEM SET tenant_airbyte.jwks_url = 'http://tenant.frontegg.com/.well-known/jwks.json';
ALTER SYSTEM SET tenant_airbyte.jwks_url = 'http://127.0.0.1.example.com/jwks.json';
ALTER SYSTEM SET tenant_airbyte.jwks_url = 'https://tenant.frontegg.com/.well-known/jwks.json';
ALTER SYSTEM SET tenant_airbyte.jwks_url = 'http://127.0.0.1:8080/.well-known/jwks.json';
ALTER SYSTEM RESET tenant_airbyte.jwks_url;

DELETE FROM tenant_airbyte.jwt_keys;

--
-- authenticate_isolation: a tenant-scoped role that holds only EXECUTE on
-- authenticate() reaches its tenant's rows with a genuine token and no
-- other tenant's rows with any token it can make without the private key:
-- changed claims, another key under the known kid, alg none, HS256 keyed
-- with the public key, an unknown kid.  It cannot read or load keys.
--
-- The fixtures were made once with the openssl command line; only the
-- public key and the signed tokens are here (the private keys were
-- discarded).  The genuine token is for tap-org-a and expires in 2100.
-- Everything happens in one transaction that is rolled back.
--
\set jwks '{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"tap-key-1","n":"uL9DmFzD1UPWP2-i5s0SdKy0rc1XTxNdmlQS3Hp3vQJfrxxrpWCPFgE4iBgxfx4gJfl0OMc-DIlE7ghq4R2QbHqjlCmfxo6rB8XyHJbtHAacVxWP0mC_1Z1YN95TreAdzC6YeY3h60iLAamNj8gKYzyfSGhcKuL8wpG4cm157_-24ggelYuFF474OLgt3Ndz697kLe8sLa8LmgBhbOUcxI0O5dccOqgNTd6q8LVW7Pl-ONd8cjISvYcHxWjcd0oiKWAq0I30U-bZoqYjYK5FrpJufYilTwiQRSH9T3FC24b5Oc989yZw9_BRzKhZOQE60MNONTUlDfh_HAZ1_oVxfQ","e":"AQAB"}]}'
\set token_a 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcC1rZXktMSJ9.eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYSIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWEiXSwicm9sZXMiOlsiYWRtaW4iXX0.GPIzg1s-5cv6Xv6aBdJ6aFYNYbMgBXiebJHzHqD5OuP0oSCq35lDeq_5ggTGfMT49T7varzuPEWwMgtPjoFZqgMYEv_bvFvshx_FdJBCQVcYzVRblDD7xyLox6J3ZFeDCIdvhVck4yPbqVMHG5VjOoKEk9O5uOY_VvI-O3g2DrPq-shoS4S-lgXKdel2oN2YCp-yJ9TvQzoOBEzkOjW4TOlgF0c-McI2cLjA5MK0YTb3AhdnSJVidQfDHnMXG_brbAsa-Lhc80MvHB1MZc2cUiyNImzaaTPYFgLPaFoq30PzkGku5f5KCA541qSWme3VxrVblKJP6zIIQrkss8cjRA'
-- Claims for tap-org-b signed with a key that is not the loaded one.
\set token_b_other_key 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRhcC1rZXktMSJ9.eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYiIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWIiXSwicm9sZXMiOlsiYWRtaW4iXX0.Rs7aZvShd6mBlP_FVmYnk16pAnu-bVLHmx-pl3EzUUpHNPUesU6xGidoSzFDpAOMVNBbTJgE10t1H_n1zH6vBdQWqGJhchbDYPEeJqHyikzWOeiJq156wPwPfKYUtMkrONRvcHd6KSEqe5Vuou4WXEROMmyaoegy3ZvFM3n2T50aIVftEZoqaX2tuwAm_Sxu0twbKgZzKnAyn0M6uWNLJvTVbg1lydBDWQgZ2B4eErqngCGLOy6ZfIMA9XKAC6vNaSnuQwP_8vXhdug-hsWPAaLx39_g76COjhNj6Phjk-_29kr6Xk6u8KogUePYyGhhvVnhP9TC8t5TTB1CSlaRbw'
-- The claims of that token, base64url, to graft onto token_a's signature.
\set claims_b 'eyJzdWIiOiJ0YXAtdXNlciIsImlzcyI6Imh0dHBzOi8vdGFwLmZyb250ZWdnLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsInR5cGUiOiJ1c2VyVG9rZW4iLCJ0ZW5hbnRJZCI6InRhcC1vcmctYiIsInRlbmFudElkcyI6WyJ0YXAtb3JnLWIiXSwicm9sZXMiOlsiYWRtaW4iXX0'

BEGIN;
SELECT plan(19);

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE FUNCTION pg_temp.b64url(data bytea) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT translate(encode(data, 'base64'), E'+/=\n', '-_') $$;
CREATE TEMP TABLE forged (name text, token text);
GRANT SELECT ON forged TO PUBLIC;
INSERT INTO forged VALUES
	('changed claims',
	 split_part(:'token_a', '.', 1) || '.' || :'claims_b' || '.' || split_part(:'token_a', '.', 3)),
	('another key under the known kid', :'token_b_other_key'),
	('alg none',
	 pg_temp.b64url('{"alg":"none","kid":"tap-key-1"}') || '.' || :'claims_b' || '.'),
	('HS256 keyed with the public key',
	 (SELECT s || '.' || pg_temp.b64url(hmac(s::bytea, (:'jwks'::jsonb #>> '{keys,0,n}')::bytea, 'sha256'))
	    FROM (SELECT pg_temp.b64url('{"alg":"HS256","kid":"tap-key-1"}') || '.' || :'claims_b' AS s) AS t)),
	('unknown kid',
	 pg_temp.b64url('{"alg":"RS256","kid":"tap-key-2"}') || '.' || :'claims_b' || '.' || split_part(:'token_a', '.', 3));

CREATE ROLE tap_auth_app;
GRANT EXECUTE ON FUNCTION tenant_airbyte.authenticate(text) TO tap_auth_app;

INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('tap-org-a', 'aaaaaaaa-0000-4000-8000-0000000000a1', 'Tenant A - tap-org-'),
       ('tap-org-b', 'bbbbbbbb-0000-4000-8000-0000000000b1', 'Tenant B - tap-org-');
-- The issuer is given to load_jwks() because tenant_airbyte.jwt_issuer
-- (a server setting) cannot be changed inside this transaction.
SELECT is(tenant_airbyte.load_jwks(:'jwks', 'https://tap.frontegg.test'), 1,
	'an administrator loads the JWKS');

SET LOCAL ROLE tap_auth_app;
SELECT is_empty('SELECT 1 FROM tenant_airbyte.tenant_airbyte_workspaces',
	'before authenticate() the application role sees no tenant row');
SELECT throws_ok($$SET tenant_airbyte.tenant_id = 'tap-org-b'$$, '42501', NULL,
	'it cannot set the tenant context itself');

-- Inside a savepoint, to show that the context belongs to the transaction.
SAVEPOINT before_authenticate;
SELECT is(tenant_airbyte.authenticate(:'token_a') ->> 'tenantId', 'tap-org-a',
	'a genuine token authenticates tenant A');
SELECT results_eq('SELECT tenant_id::text FROM tenant_airbyte.tenant_airbyte_workspaces',
	ARRAY['tap-org-a'],
	'... and the role sees tenant A''s row only');
ROLLBACK TO SAVEPOINT before_authenticate;
SELECT is(tenant_airbyte.current_tenant(), NULL,
	'rolling back the authenticate() call removes the context');

SELECT throws_ok(format('SELECT tenant_airbyte.authenticate(%L)', token), '28000',
	CASE name
		WHEN 'changed claims' THEN 'access token rejected: signature does not verify'
		WHEN 'another key under the known kid' THEN 'access token rejected: signature does not verify'
		WHEN 'unknown kid' THEN 'access token rejected: unknown signing key (kid)'
		ELSE 'access token rejected: token algorithm is not RS256'
	END,
	'a token for tenant B made without the private key is refused: ' || name)
  FROM forged ORDER BY name;
SELECT is(tenant_airbyte.current_tenant(), NULL, '... and none of them set a context');
SELECT is_empty('SELECT 1 FROM tenant_airbyte.tenant_airbyte_workspaces',
	'... so the role still sees nothing');

-- With tenant A authenticated, forged tokens do not move it to tenant B.
SELECT lives_ok(format('SELECT tenant_airbyte.authenticate(%L)', :'token_a'),
	'authenticated as tenant A');
SELECT throws_ok(format('SELECT tenant_airbyte.authenticate(%L)', token), '28000', NULL,
	'a forged token does not switch to tenant B')
  FROM forged WHERE name = 'changed claims';
SELECT results_eq('SELECT tenant_id::text FROM tenant_airbyte.tenant_airbyte_workspaces',
	ARRAY['tap-org-a'],
	'... the role still sees tenant A only');

SELECT throws_ok('SELECT 1 FROM tenant_airbyte.jwt_keys', '42501', NULL,
	'the application role cannot read the keys');
SELECT throws_ok($$SELECT tenant_airbyte.load_jwks('{"keys": []}')$$, '42501', NULL,
	'... nor load keys of its own');
RESET ROLE;

SELECT ok(NOT has_function_privilege('public', 'tenant_airbyte.authenticate(text)', 'EXECUTE'),
	'authenticate() is granted to no one by default');

SELECT * FROM finish();
ROLLBACK;

--
-- webhook_signatures: receive_webhook() acts only on deliveries that are
-- authentic under tenant_airbyte.webhook_auth, tries every configured
-- secret (rotation), refuses everything when no secret is set, and refuses
-- oversized bodies.  Signatures are made here with pgcrypto, independently
-- of the extension's OpenSSL code.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;

CREATE FUNCTION pg_temp.b64url(data bytea) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT translate(encode(data, 'base64'), E'+/=\n', '-_') $$;

-- An HS256 JWT, header and claims given as exact JSON text.
CREATE FUNCTION pg_temp.hs256(header text, claims text, secret text) RETURNS text
LANGUAGE sql
AS $$
	SELECT input || '.' || pg_temp.b64url(hmac(convert_to(input, 'UTF8'), convert_to(secret, 'UTF8'), 'sha256'))
	  FROM (SELECT pg_temp.b64url(convert_to(header, 'UTF8')) || '.' ||
	               pg_temp.b64url(convert_to(claims, 'UTF8')) AS input) AS t
$$;

-- Seconds since the epoch, offset by delta.
CREATE FUNCTION pg_temp.epoch(delta integer DEFAULT 0) RETURNS bigint
LANGUAGE sql
AS $$ SELECT extract(epoch FROM clock_timestamp())::bigint + delta $$;

-- A standard-webhooks signature entry: v1,<base64 HMAC of id.timestamp.body>.
CREATE FUNCTION pg_temp.whsig(secret_b64 text, id text, ts text, body text) RETURNS text
LANGUAGE sql
AS $$
	SELECT 'v1,' || encode(hmac(convert_to(id || '.' || ts || '.' || body, 'UTF8'),
	                            decode(secret_b64, 'base64'), 'sha256'), 'base64')
$$;

-- One delivery; shows whether it was enqueued rather than its id.
CREATE FUNCTION pg_temp.deliver(event text, headers jsonb, body text)
RETURNS TABLE (http_status integer, enqueued boolean, message text)
LANGUAGE sql
AS $$
	SELECT r.http_status, r.delivery_id IS NOT NULL, r.message
	  FROM tenant_airbyte.receive_webhook(event, headers, convert_to(body, 'UTF8')) AS r
$$;

DELETE FROM tenant_airbyte.webhook_inbox;

--
-- No secret configured: every delivery is refused, and the log says why.
--
SHOW tenant_airbyte.webhook_secret;
SET client_min_messages TO log;
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', '{}', '')),
	'{"tenantId": "org-nosecret"}');
RESET client_min_messages;

--
-- frontegg-jwt (the default): x-webhook-secret is an HS256 JWT.
--
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'frontegg-secret-1';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_auth;
SHOW tenant_airbyte.webhook_secret;

-- Valid tokens, with exp, or with only iat, header names in any case.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256","typ":"JWT"}', format('{"exp":%s}', pg_temp.epoch(3600)), 'frontegg-secret-1')),
	'{"tenantId": "org-jwt-1"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('X-Webhook-Secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"sub":"frontegg","iat":%s}', pg_temp.epoch(-60)), 'frontegg-secret-1')),
	'{"tenantId": "org-jwt-2"}');
-- exp a little in the past is within tenant_airbyte.jwt_leeway_s (30 s).
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"exp":%s}', pg_temp.epoch(-10)), 'frontegg-secret-1')),
	'{"tenantId": "org-jwt-3"}');

-- Every way to fail, each with its reason and nothing enqueued.
SELECT count(*) AS inbox_rows_before FROM tenant_airbyte.webhook_inbox;
SELECT * FROM pg_temp.deliver('tenant-created', '{"content-type": "application/json"}',
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', NULL, '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', '[]', '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"x-webhook-secret": ""}', '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"x-webhook-secret": 42}', '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', '{}', 'frontegg-secret-1'),
	                   'X-WEBHOOK-SECRET', pg_temp.hs256('{"alg":"HS256"}', '{}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"x-webhook-secret": "not-a-token"}', '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"x-webhook-secret": "a.b.c.d"}', '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"x-webhook-secret": "eyJ=.e30.AAAA"}', '{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.b64url('not json') || '.e30.AAAA'),
	'{"tenantId": "org-bad"}');
-- JSON that jsonb cannot hold (numeric overflow) is malformed, not an ERROR.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256","x":1e200000}', '{}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"typ":"JWT"}', '{}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256","crit":["exp"]}', '{}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
-- alg none (no signature), HS384 and RS256 are refused whatever they carry.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.b64url('{"alg":"none"}') || '.' || pg_temp.b64url('{}') || '.'),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS384"}', '{}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"RS256"}', '{}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
-- Wrong secret; claims changed after signing.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', '{}', 'frontegg-secret-X')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		regexp_replace(pg_temp.hs256('{"alg":"HS256"}', '{"exp":1}', 'frontegg-secret-1'),
		               '\.[^.]*\.', '.' || pg_temp.b64url(format('{"exp":%s}', pg_temp.epoch(3600))::bytea) || '.')),
	'{"tenantId": "org-bad"}');
-- exp and nbf.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"exp":%s}', pg_temp.epoch(-3600)), 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"nbf":%s}', pg_temp.epoch(3600)), 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', '{"exp":"tomorrow"}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
-- Freshness: a token that never expires (neither exp nor iat) is refused,
-- and so is one issued longer ago than tenant_airbyte.webhook_max_age_s
-- (3 days by default) or in the future; a captured header cannot be
-- replayed for ever.
SHOW tenant_airbyte.webhook_max_age_s;
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', '{"sub":"frontegg"}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s}', pg_temp.epoch(-4 * 86400)), 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s,"exp":%s}', pg_temp.epoch(-4 * 86400), pg_temp.epoch(3600)), 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s}', pg_temp.epoch(3600)), 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', '{"iat":"yesterday"}', 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
-- A stricter webhook_max_age_s (1 hour) refuses a day-old token.
ALTER SYSTEM SET tenant_airbyte.webhook_max_age_s = '1h';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret',
		pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s}', pg_temp.epoch(-86400)), 'frontegg-secret-1')),
	'{"tenantId": "org-bad"}');
ALTER SYSTEM RESET tenant_airbyte.webhook_max_age_s;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SELECT count(*) AS inbox_rows_after FROM tenant_airbyte.webhook_inbox;
SELECT count(*) AS rows_for_bad_deliveries
  FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-bad';

-- Rotation: during the switch both secrets are accepted ...
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'frontegg-secret-2, frontegg-secret-1';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_secret;
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s}', pg_temp.epoch()), 'frontegg-secret-1')),
	'{"tenantId": "org-rotate-old"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s}', pg_temp.epoch()), 'frontegg-secret-2')),
	'{"tenantId": "org-rotate-new"}');
-- ... and afterwards only the new one.
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'frontegg-secret-2';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_secret;
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', format('{"iat":%s}', pg_temp.epoch()), 'frontegg-secret-1')),
	'{"tenantId": "org-rotate-late"}');

--
-- hmac-sha256 (the seed's scheme): x-frontegg-signature is the lowercase
-- hex HMAC-SHA256 of the raw body.
--
ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'hmac-sha256';
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'hmac-secret-new,hmac-secret-old';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_auth;
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-frontegg-signature', encode(hmac('{"tenantId": "org-hmac-1"}', 'hmac-secret-new', 'sha256'), 'hex')),
	'{"tenantId": "org-hmac-1"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('X-Frontegg-Signature', encode(hmac('{"tenantId": "org-hmac-2"}', 'hmac-secret-old', 'sha256'), 'hex')),
	'{"tenantId": "org-hmac-2"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{}', '{"tenantId": "org-bad"}');
-- A frontegg-jwt header is no use under this scheme.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-webhook-secret', pg_temp.hs256('{"alg":"HS256"}', '{}', 'hmac-secret-new')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-frontegg-signature', upper(encode(hmac('{"tenantId": "org-bad"}', 'hmac-secret-new', 'sha256'), 'hex'))),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-frontegg-signature', 'sha256=' || encode(hmac('{"tenantId": "org-bad"}', 'hmac-secret-new', 'sha256'), 'hex')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-frontegg-signature', encode(hmac('{"tenantId": "org-bad"}', 'hmac-secret-wrong', 'sha256'), 'hex')),
	'{"tenantId": "org-bad"}');
-- The signature of one body does not cover another.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('x-frontegg-signature', encode(hmac('{"tenantId": "org-hmac-1"}', 'hmac-secret-new', 'sha256'), 'hex')),
	'{"tenantId": "org-bad"} ');

--
-- standard-webhooks: webhook-id, webhook-timestamp, webhook-signature.
--
ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'standard-webhooks';
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'whsec_c3RhbmRhcmQtd2ViaG9va3MtdGVzdC1rZXktMzJieSE=';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_auth;
\set key 'c3RhbmRhcmQtd2ViaG9va3MtdGVzdC1rZXktMzJieSE='
SELECT pg_temp.epoch()::text AS now \gset
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_1', 'webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_1', :'now', '{"tenantId": "org-sw-1"}')),
	'{"tenantId": "org-sw-1"}');
-- Several signatures, one of them good; names in any case.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('Webhook-Id', 'msg_2', 'Webhook-Timestamp', :'now',
	                   'Webhook-Signature', 'v1,AAAA v1a,xyz ' || pg_temp.whsig(:'key', 'msg_2', :'now', '{"tenantId": "org-sw-2"}')),
	'{"tenantId": "org-sw-2"}');
-- Dedupe is by the signed webhook-id: a re-send with the same id is a duplicate.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_1', 'webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_1', :'now', '{"tenantId": "org-sw-1", "retry": 1}')),
	'{"tenantId": "org-sw-1", "retry": 1}');
SELECT dedupe_key FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-sw-1';
-- Failures.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_3', :'now', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_3', 'webhook-timestamp', :'now'),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_3', 'webhook-timestamp', 'yesterday',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_3', 'yesterday', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
SELECT pg_temp.epoch(-600)::text AS old, pg_temp.epoch(600)::text AS future \gset
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_3', 'webhook-timestamp', :'old',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_3', :'old', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_3', 'webhook-timestamp', :'future',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_3', :'future', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_3', 'webhook-timestamp', :'now',
	                   'webhook-signature', 'v2,' || substr(pg_temp.whsig(:'key', 'msg_3', :'now', '{"tenantId": "org-bad"}'), 4)),
	'{"tenantId": "org-bad"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_3', 'webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig('cm90YXRlZC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDI=', 'msg_3', :'now', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
-- The id is signed: the signature for another id does not fit.
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_4', 'webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_3', :'now', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
-- Rotation works here too; a secret that is not whsec_<base64> is skipped with a LOG line.
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'whsec_!!not base64!!, whsec_cm90YXRlZC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDI=';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SELECT pg_temp.epoch()::text AS now \gset
SET client_min_messages TO log;
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_5', 'webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig('cm90YXRlZC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDI=', 'msg_5', :'now', '{"tenantId": "org-sw-5"}')),
	'{"tenantId": "org-sw-5"}');
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'not-a-standard-secret!';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SELECT * FROM pg_temp.deliver('tenant-created',
	jsonb_build_object('webhook-id', 'msg_6', 'webhook-timestamp', :'now',
	                   'webhook-signature', pg_temp.whsig(:'key', 'msg_6', :'now', '{"tenantId": "org-bad"}')),
	'{"tenantId": "org-bad"}');
RESET client_min_messages;

--
-- Size bound: above tenant_airbyte.webhook_max_bytes is 413, before any
-- other check; at the bound the body is looked at (here: no signature).
--
SHOW tenant_airbyte.webhook_max_bytes;
SELECT http_status, delivery_id, message
  FROM tenant_airbyte.receive_webhook('tenant-created', '{}', convert_to(repeat('x', 1048577), 'UTF8'));
SELECT http_status, delivery_id, message
  FROM tenant_airbyte.receive_webhook('tenant-created', '{}', convert_to(repeat('x', 1048576), 'UTF8'));
ALTER SYSTEM SET tenant_airbyte.webhook_max_bytes = '2kB';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_max_bytes;
SELECT http_status, delivery_id, message
  FROM tenant_airbyte.receive_webhook('tenant-created', '{}', convert_to(repeat('x', 2049), 'UTF8'));

--
-- What was stored: only authentic deliveries, and never a secret-bearing
-- header or its value.
--
SELECT tenant_id, event, status FROM tenant_airbyte.webhook_inbox ORDER BY delivery_id;
SELECT count(*) AS rows_with_secret_headers
  FROM tenant_airbyte.webhook_inbox
 WHERE headers::text ~* '(secret|signature|eyJ|v1,)';

ALTER SYSTEM RESET tenant_airbyte.webhook_secret;
ALTER SYSTEM RESET tenant_airbyte.webhook_auth;
ALTER SYSTEM RESET tenant_airbyte.webhook_max_bytes;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_auth;
DELETE FROM tenant_airbyte.webhook_inbox;
DROP EXTENSION pgcrypto;

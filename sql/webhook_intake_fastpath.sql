--
-- webhook_intake_fastpath: what receive_webhook()'s C fast path must keep
-- true.  Only allowlisted headers are stored, whatever their case or
-- value type; a refused body inside a transaction leaves the transaction usable
-- and stores nothing; many deliveries in one session and transaction
-- reuse the saved INSERT plan, which survives DDL and a re-created
-- extension; the routing table; how the inbox stores bodies.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;

ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'hmac-sha256';
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'fastpath-secret';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset

-- One delivery signed by pgcrypto, with extra headers.
CREATE FUNCTION pg_temp.deliver(event text, body text, extra jsonb DEFAULT '{}')
RETURNS TABLE (http_status integer, enqueued boolean, message text)
LANGUAGE sql
AS $$
	SELECT r.http_status, r.delivery_id IS NOT NULL, r.message
	  FROM tenant_airbyte.receive_webhook(event,
			extra || jsonb_build_object('x-frontegg-signature',
				encode(hmac(convert_to(body, 'UTF8'), 'fastpath-secret', 'sha256'), 'hex')),
			convert_to(body, 'UTF8')) AS r
$$;

DELETE FROM tenant_airbyte.webhook_inbox;

--
-- Headers: names lower-cased, values kept as given (any JSON type), and
-- only the allowlisted ones (content-type, user-agent, request and trace
-- ids, forwarding addresses, webhook-id/-timestamp): never a secret,
-- signature, token, authorization, cookie or API key, in any case.
--
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-hdr"}',
	'{"Authorization": "Bearer abc", "COOKIE": "s=1", "X-Api-Key": "k",
	  "X-Refresh-Token": "t", "Webhook-Signature": "v1,x", "X-Webhook-Secret": "jwt",
	  "X-Request-Id": "req-1", "Content-Length": 2, "Traceparent": {"span": [1, null]},
	  "Content-Type": "application/json"}');
SELECT headers FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-hdr';

-- The store keeps an allowlist, not a blocklist: every credential-looking
-- header a sender or proxy might add is dropped, whatever it is called,
-- while the headers worth keeping for tracing a delivery stay.
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-hdr-allow"}',
	'{"x-apikey": "1", "x_api_key": "2", "x-password": "3", "x-access-key": "4",
	  "x-credential": "5", "x-auth": "6", "authorisation": "7",
	  "x-frontegg-hmac": "8", "x-sig": "9", "x-forwarded-client-cert": "10",
	  "Proxy-Authorization": "11", "X-Amz-Security-Token": "12",
	  "User-Agent": "Frontegg-Webhooks/1.0", "Webhook-Id": "msg_1",
	  "Webhook-Timestamp": "1700000000", "X-Forwarded-For": "203.0.113.9",
	  "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}');
SELECT k AS kept_header
  FROM tenant_airbyte.webhook_inbox, jsonb_object_keys(headers) AS k
 WHERE tenant_id = 'org-hdr-allow'
 ORDER BY k;

--
-- A body PostgreSQL refuses (caught in a subtransaction) leaves the
-- caller's transaction usable, and stores nothing.
--
BEGIN;
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-tx", "n": 1e200000}');
SELECT * FROM pg_temp.deliver('tenant-created', repeat('[', 100000) || repeat(']', 100000));
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-tx"}');
COMMIT;
SELECT count(*) AS org_tx_rows FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-tx';

-- A delivery in a transaction that rolls back leaves no row.
BEGIN;
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-rolled-back"}');
ROLLBACK;
SELECT count(*) AS rolled_back_rows FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-rolled-back';

--
-- Many deliveries in one transaction: each its own row, duplicates found.
--
BEGIN;
SELECT count(*) FILTER (WHERE d.http_status = 202) AS accepted
  FROM generate_series(1, 50) AS g,
	   LATERAL pg_temp.deliver('tenant-created', format('{"tenantId": "org-many-%s"}', g)) AS d;
SELECT count(*) FILTER (WHERE d.message = 'duplicate delivery: already received') AS duplicates
  FROM generate_series(1, 50) AS g,
	   LATERAL pg_temp.deliver('tenant-created', format('{"tenantId": "org-many-%s"}', g)) AS d;
COMMIT;
SELECT count(*) AS org_many_rows FROM tenant_airbyte.webhook_inbox WHERE tenant_id LIKE 'org-many-%';

--
-- The saved plan follows DDL on the inbox and a re-created extension in
-- the same session.
--
ALTER TABLE tenant_airbyte.webhook_inbox ADD COLUMN fastpath_note text DEFAULT 'added later';
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-after-ddl"}');
SELECT fastpath_note FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-after-ddl';
ALTER TABLE tenant_airbyte.webhook_inbox DROP COLUMN fastpath_note;
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-after-drop-column"}');

DROP EXTENSION tenant_airbyte;
CREATE EXTENSION tenant_airbyte;
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-after-ddl"}');
SELECT delivery_id, tenant_id, status FROM tenant_airbyte.webhook_inbox;

--
-- The routing table, as SQL sees it.
--
SELECT k AS event_key, tenant_airbyte.webhook_work(k) AS work
  FROM unnest(ARRAY['frontegg.tenant.created', 'tenant-created', 'tenant.created',
					'frontegg.tenant.updated', 'tenant-updated', 'tenant.updated',
					'frontegg.tenant.deleted', 'tenant-deleted', 'tenant.deleted',
					'frontegg.user.created', 'Tenant-Created', '', NULL]) AS k;

--
-- Storage: the dedupe key compares byte for byte; body and payload use
-- lz4 exactly when the server has it.
--
SELECT attname, attcollation::regcollation AS collation,
	   attcompression = CASE WHEN attname <> 'dedupe_key' AND 'lz4' = ANY (s.enumvals)
							 THEN 'l' ELSE '' END AS compression_as_expected
  FROM pg_attribute,
	   (SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression') AS s
 WHERE attrelid = 'tenant_airbyte.webhook_inbox'::regclass
   AND attname IN ('body', 'payload', 'dedupe_key')
 ORDER BY attname;

ALTER SYSTEM RESET tenant_airbyte.webhook_secret;
ALTER SYSTEM RESET tenant_airbyte.webhook_auth;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
DELETE FROM tenant_airbyte.webhook_inbox;
DROP EXTENSION pgcrypto;

--
-- webhook_dedupe_retention: a delivery's dedupe key outlives its inbox row.
-- hmac-sha256 signs the body and nothing else (no timestamp), so a captured
-- delivery replayed after the inbox retention pass deleted its row must
-- still be a duplicate, for tenant_airbyte.dedupe_retention_days; only
-- after that is the key forgotten (purge_dedupe_keys(), and a few expired
-- keys at each intake).
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;

ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'hmac-sha256';
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'dedupe-secret';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset

CREATE FUNCTION pg_temp.deliver(body text)
RETURNS TABLE (http_status integer, has_delivery_id boolean, message text)
LANGUAGE sql
AS $$
	SELECT r.http_status, r.delivery_id IS NOT NULL, r.message
	  FROM tenant_airbyte.receive_webhook('tenant-deleted',
			jsonb_build_object('x-frontegg-signature',
				encode(hmac(convert_to(body, 'UTF8'), 'dedupe-secret', 'sha256'), 'hex')),
			convert_to(body, 'UTF8')) AS r
$$;

DELETE FROM tenant_airbyte.webhook_inbox;
SHOW tenant_airbyte.dedupe_retention_days;

-- Accepted once; the same body again is a duplicate with the same id.
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-1"}');
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-1"}');

-- The delivery finishes and the inbox retention pass deletes its row
-- (done as the worker's pass does it: a plain DELETE of the old row).
DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-dedupe-1';

-- Replayed now: still a duplicate, and nothing is enqueued again.
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-1"}');
SELECT count(*) AS inbox_rows FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-dedupe-1';

-- The key is kept with when it was first received; nobody but a superuser
-- (or a role granted it) can read the table.
SELECT dedupe_key ~ '^sha256:[0-9a-f]{64}$' AS key_is_body_hash, received_at <= now() AS received
  FROM tenant_airbyte.webhook_dedupe;
SELECT has_table_privilege('public', 'tenant_airbyte.webhook_dedupe', 'SELECT') AS public_can_read;

-- After dedupe_retention_days the key is forgotten: purge_dedupe_keys()
-- deletes it (and counts it), and the same body is a new delivery.
UPDATE tenant_airbyte.webhook_dedupe SET received_at = now() - interval '91 days';
SELECT tenant_airbyte.purge_dedupe_keys() AS purged;
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-1"}');

-- Intake itself also deletes a few expired keys, so the table stays
-- bounded without any other job.
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-old-1"}');
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-old-2"}');
UPDATE tenant_airbyte.webhook_dedupe SET received_at = now() - interval '91 days';
SELECT * FROM pg_temp.deliver('{"tenantId": "org-dedupe-2"}');
SELECT count(*) AS keys_left FROM tenant_airbyte.webhook_dedupe;

-- A shorter retention applies at once.
ALTER SYSTEM SET tenant_airbyte.dedupe_retention_days = 1;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
UPDATE tenant_airbyte.webhook_dedupe SET received_at = now() - interval '2 days';
SELECT tenant_airbyte.purge_dedupe_keys() AS purged;

ALTER SYSTEM RESET tenant_airbyte.dedupe_retention_days;
ALTER SYSTEM RESET tenant_airbyte.webhook_secret;
ALTER SYSTEM RESET tenant_airbyte.webhook_auth;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
DELETE FROM tenant_airbyte.webhook_inbox;
DELETE FROM tenant_airbyte.webhook_dedupe;
DROP EXTENSION pgcrypto;

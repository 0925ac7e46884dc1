--
-- webhook_routing: an authentic delivery becomes exactly one inbox row:
-- pending work for tenant.created/updated/deleted, ignored for user and
-- unknown events; duplicates answer 200 with the first delivery's id;
-- malformed bodies get 400 and leave nothing behind; hostile strings are
-- stored verbatim.  requeue() puts a failed or dead delivery back.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
RESET client_min_messages;

ALTER SYSTEM SET tenant_airbyte.webhook_auth = 'hmac-sha256';
ALTER SYSTEM SET tenant_airbyte.webhook_secret = 'routing-secret';
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_auth;

-- One signed delivery (signature by pgcrypto); shows whether it was enqueued.
CREATE FUNCTION pg_temp.deliver_bytes(event text, body bytea)
RETURNS TABLE (http_status integer, enqueued boolean, message text)
LANGUAGE sql
AS $$
	SELECT r.http_status, r.delivery_id IS NOT NULL, r.message
	  FROM tenant_airbyte.receive_webhook(event,
			jsonb_build_object('X-Frontegg-Signature', encode(hmac(body, 'routing-secret', 'sha256'), 'hex'),
			                   'Content-Type', 'application/json',
			                   'User-Agent', 'Frontegg-Webhooks'),
			body) AS r
$$;
CREATE FUNCTION pg_temp.deliver(event text, body text)
RETURNS TABLE (http_status integer, enqueued boolean, message text)
LANGUAGE sql
AS $$ SELECT * FROM pg_temp.deliver_bytes(event, convert_to(body, 'UTF8')) $$;

DELETE FROM tenant_airbyte.webhook_inbox;

--
-- Routing.  Frontegg's own body, event from the route or from eventKey.
--
SELECT * FROM pg_temp.deliver('tenant-created',
	'{"eventKey": "frontegg.tenant.created", "eventContext": {"tenantId": "org-route-1"}, "tenant": {"name": "Route One"}}');
SELECT * FROM pg_temp.deliver(NULL,
	'{"eventKey": "frontegg.tenant.created", "tenant": {"tenantId": "org-route-2", "name": "Route Two"}}');
SELECT * FROM pg_temp.deliver(NULL,
	'{"eventKey": "frontegg.tenant.updated", "eventContext": {"tenantId": "org-route-1"}, "name": "Route One Renamed"}');
SELECT * FROM pg_temp.deliver('tenant-deleted',
	'{"eventKey": "frontegg.tenant.deleted", "eventContext": {"tenantId": "org-route-2"}}');
SELECT * FROM pg_temp.deliver(NULL,
	'{"eventKey": "frontegg.tenant.deleted", "eventContext": {"tenantId": "org-route-3", "userId": "u-1"}}');
-- The seed's flat bodies: tenantId/orgId, tenantName/name, eventType.
SELECT * FROM pg_temp.deliver('tenant-created',
	'{"eventType": "tenant.created", "tenantId": "org-seed-1", "tenantName": "Acme Corp", "metadata": {}}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"orgId": "org-seed-2", "name": "Seed Two"}');
SELECT * FROM pg_temp.deliver('tenant-deleted', '{"tenantId": "org-seed-1"}');
-- Accepted, recorded and ignored: user events, unknown events, a rename
-- without a name.
SELECT * FROM pg_temp.deliver(NULL,
	'{"eventKey": "frontegg.user.created", "eventContext": {"tenantId": "org-route-1", "userId": "u-2"}}');
SELECT * FROM pg_temp.deliver(NULL, '{"eventKey": "frontegg.user.deleted"}');
SELECT * FROM pg_temp.deliver(NULL, '{"eventKey": "frontegg.billing.changed", "tenantId": "org-route-1"}');
SELECT * FROM pg_temp.deliver(NULL,
	'{"eventKey": "frontegg.tenant.updated", "eventContext": {"tenantId": "org-route-1"}, "metadata": {"plan": "pro"}}');

SELECT event, event_key, tenant_id, tenant_name, status, attempts,
       finished_at IS NOT NULL AS finished
  FROM tenant_airbyte.webhook_inbox ORDER BY delivery_id;

--
-- Malformed: 400 with the reason, nothing stored.
--
SELECT count(*) AS rows_before FROM tenant_airbyte.webhook_inbox;
SELECT * FROM pg_temp.deliver('tenant-created', '');
SELECT * FROM pg_temp.deliver('tenant-created', 'tenantId=org-x');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-x"');
SELECT * FROM pg_temp.deliver('tenant-created', '["org-x"]');
SELECT * FROM pg_temp.deliver('tenant-created', '"org-x"');
SELECT * FROM pg_temp.deliver_bytes('tenant-created', '\x7b2274656e616e744964223a20226f72672dff227d');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-\u0000"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-x", "n": 1e200000}');
SELECT http_status, enqueued
  FROM pg_temp.deliver('tenant-created', repeat('[', 200000) || repeat(']', 200000));
SELECT * FROM pg_temp.deliver(NULL, '{"tenantId": "org-x"}');
SELECT * FROM pg_temp.deliver(NULL, '{"eventKey": 7, "tenantId": "org-x"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"eventKey": "frontegg.tenant.deleted", "tenantId": "org-x"}');
SELECT * FROM pg_temp.deliver('tenant-deleted', '{"eventKey": "frontegg.user.created", "tenantId": "org-x"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantName": "No Id"}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": null, "orgId": null}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": 12345}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "   "}');
SELECT * FROM pg_temp.deliver('tenant-created', '{"eventContext": {"tenantId": ["org-x"]}}');
SELECT * FROM pg_temp.deliver('tenant-created', format('{"tenantId": "%s"}', repeat('x', 256)));
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-x", "tenantName": {"first": "A"}}');
SELECT count(*) AS rows_after FROM tenant_airbyte.webhook_inbox;

--
-- Hostile strings are data: stored byte for byte, never executed.
--
SELECT * FROM pg_temp.deliver('tenant-created',
	$j${"tenantId": "org-'); DROP TABLE tenant_airbyte.webhook_inbox; --", "tenantName": "O'Brien \"Ltd\" \\ back\\slash"}$j$);
SELECT * FROM pg_temp.deliver('tenant-created',
	'{"tenantId": "テナント-ü-🚀", "tenantName": "Ünïcødé 名前 🚀 \u00e9"}');
SELECT * FROM pg_temp.deliver('tenant-created',
	format('{"tenantId": "%s", "tenantName": "%s"}', repeat('t', 255), repeat('N', 10240)));
SELECT tenant_id, tenant_name
  FROM tenant_airbyte.webhook_inbox
 WHERE tenant_id IN ($t$org-'); DROP TABLE tenant_airbyte.webhook_inbox; --$t$, 'テナント-ü-🚀')
 ORDER BY delivery_id;
SELECT length(tenant_id) AS id_length, length(tenant_name) AS name_length,
       tenant_name = repeat('N', 10240) AS name_verbatim
  FROM tenant_airbyte.webhook_inbox WHERE tenant_id = repeat('t', 255);
SELECT to_regclass('tenant_airbyte.webhook_inbox') IS NOT NULL AS inbox_still_there;

--
-- Duplicates: the same body again (whatever the headers) answers 200 with
-- the first delivery's id and enqueues nothing.
--
SELECT r.delivery_id AS first_id
  FROM tenant_airbyte.receive_webhook('tenant-created',
		jsonb_build_object('x-frontegg-signature',
			encode(hmac('{"tenantId": "org-dup"}', 'routing-secret', 'sha256'), 'hex')),
		'{"tenantId": "org-dup"}') AS r \gset
SELECT r.http_status, r.delivery_id = :first_id AS same_delivery, r.message
  FROM tenant_airbyte.receive_webhook('tenant-created',
		jsonb_build_object('X-Frontegg-Signature',
			encode(hmac('{"tenantId": "org-dup"}', 'routing-secret', 'sha256'), 'hex'),
			'X-Retry', '1'),
		'{"tenantId": "org-dup"}') AS r;
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-dup"}');
-- A different body for the same tenant is a different delivery.
SELECT * FROM pg_temp.deliver('tenant-created', '{"tenantId": "org-dup", "attempt": 2}');
SELECT count(*) AS org_dup_rows FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-dup';
-- An ignored event is deduplicated too.
SELECT * FROM pg_temp.deliver(NULL, '{"eventKey": "frontegg.user.deleted"}');

--
-- What is stored beside the row: the raw body, the parsed payload, the
-- headers (lower-cased) without the signature, a dedupe key.
--
SELECT body = convert_to('{"orgId": "org-seed-2", "name": "Seed Two"}', 'UTF8') AS body_is_raw,
       payload, headers,
       dedupe_key = 'sha256:' || encode(sha256(body), 'hex') AS dedupe_is_body_sha256
  FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-seed-2';
SELECT count(*) AS rows_with_signature_header
  FROM tenant_airbyte.webhook_inbox WHERE headers ? 'x-frontegg-signature';

--
-- A plain INSERT by a superuser is a valid way to enqueue work.
--
INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.created', 'org-manual')
RETURNING status, attempts, dedupe_key LIKE 'manual:%' AS manual_key;

--
-- requeue(): failed and dead deliveries go back to pending, attempts reset.
--
UPDATE tenant_airbyte.webhook_inbox
   SET status = 'dead', attempts = 10, last_error = 'Airbyte answered 500', finished_at = now()
 WHERE tenant_id = 'org-route-3';
UPDATE tenant_airbyte.webhook_inbox
   SET status = 'failed', attempts = 3, finished_at = now()
 WHERE tenant_id = 'org-seed-2';
SELECT tenant_airbyte.requeue(delivery_id) AS requeued
  FROM tenant_airbyte.webhook_inbox WHERE tenant_id IN ('org-route-3', 'org-seed-2')
 ORDER BY delivery_id;
SELECT tenant_id, status, attempts, finished_at IS NULL AS unfinished,
       next_attempt_at <= now() AS due, last_error
  FROM tenant_airbyte.webhook_inbox WHERE tenant_id IN ('org-route-3', 'org-seed-2')
 ORDER BY delivery_id;
-- Anything else is left alone.
SELECT tenant_airbyte.requeue(delivery_id) AS requeued_pending
  FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'org-manual';
SELECT tenant_airbyte.requeue(-1) AS requeued_missing;
SELECT tenant_airbyte.requeue(NULL) AS requeued_null;

ALTER SYSTEM RESET tenant_airbyte.webhook_secret;
ALTER SYSTEM RESET tenant_airbyte.webhook_auth;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SHOW tenant_airbyte.webhook_auth;
DELETE FROM tenant_airbyte.webhook_inbox;
DROP EXTENSION pgcrypto;

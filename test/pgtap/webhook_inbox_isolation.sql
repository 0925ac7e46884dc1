--
-- webhook_inbox_isolation: the inbox is tenant-scoped like every other
-- table (a tenant role sees and writes only its own deliveries), and the
-- intake functions are for the roles they are granted to: a tenant role
-- cannot call receive_webhook(), requeue() or webhook_verify(), and the
-- shim's role can call receive_webhook() without being able to read the
-- inbox.  Everything happens in one transaction that is rolled back.
--
BEGIN;
SELECT plan(17);

CREATE ROLE tap_inbox_tenant;
CREATE ROLE tap_inbox_shim;
-- The tenant role may even write the inbox: row-level security is what
-- stops it, not a missing privilege.
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_airbyte.webhook_inbox TO tap_inbox_tenant;
GRANT EXECUTE ON FUNCTION tenant_airbyte.receive_webhook(text, jsonb, bytea) TO tap_inbox_shim;

INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id, tenant_name, dedupe_key)
VALUES ('tenant.created', 'tap-org-a', 'Tenant A', 'tap:a'),
       ('tenant.created', 'tap-org-b', 'Tenant B', 'tap:b');
INSERT INTO tenant_airbyte.webhook_inbox (event, dedupe_key, status, finished_at)
VALUES ('frontegg.user.deleted', 'tap:user', 'ignored', now());

SET LOCAL tenant_airbyte.tenant_id = 'tap-org-a';
SET LOCAL ROLE tap_inbox_tenant;

SELECT results_eq(
	'SELECT tenant_id::text FROM tenant_airbyte.webhook_inbox',
	ARRAY['tap-org-a'],
	'a tenant role sees only its own deliveries (not another tenant''s, not tenant-less ones)');
SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.deleted', 'tap-org-b')$$,
	'42501', NULL,
	'it cannot enqueue work for another tenant');
SELECT throws_ok(
	$$UPDATE tenant_airbyte.webhook_inbox SET tenant_id = 'tap-org-b'$$,
	'42501', NULL,
	'it cannot move its delivery to another tenant');
SELECT lives_ok(
	$$UPDATE tenant_airbyte.webhook_inbox SET status = 'dead' WHERE tenant_id = 'tap-org-b'$$,
	'an UPDATE aimed at another tenant''s delivery runs ...');
SELECT lives_ok(
	$$DELETE FROM tenant_airbyte.webhook_inbox WHERE tenant_id = 'tap-org-b'$$,
	'... and so does a DELETE ...');

SELECT throws_ok(
	$$SELECT * FROM tenant_airbyte.receive_webhook('tenant-created', '{}', '{"tenantId": "tap-org-b"}')$$,
	'42501', NULL,
	'a tenant role cannot call receive_webhook()');
SELECT throws_ok(
	$$SELECT tenant_airbyte.requeue(1)$$,
	'42501', NULL,
	'... nor requeue()');
SELECT throws_ok(
	$$SELECT * FROM tenant_airbyte.webhook_verify('{}', '')$$,
	'42501', NULL,
	'... nor the internal webhook_verify()');
RESET ROLE;

SELECT results_eq(
	$$SELECT tenant_id::text || ':' || status FROM tenant_airbyte.webhook_inbox
	   WHERE tenant_id IS NOT NULL ORDER BY tenant_id$$,
	ARRAY['tap-org-a:pending', 'tap-org-b:pending'],
	'... but neither touched the other tenant''s delivery');

-- Without any context a tenant role sees nothing at all.
RESET tenant_airbyte.tenant_id;
SET LOCAL ROLE tap_inbox_tenant;
SELECT is_empty('SELECT 1 FROM tenant_airbyte.webhook_inbox',
	'with no tenant context a tenant role sees no delivery');
RESET ROLE;

-- The shim's role: receive_webhook() and nothing else.
SET LOCAL ROLE tap_inbox_shim;
SELECT is(
	(SELECT http_status FROM tenant_airbyte.receive_webhook('tenant-created', '{}', '{"tenantId": "tap-org-b"}')),
	401,
	'a role granted EXECUTE calls receive_webhook() (401 here: no secret is configured)');
SELECT throws_ok(
	'SELECT 1 FROM tenant_airbyte.webhook_inbox',
	'42501', NULL,
	'the shim''s role cannot read the inbox');
SELECT throws_ok(
	$$INSERT INTO tenant_airbyte.webhook_inbox (event, tenant_id) VALUES ('tenant.created', 'tap-org-c')$$,
	'42501', NULL,
	'... nor write it directly');
SELECT throws_ok(
	$$SELECT * FROM tenant_airbyte.webhook_verify('{}', '')$$,
	'42501', NULL,
	'... nor call webhook_verify()');
SELECT throws_ok($$SHOW tenant_airbyte.webhook_secret$$, '42501', NULL,
	'... nor read the webhook secret');
RESET ROLE;

-- Nothing is granted to PUBLIC on the intake functions.
SELECT ok(NOT has_function_privilege('public', 'tenant_airbyte.receive_webhook(text, jsonb, bytea)', 'EXECUTE'),
	'PUBLIC may not execute receive_webhook()');
SELECT ok(NOT has_function_privilege('public', 'tenant_airbyte.requeue(bigint)', 'EXECUTE'),
	'PUBLIC may not execute requeue()');

SELECT * FROM finish();
ROLLBACK;

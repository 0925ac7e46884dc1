--
-- provision_tenants_validation: provision_tenants() checks every element
-- before it records anything, names the first bad one by its index, and
-- queues each tenant once (src/engine/backfill.c feeds the queue to the
-- worker; the worker does not serve this database, so rows stay waiting).
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set VERBOSITY default

-- Not an array, or NULL.
SELECT tenant_airbyte.provision_tenants('{"tenantId": "t-1", "name": "One"}');
SELECT tenant_airbyte.provision_tenants(NULL);

-- Each kind of bad element, named by its index (from 0); nothing queued.
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "t-1", "name": "One"}, 42]');
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "t-1", "name": "One"}, {"tenantId": "t-2", "name": "Two"}, {"name": "Three"}]');
SELECT tenant_airbyte.provision_tenants('[{"tenantId": 7, "name": "Seven"}]');
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "  ", "name": "Blank"}]');
SELECT tenant_airbyte.provision_tenants(jsonb_build_array(jsonb_build_object('tenantId', repeat('x', 256), 'name', 'Long')));
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "t-1"}]');
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "t-1", "name": null}]');
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "t-1", "name": ""}]');
-- The first bad element is the one named, however many follow.
SELECT tenant_airbyte.provision_tenants(
	(SELECT jsonb_agg(CASE WHEN g IN (5000, 7000) THEN '{}'::jsonb
						   ELSE jsonb_build_object('tenantId', 'v-' || g, 'name', 'V ' || g) END)
	   FROM generate_series(0, 9999) g));
SELECT count(*) AS batches FROM tenant_airbyte.backfill_batches;
SELECT count(*) AS queued FROM tenant_airbyte.backfill_tenants;

-- A good batch: duplicates collapse (first name wins), an already
-- provisioned tenant is skipped, extra keys are allowed.
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('b-already', '00000000-0000-0000-0000-00000000000a', 'Already - b-alread');
SELECT tenant_airbyte.provision_tenants('[
	{"tenantId": "b-1", "name": "First"},
	{"tenantId": "b-2", "name": "Second", "createdAt": "2020-01-01"},
	{"tenantId": "b-1", "name": "First again"},
	{"tenantId": "b-already", "name": "Already"}]') > 0 AS batch_id;
SELECT submitted, queued FROM tenant_airbyte.backfill_batches ORDER BY id;
SELECT position, tenant_id, tenant_name, status, operation_id
  FROM tenant_airbyte.backfill_tenants ORDER BY batch_id, position;
-- Queued already: a second batch with the same tenants queues nothing new.
SELECT tenant_airbyte.provision_tenants('[{"tenantId": "b-2", "name": "Second"}, {"tenantId": "b-3", "name": "Third"}]') > 0 AS batch_id;
SELECT submitted, queued FROM tenant_airbyte.backfill_batches ORDER BY id;
-- An empty array is a batch of nothing.
SELECT tenant_airbyte.provision_tenants('[]') > 0 AS batch_id;

-- 10,000 tenants in one statement.
SELECT tenant_airbyte.provision_tenants(
	(SELECT jsonb_agg(jsonb_build_object('tenantId', 'many-' || g, 'name', 'Many ' || g))
	   FROM generate_series(1, 10000) g)) > 0 AS batch_id;
SELECT count(*) AS waiting FROM tenant_airbyte.backfill_tenants WHERE tenant_id LIKE 'many-%' AND status = 'waiting';

-- Superusers only, like pause_worker() and resume_worker().
CREATE ROLE backfill_regress_user;
SET ROLE backfill_regress_user;
SELECT tenant_airbyte.provision_tenants('[]');
SELECT tenant_airbyte.pause_worker();
SELECT tenant_airbyte.resume_worker();
RESET ROLE;
DROP ROLE backfill_regress_user;

-- The pause switch: true when it changed.
SELECT tenant_airbyte.pause_worker() AS paused, tenant_airbyte.pause_worker() AS paused_again;
SELECT paused FROM tenant_airbyte.worker_control;
SELECT tenant_airbyte.resume_worker() AS resumed, tenant_airbyte.resume_worker() AS resumed_again;
SELECT paused FROM tenant_airbyte.worker_control;

DELETE FROM tenant_airbyte.backfill_tenants;
DELETE FROM tenant_airbyte.backfill_batches;
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'b-already';

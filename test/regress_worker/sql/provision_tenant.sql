--
-- provision_tenant: every status, input validation, and every fault of
-- the Airbyte stand-in: transient ones end provisioned with exactly one
-- workspace, permanent ones end in a clear error and no row.
-- (Concurrency, rollback, termination and cancel: test/integration.)
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set SHOW_CONTEXT never
\! python3 test/airbyte_standin.py ctl POST /_control/reset
ALTER SYSTEM SET tenant_airbyte.http_timeout_ms = 2000;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);

-- Bad input is refused before Airbyte is called.
SELECT tenant_airbyte.provision_tenant(NULL, 'Acme');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.provision_tenant('   ', 'Acme');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tenant_airbyte.provision_tenant(repeat('x', 256), 'Acme');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py counter requests

-- provisioned: one workspace named "<name> - <first 8 chars of id>".
SELECT r->>'status' AS status, r->>'tenant_id' AS tenant_id, r->>'workspace_name' AS workspace_name
  FROM tenant_airbyte.provision_tenant('org-acme-0001', '  Acme Corporation  ') AS r;
SELECT airbyte_workspace_name, status
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'org-acme-0001';
-- already_exists, without calling Airbyte again.
SELECT r->>'status' AS status, r->>'workspace_name' AS workspace_name
  FROM tenant_airbyte.provision_tenant('org-acme-0001', 'Acme Corporation') AS r;
\! python3 test/airbyte_standin.py counter requests "POST /workspaces"

-- Names: trimmed, cut at 50 characters; hostile ones are just text; a
-- missing name becomes "Tenant <id>".
SELECT r->>'workspace_name' AS workspace_name
  FROM tenant_airbyte.provision_tenant('org-long-name', repeat('Long ', 2000)) AS r;
SELECT r->>'workspace_name' AS workspace_name
  FROM tenant_airbyte.provision_tenant('org-quote''s', E'O''Brien "&" Söhne \\ ; DROP TABLE x') AS r;
SELECT r->>'workspace_name' AS workspace_name
  FROM tenant_airbyte.provision_tenant('org-noname', NULL) AS r;

-- Transient faults are ridden out; each tenant ends with one workspace.
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "429", "count": 2, "retry_after": "1"}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-01', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "429", "count": 3}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-02', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "500", "count": 2}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-03', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "500", "count": 1, "apply": true}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-04', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "503", "count": 2}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-05', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "count": 1, "ms": 5000}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-06', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "hang", "count": 1, "ms": 4000, "apply": true}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-07', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "malformed", "count": 1, "apply": true}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-08', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "drop", "count": 1}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-09', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "drop", "count": 1, "apply": true}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-10', 'Fault') AS r;
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "latency", "count": 1, "ms": 300}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-11', 'Fault') AS r;
-- A fault during reconciliation's listing is retried too.
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "500", "count": 1, "apply": true}'
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "GET /workspaces", "kind": "503", "count": 2}'
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('fault-12', 'Fault') AS r;

-- Exactly one Airbyte workspace per tenant, and one row each.
\! python3 test/airbyte_standin.py counter workspaces_created_by_name
\! python3 test/airbyte_standin.py counter live_workspaces
\! python3 test/airbyte_standin.py counter faults_fired
SELECT count(*) AS rows, count(DISTINCT airbyte_workspace_id) AS workspaces
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'fault-%';

-- Permanent failures: a clear error, and no row.
\set VERBOSITY default
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "400", "count": 1}'
SELECT tenant_airbyte.provision_tenant('org-p-400', 'Permanent');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "401", "count": 1}'
SELECT tenant_airbyte.provision_tenant('org-p-401', 'Permanent');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "403", "count": 1}'
SELECT tenant_airbyte.provision_tenant('org-p-403', 'Permanent');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A transient fault that outlasts max_attempts is an error too.
ALTER SYSTEM SET tenant_airbyte.max_attempts = 3;
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "POST /workspaces", "kind": "503", "count": 3}'
SELECT tenant_airbyte.provision_tenant('org-p-503', 'Permanent');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Nothing listens there: the connection is refused.
\set VERBOSITY terse
SELECT current_setting('tenant_airbyte.api_url') AS saved_url \gset
ALTER SYSTEM SET tenant_airbyte.api_url = 'http://127.0.0.1:9/v1';
SELECT pg_reload_conf();
SELECT pg_sleep(0.3);
SELECT tenant_airbyte.provision_tenant('org-p-down', 'Permanent');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) AS rows FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id LIKE 'org-p-%';

-- Back to the stand-in.
ALTER SYSTEM SET tenant_airbyte.api_url = :'saved_url';
ALTER SYSTEM RESET tenant_airbyte.max_attempts;
ALTER SYSTEM RESET tenant_airbyte.http_timeout_ms;
SELECT pg_reload_conf();
\! python3 test/airbyte_standin.py ctl POST /_control/reset
DELETE FROM tenant_airbyte.tenant_airbyte_workspaces;

--
-- deprovision_purge: deprovision_tenant() soft-deletes and cancels the
-- tenant's running Airbyte jobs; provision_tenant() restores within the
-- retention period; purge_deleted_tenants() deletes workspace and row
-- after it, tolerating a workspace that is already gone.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;
\set SHOW_CONTEXT never
\! python3 test/airbyte_standin.py ctl POST /_control/reset

SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('dep-0001', 'Leaving') AS r;
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('dep-0002', 'Gone Already') AS r;
SELECT r->>'status' AS status FROM tenant_airbyte.provision_tenant('dep-0003', 'Staying') AS r;
SELECT airbyte_workspace_id AS leaving FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0001' \gset
SELECT airbyte_workspace_id AS staying FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0003' \gset

-- Jobs: two running and one finished in the leaving tenant's workspace,
-- one running elsewhere.
\setenv LEAVING :leaving
\setenv STAYING :staying
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$LEAVING\"}"
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$LEAVING\"}"
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$LEAVING\", \"status\": \"succeeded\"}"
\! python3 test/airbyte_standin.py ctl POST /_control/jobs "{\"workspaceId\": \"$STAYING\"}"

-- deprovisioned: soft delete, the two running jobs cancelled.
SELECT r->>'status' AS status, r->>'action' AS action, r->>'retention_days' AS retention_days,
       r->>'cancelled_jobs' AS cancelled_jobs
  FROM tenant_airbyte.deprovision_tenant('dep-0001') AS r;
\! python3 test/airbyte_standin.py counter cancelled_jobs
SELECT status, deleted_at IS NOT NULL AS has_deleted_at
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0001';
SELECT tenant_airbyte.get_workspace_for_tenant('dep-0001') IS NULL AS no_active_workspace;
-- Again: still deprovisioned, deleted_at unchanged, nothing left to cancel.
SELECT deleted_at AS first_deleted_at FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0001' \gset
SELECT r->>'status' AS status, r->>'cancelled_jobs' AS cancelled_jobs
  FROM tenant_airbyte.deprovision_tenant('dep-0001') AS r;
SELECT deleted_at = :'first_deleted_at' AS deleted_at_kept
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0001';
-- not_found for a tenant we never provisioned; bad ids are refused.
SELECT tenant_airbyte.deprovision_tenant('dep-unknown');
SELECT tenant_airbyte.deprovision_tenant('');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- restored: back within the retention period, same workspace, no Airbyte call.
\! python3 test/airbyte_standin.py counter requests "POST /workspaces"
SELECT r->>'status' AS status, (r->>'workspace_id')::uuid = :'leaving' AS same_workspace
  FROM tenant_airbyte.provision_tenant('dep-0001', 'Leaving') AS r;
SELECT status, deleted_at IS NULL AS deleted_at_cleared
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0001';
\! python3 test/airbyte_standin.py counter requests "POST /workspaces"

-- purge: nothing is old enough yet.
SELECT tenant_airbyte.deprovision_tenant('dep-0001')->>'status' AS status;
SELECT tenant_airbyte.deprovision_tenant('dep-0002')->>'status' AS status;
SELECT tenant_airbyte.purge_deleted_tenants() AS purged;
-- Past the retention period; one workspace was already deleted in Airbyte.
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET deleted_at = now() - interval '31 days' WHERE tenant_id IN ('dep-0001', 'dep-0002');
SELECT tenant_airbyte.airbyte_delete_workspace(airbyte_workspace_id) AS deleted_behind_our_back
  FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0002';
SELECT tenant_airbyte.purge_deleted_tenants() AS purged;
SELECT tenant_id, status FROM tenant_airbyte.tenant_airbyte_workspaces
 WHERE tenant_id LIKE 'dep-%' ORDER BY tenant_id;
\! python3 test/airbyte_standin.py counter live_workspaces_by_name
-- A purge Airbyte fails for keeps the row for the next run, with a WARNING.
SELECT tenant_airbyte.deprovision_tenant('dep-0003')->>'status' AS status;
UPDATE tenant_airbyte.tenant_airbyte_workspaces
   SET deleted_at = now() - interval '40 days' WHERE tenant_id = 'dep-0003';
\! python3 test/airbyte_standin.py ctl POST /_control/fault '{"route": "DELETE /workspaces/{id}", "kind": "403", "count": 1}'
\set VERBOSITY terse
SELECT tenant_airbyte.purge_deleted_tenants() AS purged;
\set VERBOSITY default
SELECT count(*) AS kept FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = 'dep-0003';
-- Deleted longer ago than the retention period but not purged yet: the
-- old workspace is deleted and a new one provisioned.
SELECT r->>'status' AS status, (r->>'workspace_id')::uuid <> :'staying' AS new_workspace
  FROM tenant_airbyte.provision_tenant('dep-0003', 'Staying') AS r;
\! python3 test/airbyte_standin.py counter live_workspaces_by_name

DELETE FROM tenant_airbyte.tenant_airbyte_workspaces;
\! python3 test/airbyte_standin.py ctl POST /_control/reset

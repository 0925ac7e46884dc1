/*-------------------------------------------------------------------------
 *
 * kindlist.h
 *	  The operation kinds, one line each (like PostgreSQL's rmgrlist.h).
 *
 * OPERATION_KIND(symbol): symbol is the const OperationKind a kind's file
 * in src/operations/ defines (see src/engine/operation.h).  Adding a kind
 * is its file plus one line here; the engine walks this list and never
 * names a kind.  No include guard: this file is included several times
 * with different definitions of OPERATION_KIND.
 *
 *-------------------------------------------------------------------------
 */

/* symbol, defined in */
OPERATION_KIND(provision_kind)			/* kind_provision.c: provision */
OPERATION_KIND(rename_kind)				/* kind_rename.c: rename */
OPERATION_KIND(deprovision_kind)		/* kind_deprovision.c: deprovision */
OPERATION_KIND(purge_kind)				/* kind_purge.c: purge */
OPERATION_KIND(create_source_kind)		/* kind_source.c: create_source */
OPERATION_KIND(delete_source_kind)		/* kind_source.c: delete_source */
OPERATION_KIND(initiate_oauth_kind)		/* kind_source.c: initiate_oauth */
OPERATION_KIND(create_destination_kind)	/* kind_create_destination.c: create_destination */
OPERATION_KIND(create_connection_kind)	/* kind_create_connection.c: create_connection */
OPERATION_KIND(pause_connections_kind)	/* kind_connection_status.c: pause_connections */
OPERATION_KIND(resume_connections_kind)	/* kind_connection_status.c: resume_connections */
OPERATION_KIND(trigger_sync_kind)		/* kind_syncs.c: trigger_sync */
OPERATION_KIND(cancel_sync_kind)		/* kind_syncs.c: cancel_sync */
OPERATION_KIND(poll_syncs_kind)			/* kind_poll_syncs.c: poll_syncs */
OPERATION_KIND(update_destination_kind)	/* kind_update_destination.c: update_destination */
OPERATION_KIND(reconcile_kind)			/* kind_reconcile.c: reconcile */
OPERATION_KIND(drift_repair_kind)		/* kind_drift_repair.c: drift_repair */
OPERATION_KIND(apply_oauth_apps_kind)	/* kind_oauth_apps.c: apply_oauth_apps */
OPERATION_KIND(admin_create_workspace_kind)	/* kind_admin_workspaces.c: admin_create_workspace */
OPERATION_KIND(admin_get_workspace_kind)	/* kind_admin_workspaces.c: admin_get_workspace */
OPERATION_KIND(admin_list_workspaces_kind)	/* kind_admin_workspaces.c: admin_list_workspaces */
OPERATION_KIND(admin_rename_workspace_kind)	/* kind_admin_workspaces.c: admin_rename_workspace */
OPERATION_KIND(admin_delete_workspace_kind)	/* kind_admin_workspaces.c: admin_delete_workspace */
OPERATION_KIND(admin_create_source_kind)	/* kind_admin_sources.c: admin_create_source */
OPERATION_KIND(admin_get_source_kind)		/* kind_admin_sources.c: admin_get_source */
OPERATION_KIND(admin_list_sources_kind)		/* kind_admin_sources.c: admin_list_sources */
OPERATION_KIND(admin_delete_source_kind)	/* kind_admin_sources.c: admin_delete_source */
OPERATION_KIND(admin_initiate_oauth_kind)	/* kind_admin_sources.c: admin_initiate_oauth */

/*-------------------------------------------------------------------------
 *
 * tenant_airbyte--0.1.0--0.2.0.sql
 *	  ALTER EXTENSION tenant_airbyte UPDATE from release 0.1.0 to 0.2.0.
 *
 * Every schema difference between tenant_airbyte--0.1.0.sql and
 * tenant_airbyte--0.2.0.sql has its step here, so that a database upgraded
 * from 0.1.0 ends with exactly the objects a fresh 0.2.0 install has.
 * test/integration/upgrade_from_0_1_0.t proves it by comparing the two
 * (test/lib/extension_catalog.sql) and prints any difference; see
 * doc/upgrading.md for how to add a step.
 *
 * Rows are kept: only additive or in-place changes (CREATE, CREATE OR
 * REPLACE, ALTER ... ADD) belong here.  Tables with data must stay in
 * pg_extension_config_dump(), so pg_dump keeps their rows.
 *
 *-------------------------------------------------------------------------
 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tenant_airbyte UPDATE" to load this file. \quit

/* ------------------------------------------------------------------------
 * Monitoring: tenant_airbyte.metrics() and what pg_monitor may read.
 *
 * metrics() is the Prometheus text exposition of the inbox (deliveries by
 * work and status, queue depth, age of the oldest pending delivery) and of
 * the worker's shared memory (state, requests in flight, and every Airbyte
 * request by endpoint and outcome with a latency histogram: see
 * src/core/request_metrics.c).  Labels are fixed words, never tenant data:
 * an ignored delivery's event key, which the sender chose, counts as
 * "other".  The shim's GET /metrics includes it.
 *
 * pg_monitor may call metrics() and read worker_status.  The view runs
 * with its reader's rights, so pg_monitor gets exactly what the view needs
 * of the inbox: two columns (status, received_at), every row, never a
 * body, header or tenant id.
 * ------------------------------------------------------------------------ */

CREATE FUNCTION tenant_airbyte.worker_metrics()
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_worker_metrics';

COMMENT ON FUNCTION tenant_airbyte.worker_metrics() IS
	'Internal to metrics(): the worker''s state and the Airbyte request counters and latency histograms from shared memory, in Prometheus text format.';

CREATE FUNCTION tenant_airbyte.metrics()
RETURNS text
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_out text;
	v_row record;
BEGIN
	v_out := E'# HELP tenant_airbyte_inbox_deliveries Inbox rows by the work they ask for and their status.\n'
		  || E'# TYPE tenant_airbyte_inbox_deliveries gauge\n';
	FOR v_row IN
		SELECT e.event, s.status, pg_catalog.count(i.status) AS n
		  FROM pg_catalog.unnest(ARRAY['tenant.created', 'tenant.updated', 'tenant.deleted', 'other']) AS e(event)
		 CROSS JOIN pg_catalog.unnest(ARRAY['pending', 'in_flight', 'done', 'ignored', 'failed', 'dead']) AS s(status)
		  LEFT JOIN tenant_airbyte.webhook_inbox AS i
				 ON i.status OPERATOR(pg_catalog.=) s.status
				AND CASE WHEN i.event OPERATOR(pg_catalog.=) ANY (ARRAY['tenant.created', 'tenant.updated', 'tenant.deleted'])
						 THEN i.event ELSE 'other' END OPERATOR(pg_catalog.=) e.event
		 GROUP BY e.event, s.status
		 ORDER BY e.event, s.status
	LOOP
		v_out := v_out OPERATOR(pg_catalog.||)
			pg_catalog.format(E'tenant_airbyte_inbox_deliveries{event="%s",status="%s"} %s\n',
							  v_row.event, v_row.status, v_row.n);
	END LOOP;

	SELECT pg_catalog.count(*) AS depth,
		   coalesce(pg_catalog.extract('epoch', pg_catalog.now() OPERATOR(pg_catalog.-)
				pg_catalog.min(i.received_at) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending')), 0) AS age
	  INTO v_row
	  FROM tenant_airbyte.webhook_inbox AS i
	 WHERE i.status OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'in_flight']);

	v_out := v_out OPERATOR(pg_catalog.||) pg_catalog.format(
		E'# HELP tenant_airbyte_inbox_queue_depth Deliveries pending or in flight.\n'
		OPERATOR(pg_catalog.||) E'# TYPE tenant_airbyte_inbox_queue_depth gauge\n'
		OPERATOR(pg_catalog.||) E'tenant_airbyte_inbox_queue_depth %s\n'
		OPERATOR(pg_catalog.||) E'# HELP tenant_airbyte_inbox_oldest_pending_age_seconds Age of the oldest pending delivery, 0 when none is pending.\n'
		OPERATOR(pg_catalog.||) E'# TYPE tenant_airbyte_inbox_oldest_pending_age_seconds gauge\n'
		OPERATOR(pg_catalog.||) E'tenant_airbyte_inbox_oldest_pending_age_seconds %s\n',
		v_row.depth, pg_catalog.round(v_row.age, 3));

	RETURN v_out OPERATOR(pg_catalog.||) tenant_airbyte.worker_metrics();
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.metrics() IS
	'The inbox and the background worker in Prometheus text format: deliveries by work and status, queue depth, oldest pending age, worker state, Airbyte requests by endpoint and outcome with latency histograms. Executable by pg_monitor.';

CREATE POLICY monitoring ON tenant_airbyte.webhook_inbox
	FOR SELECT TO pg_monitor
	USING (true);

/* As the full script's "REVOKE ALL ... FROM PUBLIC" does for every function. */
REVOKE ALL ON FUNCTION tenant_airbyte.worker_metrics(), tenant_airbyte.metrics() FROM PUBLIC;

/* Monitoring (see "Monitoring" above): counts and the worker, no rows. */
GRANT SELECT ON tenant_airbyte.worker_status TO pg_monitor;
GRANT SELECT (status, received_at) ON tenant_airbyte.webhook_inbox TO pg_monitor;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.worker_state(),
	tenant_airbyte.metrics()
	TO pg_monitor;

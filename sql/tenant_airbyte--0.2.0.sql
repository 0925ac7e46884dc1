/*-------------------------------------------------------------------------
 *
 * tenant_airbyte--0.2.0.sql
 *	  Install script: tables, indexes, row-level security, grants and the
 *	  SQL interface of tenant_airbyte.  Sections, in order:
 *
 *	  1. tenant context       current_tenant(), tenant id validation
 *	  2. tables               tenant_airbyte_workspaces, webhook_inbox, ...
 *	  3. row-level security   one policy per tenant-scoped table, FORCEd
 *	  4. public functions     lookups, provisioning, webhooks, sources, auth
 *	  5. grants               nothing to PUBLIC beyond what a tenant needs
 *	  6. tenant data schemas  each tenant's synced tables, born under RLS
 *	  7. the worker's role    what the background worker may do, and no more
 *	  8. pipelines            templates, tenant destinations, connections,
 *	                          syncs: tables, policies, functions and grants
 *	  9. install-time check   a loud warning when the library is not preloaded
 *
 * Inside policies and SECURITY DEFINER bodies every name is schema
 * qualified and operators are written OPERATOR(pg_catalog.=), so that no
 * object a user creates earlier on the search_path can be substituted.
 *
 *-------------------------------------------------------------------------
 */

\echo Use "CREATE EXTENSION tenant_airbyte" to load this file. \quit

/*
 * UTF8 databases only.  Tenant names and ids are Unicode, Frontegg and
 * Airbyte send and expect UTF-8 JSON, and the extension stores, compares
 * and forwards that text unchanged: in SQL_ASCII it would be stored
 * unchecked and in LATIN1 and the like it would fail at the first name
 * outside the encoding, after Airbyte had acted on it.  Refuse at install.
 */
DO $encoding$
BEGIN
	IF pg_catalog.getdatabaseencoding() OPERATOR(pg_catalog.<>) 'UTF8' THEN
		RAISE EXCEPTION 'tenant_airbyte needs a UTF8 database, and database "%" is %',
			pg_catalog.current_database(), pg_catalog.getdatabaseencoding()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Tenant names and ids are Unicode, and Frontegg and Airbyte exchange them as UTF-8.',
				  HINT = 'Install it in a UTF8 database, e.g. one made with CREATE DATABASE app ENCODING ''UTF8'' LOCALE ''C'' TEMPLATE template0.';
	END IF;
END
$encoding$;

/* ------------------------------------------------------------------------
 * 1. Tenant context
 * ------------------------------------------------------------------------ */

CREATE FUNCTION tenant_airbyte.current_tenant()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_current_tenant';

COMMENT ON FUNCTION tenant_airbyte.current_tenant() IS
	'The tenant context (setting tenant_airbyte.tenant_id) that row-level security compares against; NULL when unset, so a session without context sees no tenant row.';

/*
 * validate_tenant_id: the one place that decides what a tenant id may be,
 * so that every function refuses bad input with the same SQLSTATE and words.
 */
CREATE FUNCTION tenant_airbyte.validate_tenant_id(tenant_id text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF tenant_id IS NULL THEN
		RAISE EXCEPTION 'tenant id must not be NULL'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the Frontegg tenant id, for example ''org-123''.';
	END IF;
	IF btrim(tenant_id) = '' THEN
		RAISE EXCEPTION 'tenant id must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the Frontegg tenant id, for example ''org-123''.';
	END IF;
	IF length(tenant_id) > 255 THEN
		RAISE EXCEPTION 'tenant id is too long (% characters)', length(tenant_id)
			USING ERRCODE = 'string_data_right_truncation',
				  DETAIL = 'A tenant id is at most 255 characters.',
				  HINT = 'Check that the value passed is a tenant id and not a token or a payload.';
	END IF;
	-- the engine's own operations run under these pseudo tenants (section 18)
	IF tenant_id = '(administration)' OR starts_with(tenant_id, 'tenant_airbyte.') THEN
		RAISE EXCEPTION 'tenant id "%" is reserved', tenant_id
			USING ERRCODE = 'reserved_name',
				  DETAIL = 'The ids "(administration)" and "tenant_airbyte.*" name the extension''s own operations.',
				  HINT = 'Pass the Frontegg tenant id, for example ''org-123''.';
	END IF;
	RETURN tenant_id;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.validate_tenant_id(text) IS
	'Returns its argument, or raises a clear error for a NULL, empty, over-long (> 255 characters) or reserved ("(administration)", "tenant_airbyte.*") tenant id.';

/* ------------------------------------------------------------------------
 * 2. Tables
 * ------------------------------------------------------------------------ */

/*
 * Keeps updated_at honest on every tenant-scoped table that has one.  In C
 * (src/core/touch_updated_at.c): it fires on every UPDATE the worker makes.
 */
CREATE FUNCTION tenant_airbyte.touch_updated_at()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'tenant_airbyte_touch_updated_at';

COMMENT ON FUNCTION tenant_airbyte.touch_updated_at() IS
	'Trigger: sets updated_at to the transaction time on every UPDATE.';

CREATE TABLE tenant_airbyte.tenant_airbyte_workspaces (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	tenant_id varchar(255) NOT NULL,
	airbyte_workspace_id uuid NOT NULL,
	airbyte_workspace_name varchar(255) NOT NULL,
	organization_id uuid,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	status varchar(50) NOT NULL DEFAULT 'active',
	deleted_at timestamptz,

	CONSTRAINT idx_tenant_workspace_tenant_id UNIQUE (tenant_id),
	CONSTRAINT idx_tenant_workspace_airbyte_id UNIQUE (airbyte_workspace_id),
	CONSTRAINT tenant_airbyte_workspaces_status_check
		CHECK (status IN ('active', 'suspended', 'deleted')),
	CONSTRAINT tenant_airbyte_workspaces_tenant_id_check
		CHECK (btrim(tenant_id) <> ''),
	CONSTRAINT tenant_airbyte_workspaces_deleted_at_check
		CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);

/*
 * The seed's indexes.  Its separate index on airbyte_workspace_id is not
 * repeated: the unique constraint idx_tenant_workspace_airbyte_id already is
 * that index, and a second copy would only slow every write.
 */
CREATE INDEX idx_tenant_airbyte_workspaces_tenant
	ON tenant_airbyte.tenant_airbyte_workspaces (tenant_id)
	WHERE status = 'active';

CREATE INDEX idx_tenant_airbyte_workspaces_status
	ON tenant_airbyte.tenant_airbyte_workspaces (status, created_at);

/* What purge_deleted_tenants() scans: soft-deleted rows by age. */
CREATE INDEX idx_tenant_airbyte_workspaces_deleted
	ON tenant_airbyte.tenant_airbyte_workspaces (deleted_at)
	WHERE status = 'deleted';

CREATE TRIGGER tenant_airbyte_workspaces_touch_updated_at
	BEFORE UPDATE ON tenant_airbyte.tenant_airbyte_workspaces
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.touch_updated_at();

COMMENT ON TABLE tenant_airbyte.tenant_airbyte_workspaces IS
	'Maps tenant_id from Frontegg JWT to dedicated Airbyte workspace. Each tenant gets isolated workspace for OAuth connections and data syncs.';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.id IS
	'Row id, generated.';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.tenant_id IS
	'Frontegg organization ID from JWT token (matches Tenant.tenant_id)';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.airbyte_workspace_id IS
	'Airbyte workspace UUID from Airbyte Cloud API';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.airbyte_workspace_name IS
	'Workspace name as created in Airbyte: "<tenant name, at most 50 characters> - <first 8 characters of tenant id>"';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.organization_id IS
	'Airbyte organization ID (for enterprise); NULL for the default organization';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.created_at IS
	'When the tenant was first provisioned';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.updated_at IS
	'Last change to the row, maintained by a trigger';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.status IS
	'active: Normal operation | suspended: Billing issue | deleted: Soft delete (retain for 30 days)';
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.deleted_at IS
	'When the tenant was soft-deleted; set exactly when status is deleted. purge_deleted_tenants() removes the workspace tenant_airbyte.retention_days after it.';

/*
 * webhook_inbox: one row per accepted delivery, and the background
 * worker's queue.  Logged, so a committed delivery survives any crash.
 * receive_webhook() fills it; a superuser may also INSERT a row by hand
 * (only event and tenant_id are needed) and the worker will act on it.
 * dedupe_key is an identifier compared byte for byte (COLLATE "C"): its
 * unique index, probed on every delivery, then needs no locale rules and
 * no reindex when the operating system's collation changes.
 */
CREATE TABLE tenant_airbyte.webhook_inbox (
	delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event text NOT NULL,
	event_key text,
	tenant_id varchar(255),
	tenant_name text,
	body bytea,
	payload jsonb,
	headers jsonb NOT NULL DEFAULT '{}',
	dedupe_key text COLLATE "C" NOT NULL DEFAULT 'manual:' OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid(),
	status text NOT NULL DEFAULT 'pending',
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_id uuid,
	lease_expires_at timestamptz,
	last_http_status integer,
	last_error text,
	result jsonb,
	received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at timestamptz,
	operation_id bigint,

	CONSTRAINT webhook_inbox_dedupe_key UNIQUE (dedupe_key),
	CONSTRAINT webhook_inbox_status_check
		CHECK (status IN ('pending', 'in_flight', 'done', 'ignored', 'failed', 'dead')),
	CONSTRAINT webhook_inbox_lease_check
		CHECK ((status = 'in_flight') = (lease_expires_at IS NOT NULL)),
	CONSTRAINT webhook_inbox_attempts_check CHECK (attempts >= 0)
);

/*
 * The worker's two questions: what is due, and whose lease ran out.  The
 * claim takes due rows in (next_attempt_at, delivery_id) order; with both
 * columns here it reads only the rows it claims instead of sorting every
 * pending one (a burst of deliveries shares one next_attempt_at).
 */
CREATE INDEX webhook_inbox_pending_due
	ON tenant_airbyte.webhook_inbox (next_attempt_at, delivery_id)
	WHERE status = 'pending';
CREATE INDEX webhook_inbox_in_flight_lease
	ON tenant_airbyte.webhook_inbox (lease_expires_at)
	WHERE status = 'in_flight';
CREATE INDEX webhook_inbox_tenant
	ON tenant_airbyte.webhook_inbox (tenant_id);

CREATE TRIGGER webhook_inbox_touch_updated_at
	BEFORE UPDATE ON tenant_airbyte.webhook_inbox
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.touch_updated_at();

/*
 * A delivery's body and payload together pass the TOAST threshold at about
 * 1 kB each, and every insert then compresses them: lz4 does that several
 * times faster than the default pglz.  Only where the server was built
 * with lz4; elsewhere the default stays.
 */
DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_settings
				WHERE name OPERATOR(pg_catalog.=) 'default_toast_compression'
				  AND 'lz4' OPERATOR(pg_catalog.=) ANY (enumvals)) THEN
		ALTER TABLE tenant_airbyte.webhook_inbox
			ALTER COLUMN body SET COMPRESSION lz4,
			ALTER COLUMN payload SET COMPRESSION lz4;
	END IF;
END;
$$;

COMMENT ON TABLE tenant_airbyte.webhook_inbox IS
	'One row per accepted webhook delivery; the background worker''s queue. Logged: a committed delivery survives any crash.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.delivery_id IS
	'Identifies the delivery in receive_webhook() answers, logs and requeue().';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.event IS
	'The work to do: tenant.created, tenant.updated or tenant.deleted; for an ignored delivery, its event key.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.event_key IS
	'The event as Frontegg named it (eventKey of the body, or the route), NULL for rows inserted by hand.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.tenant_id IS
	'Frontegg tenant the delivery concerns.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.tenant_name IS
	'Tenant name from the delivery, used to name the workspace.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.body IS
	'The raw request body, byte for byte.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.payload IS
	'The body parsed as JSON.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.headers IS
	'Request headers an operator may need; never the secret-bearing ones (x-webhook-secret, signatures).';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.dedupe_key IS
	'Same key, same delivery: webhook-id where the sender gives one, otherwise the SHA-256 of the raw body.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.status IS
	'pending: waiting or due | in_flight: claimed under a lease | done | ignored: nothing to do | failed: given up, may be requeued | dead: attempts exhausted or permanent error';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.attempts IS
	'Attempts started; raised when the worker claims the row, so a delivery that crashes the worker ends dead.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.next_attempt_at IS
	'When a pending delivery becomes due.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.lease_id IS
	'Identifies the current claim; a result is recorded only under the claim that produced it.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.lease_expires_at IS
	'Until when the claim holds; after it the delivery returns to pending.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.last_http_status IS
	'HTTP status of the last Airbyte answer, NULL when there was none (connection error, timeout).';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.last_error IS
	'Why the last attempt failed.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.result IS
	'What the finished work produced, e.g. the provision_tenant() result.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.received_at IS
	'When the delivery was accepted.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.updated_at IS
	'Last change to the row, maintained by a trigger.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.finished_at IS
	'When the delivery reached done, ignored, failed or dead.';
COMMENT ON COLUMN tenant_airbyte.webhook_inbox.operation_id IS
	'The operation (tenant_airbyte.operations) that serves this delivery, set when the worker takes it up; while it runs, the delivery''s status, attempts and errors follow it.';

/*
 * webhook_dedupe: the dedupe key of every delivery receive_webhook()
 * accepted, kept for tenant_airbyte.dedupe_retention_days however soon the
 * inbox row itself is deleted (inbox_retention_days).  hmac-sha256 signs
 * the body alone, with no timestamp, so without this a captured delivery
 * replayed after its inbox row was purged would be acted on again.
 * Written only by receive_webhook() (src/intake/webhook_intake.c), which
 * also deletes a few expired keys each time it stores a new delivery;
 * purge_dedupe_keys() deletes them all.
 */
CREATE TABLE tenant_airbyte.webhook_dedupe (
	dedupe_key text COLLATE "C" PRIMARY KEY,
	received_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE INDEX webhook_dedupe_received_at
	ON tenant_airbyte.webhook_dedupe (received_at);

COMMENT ON TABLE tenant_airbyte.webhook_dedupe IS
	'Dedupe keys of accepted deliveries, kept for tenant_airbyte.dedupe_retention_days so that a replay after the inbox row is gone is still a duplicate.';
COMMENT ON COLUMN tenant_airbyte.webhook_dedupe.dedupe_key IS
	'The delivery''s webhook_inbox.dedupe_key.';
COMMENT ON COLUMN tenant_airbyte.webhook_dedupe.received_at IS
	'When the delivery was first accepted; the key is forgotten dedupe_retention_days later.';
/* Dumped with the data: a restored database must still refuse the replays. */
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.webhook_dedupe', '');

/*
 * Background worker: what it needs of the inbox (see src/engine/worker.c).
 * A statement-level trigger notes that a transaction put work in the
 * inbox; the commit then wakes the worker once, however many rows and
 * statements it had, and a rollback wakes nothing.
 */
CREATE FUNCTION tenant_airbyte.inbox_wake()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'tenant_airbyte_inbox_wake';

COMMENT ON FUNCTION tenant_airbyte.inbox_wake() IS
	'Trigger: wakes the background worker when the transaction that put work in webhook_inbox commits (once per transaction; never on rollback).';

CREATE TRIGGER webhook_inbox_wake
	AFTER INSERT OR UPDATE ON tenant_airbyte.webhook_inbox
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_airbyte.inbox_wake();

/* What retention deletes: finished rows by age. */
CREATE INDEX webhook_inbox_finished
	ON tenant_airbyte.webhook_inbox (finished_at)
	WHERE status IN ('done', 'ignored');


/*
 * Rows of extension tables are not dumped by pg_dump unless marked: these
 * hold the tenants and their deliveries, so a backup must include them.
 */
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.tenant_airbyte_workspaces', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.webhook_inbox', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.webhook_inbox_delivery_id_seq', '');

/*
 * operations: one row per intended effect on Airbyte (create, rename or
 * delete a workspace, cancel its jobs, create or delete a source, start
 * OAuth, and every kind added later), committed by the background worker
 * before it sends the first request, and carried out only by it.  The
 * engine is src/engine/, each kind a file in src/operations/; see
 * doc/architecture.md ("The operation engine").
 *
 *	  kind, tenant_id, subject	what and for whom; subject tells apart
 *								operations of one kind and tenant that may
 *								run side by side (a source's name; '' for
 *								the tenant's workspace)
 *	  params					what the kind needs; never a secret
 *	  intended_name				the exact name of the object it creates,
 *								decided once; reconciliation adopts only
 *								an object with exactly this name
 *	  step						the step the operation is at; committed
 *								before that step's request is sent
 *	  status					pending -> in_flight -> done | failed |
 *								dead (failed: Airbyte refused for good;
 *								dead: out of attempts or interrupted too
 *								often)
 *	  attempts, next_attempt_at, lease_id, lease_expires_at
 *								the claim, as in webhook_inbox: attempts
 *								raised when claimed, a result recorded only
 *								under the claim's lease
 *	  outcome					what a done operation produced, or the
 *								error of a failed one (sqlstate, message,
 *								detail, hint)
 *	  delivery_id				the webhook_inbox row it serves, if any
 */
CREATE TABLE tenant_airbyte.operations (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind text NOT NULL,
	tenant_id varchar(255) NOT NULL,
	subject text NOT NULL DEFAULT '',
	params jsonb NOT NULL DEFAULT '{}',
	intended_name text,
	status text NOT NULL DEFAULT 'pending',
	step text NOT NULL DEFAULT '',
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	lease_id uuid,
	lease_expires_at timestamptz,
	attempt_ended_at timestamptz,
	outcome jsonb,
	last_http_status integer,
	last_error text,
	delivery_id bigint,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at timestamptz,

	CONSTRAINT operations_status_check
		CHECK (status IN ('pending', 'in_flight', 'done', 'failed', 'dead')),
	CONSTRAINT operations_lease_check
		CHECK ((status = 'in_flight') = (lease_expires_at IS NOT NULL)),
	CONSTRAINT operations_attempts_check CHECK (attempts >= 0),
	CONSTRAINT operations_tenant_id_check CHECK (btrim(tenant_id) <> '')
);

/*
 * The serialisation: at most one unfinished operation per tenant, kind
 * and subject.  Two provision_tenant() calls for one tenant cannot both
 * be recorded; the second waits for the first to finish, then finds its
 * workspace (already_exists).  It replaces locks: nothing here can be
 * taken, held or stalled by another role.
 */
CREATE UNIQUE INDEX operations_one_unfinished
	ON tenant_airbyte.operations (tenant_id, kind, subject)
	WHERE status IN ('pending', 'in_flight');

/* The claim: due pending rows in order; whose lease ran out. */
CREATE INDEX operations_pending_due
	ON tenant_airbyte.operations (next_attempt_at, id)
	WHERE status = 'pending';
CREATE INDEX operations_in_flight_lease
	ON tenant_airbyte.operations (lease_expires_at)
	WHERE status = 'in_flight';
/* What the name decision looks up: names intended by unfinished creates. */
CREATE INDEX operations_intended_name
	ON tenant_airbyte.operations (intended_name)
	WHERE status IN ('pending', 'in_flight');
/*
 * What a provision looks up before its first create: creates of the tenant
 * that ended failed or dead after they may have been sent (kind_provision.c
 * then reconciles first).
 */
CREATE INDEX operations_interrupted_create
	ON tenant_airbyte.operations (tenant_id)
	WHERE kind = 'provision' AND status IN ('failed', 'dead') AND step IN ('create', 'reconcile');
CREATE INDEX operations_delivery
	ON tenant_airbyte.operations (delivery_id)
	WHERE delivery_id IS NOT NULL;
CREATE INDEX operations_finished
	ON tenant_airbyte.operations (finished_at)
	WHERE status IN ('done', 'failed', 'dead');

CREATE TRIGGER operations_touch_updated_at
	BEFORE UPDATE ON tenant_airbyte.operations
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.touch_updated_at();

COMMENT ON TABLE tenant_airbyte.operations IS
	'One row per intended effect on Airbyte, committed by the background worker before its first request; the worker alone carries it out. Tenant-scoped (row-level security).';
COMMENT ON COLUMN tenant_airbyte.operations.kind IS
	'What the operation does: provision, rename, deprovision, purge, create_source, delete_source, initiate_oauth, ...';
COMMENT ON COLUMN tenant_airbyte.operations.tenant_id IS
	'The tenant it acts for (row-level security compares it with current_tenant()).';
COMMENT ON COLUMN tenant_airbyte.operations.subject IS
	'What within the tenant and kind it is about (a source name); empty for the tenant''s workspace. At most one unfinished operation per tenant, kind and subject.';
COMMENT ON COLUMN tenant_airbyte.operations.params IS
	'The parameters the kind needs (never a secret: credentials travel to the worker in memory only).';
COMMENT ON COLUMN tenant_airbyte.operations.intended_name IS
	'The exact name of the object the operation creates, decided once; reconciliation adopts only an object with exactly this name.';
COMMENT ON COLUMN tenant_airbyte.operations.status IS
	'pending, in_flight, done, failed (Airbyte refused for good) or dead (out of attempts).';
COMMENT ON COLUMN tenant_airbyte.operations.step IS
	'The step it is at; committed before that step''s request is sent, so after a crash it says what may have been sent.';
COMMENT ON COLUMN tenant_airbyte.operations.attempts IS
	'Attempts so far, raised when the worker claims it (an attempt that crashes the worker counts).';
COMMENT ON COLUMN tenant_airbyte.operations.next_attempt_at IS
	'When a pending operation is due.';
COMMENT ON COLUMN tenant_airbyte.operations.lease_id IS
	'Identifies the current claim; a result is recorded only under it.';
COMMENT ON COLUMN tenant_airbyte.operations.lease_expires_at IS
	'When an in_flight claim lapses and the operation returns to pending.';
COMMENT ON COLUMN tenant_airbyte.operations.attempt_ended_at IS
	'When its last attempt ended (recorded, or found interrupted): a reconciliation listing that began later sees whatever that attempt created.';
COMMENT ON COLUMN tenant_airbyte.operations.outcome IS
	'What a done operation produced (the SQL function''s result), or the error of a failed or dead one: sqlstate, message, detail, hint.';
COMMENT ON COLUMN tenant_airbyte.operations.last_http_status IS
	'HTTP status of the last Airbyte answer, NULL when none arrived.';
COMMENT ON COLUMN tenant_airbyte.operations.last_error IS
	'Why the last attempt failed (never holds a secret).';
COMMENT ON COLUMN tenant_airbyte.operations.delivery_id IS
	'The webhook_inbox delivery this operation serves, if any.';
COMMENT ON COLUMN tenant_airbyte.operations.finished_at IS
	'When it reached done, failed or dead.';

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.operations', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.operations_id_seq', '');

/*
 * jwt_keys: the keys authenticate() verifies Frontegg access tokens with,
 * one row per JWK of the issuer's JWKS, filled by load_jwks().  Not
 * tenant data, and for administrators only: nothing is granted on it, and
 * row-level security with no policy refuses any role that is not a
 * superuser or BYPASSRLS even if someone grants it.
 */
CREATE TABLE tenant_airbyte.jwt_keys (
	kid text PRIMARY KEY,
	jwk jsonb NOT NULL,
	issuer text,
	loaded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT jwt_keys_kid_check CHECK (kid <> ''),
	CONSTRAINT jwt_keys_jwk_check CHECK (pg_catalog.jsonb_typeof(jwk) = 'object')
);

COMMENT ON TABLE tenant_airbyte.jwt_keys IS
	'Public keys (JWKS entries) that authenticate() verifies Frontegg access tokens with; filled by load_jwks(), administrators only.';
COMMENT ON COLUMN tenant_airbyte.jwt_keys.kid IS
	'Key id: a token''s kid header selects the key.';
COMMENT ON COLUMN tenant_airbyte.jwt_keys.jwk IS
	'The JWK as published (kty RSA, n, e, ...).';
COMMENT ON COLUMN tenant_airbyte.jwt_keys.issuer IS
	'Issuer the key was loaded for; a token verified with it must carry this iss. NULL: only tenant_airbyte.jwt_issuer decides.';
COMMENT ON COLUMN tenant_airbyte.jwt_keys.loaded_at IS
	'When load_jwks() last stored the key.';

/* Loaded keys are configuration: pg_dump keeps them. */
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.jwt_keys', '');

/*
 * tenant_sources: the Airbyte sources created for each tenant by
 * create_source(), in that tenant's workspace.  No configuration is kept:
 * it carries the source's credentials, which stay with Airbyte.  The
 * primary key leads with tenant_id (one tenant's sources are one index
 * range, and the table can be distributed by tenant).  A purged workspace
 * takes its rows along (Airbyte deletes its sources with it).
 */
CREATE TABLE tenant_airbyte.tenant_sources (
	tenant_id varchar(255) NOT NULL,
	airbyte_workspace_id uuid NOT NULL
		REFERENCES tenant_airbyte.tenant_airbyte_workspaces (airbyte_workspace_id)
		ON DELETE CASCADE,
	airbyte_source_id uuid NOT NULL,
	source_type varchar(255) NOT NULL,
	name varchar(255) NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT tenant_sources_pkey PRIMARY KEY (tenant_id, airbyte_source_id),
	CONSTRAINT tenant_sources_tenant_id_check CHECK (btrim(tenant_id) <> ''),
	CONSTRAINT tenant_sources_source_type_check CHECK (btrim(source_type) <> ''),
	CONSTRAINT tenant_sources_name_check CHECK (btrim(name) <> '')
);

/* What the cascade from a purged workspace looks up. */
CREATE INDEX idx_tenant_sources_workspace
	ON tenant_airbyte.tenant_sources (airbyte_workspace_id);

COMMENT ON TABLE tenant_airbyte.tenant_sources IS
	'Airbyte sources created for each tenant by create_source(), always in the tenant''s own workspace. Never holds the source''s configuration or credentials.';
COMMENT ON COLUMN tenant_airbyte.tenant_sources.tenant_id IS
	'Frontegg organization ID of the tenant that owns the source (row-level security compares it with current_tenant()).';
COMMENT ON COLUMN tenant_airbyte.tenant_sources.airbyte_workspace_id IS
	'The tenant''s Airbyte workspace the source was created in (tenant_airbyte_workspaces.airbyte_workspace_id).';
COMMENT ON COLUMN tenant_airbyte.tenant_sources.airbyte_source_id IS
	'Airbyte source UUID (sourceId of POST /sources).';
COMMENT ON COLUMN tenant_airbyte.tenant_sources.source_type IS
	'Airbyte sourceType, e.g. shopify, facebook-marketing, google-ads.';
COMMENT ON COLUMN tenant_airbyte.tenant_sources.name IS
	'Source name as created in Airbyte.';
COMMENT ON COLUMN tenant_airbyte.tenant_sources.created_at IS
	'When create_source() recorded the source.';

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.tenant_sources', '');

/* ------------------------------------------------------------------------
 * 3. Row-level security
 *
 * ENABLEd and FORCEd, so the owner is bound too; superusers and BYPASSRLS
 * roles (administrators, the background worker) see everything.
 * ------------------------------------------------------------------------ */

ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant_airbyte.tenant_airbyte_workspaces
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

ALTER TABLE tenant_airbyte.webhook_inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.webhook_inbox FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant_airbyte.webhook_inbox
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

/* No policy: only superusers and BYPASSRLS roles (and receive_webhook()). */
ALTER TABLE tenant_airbyte.webhook_dedupe ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.webhook_dedupe FORCE ROW LEVEL SECURITY;

/* No policy: only superusers and BYPASSRLS roles reach the keys. */
ALTER TABLE tenant_airbyte.jwt_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.jwt_keys FORCE ROW LEVEL SECURITY;

ALTER TABLE tenant_airbyte.tenant_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_sources FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant_airbyte.tenant_sources
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

ALTER TABLE tenant_airbyte.operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.operations FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant_airbyte.operations
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

/* ------------------------------------------------------------------------
 * 4. Public functions
 * ------------------------------------------------------------------------ */

/*
 * Lookups run with the caller's rights, so row-level security decides what
 * they return: a tenant-scoped role finds only its own tenant.
 */
CREATE FUNCTION tenant_airbyte.get_workspace_for_tenant(tenant_id text)
RETURNS tenant_airbyte.tenant_airbyte_workspaces
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found_row tenant_airbyte.tenant_airbyte_workspaces;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);

	SELECT w.* INTO found_row
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.tenant_id OPERATOR(pg_catalog.=) get_workspace_for_tenant.tenant_id
	   AND w.status OPERATOR(pg_catalog.=) 'active';

	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	RETURN found_row;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.get_workspace_for_tenant(text) IS
	'The active workspace row of a tenant, or NULL when there is none or the caller may not see it (row-level security).';

CREATE FUNCTION tenant_airbyte.active_workspaces()
RETURNS SETOF tenant_airbyte.tenant_airbyte_workspaces
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT w.*
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.status OPERATOR(pg_catalog.=) 'active'
	 ORDER BY w.tenant_id;
$$;

COMMENT ON FUNCTION tenant_airbyte.active_workspaces() IS
	'Every active workspace row the caller may see (row-level security), ordered by tenant id.';

/*
 * Background worker status.  worker_state() reads the worker's shared
 * memory; the view adds what the inbox says.  security_invoker, so a role
 * granted the view sees counts only of the rows row-level security lets
 * it see.
 */
CREATE FUNCTION tenant_airbyte.worker_state(
	OUT pid integer,
	OUT state text,
	OUT started_at timestamptz,
	OUT requests_in_flight integer,
	OUT deliveries_finished bigint,
	OUT commit_wakeups bigint,
	OUT last_error text,
	OUT last_error_at timestamptz)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_worker_state';

COMMENT ON FUNCTION tenant_airbyte.worker_state() IS
	'The background worker as its shared memory describes it: pid, state, start, requests in flight, deliveries finished and commit wake-ups since the server started, last error.';

CREATE VIEW tenant_airbyte.worker_status WITH (security_invoker = true) AS
SELECT w.pid,
	   w.state,
	   w.started_at,
	   w.requests_in_flight,
	   c.pending,
	   c.in_flight,
	   c.done,
	   c.ignored,
	   c.failed,
	   c.dead,
	   pg_catalog.now() OPERATOR(pg_catalog.-) c.oldest_pending_received_at AS oldest_pending_age,
	   w.last_error,
	   w.last_error_at,
	   w.deliveries_finished,
	   w.commit_wakeups
  FROM tenant_airbyte.worker_state() AS w,
	   (SELECT pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS pending,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'in_flight') AS in_flight,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'done') AS done,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'ignored') AS ignored,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'dead') AS dead,
			   pg_catalog.min(i.received_at) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS oldest_pending_received_at
		  FROM tenant_airbyte.webhook_inbox AS i) AS c;

COMMENT ON VIEW tenant_airbyte.worker_status IS
	'The background worker at a glance: pid, state, Airbyte requests in flight, inbox rows per status, age of the oldest pending delivery, last error.';


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


/* ------------------------------------------------------------------------
 * 4b. Webhook intake: receive_webhook(), requeue()
 *
 * receive_webhook() is what the shim (tenant_airbyte_webhookd) calls with
 * the raw request; everything about trust happens here, where SQL tests
 * can reach it.  Order of checks: size (413), authenticity (401), JSON and
 * tenant id (400), dedupe (200), then one inbox row: pending work (202) or
 * an ignored event (200).  Both are in C: the signature schemes in
 * src/intake/webhook_verify.c, parsing, routing and the insert in
 * src/intake/webhook_intake.c.
 * ------------------------------------------------------------------------ */

CREATE FUNCTION tenant_airbyte.webhook_verify(headers jsonb, body bytea,
	OUT http_status integer, OUT message text, OUT dedupe_key text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_webhook_verify';

COMMENT ON FUNCTION tenant_airbyte.webhook_verify(jsonb, bytea) IS
	'Internal to receive_webhook(): 413 above tenant_airbyte.webhook_max_bytes, 401 with the failed check when the delivery is not authentic under tenant_airbyte.webhook_auth; otherwise NULL status and the dedupe key.';

/*
 * The routing table: which event keys are work, and which work.  It lives
 * in C (src/intake/webhook_intake.c) beside receive_webhook(), its one user.
 */
CREATE FUNCTION tenant_airbyte.webhook_work(event_key text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_webhook_work';

COMMENT ON FUNCTION tenant_airbyte.webhook_work(text) IS
	'The work an event key (Frontegg eventKey, route name or the seed''s eventType) asks for: tenant.created, tenant.updated or tenant.deleted; NULL when the event needs no work (frontegg.user.*, unknown events).';

/*
 * receive_webhook: in C (src/intake/webhook_intake.c), because it is the shim's
 * statement for every delivery and its cost per call is the intake's
 * ceiling; it parses the body once and inserts through a saved plan.  It
 * runs as the extension's owner, so, like the worker, with
 * session_replication_role = replica: a trigger someone with TRIGGER
 * rights put on webhook_inbox does not fire with the owner's rights (the
 * extension's own triggers are ENABLE ALWAYS).
 */
CREATE FUNCTION tenant_airbyte.receive_webhook(event text, headers jsonb, body bytea)
RETURNS TABLE (http_status integer, delivery_id bigint, message text)
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET session_replication_role = replica
AS 'MODULE_PATHNAME', 'tenant_airbyte_receive_webhook';

COMMENT ON FUNCTION tenant_airbyte.receive_webhook(text, jsonb, bytea) IS
	'Verifies (tenant_airbyte.webhook_auth), deduplicates and routes one Frontegg webhook delivery into webhook_inbox. event: route name (tenant-created, tenant-deleted) or NULL to read eventKey from the body. Returns 202 accepted, 200 duplicate or ignored, 400 malformed, 401 not authentic, 413 too large.';

/*
 * requeue: the seed's "manual retry".  Runs with the caller's rights, so
 * only a role that may update the inbox row (an administrator) can do it.
 */
CREATE FUNCTION tenant_airbyte.requeue(delivery_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE tenant_airbyte.webhook_inbox AS i
	   SET status = 'pending',
		   attempts = 0,
		   next_attempt_at = pg_catalog.now(),
		   lease_id = NULL,
		   lease_expires_at = NULL,
		   finished_at = NULL,
		   operation_id = NULL		-- a new operation serves it
	 WHERE i.delivery_id OPERATOR(pg_catalog.=) requeue.delivery_id
	   AND i.status OPERATOR(pg_catalog.=) ANY (ARRAY['failed', 'dead']);
	RETURN FOUND;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.requeue(bigint) IS
	'Puts a failed or dead delivery back to pending with its attempts reset, so the worker tries it again; false when there is no such delivery in state failed or dead.';

/* ------------------------------------------------------------------------
 * 4c. Access tokens: load_jwks(), authenticate()
 *
 * authenticate() is the only way a tenant-scoped role gets a tenant
 * context: it verifies a Frontegg access token (RS256, key chosen by kid
 * from jwt_keys) and sets tenant_airbyte.tenant_id for the transaction.
 * Verification is in C (src/auth/authenticate.c, src/auth/jwt.c).
 * ------------------------------------------------------------------------ */

CREATE FUNCTION tenant_airbyte.jwk_problem(jwk jsonb)
RETURNS text
LANGUAGE C STRICT IMMUTABLE
AS 'MODULE_PATHNAME', 'tenant_airbyte_jwk_problem';

COMMENT ON FUNCTION tenant_airbyte.jwk_problem(jsonb) IS
	'Internal to load_jwks(): NULL when the JWK is an RSA key of at least 2048 bits usable for RS256 signatures, otherwise why not.';

/*
 * load_jwks: replaces the keys of one issuer with those of its JWKS
 * document, in one transaction, so a rotation published by Frontegg (old
 * and new key side by side, then the new one alone) is followed by loading
 * each version of the document.  A key it stores is hand-loaded
 * (fetched_from NULL), even one the refresh fetched before; it leaves the
 * keys the refresh fetched from tenant_airbyte.jwks_url alone otherwise.  Runs with the caller's rights: only an
 * administrator can write jwt_keys.
 */
CREATE FUNCTION tenant_airbyte.load_jwks(jwks jsonb, issuer text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	key_issuer text := coalesce(load_jwks.issuer,
								nullif(current_setting('tenant_airbyte.jwt_issuer'), ''));
	jwk jsonb;
	problem text;
	kids text[] := '{}';
BEGIN
	IF jwks IS NULL OR jsonb_typeof(jwks -> 'keys') IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'JWKS document has no "keys" array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the document served at https://<frontegg-domain>/.well-known/jwks.json.';
	END IF;

	FOR jwk IN SELECT k.value FROM jsonb_array_elements(jwks -> 'keys') AS k LOOP
		/* Keys for encryption or of other types are not for us. */
		IF jwk ->> 'use' = 'enc' OR jwk ->> 'kty' IS DISTINCT FROM 'RSA' THEN
			RAISE NOTICE 'skipped a JWKS key that is not an RSA signing key (kid %)',
				coalesce(left(jwk ->> 'kid', 64), 'none');
			CONTINUE;
		END IF;
		IF jsonb_typeof(jwk -> 'kid') IS DISTINCT FROM 'string' OR jwk ->> 'kid' = '' THEN
			RAISE EXCEPTION 'JWKS key has no kid'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'authenticate() selects keys by kid; every signing key needs one.';
		END IF;
		IF (jwk ->> 'kid') = ANY (kids) THEN
			RAISE EXCEPTION 'JWKS lists kid "%" twice', left(jwk ->> 'kid', 64)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		problem := tenant_airbyte.jwk_problem(jwk);
		IF problem IS NOT NULL THEN
			RAISE EXCEPTION 'JWKS key "%" is unusable: %', left(jwk ->> 'kid', 64), problem
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		kids := kids || (jwk ->> 'kid');

		INSERT INTO tenant_airbyte.jwt_keys AS k (kid, jwk, issuer)
		VALUES (jwk ->> 'kid', jwk, key_issuer)
		ON CONFLICT (kid) DO UPDATE
			SET jwk = excluded.jwk, issuer = excluded.issuer, loaded_at = pg_catalog.now(),
				fetched_from = NULL, removed_at = NULL;
	END LOOP;

	IF cardinality(kids) = 0 THEN
		RAISE EXCEPTION 'JWKS has no RSA signing key'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The stored keys were left as they were.';
	END IF;

	/*
	 * Keys the issuer no longer publishes are retired: those loaded by
	 * hand.  Keys fetched from tenant_airbyte.jwks_url belong to the
	 * refresh (section 11), which retires them after their grace period.
	 */
	DELETE FROM tenant_airbyte.jwt_keys AS k
	 WHERE k.issuer IS NOT DISTINCT FROM key_issuer
	   AND k.fetched_from IS NULL
	   AND k.kid OPERATOR(pg_catalog.<>) ALL (kids);

	RETURN cardinality(kids);
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.load_jwks(jsonb, text) IS
	'Stores the RSA signing keys of a JWKS document (as served at https://<frontegg-domain>/.well-known/jwks.json) for issuer (default: tenant_airbyte.jwt_issuer), and retires that issuer''s keys the document no longer lists. Returns the number of keys loaded.';

/*
 * Not SECURITY DEFINER, so that the search_path it sets for the
 * transaction survives its return (a function's own SET search_path would
 * restore the caller's); it reads jwt_keys as its owner, with search_path
 * pinned, inside the C code (src/auth/authenticate.c).
 */
CREATE FUNCTION tenant_airbyte.authenticate(token text)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_authenticate';

COMMENT ON FUNCTION tenant_airbyte.authenticate(text) IS
	'Verifies a Frontegg access token (RS256, key by kid from jwt_keys; exp, nbf, iss, aud, type, tenantId) and sets the tenant context (tenant_airbyte.tenant_id) and search_path (pg_catalog, the tenant''s data schema, the path before) for the current transaction only. Returns sub, tenantId, tenantIds, roles, permissions, email and type. Refusals are SQLSTATE 28000 naming the failed check.';

/* ------------------------------------------------------------------------
 * 4d. Airbyte client and provisioning (src/airbyte/airbyte_sql.c, src/engine/retry.c,
 *     src/operations/provision.c).  Everything here is revoked from PUBLIC in
 *     section 5: it spends the deployment's Airbyte credentials.
 * ------------------------------------------------------------------------ */

/*
 * purge_dedupe_keys: deletes every dedupe key older than
 * tenant_airbyte.dedupe_retention_days; returns how many.  Intake deletes a
 * few at a time on its own; this is for operators and a cron job.
 */
CREATE FUNCTION tenant_airbyte.purge_dedupe_keys()
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	WITH purged AS (
		DELETE FROM tenant_airbyte.webhook_dedupe AS d
		 WHERE d.received_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
		       pg_catalog.make_interval(days => pg_catalog.current_setting('tenant_airbyte.dedupe_retention_days')::integer))
		RETURNING 1)
	SELECT pg_catalog.count(*)::integer FROM purged
$$;
COMMENT ON FUNCTION tenant_airbyte.purge_dedupe_keys() IS
	'Deletes the dedupe keys older than tenant_airbyte.dedupe_retention_days and returns how many; superusers only unless granted.';

/*
 * frontegg_tenant: verify by fetch's lookup (src/intake/frontegg_fetch.c)
 * on its own, for checking the configuration.  Superusers only (section 5
 * revokes it): it spends the Frontegg credentials.
 */
CREATE FUNCTION tenant_airbyte.frontegg_tenant(tenant_id text)
RETURNS jsonb
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_frontegg_tenant';
COMMENT ON FUNCTION tenant_airbyte.frontegg_tenant(text) IS
	'What Frontegg''s API says about a tenant: {"exists": true, "name": ...} or {"exists": false}. Needs tenant_airbyte.frontegg_api_url, frontegg_client_id and frontegg_api_key.';

/* Retry policy (pure functions of src/engine/retry.c), exposed for its tests. */
CREATE FUNCTION tenant_airbyte.retry_transient_http_status(http_status integer)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_transient_http_status';
COMMENT ON FUNCTION tenant_airbyte.retry_transient_http_status(integer) IS
	'True when an Airbyte answer with this HTTP status is worth another attempt (408, 425, 429, 500, 502, 503, 504).';

CREATE FUNCTION tenant_airbyte.retry_transient_curl_code(curl_code integer)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_transient_curl_code';
COMMENT ON FUNCTION tenant_airbyte.retry_transient_curl_code(integer) IS
	'True when a libcurl error code (connection refused, timeout, ...) is worth another attempt.';

CREATE FUNCTION tenant_airbyte.retry_may_have_taken_effect(curl_code integer, http_status integer)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_may_have_taken_effect';
COMMENT ON FUNCTION tenant_airbyte.retry_may_have_taken_effect(integer, integer) IS
	'Whether a request that failed this way (curl_code 0 = an HTTP answer arrived) may still have been carried out, so that a create must be reconciled before it is sent again.';

CREATE FUNCTION tenant_airbyte.retry_backoff_ms(attempt integer, base_ms bigint, cap_ms bigint, random_fraction double precision)
RETURNS bigint
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_backoff_ms';
COMMENT ON FUNCTION tenant_airbyte.retry_backoff_ms(integer, bigint, bigint, double precision) IS
	'Full-jitter exponential backoff: random_fraction * min(cap_ms, base_ms * 2^(attempt-1)).';

CREATE FUNCTION tenant_airbyte.retry_after_ms(header_value text, now timestamptz)
RETURNS bigint
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_after_ms';
COMMENT ON FUNCTION tenant_airbyte.retry_after_ms(text, timestamptz) IS
	'Milliseconds a Retry-After header (seconds or HTTP-date) asks to wait, as of now; NULL when unreadable.';

CREATE FUNCTION tenant_airbyte.retry_delay_ms(attempt integer, base_ms bigint, cap_ms bigint,
                                              random_fraction double precision, retry_after_ms bigint)
RETURNS bigint
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_delay_ms';
COMMENT ON FUNCTION tenant_airbyte.retry_delay_ms(integer, bigint, bigint, double precision, bigint) IS
	'The wait before the next attempt: the backoff, or the server''s Retry-After (NULL: none) when longer, never more than tenant_airbyte.max_retry_after_s.';

/* Workspace administration, superusers only (src/airbyte/airbyte_sql.c). */
CREATE FUNCTION tenant_airbyte.airbyte_create_workspace(name text, organization_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_create_workspace';
COMMENT ON FUNCTION tenant_airbyte.airbyte_create_workspace(text, uuid) IS
	'Creates an Airbyte workspace (POST /workspaces) and returns Airbyte''s answer. Records nothing: use provision_tenant() for tenants. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_get_workspace(workspace_id uuid)
RETURNS jsonb
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_get_workspace';
COMMENT ON FUNCTION tenant_airbyte.airbyte_get_workspace(uuid) IS
	'An Airbyte workspace (GET /workspaces/{id}). Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_list_workspaces(include_deleted boolean DEFAULT false)
RETURNS SETOF jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_list_workspaces';
COMMENT ON FUNCTION tenant_airbyte.airbyte_list_workspaces(boolean) IS
	'Every workspace the credentials can see, all pages of GET /workspaces. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_rename_workspace(workspace_id uuid, name text)
RETURNS jsonb
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_rename_workspace';
COMMENT ON FUNCTION tenant_airbyte.airbyte_rename_workspace(uuid, text) IS
	'Renames an Airbyte workspace (PATCH /workspaces/{id}). Does not change tenant_airbyte_workspaces. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_delete_workspace(workspace_id uuid)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_delete_workspace';
COMMENT ON FUNCTION tenant_airbyte.airbyte_delete_workspace(uuid) IS
	'Deletes an Airbyte workspace (DELETE /workspaces/{id}); false when Airbyte did not know it. Does not change tenant_airbyte_workspaces. Superusers only.';

/*
 * Provisioning.  provision_tenant(), deprovision_tenant() and
 * purge_deleted_tenants() hand an operation to the background worker and
 * wait for its outcome (src/engine/engine.h); the steps are in
 * src/operations/kind_provision.c, kind_deprovision.c and kind_purge.c.
 */

/*
 * A workspace name: "<name trimmed, at most 50 chars> - <first id_chars
 * chars of the id>".  The seed's rule is id_chars = 8; the provision
 * operation uses more when that name is held or intended by another
 * tenant (kind_provision.c).  No SET clause, so that it is inlined into
 * the worker's queries (every name in it is qualified).
 */
CREATE FUNCTION tenant_airbyte.workspace_name_candidate(tenant_id text, tenant_name text, id_chars integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.left(
			   pg_catalog.btrim(COALESCE(NULLIF(pg_catalog.btrim(tenant_name), ''),
										 'Tenant ' OPERATOR(pg_catalog.||) tenant_id)),
			   50)
		   OPERATOR(pg_catalog.||) ' - '
		   OPERATOR(pg_catalog.||) pg_catalog.left(tenant_id, id_chars);
$$;
COMMENT ON FUNCTION tenant_airbyte.workspace_name_candidate(text, text, integer) IS
	'Internal: "<tenant name trimmed, at most 50 characters> - <first id_chars characters of the tenant id>"; "Tenant <id>" stands in for a missing name.';

/* The seed's workspace name: "<name trimmed, at most 50 chars> - <first 8 chars of id>". */
CREATE FUNCTION tenant_airbyte.workspace_name_for(tenant_id text, tenant_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_airbyte.workspace_name_candidate(tenant_id, tenant_name, 8);
$$;
COMMENT ON FUNCTION tenant_airbyte.workspace_name_for(text, text) IS
	'The Airbyte workspace name of a tenant by default: "<tenant name trimmed, at most 50 characters> - <first 8 characters of the tenant id>"; "Tenant <id>" stands in for a missing name. When that name belongs to another tenant, provisioning uses more characters of the id.';

CREATE FUNCTION tenant_airbyte.provision_tenant(tenant_id text, tenant_name text)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_provision_tenant';
COMMENT ON FUNCTION tenant_airbyte.provision_tenant(text, text) IS
	'Gives a tenant exactly one Airbyte workspace: {"status": "provisioned" | "already_exists" | "restored", "tenant_id", "workspace_id", "workspace_name"}. Carried out by the background worker as an operation that does not depend on the caller''s transaction (like nextval): safe to call concurrently, again after a rollback, or after a crash.';

CREATE FUNCTION tenant_airbyte.deprovision_tenant(tenant_id text)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_deprovision_tenant';
COMMENT ON FUNCTION tenant_airbyte.deprovision_tenant(text) IS
	'Soft-deletes a tenant and cancels its running Airbyte jobs: {"status": "deprovisioned" | "not_found", "action": "soft_deleted", "retention_days", "cancelled_jobs", ...}. The workspace stays until purge_deleted_tenants().';

CREATE FUNCTION tenant_airbyte.purge_deleted_tenants()
RETURNS integer
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_purge_deleted_tenants';
COMMENT ON FUNCTION tenant_airbyte.purge_deleted_tenants() IS
	'Deletes the Airbyte workspace and the row of every tenant soft-deleted more than tenant_airbyte.retention_days ago (a workspace already gone counts as deleted); returns how many. A tenant Airbyte fails for is kept, with a WARNING, for the next run.';

/* ------------------------------------------------------------------------
 * 4e. Per-tenant sources (src/operations/sources.c): create_source(), list_sources(),
 *     delete_source(), initiate_oauth() and the seed's wrappers.
 *
 * Who may call them: create_source(), delete_source(), initiate_oauth()
 * and the wrappers spend the deployment's Airbyte credentials, so they are
 * granted to no one by default (GRANT them to the application role).  They
 * are SECURITY DEFINER, and the first thing each does, after checking the
 * shape of the tenant id, is check_tenant_access(): a role that is not a
 * superuser or BYPASSRLS may act only on the tenant of its context
 * (authenticate(), or a trusted layer that sets tenant_airbyte.tenant_id).
 * list_sources() runs with the caller's rights: row-level security
 * filters it, as it does get_workspace_for_tenant().
 * ------------------------------------------------------------------------ */

CREATE FUNCTION tenant_airbyte.check_tenant_access(tenant_id text)
RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_check_tenant_access';
COMMENT ON FUNCTION tenant_airbyte.check_tenant_access(text) IS
	'Raises 42501 unless the calling role (after SET ROLE, whatever SECURITY DEFINER function it is in) is a superuser or BYPASSRLS, or tenant_id is its tenant context (current_tenant()).';

/* Airbyte source administration, superusers only (src/operations/sources.c). */
CREATE FUNCTION tenant_airbyte.airbyte_create_source(workspace_id uuid, name text,
	configuration jsonb, definition_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_create_source';
COMMENT ON FUNCTION tenant_airbyte.airbyte_create_source(uuid, text, jsonb, uuid) IS
	'Creates an Airbyte source (POST /sources) and returns Airbyte''s answer without its configuration. Records nothing and checks no tenant: use create_source(). Credentials of the configuration are blanked out of any error. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_get_source(source_id uuid)
RETURNS jsonb
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_get_source';
COMMENT ON FUNCTION tenant_airbyte.airbyte_get_source(uuid) IS
	'An Airbyte source (GET /sources/{id}) without its configuration. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_list_sources(workspace_id uuid)
RETURNS SETOF jsonb
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_list_sources';
COMMENT ON FUNCTION tenant_airbyte.airbyte_list_sources(uuid) IS
	'Every source Airbyte holds in a workspace (all pages of GET /sources?workspaceIds=), without configurations. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_delete_source(source_id uuid)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_delete_source';
COMMENT ON FUNCTION tenant_airbyte.airbyte_delete_source(uuid) IS
	'Deletes an Airbyte source (DELETE /sources/{id}); false when Airbyte did not know it. Does not change tenant_sources. Superusers only.';

CREATE FUNCTION tenant_airbyte.airbyte_initiate_oauth(workspace_id uuid, source_type text, redirect_url text)
RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_airbyte_initiate_oauth';
COMMENT ON FUNCTION tenant_airbyte.airbyte_initiate_oauth(uuid, text, text) IS
	'The consent URL of POST /sources/initiateOAuth for a workspace; 0A000 when the server answers 501 (open-source Airbyte). Superusers only.';

/*
 * check_source_configuration: what Airbyte requires of the three sources
 * the product is about (Airbyte API spec's source-shopify,
 * source-facebook-marketing and source-google-ads), checked before any
 * call so that the error names the missing field.  Messages name fields,
 * never values: values are credentials.
 */
CREATE FUNCTION tenant_airbyte.check_source_configuration(source_type text, configuration jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	required text[];
	field text;
	value jsonb;
	requirement text;
	selector text;
BEGIN
	IF configuration IS NULL OR jsonb_typeof(configuration) <> 'object' THEN
		RAISE EXCEPTION 'source configuration must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the sourceType''s fields as a jsonb object, for example ''{"shop": "acme", "credentials": {...}}''.';
	END IF;
	IF source_type IS NOT NULL AND configuration ? 'sourceType'
	   AND configuration -> 'sourceType' IS DISTINCT FROM to_jsonb(source_type) THEN
		RAISE EXCEPTION 'configuration.sourceType does not match the source type "%"', source_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave sourceType out of the configuration: create_source() sets it from its source_type argument.';
	END IF;

	CASE source_type
	WHEN 'shopify' THEN
		requirement := 'A shopify source needs "shop" (the store name, e.g. "acme" or "acme.myshopify.com") and "credentials" with "auth_method": "oauth2.0" and "access_token" (or "client_id" and "client_secret"), or "auth_method": "api_password" and "api_password".';
		required := ARRAY['shop', 'credentials', 'credentials.auth_method'];
		selector := configuration #>> '{credentials,auth_method}';
		IF selector = 'api_password' THEN
			required := required || ARRAY['credentials.api_password'];
		ELSIF selector = 'oauth2.0' AND NOT (configuration -> 'credentials' ? 'client_id') THEN
			required := required || ARRAY['credentials.access_token'];
		ELSIF selector = 'oauth2.0' THEN
			required := required || ARRAY['credentials.client_id', 'credentials.client_secret'];
		END IF;
	WHEN 'facebook-marketing' THEN
		requirement := 'A facebook-marketing (Meta Ads) source needs "account_ids" (an array of ad account ids) and "credentials" with "auth_type": "Service" and "access_token", or "auth_type": "Client" with "client_id" and "client_secret".';
		required := ARRAY['account_ids', 'credentials', 'credentials.auth_type'];
		selector := configuration #>> '{credentials,auth_type}';
		IF selector = 'Service' THEN
			required := required || ARRAY['credentials.access_token'];
		ELSIF selector = 'Client' THEN
			required := required || ARRAY['credentials.client_id', 'credentials.client_secret'];
		END IF;
	WHEN 'google-ads' THEN
		requirement := 'A google-ads source needs "credentials" with "developer_token", "client_id", "client_secret" and "refresh_token".';
		required := ARRAY['credentials', 'credentials.developer_token', 'credentials.client_id',
						  'credentials.client_secret', 'credentials.refresh_token'];
	ELSE
		RETURN;		-- any other sourceType: Airbyte checks it
	END CASE;

	FOREACH field IN ARRAY required LOOP
		value := configuration #> string_to_array(field, '.');
		IF value IS NULL OR value = 'null'::jsonb OR value = '""'::jsonb THEN
			RAISE EXCEPTION '% source configuration is missing "%"', source_type, field
				USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
		END IF;
		IF field = 'account_ids' THEN
			IF jsonb_typeof(value) <> 'array' OR jsonb_array_length(value) = 0
			   OR EXISTS (SELECT FROM jsonb_array_elements(value) AS e(v)
						   WHERE jsonb_typeof(e.v) <> 'string') THEN
				RAISE EXCEPTION '% source configuration: "%" must be a non-empty array of strings', source_type, field
					USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
			END IF;
		ELSIF field = 'credentials' THEN
			IF jsonb_typeof(value) <> 'object' THEN
				RAISE EXCEPTION '% source configuration: "%" must be a JSON object', source_type, field
					USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
			END IF;
		ELSIF jsonb_typeof(value) <> 'string' THEN
			RAISE EXCEPTION '% source configuration: "%" must be a JSON string', source_type, field
				USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
		END IF;
	END LOOP;

	IF source_type = 'shopify' THEN
		IF selector NOT IN ('oauth2.0', 'api_password') THEN
			RAISE EXCEPTION 'shopify source configuration: "credentials.auth_method" must be "oauth2.0" or "api_password"'
				USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
		END IF;
		IF configuration ->> 'shop' ~* '^https?://' THEN
			RAISE EXCEPTION 'shopify source configuration: "shop" is the store name, not a URL'
				USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
		END IF;
	ELSIF source_type = 'facebook-marketing' AND selector NOT IN ('Service', 'Client') THEN
		RAISE EXCEPTION 'facebook-marketing source configuration: "credentials.auth_type" must be "Service" or "Client"'
			USING ERRCODE = 'invalid_parameter_value', HINT = requirement;
	END IF;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.check_source_configuration(text, jsonb) IS
	'Raises 22023 naming the missing or malformed field when a shopify, facebook-marketing or google-ads configuration lacks what Airbyte requires; accepts any other sourceType. Never quotes a value.';

/*
 * run_operation: hands an operation to the background worker and waits
 * for its outcome (src/engine/engine.h); secret reaches the worker in
 * memory only.  Internal: granted to no one, called by the SECURITY
 * DEFINER functions after their checks.
 */
CREATE FUNCTION tenant_airbyte.run_operation(kind text, tenant_id text, params jsonb,
	subject text, secret jsonb)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_run_operation';
COMMENT ON FUNCTION tenant_airbyte.run_operation(text, text, jsonb, text, jsonb) IS
	'Internal: records an operation through the background worker and waits for its outcome; the secret (a source''s configuration) reaches the worker in memory only. Superusers only.';

/* The tenant's active workspace, or the error every source function gives. */
CREATE FUNCTION tenant_airbyte.workspace_for_sources(tenant_id text)
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	workspace uuid;
BEGIN
	SELECT w.airbyte_workspace_id INTO workspace
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.tenant_id OPERATOR(pg_catalog.=) workspace_for_sources.tenant_id
	   AND w.status OPERATOR(pg_catalog.=) 'active';
	IF workspace IS NULL THEN
		RAISE EXCEPTION 'tenant "%" has no active Airbyte workspace: provision the tenant first', tenant_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'SELECT tenant_airbyte.provision_tenant(tenant_id, tenant_name), or deliver its tenant.created webhook; a deprovisioned tenant is restored the same way.';
	END IF;
	RETURN workspace;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.workspace_for_sources(text) IS
	'Internal to the source functions: the tenant''s active Airbyte workspace, or 55000 "provision the tenant first".';

CREATE FUNCTION tenant_airbyte.create_source(tenant_id text, source_type text, name text, configuration jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	config jsonb;
	definition uuid;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(create_source.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(create_source.tenant_id);

	IF create_source.source_type IS NULL OR btrim(create_source.source_type) = '' THEN
		RAISE EXCEPTION 'source type must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an Airbyte sourceType such as ''shopify'', ''facebook-marketing'' or ''google-ads'', or a source definition id.';
	END IF;
	IF create_source.name IS NULL OR btrim(create_source.name) = '' THEN
		RAISE EXCEPTION 'source name must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name the source as it should appear in Airbyte, e.g. ''Shopify - acme''.';
	END IF;
	IF length(create_source.name) > 255 OR length(create_source.source_type) > 255 THEN
		RAISE EXCEPTION 'source name and source type are at most 255 characters'
			USING ERRCODE = 'string_data_right_truncation';
	END IF;

	config := coalesce(create_source.configuration, '{}'::jsonb);
	IF create_source.source_type ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
		/* A connector definition id instead of a sourceType. */
		definition := create_source.source_type::uuid;
		PERFORM tenant_airbyte.check_source_configuration(NULL, config);
	ELSE
		PERFORM tenant_airbyte.check_source_configuration(create_source.source_type, config);
		config := config || jsonb_build_object('sourceType', create_source.source_type);
	END IF;

	PERFORM tenant_airbyte.workspace_for_sources(create_source.tenant_id);
	/* The configuration travels to the worker as the operation's secret. */
	RETURN tenant_airbyte.run_operation('create_source', create_source.tenant_id,
		jsonb_build_object('name', create_source.name,
						   'source_type', create_source.source_type,
						   'definition_id', definition),
		create_source.name, config);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.create_source(text, text, text, jsonb) IS
	'Creates an Airbyte source in the tenant''s own workspace (POST /sources) and records it in tenant_sources. Checks the caller may act on the tenant (42501), that the tenant is provisioned (55000) and, for shopify, facebook-marketing and google-ads, the required configuration (22023); any other sourceType, or a definition id, is passed through. Returns status, tenant_id, workspace_id, source_id, source_type, name; never stores or echoes the configuration.';

CREATE FUNCTION tenant_airbyte.list_sources(tenant_id text)
RETURNS SETOF tenant_airbyte.tenant_sources
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT s.*
	  FROM tenant_airbyte.tenant_sources AS s
	 WHERE s.tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.validate_tenant_id(list_sources.tenant_id)
	 ORDER BY s.created_at, s.airbyte_source_id;
$$;
COMMENT ON FUNCTION tenant_airbyte.list_sources(text) IS
	'The tenant''s recorded sources that the caller may see (row-level security): none of another tenant''s.';

CREATE FUNCTION tenant_airbyte.delete_source(tenant_id text, source_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	victim tenant_airbyte.tenant_sources;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(delete_source.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(delete_source.tenant_id);

	SELECT s.* INTO victim
	  FROM tenant_airbyte.tenant_sources AS s
	 WHERE s.tenant_id OPERATOR(pg_catalog.=) delete_source.tenant_id
	   AND s.airbyte_source_id OPERATOR(pg_catalog.=) delete_source.source_id;
	IF NOT FOUND THEN
		RETURN false;
	END IF;

	/* Airbyte first: if it fails, the row still says the source exists. */
	RETURN (tenant_airbyte.run_operation('delete_source', delete_source.tenant_id,
		jsonb_build_object('source_id', victim.airbyte_source_id),
		victim.airbyte_source_id::text, NULL) ->> 'deleted')::boolean;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.delete_source(text, uuid) IS
	'Deletes one of the tenant''s sources in Airbyte (DELETE /sources/{id}; already gone counts as deleted) and its row; false when the tenant has no such source. 42501 for another tenant.';

CREATE FUNCTION tenant_airbyte.initiate_oauth(tenant_id text, source_type text, redirect_url text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/*
	 * The consent is recorded and its URL fetched by
	 * initiate_oauth_consent() (section 10), which also returns the
	 * consent's id; this function keeps its original answer, the URL.
	 */
	RETURN tenant_airbyte.initiate_oauth_consent(initiate_oauth.tenant_id,
		initiate_oauth.source_type, initiate_oauth.redirect_url) ->> 'consent_url';
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.initiate_oauth(text, text, text) IS
	'The consent URL (POST /sources/initiateOAuth) for connecting a source to the tenant''s workspace, after recording a pending consent (initiate_oauth_consent() also returns its id). Airbyte sends the user back to redirect_url with consent=<id>&secret_id=...: pass the secret_id to complete_oauth(), or let the shim''s /api/oauth/callback do it. 0A000 when the Airbyte server answers 501 (open-source servers), 42501 for another tenant.';

/* The seed's service methods, as thin wrappers over create_source(). */
CREATE FUNCTION tenant_airbyte.create_shopify_source(tenant_id text, shop text, access_token text,
	name text DEFAULT NULL, start_date date DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_airbyte.create_source(
		create_shopify_source.tenant_id, 'shopify',
		coalesce(create_shopify_source.name, 'Shopify - ' || create_shopify_source.shop),
		jsonb_strip_nulls(jsonb_build_object(
			'shop', create_shopify_source.shop,
			'credentials', jsonb_build_object('auth_method', 'oauth2.0',
											  'access_token', create_shopify_source.access_token),
			'start_date', to_char(create_shopify_source.start_date, 'YYYY-MM-DD'))));
$$;
COMMENT ON FUNCTION tenant_airbyte.create_shopify_source(text, text, text, text, date) IS
	'create_source() for a Shopify store with an access token from Shopify OAuth (auth_method oauth2.0); named "Shopify - <shop>" unless a name is given. For a custom app''s Admin API password call create_source() with auth_method api_password.';

CREATE FUNCTION tenant_airbyte.create_facebook_marketing_source(tenant_id text, account_ids text[],
	access_token text, name text DEFAULT NULL, start_date date DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_airbyte.create_source(
		create_facebook_marketing_source.tenant_id, 'facebook-marketing',
		coalesce(create_facebook_marketing_source.name,
				 'Meta Ads - ' || array_to_string(create_facebook_marketing_source.account_ids, ', ')),
		jsonb_strip_nulls(jsonb_build_object(
			'account_ids', to_jsonb(create_facebook_marketing_source.account_ids),
			'credentials', jsonb_build_object('auth_type', 'Service',
											  'access_token', create_facebook_marketing_source.access_token),
			'start_date', to_char(create_facebook_marketing_source.start_date, 'YYYY-MM-DD"T"00:00:00"Z"'))));
$$;
COMMENT ON FUNCTION tenant_airbyte.create_facebook_marketing_source(text, text[], text, text, date) IS
	'create_source() for Meta Ads (facebook-marketing) ad accounts with a system-user access token (auth_type Service); named "Meta Ads - <account ids>" unless a name is given.';

CREATE FUNCTION tenant_airbyte.create_google_ads_source(tenant_id text, customer_id text,
	developer_token text, client_id text, client_secret text, refresh_token text,
	name text DEFAULT NULL, start_date date DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_airbyte.create_source(
		create_google_ads_source.tenant_id, 'google-ads',
		coalesce(create_google_ads_source.name,
				 'Google Ads - ' || coalesce(create_google_ads_source.customer_id, 'all customers')),
		jsonb_strip_nulls(jsonb_build_object(
			'customer_id', create_google_ads_source.customer_id,
			'credentials', jsonb_build_object(
				'developer_token', create_google_ads_source.developer_token,
				'client_id', create_google_ads_source.client_id,
				'client_secret', create_google_ads_source.client_secret,
				'refresh_token', create_google_ads_source.refresh_token),
			'start_date', to_char(create_google_ads_source.start_date, 'YYYY-MM-DD'))));
$$;
COMMENT ON FUNCTION tenant_airbyte.create_google_ads_source(text, text, text, text, text, text, text, date) IS
	'create_source() for Google Ads with OAuth client credentials, a refresh token and a developer token; customer_id is a comma-separated list of customer ids (NULL: every accessible one). Named "Google Ads - <customer id>" unless a name is given.';

/* ------------------------------------------------------------------------
 * 5. Grants
 *
 * Functions are executable by PUBLIC unless revoked, so everything is
 * revoked first and the tenant-facing part granted back.  What a tenant
 * role is granted is safe because row-level security filters it: with no
 * tenant context it sees nothing.  Writes, provisioning and
 * administration are for superusers and roles granted them explicitly
 * (see doc/security.md).
 * ------------------------------------------------------------------------ */

REVOKE ALL ON ALL TABLES IN SCHEMA tenant_airbyte FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tenant_airbyte FROM PUBLIC;

GRANT USAGE ON SCHEMA tenant_airbyte TO PUBLIC;
GRANT SELECT ON tenant_airbyte.tenant_airbyte_workspaces TO PUBLIC;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.current_tenant(),
	tenant_airbyte.validate_tenant_id(text),
	tenant_airbyte.get_workspace_for_tenant(text),
	tenant_airbyte.active_workspaces()
	TO PUBLIC;

/*
 * Sources: reading them is filtered by row-level security, like the
 * workspaces.  Creating and deleting them and OAuth spend the Airbyte
 * credentials: an administrator grants those to the application role
 * (README.md, "Sources"); they refuse any tenant but the caller's own.
 */
GRANT SELECT ON tenant_airbyte.tenant_sources TO PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_airbyte.list_sources(text) TO PUBLIC;

/* Monitoring (see "Monitoring" above): counts and the worker, no rows. */
GRANT SELECT ON tenant_airbyte.worker_status TO pg_monitor;
GRANT SELECT (status, received_at) ON tenant_airbyte.webhook_inbox TO pg_monitor;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.worker_state(),
	tenant_airbyte.metrics()
	TO pg_monitor;

/* ------------------------------------------------------------------------
 * 6. Tenant data schemas (src/data/tenant_data.c, doc/security.md
 *    "Synced data")
 *
 * Each tenant's synced tables live in a schema of its own, named by
 * data_schema_for(tenant_id), written by a login role of its own (the
 * loader Airbyte's Postgres destination logs in as for that tenant).
 * ensure_tenant_data() creates both; the event trigger below binds every
 * table that appears in such a schema to its tenant in the same
 * transaction, so it is never readable unprotected:
 *
 *	 ENABLE and FORCE row level security, and one policy, named after the
 *	 schema, USING and WITH CHECK
 *	   (SELECT tenant_airbyte.current_tenant() = '<tenant id>'
 *			   OR session_user = '<the tenant's loader>')
 *
 * The policy holds literals rather than reading a mapping table, so a
 * tenant role needs no access to any mapping, and no column takes part:
 * as a scalar subquery it is evaluated once per query (an InitPlan), and
 * a row costs only the test of that one boolean.  (Without the subquery
 * the planner would keep it as a filter evaluated for every row.)
 * session_user, not current_user: a SECURITY DEFINER function or a view
 * owned by a loader runs as the loader but is called in someone else's
 * session, and must not see the loader's rows for them.
 * ------------------------------------------------------------------------ */

/* The name of a tenant's data schema (C, so authenticate() shares it). */
CREATE FUNCTION tenant_airbyte.data_schema_for(tenant_id text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_data_schema_for';
COMMENT ON FUNCTION tenant_airbyte.data_schema_for(text) IS
	'The data schema of a tenant: "t_" + the id lowercased with other characters turned into "_" (at most 36) + "_" + 16 hex digits of the SHA-256 of the exact id. A valid identifier of at most 55 bytes that needs no quoting; ids that differ only in characters it cannot hold still get different schemas.';

/* The loader role of a tenant: its schema's name + "_loader" (at most 62 bytes). */
CREATE FUNCTION tenant_airbyte.loader_role_for(tenant_id text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_airbyte.data_schema_for(tenant_id) OPERATOR(pg_catalog.||) '_loader';
$$;
COMMENT ON FUNCTION tenant_airbyte.loader_role_for(text) IS
	'The login role Airbyte''s Postgres destination uses for a tenant: data_schema_for(tenant_id) || ''_loader''.';

CREATE FUNCTION tenant_airbyte.data_tenant_roles()
RETURNS text[]
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'tenant_airbyte_data_tenant_roles';
COMMENT ON FUNCTION tenant_airbyte.data_tenant_roles() IS
	'Internal: the role names of tenant_airbyte.tenant_roles, the roles granted SELECT on every table in tenant data schemas.';

CREATE FUNCTION tenant_airbyte.data_keep_on_purge()
RETURNS boolean
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'tenant_airbyte_data_keep_on_purge';
COMMENT ON FUNCTION tenant_airbyte.data_keep_on_purge() IS
	'Internal: tenant_airbyte.keep_data_on_purge.';

CREATE FUNCTION tenant_airbyte.new_loader_secret(OUT password text, OUT verifier text)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_new_loader_secret';
COMMENT ON FUNCTION tenant_airbyte.new_loader_secret() IS
	'Internal: a random loader password (64 hex digits from pg_strong_random) and its SCRAM-SHA-256 verifier, which is all that ALTER ROLE ... PASSWORD is ever given.';

ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ADD COLUMN data_schema text
	GENERATED ALWAYS AS (tenant_airbyte.data_schema_for(tenant_id)) STORED;
COMMENT ON COLUMN tenant_airbyte.tenant_airbyte_workspaces.data_schema IS
	'The schema the tenant''s synced tables live in (data_schema_for(tenant_id)); generated, so it can never point at another tenant''s schema. Created by ensure_tenant_data() with the tenant''s destination.';

/*
 * tenant_data: one row per tenant whose data schema and loader exist.
 * Holds the loader's password in clear, because Airbyte's destination
 * needs it: forced row-level security with no policy and no grant, so
 * only superusers read it (like jwt_keys).  It outlives the workspace row
 * when tenant_airbyte.keep_data_on_purge keeps a purged tenant's data.
 */
CREATE TABLE tenant_airbyte.tenant_data (
	tenant_id varchar(255) PRIMARY KEY,
	data_schema text NOT NULL UNIQUE,
	loader_role text NOT NULL UNIQUE,
	loader_password text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	password_changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_airbyte.tenant_data IS
	'Each tenant''s data schema and loader role, with the loader''s password (superusers only: forced row-level security, no policy, no grant).';
COMMENT ON COLUMN tenant_airbyte.tenant_data.loader_password IS
	'The loader''s password, for the tenant''s Airbyte destination ({{loader_password}}). The role itself only ever received its SCRAM verifier.';

ALTER TABLE tenant_airbyte.tenant_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_data FORCE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.tenant_data', '');

/*
 * is_data_schema, is_loader_role: what the event trigger, running with the
 * rights of whoever issued the DDL, may know of tenant_data.  Schema
 * names are visible in pg_namespace to every role anyway.
 */
CREATE FUNCTION tenant_airbyte.is_data_schema(schema_name text)
RETURNS boolean
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT FROM tenant_airbyte.tenant_data AS d
					WHERE d.data_schema OPERATOR(pg_catalog.=) schema_name);
$$;
COMMENT ON FUNCTION tenant_airbyte.is_data_schema(text) IS
	'Whether a schema is a tenant''s data schema.';

CREATE FUNCTION tenant_airbyte.is_loader_role(role_name text)
RETURNS boolean
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT FROM tenant_airbyte.tenant_data AS d
					WHERE d.loader_role OPERATOR(pg_catalog.=) role_name);
$$;
COMMENT ON FUNCTION tenant_airbyte.is_loader_role(text) IS
	'Whether a role is a tenant''s loader.';

/*
 * bind_data_relation: makes a relation in a tenant's data schema what the
 * banner above says.  A table gets the policy of the schema it is in now
 * (a table moved in from another tenant's schema loses the old tenant's
 * policy, and any other policy, first), RLS enabled and forced, and
 * SELECT (with USAGE on the schema) for tenant_airbyte.tenant_roles; a
 * view gets security_invoker, so it reads the tables with the rights of
 * whoever queries it.  Idempotent and
 * quiet when all is in place, which is what ends the recursion: the
 * commands it runs fire the event trigger again and find nothing to do.
 * A relation outside every data schema is left as it is: a table moved
 * out keeps its policy, still bound to the tenant whose rows it holds.
 *
 * strict (the caller is no superuser): a table that was bound already
 * and now has row-level security off or not forced was turned off on
 * purpose by its owner, the loader; that is refused, not repaired.
 * Anyone may call it: it only ever tightens.
 */
CREATE FUNCTION tenant_airbyte.bind_data_relation(relation oid, strict boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel record;
	binding tenant_airbyte.tenant_data;
	old_policy record;
	reader text;
BEGIN
	SELECT c.oid, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
		   c.reloptions, n.nspname
	  INTO rel
	  FROM pg_catalog.pg_class AS c
	  JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 WHERE c.oid OPERATOR(pg_catalog.=) relation;
	IF NOT FOUND THEN
		RETURN;
	END IF;

	SELECT d.* INTO binding
	  FROM tenant_airbyte.tenant_data AS d
	 WHERE d.data_schema OPERATOR(pg_catalog.=) rel.nspname;
	IF NOT FOUND THEN
		RETURN;
	END IF;

	IF rel.relkind IN ('r', 'p') THEN
		IF EXISTS (SELECT FROM pg_catalog.pg_policy AS p
					WHERE p.polrelid OPERATOR(pg_catalog.=) rel.oid
					  AND p.polname OPERATOR(pg_catalog.=) binding.data_schema) THEN
			IF strict AND NOT (rel.relrowsecurity AND rel.relforcerowsecurity) THEN
				RAISE EXCEPTION 'row-level security of table %.% cannot be turned off',
						rel.nspname, rel.relname
					USING ERRCODE = 'insufficient_privilege',
						  DETAIL = 'Tables in tenant data schemas are bound to their tenant by forced row-level security.',
						  HINT = 'A superuser may drop the table instead.';
			END IF;
		ELSE
			FOR old_policy IN
				SELECT p.polname FROM pg_catalog.pg_policy AS p
				 WHERE p.polrelid OPERATOR(pg_catalog.=) rel.oid
			LOOP
				EXECUTE pg_catalog.format('DROP POLICY %I ON %I.%I',
										  old_policy.polname, rel.nspname, rel.relname);
			END LOOP;
			EXECUTE pg_catalog.format(
				'CREATE POLICY %I ON %I.%I'
				' USING ((SELECT tenant_airbyte.current_tenant() OPERATOR(pg_catalog.=) %L'
				' OR session_user OPERATOR(pg_catalog.=) %L::pg_catalog.name))'
				' WITH CHECK ((SELECT tenant_airbyte.current_tenant() OPERATOR(pg_catalog.=) %L'
				' OR session_user OPERATOR(pg_catalog.=) %L::pg_catalog.name))',
				binding.data_schema, rel.nspname, rel.relname,
				binding.tenant_id, binding.loader_role,
				binding.tenant_id, binding.loader_role);
		END IF;
		IF NOT (rel.relrowsecurity AND rel.relforcerowsecurity) THEN
			EXECUTE pg_catalog.format(
				'ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY',
				rel.nspname, rel.relname);
		END IF;
	ELSIF rel.relkind OPERATOR(pg_catalog.=) 'v' THEN
		IF NOT COALESCE('security_invoker=true' OPERATOR(pg_catalog.=) ANY (rel.reloptions), false) THEN
			EXECUTE pg_catalog.format('ALTER VIEW %I.%I SET (security_invoker = true)',
									  rel.nspname, rel.relname);
		END IF;
	ELSIF rel.relkind IN ('m', 'f') THEN
		RAISE EXCEPTION '%.% cannot be a % in a tenant data schema', rel.nspname, rel.relname,
				CASE rel.relkind WHEN 'm' THEN 'materialized view' ELSE 'foreign table' END
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Row-level security cannot protect it.';
	ELSE
		RETURN;					-- sequences, indexes, composite types: no rows of their own
	END IF;

	FOREACH reader IN ARRAY tenant_airbyte.data_tenant_roles() LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles AS r
						WHERE r.rolname OPERATOR(pg_catalog.=) reader) THEN
			RAISE WARNING 'role "%" named in tenant_airbyte.tenant_roles does not exist', reader;
			CONTINUE;
		END IF;
		IF NOT pg_catalog.has_schema_privilege(reader, rel.nspname, 'USAGE') THEN
			EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %I', rel.nspname, reader);
		END IF;
		IF NOT pg_catalog.has_table_privilege(reader, rel.oid, 'SELECT') THEN
			EXECUTE pg_catalog.format('GRANT SELECT ON %I.%I TO %I',
									  rel.nspname, rel.relname, reader);
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.bind_data_relation(oid, boolean) IS
	'Internal (the event trigger''s): binds a table in a tenant data schema to its tenant (forced row-level security, the tenant''s policy, SELECT for tenant_airbyte.tenant_roles) or gives a view there security_invoker; does nothing elsewhere.';

/*
 * data_schema_ddl: the event trigger.  It runs with the rights of the role
 * that issued the DDL, so what it may decide on its own is little: it
 * calls bind_data_relation() for every table and view a command left in a
 * data schema, and refuses, for every role but a superuser, what would let
 * the owner of a table there (a loader) undo the binding or act as
 * someone else: policies, functions and operators in a data schema, and
 * schemas of a loader's own (a loader has CREATE on the database only
 * because Airbyte's destination runs CREATE SCHEMA IF NOT EXISTS on its
 * existing schema).  Materialized and foreign tables are refused to
 * everyone: row-level security cannot cover them.
 */
CREATE FUNCTION tenant_airbyte.data_schema_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	cmd record;
	privileged boolean;
	target_schema text;
BEGIN
	SELECT r.rolsuper INTO privileged
	  FROM pg_catalog.pg_roles AS r
	 WHERE r.rolname OPERATOR(pg_catalog.=) current_user;

	FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
		IF cmd.command_tag OPERATOR(pg_catalog.=) 'CREATE SCHEMA' THEN
			IF NOT privileged AND tenant_airbyte.is_loader_role(current_user) THEN
				RAISE EXCEPTION 'a tenant''s loader cannot create schemas'
					USING ERRCODE = 'insufficient_privilege',
						  DETAIL = pg_catalog.format('Role %s writes only into its tenant''s data schema.', current_user);
			END IF;
			CONTINUE;
		END IF;

		target_schema := cmd.schema_name;
		IF cmd.object_type OPERATOR(pg_catalog.=) 'policy' THEN
			SELECT n.nspname INTO target_schema
			  FROM pg_catalog.pg_policy AS p
			  JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
			  JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
			 WHERE p.oid OPERATOR(pg_catalog.=) cmd.objid;
		ELSIF cmd.object_type OPERATOR(pg_catalog.=) 'rule' THEN
			SELECT n.nspname INTO target_schema
			  FROM pg_catalog.pg_rewrite AS w
			  JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) w.ev_class
			  JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
			 WHERE w.oid OPERATOR(pg_catalog.=) cmd.objid;
		END IF;
		CONTINUE WHEN target_schema IS NULL OR NOT tenant_airbyte.is_data_schema(target_schema);

		IF cmd.object_type IN ('table', 'view', 'materialized view', 'foreign table') THEN
			PERFORM tenant_airbyte.bind_data_relation(cmd.objid, NOT privileged);
		ELSIF NOT privileged AND cmd.object_type IN
				('policy', 'function', 'procedure', 'aggregate', 'operator',
				 'operator class', 'operator family', 'rule') THEN
			RAISE EXCEPTION 'cannot create or alter a % in tenant data schema %',
					cmd.object_type, target_schema
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = 'Tables in tenant data schemas are bound to their tenant; only a superuser may add code or policies there.';
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.data_schema_ddl() IS
	'Event trigger (ddl_command_end): binds every table or view that appears in a tenant data schema (CREATE TABLE, CREATE TABLE AS, SELECT INTO, ALTER TABLE ... RENAME / SET SCHEMA, CREATE VIEW) to its tenant, and refuses policies, code and materialized views there to non-superusers.';

CREATE EVENT TRIGGER tenant_airbyte_data_schema_ddl
	ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE',
				 'CREATE VIEW', 'ALTER VIEW',
				 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
				 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
				 'CREATE POLICY', 'ALTER POLICY', 'CREATE RULE',
				 'CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE',
				 'CREATE AGGREGATE', 'ALTER AGGREGATE', 'CREATE OPERATOR', 'ALTER OPERATOR',
				 'CREATE OPERATOR CLASS', 'CREATE OPERATOR FAMILY', 'CREATE SCHEMA')
	EXECUTE FUNCTION tenant_airbyte.data_schema_ddl();

/*
 * ensure_tenant_data: the tenant's data schema and loader, created once
 * and brought up to date on every call (grants for
 * tenant_airbyte.tenant_roles, bindings of tables already there).  The
 * pipeline calls it before it creates the tenant's destination.  The
 * schema belongs to the caller (a superuser), not to the loader, so the
 * loader can neither drop nor rename it.  A role or schema of the same
 * name that this database did not create is refused, never adopted: it
 * could be someone's privileged role, or a schema someone else owns.
 */
CREATE FUNCTION tenant_airbyte.ensure_tenant_data(tenant_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_schema text;
	v_loader text;
	v_created boolean := false;
	v_secret record;
	v_reader text;
	v_relation oid;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	v_schema := tenant_airbyte.data_schema_for(tenant_id);
	v_loader := tenant_airbyte.loader_role_for(tenant_id);
	PERFORM pg_catalog.pg_advisory_xact_lock(
		pg_catalog.hashtextextended('tenant_airbyte.data:' OPERATOR(pg_catalog.||) tenant_id, 0));

	IF NOT EXISTS (SELECT FROM tenant_airbyte.tenant_data AS d
					WHERE d.tenant_id OPERATOR(pg_catalog.=) ensure_tenant_data.tenant_id) THEN
		IF EXISTS (SELECT FROM pg_catalog.pg_roles AS r
					WHERE r.rolname OPERATOR(pg_catalog.=) v_loader) THEN
			RAISE EXCEPTION 'role "%" exists but is not the loader of tenant "%" in this database',
					v_loader, tenant_id
				USING ERRCODE = 'duplicate_object',
					  HINT = 'Roles are shared by every database of the cluster: drop the role, or keep tenant data of this tenant in one database only.';
		END IF;
		IF EXISTS (SELECT FROM pg_catalog.pg_namespace AS n
					WHERE n.nspname OPERATOR(pg_catalog.=) v_schema) THEN
			RAISE EXCEPTION 'schema "%" exists but was not created for tenant "%"', v_schema, tenant_id
				USING ERRCODE = 'duplicate_schema',
					  HINT = 'Rename or drop that schema; the name is reserved for the tenant''s synced data.';
		END IF;

		v_secret := tenant_airbyte.new_loader_secret();
		EXECUTE pg_catalog.format(
			'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT'
			' NOREPLICATION NOBYPASSRLS PASSWORD %L', v_loader, v_secret.verifier);
		INSERT INTO tenant_airbyte.tenant_data (tenant_id, data_schema, loader_role, loader_password)
		VALUES (tenant_id, v_schema, v_loader, v_secret.password);
		EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_schema);
		EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', v_schema,
			'Synced data of tenant ' OPERATOR(pg_catalog.||) tenant_id
			OPERATOR(pg_catalog.||) ', written by its loader, read under row-level security.');
		v_created := true;
	END IF;

	-- Each grant only when missing: a call that finds everything in place writes nothing.
	IF NOT (pg_catalog.has_schema_privilege(v_loader, v_schema, 'USAGE')
			AND pg_catalog.has_schema_privilege(v_loader, v_schema, 'CREATE')) THEN
		EXECUTE pg_catalog.format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', v_schema, v_loader);
	END IF;
	IF NOT pg_catalog.has_database_privilege(v_loader, pg_catalog.current_database(), 'CREATE') THEN
		EXECUTE pg_catalog.format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO %I',
								  pg_catalog.current_database(), v_loader);
	END IF;
	FOREACH v_reader IN ARRAY tenant_airbyte.data_tenant_roles() LOOP
		IF EXISTS (SELECT FROM pg_catalog.pg_roles AS r
					WHERE r.rolname OPERATOR(pg_catalog.=) v_reader)
		   AND NOT pg_catalog.has_schema_privilege(v_reader, v_schema, 'USAGE') THEN
			EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %I', v_schema, v_reader);
		END IF;
	END LOOP;
	FOR v_relation IN
		SELECT c.oid FROM pg_catalog.pg_class AS c
		 WHERE c.relnamespace OPERATOR(pg_catalog.=) v_schema::pg_catalog.regnamespace
		   AND c.relkind IN ('r', 'p', 'v')
	LOOP
		PERFORM tenant_airbyte.bind_data_relation(v_relation, false);
	END LOOP;

	RETURN pg_catalog.jsonb_build_object('tenant_id', tenant_id, 'data_schema', v_schema,
										 'loader_user', v_loader, 'created', v_created);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.ensure_tenant_data(text) IS
	'Creates the tenant''s data schema and loader role (LOGIN, generated password, CREATE on that schema only) unless they exist, and brings grants and table bindings up to date: {"tenant_id", "data_schema", "loader_user", "created"}. Superusers (or a role granted it).';

/*
 * loader_credentials: what a destination template's {{tenant_schema}},
 * {{loader_user}} and {{loader_password}} stand for, as
 * {"tenant_schema", "user", "password"}.  A tenant that has no data schema
 * yet gets one first (ensure_tenant_data()), so rendering a tenant's
 * destination is enough to have somewhere for its syncs to land.
 * Superusers only; the answer goes to Airbyte, never into a log.
 */
CREATE FUNCTION tenant_airbyte.loader_credentials(tenant_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_row tenant_airbyte.tenant_data;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	SELECT d.* INTO v_row FROM tenant_airbyte.tenant_data AS d
	 WHERE d.tenant_id OPERATOR(pg_catalog.=) loader_credentials.tenant_id;
	IF NOT FOUND THEN
		PERFORM tenant_airbyte.ensure_tenant_data(tenant_id);
		SELECT d.* INTO STRICT v_row FROM tenant_airbyte.tenant_data AS d
		 WHERE d.tenant_id OPERATOR(pg_catalog.=) loader_credentials.tenant_id;
	END IF;
	RETURN pg_catalog.jsonb_build_object('tenant_schema', v_row.data_schema,
										 'user', v_row.loader_role,
										 'password', v_row.loader_password);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.loader_credentials(text) IS
	'{"tenant_schema", "user", "password"}: the tenant''s data schema, loader role and loader password, for its Airbyte destination (template placeholders {{tenant_schema}}, {{loader_user}}, {{loader_password}}); creates them first when the tenant has none. Superusers only.';

/*
 * rotate_loader_password: a new password for the tenant's loader.  The
 * role gets the new SCRAM verifier and tenant_data the new password in
 * one transaction; sessions already logged in keep running.  The same
 * transaction records an update_destination operation
 * (src/operations/kind_update_destination.c) when the tenant has a
 * destination: once it commits, the worker renders the destination's
 * configuration again (reading the new password from tenant_data, never
 * from the operation, which holds only the tenant) and sends it with
 * PATCH /destinations/{id}.  A sync that starts between the commit and
 * that PATCH fails to log in; the next one succeeds.  Without a
 * destination there is nothing to update (one created later is rendered
 * with the new password).
 */
CREATE FUNCTION tenant_airbyte.rotate_loader_password(tenant_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_row tenant_airbyte.tenant_data;
	v_secret record;
	v_operation bigint;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	SELECT d.* INTO v_row FROM tenant_airbyte.tenant_data AS d
	 WHERE d.tenant_id OPERATOR(pg_catalog.=) rotate_loader_password.tenant_id
	   FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant "%" has no loader', tenant_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'Call tenant_airbyte.ensure_tenant_data() first.';
	END IF;

	v_secret := tenant_airbyte.new_loader_secret();
	EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', v_row.loader_role, v_secret.verifier);
	UPDATE tenant_airbyte.tenant_data AS d
	   SET loader_password = v_secret.password, password_changed_at = pg_catalog.now()
	 WHERE d.tenant_id OPERATOR(pg_catalog.=) v_row.tenant_id;

	-- An unfinished update of this tenant's destination renders the
	-- configuration again after its PATCH if it changed meanwhile, so a
	-- conflict here loses nothing.
	IF EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS t
				WHERE t.tenant_id OPERATOR(pg_catalog.=) v_row.tenant_id) THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
		VALUES ('update_destination', v_row.tenant_id, '')
		ON CONFLICT DO NOTHING
		RETURNING id INTO v_operation;
		IF v_operation IS NULL THEN
			SELECT o.id INTO v_operation FROM tenant_airbyte.operations AS o
			 WHERE o.tenant_id OPERATOR(pg_catalog.=) v_row.tenant_id
			   AND o.kind OPERATOR(pg_catalog.=) 'update_destination'
			   AND o.status IN ('pending', 'in_flight');
		END IF;
	END IF;

	RETURN pg_catalog.jsonb_build_object('tenant_id', v_row.tenant_id,
										 'loader_user', v_row.loader_role,
										 'password_changed_at', pg_catalog.now(),
										 'destination_update_operation', v_operation);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.rotate_loader_password(text) IS
	'Gives the tenant''s loader a new generated password (the role receives only its SCRAM verifier) and, when the tenant has a destination, records the update_destination operation that sends it to Airbyte once the transaction commits ({"destination_update_operation": its id}). Superusers only.';

/*
 * drop_tenant_data: the tenant's data schema with every synced table in
 * it, and its loader role.  Purge calls it through the trigger below when
 * a workspace row is deleted, unless tenant_airbyte.keep_data_on_purge.
 */
CREATE FUNCTION tenant_airbyte.drop_tenant_data(tenant_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
	v_row tenant_airbyte.tenant_data;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	PERFORM pg_catalog.pg_advisory_xact_lock(
		pg_catalog.hashtextextended('tenant_airbyte.data:' OPERATOR(pg_catalog.||) tenant_id, 0));
	DELETE FROM tenant_airbyte.tenant_data AS d
	 WHERE d.tenant_id OPERATOR(pg_catalog.=) drop_tenant_data.tenant_id
	RETURNING d.* INTO v_row;
	IF NOT FOUND THEN
		RETURN false;
	END IF;

	EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', v_row.data_schema);
	IF EXISTS (SELECT FROM pg_catalog.pg_roles AS r
				WHERE r.rolname OPERATOR(pg_catalog.=) v_row.loader_role) THEN
		EXECUTE pg_catalog.format('DROP OWNED BY %I', v_row.loader_role);
		EXECUTE pg_catalog.format('DROP ROLE %I', v_row.loader_role);
	END IF;
	RETURN true;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.drop_tenant_data(text) IS
	'Drops the tenant''s data schema (every synced table in it) and its loader role; false when it had none. Superusers only.';

/* Purge takes the tenant's data with its workspace row. */
CREATE FUNCTION tenant_airbyte.drop_data_with_workspace()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT tenant_airbyte.data_keep_on_purge() THEN
		PERFORM tenant_airbyte.drop_tenant_data(OLD.tenant_id);
	END IF;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.drop_data_with_workspace() IS
	'Trigger: when a tenant''s workspace row goes (purge), its data schema and loader go too, unless tenant_airbyte.keep_data_on_purge.';

CREATE TRIGGER tenant_airbyte_workspaces_drop_data
	AFTER DELETE ON tenant_airbyte.tenant_airbyte_workspaces
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.drop_data_with_workspace();

/*
 * Grants.  Section 5 revoked what existed then; these functions are new.
 * The event trigger's helpers are PUBLIC because it runs with the rights
 * of whoever issues DDL; each only answers a yes/no about a schema name
 * every role can see, or tightens a binding.
 */
REVOKE ALL ON tenant_airbyte.tenant_data FROM PUBLIC;
REVOKE ALL ON FUNCTION
	tenant_airbyte.data_tenant_roles(),
	tenant_airbyte.data_keep_on_purge(),
	tenant_airbyte.new_loader_secret(),
	tenant_airbyte.ensure_tenant_data(text),
	tenant_airbyte.loader_credentials(text),
	tenant_airbyte.rotate_loader_password(text),
	tenant_airbyte.drop_tenant_data(text),
	tenant_airbyte.drop_data_with_workspace(),
	tenant_airbyte.data_schema_ddl()
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.data_schema_for(text),
	tenant_airbyte.loader_role_for(text),
	tenant_airbyte.is_data_schema(text),
	tenant_airbyte.is_loader_role(text),
	tenant_airbyte.bind_data_relation(oid, boolean)
	TO PUBLIC;

/* ------------------------------------------------------------------------
 * 7. The background worker's role
 *
 * The worker connects as tenant_airbyte_worker, not as a superuser: it
 * can read and write the extension's tables of every tenant (BYPASSRLS)
 * and execute the few internal functions its steps call, and nothing
 * else.  It owns nothing, so no one can make it run code by owning what
 * it touches; it runs with search_path = pg_catalog, pg_temp and schema
 * qualified SQL, so an operator or function created in another schema is
 * never picked; and it runs with session_replication_role = replica, so
 * that a trigger someone with TRIGGER rights adds to one of its tables
 * does not fire for its writes.  The extension's own triggers that must
 * fire for it are ENABLE ALWAYS (an ALWAYS trigger needs the table's
 * owner to enable it).  LOGIN is required for a background worker's
 * connection; the role has no password, and pg_hba.conf should refuse it
 * every connection (doc/security.md).
 *
 * This section comes last but for the install-time check: the loop at its
 * end reaches the internal (foreign key) triggers of every table above.
 *
 * Roles belong to the cluster, not to a database: the role is created
 * once and survives DROP EXTENSION.  Its attributes are set again here in
 * case someone created a role of that name first.
 * ------------------------------------------------------------------------ */

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles
					WHERE rolname OPERATOR(pg_catalog.=) 'tenant_airbyte_worker') THEN
		CREATE ROLE tenant_airbyte_worker;
	END IF;
END;
$$;
ALTER ROLE tenant_airbyte_worker LOGIN BYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE
	NOREPLICATION NOINHERIT PASSWORD NULL;
COMMENT ON ROLE tenant_airbyte_worker IS
	'The tenant_airbyte background worker: BYPASSRLS, rights only on the tenant_airbyte schema''s own tables and internal functions, no password.';

GRANT USAGE ON SCHEMA tenant_airbyte TO tenant_airbyte_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON
	tenant_airbyte.tenant_airbyte_workspaces,
	tenant_airbyte.webhook_inbox,
	tenant_airbyte.operations,
	tenant_airbyte.tenant_sources,
	tenant_airbyte.webhook_dedupe
	TO tenant_airbyte_worker;
GRANT USAGE ON SEQUENCE tenant_airbyte.operations_id_seq TO tenant_airbyte_worker;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.current_tenant(),
	tenant_airbyte.validate_tenant_id(text),
	tenant_airbyte.touch_updated_at(),
	tenant_airbyte.workspace_name_for(text, text),
	tenant_airbyte.workspace_name_candidate(text, text, integer)
	TO tenant_airbyte_worker;

/*
 * Only a superuser adds triggers to the extension's tables.  A role that
 * was granted TRIGGER on them (GRANT ALL does that) could otherwise put
 * code of its own on webhook_inbox and have it run with the rights of
 * whoever writes there: receive_webhook() is SECURITY DEFINER, so that
 * would be the extension's owner.  (The worker's writes and
 * receive_webhook()'s fire no such trigger anyway: they run with
 * session_replication_role = replica; this is the second wall.)  The
 * check runs at the end of CREATE TRIGGER, so a refused trigger is
 * rolled back with its statement.
 */
CREATE FUNCTION tenant_airbyte.refuse_foreign_triggers()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record;
BEGIN
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r
		 WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
		RETURN;
	END IF;
	FOR c IN
		SELECT t.tgname, t.tgrelid::pg_catalog.regclass AS rel
		  FROM pg_catalog.pg_event_trigger_ddl_commands() AS d
		  JOIN pg_catalog.pg_trigger AS t ON t.oid OPERATOR(pg_catalog.=) d.objid
		  JOIN pg_catalog.pg_class AS k ON k.oid OPERATOR(pg_catalog.=) t.tgrelid
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
		   AND k.relnamespace OPERATOR(pg_catalog.=) 'tenant_airbyte'::pg_catalog.regnamespace
	LOOP
		RAISE EXCEPTION 'only a superuser may create a trigger on %', c.rel
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Trigger %I would run with the rights of whoever writes to %s, including SECURITY DEFINER functions of tenant_airbyte.', c.tgname, c.rel),
				  HINT = 'Grant administrators SELECT, INSERT, UPDATE, DELETE on the extension''s tables, not ALL.';
	END LOOP;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.refuse_foreign_triggers() IS
	'Event trigger: refuses CREATE TRIGGER on a tenant_airbyte table by anyone but a superuser.';
REVOKE ALL ON FUNCTION tenant_airbyte.refuse_foreign_triggers() FROM PUBLIC;

CREATE EVENT TRIGGER tenant_airbyte_refuse_foreign_triggers
	ON ddl_command_end
	WHEN TAG IN ('CREATE TRIGGER')
	EXECUTE FUNCTION tenant_airbyte.refuse_foreign_triggers();

/* The triggers that must fire for the worker's writes too (and, for inbox_wake,
 * for those of receive_webhook(), which runs with session_replication_role
 * = replica as well). */
ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ENABLE ALWAYS TRIGGER tenant_airbyte_workspaces_touch_updated_at;
ALTER TABLE tenant_airbyte.webhook_inbox
	ENABLE ALWAYS TRIGGER webhook_inbox_touch_updated_at;
ALTER TABLE tenant_airbyte.webhook_inbox
	ENABLE ALWAYS TRIGGER webhook_inbox_wake;
ALTER TABLE tenant_airbyte.operations
	ENABLE ALWAYS TRIGGER operations_touch_updated_at;
/*
 * The foreign key of tenant_sources is enforced by internal triggers on
 * both tables; they must fire for the worker too (a purge cascades).
 */
DO $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT c.relname, g.tgname
		  FROM pg_catalog.pg_trigger AS g
		  JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
		 WHERE g.tgisinternal
		   AND c.relnamespace OPERATOR(pg_catalog.=) 'tenant_airbyte'::pg_catalog.regnamespace
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE tenant_airbyte.%I ENABLE ALWAYS TRIGGER %I',
								  t.relname, t.tgname);
	END LOOP;
END;
$$;

/* ------------------------------------------------------------------------
 * 8. Per-tenant pipelines
 *
 * A pipeline template says what every tenant gets besides its workspace:
 * a destination (where its synced data goes), the defaults of the
 * connection each of its sources gets to that destination (schedule,
 * namespace, schema-change policy, sync mode, streams, a first sync on
 * creation), and workspace settings (regionId for data residency,
 * notifications).  The template named "default" applies to every tenant
 * that assign_template() did not give another one.  doc/pipelines.md
 * explains the whole lifecycle.
 *
 * Where secrets live.  A destination configuration carries a credential
 * (a database password).  It is kept in pipeline_templates.destination,
 * because a template must be renderable again at any time (a new tenant,
 * apply_template(), a retry after a crash) and so needs the value itself,
 * durably, in WAL like everything else the worker relies on; a second
 * table or column would sit behind the same privilege boundary and add
 * nothing.  That boundary is: the table is granted to no one, and its
 * row-level security is enabled and forced with no policy, so even a role
 * that was granted SELECT on every table of the schema reads no row
 * unless it is a superuser or BYPASSRLS.  Values are never quoted in an
 * error (messages name fields only), a statement that calls
 * set_pipeline_template() is never written to the server log (the log
 * filter, src/core/secret_log_filter.c), and tenant_destinations records
 * the destination's id, type and name, never its configuration.
 * Credentials that differ per tenant ({{loader_password}}) are not in the
 * template at all: they are filled in when the request is built.
 * ------------------------------------------------------------------------ */

CREATE TABLE tenant_airbyte.pipeline_templates (
	name text PRIMARY KEY,
	destination jsonb NOT NULL,
	connection jsonb NOT NULL DEFAULT '{}',
	workspace jsonb NOT NULL DEFAULT '{}',
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT pipeline_templates_name_check
		CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
	CONSTRAINT pipeline_templates_shape_check
		CHECK (jsonb_typeof(destination) = 'object' AND jsonb_typeof(connection) = 'object'
			   AND jsonb_typeof(workspace) = 'object')
);

CREATE TRIGGER pipeline_templates_touch_updated_at
	BEFORE UPDATE ON tenant_airbyte.pipeline_templates
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.touch_updated_at();

COMMENT ON TABLE tenant_airbyte.pipeline_templates IS
	'Pipeline templates set by set_pipeline_template(): the destination, connection defaults and workspace settings each tenant gets. Holds destination credentials: superusers (and BYPASSRLS roles) only.';
COMMENT ON COLUMN tenant_airbyte.pipeline_templates.name IS
	'Template name; "default" applies to every tenant without an assignment in tenant_templates.';
COMMENT ON COLUMN tenant_airbyte.pipeline_templates.destination IS
	'{"destinationType" | "definitionId", "configuration": {...}, "name"?}; string values may hold {{tenant_id}}, {{tenant_schema}}, {{workspace_name}}, {{loader_user}}, {{loader_password}}. May hold secrets.';
COMMENT ON COLUMN tenant_airbyte.pipeline_templates.connection IS
	'Connection defaults: schedule (manual or a Quartz cron expression), namespaceDefinition, namespaceFormat, prefix, nonBreakingSchemaUpdatesBehavior, syncMode, streams, sync_on_create.';
COMMENT ON COLUMN tenant_airbyte.pipeline_templates.workspace IS
	'Workspace settings sent when the workspace is created: regionId (data residency), notifications.';
COMMENT ON COLUMN tenant_airbyte.pipeline_templates.created_at IS
	'When the template was first set.';
COMMENT ON COLUMN tenant_airbyte.pipeline_templates.updated_at IS
	'When set_pipeline_template() last changed it.';

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.pipeline_templates', '');

/* Which template a tenant follows, when it is not "default". */
CREATE TABLE tenant_airbyte.tenant_templates (
	tenant_id varchar(255) PRIMARY KEY,
	template text NOT NULL
		REFERENCES tenant_airbyte.pipeline_templates (name) ON UPDATE CASCADE,
	assigned_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT tenant_templates_tenant_id_check CHECK (btrim(tenant_id) <> '')
);

CREATE INDEX idx_tenant_templates_template
	ON tenant_airbyte.tenant_templates (template);

COMMENT ON TABLE tenant_airbyte.tenant_templates IS
	'Tenants assigned a pipeline template other than "default" (assign_template()).';
COMMENT ON COLUMN tenant_airbyte.tenant_templates.tenant_id IS
	'Frontegg organization ID of the tenant.';
COMMENT ON COLUMN tenant_airbyte.tenant_templates.template IS
	'The pipeline template (pipeline_templates.name) the tenant follows.';
COMMENT ON COLUMN tenant_airbyte.tenant_templates.assigned_at IS
	'When assign_template() set it.';

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.tenant_templates', '');

/*
 * The tenant's destination in its workspace, created from its template.
 * The name is decided before the create is sent (the exactly-once rule of
 * workspaces: a lost answer is adopted by that name), so it is unique in
 * its workspace.  No configuration: it carries credentials.
 */
CREATE TABLE tenant_airbyte.tenant_destinations (
	tenant_id varchar(255) NOT NULL,
	airbyte_workspace_id uuid NOT NULL
		REFERENCES tenant_airbyte.tenant_airbyte_workspaces (airbyte_workspace_id)
		ON DELETE CASCADE,
	airbyte_destination_id uuid NOT NULL,
	destination_type varchar(255) NOT NULL,
	name varchar(255) NOT NULL,
	template text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT tenant_destinations_pkey PRIMARY KEY (tenant_id, airbyte_destination_id),
	CONSTRAINT tenant_destinations_name_key UNIQUE (airbyte_workspace_id, name),
	CONSTRAINT tenant_destinations_tenant_id_check CHECK (btrim(tenant_id) <> ''),
	CONSTRAINT tenant_destinations_name_check CHECK (btrim(name) <> '')
);

COMMENT ON TABLE tenant_airbyte.tenant_destinations IS
	'The Airbyte destination of each tenant, created from its pipeline template in its own workspace. Never holds the configuration.';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.tenant_id IS
	'Frontegg organization ID of the tenant that owns the destination (row-level security compares it with current_tenant()).';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.airbyte_workspace_id IS
	'The tenant''s Airbyte workspace the destination was created in.';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.airbyte_destination_id IS
	'Airbyte destination UUID (destinationId of POST /destinations).';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.destination_type IS
	'Airbyte destinationType, e.g. postgres.';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.name IS
	'Destination name in Airbyte, unique in the workspace (pipeline_destination_name()).';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.template IS
	'The pipeline template it was created from.';
COMMENT ON COLUMN tenant_airbyte.tenant_destinations.created_at IS
	'When the destination was recorded.';

/*
 * One connection per source, to the tenant's destination.  Both ends are
 * referenced with the tenant id, so a row can only join a source and a
 * destination of its own tenant.
 */
CREATE TABLE tenant_airbyte.tenant_connections (
	tenant_id varchar(255) NOT NULL,
	airbyte_workspace_id uuid NOT NULL
		REFERENCES tenant_airbyte.tenant_airbyte_workspaces (airbyte_workspace_id)
		ON DELETE CASCADE,
	airbyte_source_id uuid NOT NULL,
	airbyte_destination_id uuid NOT NULL,
	airbyte_connection_id uuid NOT NULL,
	name varchar(255) NOT NULL,
	status varchar(20) NOT NULL DEFAULT 'active',
	schedule text NOT NULL DEFAULT 'manual',
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT tenant_connections_pkey PRIMARY KEY (tenant_id, airbyte_connection_id),
	CONSTRAINT tenant_connections_name_key UNIQUE (airbyte_workspace_id, name),
	CONSTRAINT tenant_connections_source_key UNIQUE (tenant_id, airbyte_source_id),
	CONSTRAINT tenant_connections_source_fkey FOREIGN KEY (tenant_id, airbyte_source_id)
		REFERENCES tenant_airbyte.tenant_sources (tenant_id, airbyte_source_id) ON DELETE CASCADE,
	CONSTRAINT tenant_connections_destination_fkey FOREIGN KEY (tenant_id, airbyte_destination_id)
		REFERENCES tenant_airbyte.tenant_destinations (tenant_id, airbyte_destination_id) ON DELETE CASCADE,
	CONSTRAINT tenant_connections_status_check CHECK (status IN ('active', 'inactive')),
	CONSTRAINT tenant_connections_name_check CHECK (btrim(name) <> '')
);

CREATE INDEX idx_tenant_connections_destination
	ON tenant_airbyte.tenant_connections (tenant_id, airbyte_destination_id);

CREATE TRIGGER tenant_connections_touch_updated_at
	BEFORE UPDATE ON tenant_airbyte.tenant_connections
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.touch_updated_at();

COMMENT ON TABLE tenant_airbyte.tenant_connections IS
	'One Airbyte connection per tenant source, to the tenant''s destination, with its template''s schedule and namespace.';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.tenant_id IS
	'Frontegg organization ID of the tenant (row-level security compares it with current_tenant()).';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.airbyte_workspace_id IS
	'The tenant''s Airbyte workspace.';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.airbyte_source_id IS
	'The source (tenant_sources) the connection reads from.';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.airbyte_destination_id IS
	'The destination (tenant_destinations) it writes to.';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.airbyte_connection_id IS
	'Airbyte connection UUID (connectionId of POST /connections).';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.name IS
	'Connection name in Airbyte, unique in the workspace (pipeline_connection_name()).';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.status IS
	'active, or inactive while the tenant is deprovisioned (paused in Airbyte too).';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.schedule IS
	'manual, or the Quartz cron expression Airbyte runs it on.';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.created_at IS
	'When the connection was recorded.';
COMMENT ON COLUMN tenant_airbyte.tenant_connections.updated_at IS
	'When its status or schedule last changed.';

/* Every job of a tenant connection the worker has seen, with its last state. */
CREATE TABLE tenant_airbyte.tenant_syncs (
	tenant_id varchar(255) NOT NULL,
	airbyte_connection_id uuid NOT NULL,
	airbyte_job_id bigint NOT NULL,
	job_type varchar(20) NOT NULL DEFAULT 'sync',
	status varchar(20) NOT NULL,
	rows_synced bigint,
	bytes_synced bigint,
	started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	error text,

	CONSTRAINT tenant_syncs_pkey PRIMARY KEY (tenant_id, airbyte_job_id),
	CONSTRAINT tenant_syncs_connection_fkey FOREIGN KEY (tenant_id, airbyte_connection_id)
		REFERENCES tenant_airbyte.tenant_connections (tenant_id, airbyte_connection_id) ON DELETE CASCADE,
	CONSTRAINT tenant_syncs_job_type_check CHECK (job_type IN ('sync', 'reset', 'refresh', 'clear')),
	CONSTRAINT tenant_syncs_status_check
		CHECK (status IN ('pending', 'queued', 'running', 'incomplete', 'failed', 'succeeded', 'cancelled')),
	CONSTRAINT tenant_syncs_counts_check CHECK (rows_synced >= 0 AND bytes_synced >= 0)
);

/* What sync_status and "is a job of this connection running?" read. */
CREATE INDEX idx_tenant_syncs_connection
	ON tenant_airbyte.tenant_syncs (tenant_id, airbyte_connection_id, started_at DESC, airbyte_job_id DESC);

/* What the worker's poll of unfinished jobs reads. */
CREATE INDEX idx_tenant_syncs_unfinished
	ON tenant_airbyte.tenant_syncs (updated_at)
	WHERE status IN ('pending', 'queued', 'running', 'incomplete');

CREATE TRIGGER tenant_syncs_touch_updated_at
	BEFORE UPDATE ON tenant_airbyte.tenant_syncs
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.touch_updated_at();

COMMENT ON TABLE tenant_airbyte.tenant_syncs IS
	'Airbyte jobs of tenant connections, started by trigger_sync(), by a template''s sync_on_create, or by Airbyte''s own schedule; the worker records each status change.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.tenant_id IS
	'Frontegg organization ID of the tenant (row-level security compares it with current_tenant()).';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.airbyte_connection_id IS
	'The connection (tenant_connections) the job runs.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.airbyte_job_id IS
	'Airbyte job id (jobId, int64).';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.job_type IS
	'Airbyte jobType: sync, reset, refresh or clear.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.status IS
	'Airbyte job status as Airbyte names it: pending, queued, running, incomplete, failed, succeeded, cancelled.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.rows_synced IS
	'rowsSynced as Airbyte last reported it.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.bytes_synced IS
	'bytesSynced as Airbyte last reported it.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.started_at IS
	'When the job started (Airbyte''s startTime).';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.updated_at IS
	'When the worker last recorded a change.';
COMMENT ON COLUMN tenant_airbyte.tenant_syncs.error IS
	'Why the job failed or could not be started or cancelled: Airbyte''s title and detail.';

ALTER TABLE tenant_airbyte.pipeline_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.pipeline_templates FORCE ROW LEVEL SECURITY;
/* No policy: only superusers and BYPASSRLS roles read templates. */

ALTER TABLE tenant_airbyte.tenant_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_airbyte.tenant_templates
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

ALTER TABLE tenant_airbyte.tenant_destinations ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_destinations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_airbyte.tenant_destinations
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

ALTER TABLE tenant_airbyte.tenant_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_airbyte.tenant_connections
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

ALTER TABLE tenant_airbyte.tenant_syncs ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.tenant_syncs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_airbyte.tenant_syncs
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

/* The latest job of every connection the caller may see (row-level security). */
CREATE VIEW tenant_airbyte.sync_status WITH (security_invoker = true) AS
	SELECT DISTINCT ON (c.tenant_id, c.airbyte_connection_id)
		   c.tenant_id,
		   c.airbyte_connection_id,
		   c.name AS connection_name,
		   c.status AS connection_status,
		   c.airbyte_source_id,
		   c.schedule,
		   s.airbyte_job_id,
		   s.job_type,
		   s.status,
		   s.rows_synced,
		   s.bytes_synced,
		   s.started_at,
		   s.updated_at,
		   s.error
	  FROM tenant_airbyte.tenant_connections AS c
	  LEFT JOIN tenant_airbyte.tenant_syncs AS s
		ON s.tenant_id OPERATOR(pg_catalog.=) c.tenant_id
	   AND s.airbyte_connection_id OPERATOR(pg_catalog.=) c.airbyte_connection_id
	 ORDER BY c.tenant_id, c.airbyte_connection_id, s.started_at DESC NULLS LAST, s.airbyte_job_id DESC NULLS LAST;

COMMENT ON VIEW tenant_airbyte.sync_status IS
	'One row per tenant connection the caller may see: the connection and its latest job (NULLs before the first). Row-level security applies (security_invoker).';

/*
 * Template validation.  One function per part, each raising 22023 with
 * the field's path ("connection.schedule") and the values the Airbyte API
 * allows; never a value, which may be a credential.
 */

/* Raises unless value is one of allowed; names the field and the allowed values. */
CREATE FUNCTION tenant_airbyte.pipeline_check_enum(field text, value jsonb, allowed text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL THEN
		RETURN;
	END IF;
	IF jsonb_typeof(value) IS DISTINCT FROM 'string'
	   OR NOT (value #>> '{}') OPERATOR(pg_catalog.=) ANY (allowed) THEN
		RAISE EXCEPTION '% must be one of: %', field, array_to_string(allowed, ', ')
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'These are the values Airbyte''s API accepts for this field.';
	END IF;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_check_enum(text, jsonb, text[]) IS
	'Internal to set_pipeline_template(): 22023 naming the field and the allowed values unless value is NULL or one of them.';

/* Raises when obj has a key outside allowed: a typo would otherwise be ignored. */
CREATE FUNCTION tenant_airbyte.pipeline_check_keys(field text, obj jsonb, allowed text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
BEGIN
	IF jsonb_typeof(obj) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION '% must be a JSON object', field
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR k IN SELECT jsonb_object_keys(obj) LOOP
		IF NOT k OPERATOR(pg_catalog.=) ANY (allowed) THEN
			RAISE EXCEPTION '%.% is not a known field', field, k
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = format('%s may have: %s.', field, array_to_string(allowed, ', '));
		END IF;
	END LOOP;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_check_keys(text, jsonb, text[]) IS
	'Internal to set_pipeline_template(): 22023 when obj is not an object or has a key that is not in allowed.';

/*
 * A Quartz cron expression as Airbyte takes it: seconds, minutes, hours,
 * day of month, month, day of week, optionally a year, each field made of
 * digits, names and * ? / , - # L W.  A Unix (five-field) expression is
 * refused here, with a hint, rather than by Airbyte for every tenant.
 */
CREATE FUNCTION tenant_airbyte.pipeline_is_cron(expression text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT expression ~ '^\s*([0-9A-Za-z*?/,#-]+\s+){5}[0-9A-Za-z*?/,#-]+(\s+[0-9*/,-]+)?\s*$';
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_is_cron(text) IS
	'True for a six- or seven-field Quartz cron expression (seconds first), the form Airbyte''s cron schedules take.';

/* The placeholders a template may use, and the error for any other. */
CREATE FUNCTION tenant_airbyte.pipeline_check_placeholders(field text, value jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	item record;
	found text;
BEGIN
	CASE jsonb_typeof(value)
	WHEN 'object' THEN
		FOR item IN SELECT key, v FROM jsonb_each(value) AS e(key, v) LOOP
			PERFORM tenant_airbyte.pipeline_check_placeholders(field || '.' || item.key, item.v);
		END LOOP;
	WHEN 'array' THEN
		FOR item IN SELECT ord, v FROM jsonb_array_elements(value) WITH ORDINALITY AS e(v, ord) LOOP
			PERFORM tenant_airbyte.pipeline_check_placeholders(format('%s[%s]', field, item.ord - 1), item.v);
		END LOOP;
	WHEN 'string' THEN
		FOR found IN SELECT btrim(m[1]) FROM regexp_matches(value #>> '{}', '\{\{([^}]*)\}\}', 'g') AS m LOOP
			IF NOT found OPERATOR(pg_catalog.=) ANY (ARRAY['tenant_id', 'tenant_schema', 'workspace_name',
														   'loader_user', 'loader_password']) THEN
				RAISE EXCEPTION '% uses the unknown placeholder {{%}}', field, found
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = 'Placeholders are {{tenant_id}}, {{tenant_schema}}, {{workspace_name}}, {{loader_user}} and {{loader_password}}.';
			END IF;
		END LOOP;
	ELSE
		NULL;
	END CASE;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_check_placeholders(text, jsonb) IS
	'Internal to set_pipeline_template(): 22023 naming the field when a string uses a placeholder other than {{tenant_id}}, {{tenant_schema}}, {{workspace_name}}, {{loader_user}}, {{loader_password}}.';

/*
 * The destination part: destinationType (or definitionId), configuration,
 * an optional name.  For a postgres destination the fields Airbyte's
 * destination-postgres spec requires are checked here too, and port must
 * be an integer, so that a template Airbyte would refuse for every tenant
 * is refused once, now.
 */
CREATE FUNCTION tenant_airbyte.pipeline_check_destination(destination jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	config jsonb;
	field text;
	dtype text;
BEGIN
	PERFORM tenant_airbyte.pipeline_check_keys('destination', destination,
		ARRAY['destinationType', 'definitionId', 'configuration', 'name']);
	IF destination ? 'destinationType' THEN
		IF jsonb_typeof(destination -> 'destinationType') IS DISTINCT FROM 'string'
		   OR NOT (destination ->> 'destinationType') ~ '^[a-z0-9][a-z0-9-]*$' THEN
			RAISE EXCEPTION 'destination.destinationType must be an Airbyte destination type such as "postgres"'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Destination types are lower-case names: postgres, bigquery, snowflake, s3, ...';
		END IF;
		dtype := destination ->> 'destinationType';
	ELSIF destination ? 'definitionId' THEN
		IF jsonb_typeof(destination -> 'definitionId') IS DISTINCT FROM 'string'
		   OR NOT (destination ->> 'definitionId') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
			RAISE EXCEPTION 'destination.definitionId must be a UUID'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	ELSE
		RAISE EXCEPTION 'destination.destinationType is required'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For example {"destinationType": "postgres", "configuration": {...}}; a definitionId may stand instead.';
	END IF;
	IF NOT destination ? 'configuration' THEN
		RAISE EXCEPTION 'destination.configuration is required'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	config := destination -> 'configuration';
	IF jsonb_typeof(config) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'destination.configuration must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF config ? 'destinationType' AND config -> 'destinationType' IS DISTINCT FROM destination -> 'destinationType' THEN
		RAISE EXCEPTION 'destination.configuration.destinationType differs from destination.destinationType'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the type once, as destination.destinationType.';
	END IF;
	IF destination ? 'name' AND (jsonb_typeof(destination -> 'name') IS DISTINCT FROM 'string'
								 OR btrim(destination ->> 'name') = '') THEN
		RAISE EXCEPTION 'destination.name must be a non-empty string'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF dtype OPERATOR(pg_catalog.=) 'postgres' THEN
		FOREACH field IN ARRAY ARRAY['host', 'port', 'database', 'schema', 'username'] LOOP
			IF NOT config ? field THEN
				RAISE EXCEPTION 'destination.configuration.% is required for a postgres destination', field
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = 'Airbyte''s postgres destination requires host, port, database, schema and username.';
			END IF;
		END LOOP;
		IF jsonb_typeof(config -> 'port') IS DISTINCT FROM 'number'
		   OR (config ->> 'port')::numeric NOT BETWEEN 0 AND 65536
		   OR (config ->> 'port')::numeric OPERATOR(pg_catalog.<>) trunc((config ->> 'port')::numeric) THEN
			RAISE EXCEPTION 'destination.configuration.port must be an integer between 0 and 65536'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Airbyte''s postgres destination takes the port as a JSON number, not a string.';
		END IF;
	END IF;
	PERFORM tenant_airbyte.pipeline_check_placeholders('destination', destination);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_check_destination(jsonb) IS
	'Internal to set_pipeline_template(): 22023 naming the field when the destination part is not what POST /destinations takes.';

/* The connection defaults. */
CREATE FUNCTION tenant_airbyte.pipeline_check_connection(connection jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	sync_modes CONSTANT text[] := ARRAY['full_refresh_overwrite', 'full_refresh_overwrite_deduped',
		'full_refresh_append', 'full_refresh_update', 'full_refresh_soft_delete', 'incremental_append',
		'incremental_deduped_history', 'incremental_update', 'incremental_soft_delete'];
	schedule jsonb;
	stream record;
BEGIN
	PERFORM tenant_airbyte.pipeline_check_keys('connection', connection,
		ARRAY['schedule', 'namespaceDefinition', 'namespaceFormat', 'prefix',
			  'nonBreakingSchemaUpdatesBehavior', 'syncMode', 'streams', 'sync_on_create']);

	schedule := connection -> 'schedule';
	IF schedule IS NOT NULL THEN
		IF jsonb_typeof(schedule) = 'object' THEN
			PERFORM tenant_airbyte.pipeline_check_keys('connection.schedule', schedule,
				ARRAY['scheduleType', 'cronExpression']);
			PERFORM tenant_airbyte.pipeline_check_enum('connection.schedule.scheduleType',
				coalesce(schedule -> 'scheduleType', 'null'), ARRAY['manual', 'cron']);
			IF schedule ->> 'scheduleType' = 'cron' AND NOT coalesce(tenant_airbyte.pipeline_is_cron(schedule ->> 'cronExpression'), false) THEN
				RAISE EXCEPTION 'connection.schedule.cronExpression must be a Quartz cron expression'
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = 'Six or seven fields: seconds minutes hours day-of-month month day-of-week [year].',
						  HINT = 'Every six hours is ''0 0 */6 * * ?''; a Unix expression needs a leading seconds field and ? for one of the day fields.';
			END IF;
		ELSIF jsonb_typeof(schedule) IS DISTINCT FROM 'string'
			  OR (schedule #>> '{}' <> 'manual' AND NOT tenant_airbyte.pipeline_is_cron(schedule #>> '{}')) THEN
			RAISE EXCEPTION 'connection.schedule must be "manual" or a Quartz cron expression'
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Airbyte''s scheduleType is manual or cron; a cron expression has six or seven fields: seconds minutes hours day-of-month month day-of-week [year].',
					  HINT = 'Every six hours is ''0 0 */6 * * ?''; a Unix expression needs a leading seconds field and ? for one of the day fields.';
		END IF;
	END IF;

	PERFORM tenant_airbyte.pipeline_check_enum('connection.namespaceDefinition',
		connection -> 'namespaceDefinition', ARRAY['source', 'destination', 'custom_format']);
	IF connection ->> 'namespaceDefinition' = 'custom_format'
	   AND coalesce(btrim(connection ->> 'namespaceFormat'), '') = '' THEN
		RAISE EXCEPTION 'connection.namespaceFormat is required when namespaceDefinition is custom_format'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'For each tenant''s own schema: "namespaceFormat": "{{tenant_schema}}".';
	END IF;
	IF connection ? 'namespaceFormat' AND jsonb_typeof(connection -> 'namespaceFormat') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'connection.namespaceFormat must be a string'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF connection ? 'prefix' AND jsonb_typeof(connection -> 'prefix') IS DISTINCT FROM 'string' THEN
		RAISE EXCEPTION 'connection.prefix must be a string'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM tenant_airbyte.pipeline_check_enum('connection.nonBreakingSchemaUpdatesBehavior',
		connection -> 'nonBreakingSchemaUpdatesBehavior',
		ARRAY['ignore', 'disable_connection', 'propagate_columns', 'propagate_fully']);
	PERFORM tenant_airbyte.pipeline_check_enum('connection.syncMode', connection -> 'syncMode', sync_modes);
	IF connection ? 'sync_on_create' AND jsonb_typeof(connection -> 'sync_on_create') IS DISTINCT FROM 'boolean' THEN
		RAISE EXCEPTION 'connection.sync_on_create must be true or false'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	IF connection ? 'streams' THEN
		IF jsonb_typeof(connection -> 'streams') IS DISTINCT FROM 'array' THEN
			RAISE EXCEPTION 'connection.streams must be an array of stream names or {"name", "syncMode"} objects'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Leave it out to sync every stream the source has.';
		END IF;
		FOR stream IN SELECT ord - 1 AS i, v FROM jsonb_array_elements(connection -> 'streams') WITH ORDINALITY AS e(v, ord) LOOP
			IF jsonb_typeof(stream.v) = 'string' AND btrim(stream.v #>> '{}') <> '' THEN
				CONTINUE;
			END IF;
			IF jsonb_typeof(stream.v) IS DISTINCT FROM 'object'
			   OR jsonb_typeof(stream.v -> 'name') IS DISTINCT FROM 'string' OR btrim(stream.v ->> 'name') = '' THEN
				RAISE EXCEPTION 'connection.streams[%] must be a stream name or an object with a name', stream.i
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			PERFORM tenant_airbyte.pipeline_check_keys(format('connection.streams[%s]', stream.i), stream.v,
				ARRAY['name', 'syncMode', 'cursorField', 'primaryKey']);
			PERFORM tenant_airbyte.pipeline_check_enum(format('connection.streams[%s].syncMode', stream.i),
				stream.v -> 'syncMode', sync_modes);
		END LOOP;
	END IF;
	PERFORM tenant_airbyte.pipeline_check_placeholders('connection', connection);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_check_connection(jsonb) IS
	'Internal to set_pipeline_template(): 22023 naming the field and the allowed values when a connection default is not what POST /connections takes.';

/* The workspace settings: regionId and notifications, as POST /workspaces takes them. */
CREATE FUNCTION tenant_airbyte.pipeline_check_workspace(workspace jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	kind record;
	channel record;
BEGIN
	PERFORM tenant_airbyte.pipeline_check_keys('workspace', workspace, ARRAY['regionId', 'notifications']);
	IF workspace ? 'regionId' AND (jsonb_typeof(workspace -> 'regionId') IS DISTINCT FROM 'string'
		OR NOT (workspace ->> 'regionId') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') THEN
		RAISE EXCEPTION 'workspace.regionId must be a UUID'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Airbyte identifies a data-residency region by its UUID.';
	END IF;
	IF workspace ? 'notifications' THEN
		PERFORM tenant_airbyte.pipeline_check_keys('workspace.notifications', workspace -> 'notifications',
			ARRAY['failure', 'success', 'connectionUpdate', 'connectionUpdateActionRequired',
				  'syncDisabled', 'syncDisabledWarning']);
		FOR kind IN SELECT key, v FROM jsonb_each(workspace -> 'notifications') AS e(key, v) LOOP
			PERFORM tenant_airbyte.pipeline_check_keys('workspace.notifications.' || kind.key, kind.v,
				ARRAY['email', 'webhook']);
			FOR channel IN SELECT key, v FROM jsonb_each(kind.v) AS e(key, v) LOOP
				PERFORM tenant_airbyte.pipeline_check_keys(
					format('workspace.notifications.%s.%s', kind.key, channel.key), channel.v,
					CASE channel.key WHEN 'email' THEN ARRAY['enabled'] ELSE ARRAY['enabled', 'url'] END);
				IF channel.v ? 'enabled' AND jsonb_typeof(channel.v -> 'enabled') IS DISTINCT FROM 'boolean' THEN
					RAISE EXCEPTION 'workspace.notifications.%.%.enabled must be true or false', kind.key, channel.key
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
				IF channel.v ? 'url' AND jsonb_typeof(channel.v -> 'url') IS DISTINCT FROM 'string' THEN
					RAISE EXCEPTION 'workspace.notifications.%.%.url must be a string', kind.key, channel.key
						USING ERRCODE = 'invalid_parameter_value';
				END IF;
			END LOOP;
		END LOOP;
	END IF;
	PERFORM tenant_airbyte.pipeline_check_placeholders('workspace', workspace);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_check_workspace(jsonb) IS
	'Internal to set_pipeline_template(): 22023 naming the field when regionId or notifications are not what POST /workspaces takes.';

CREATE FUNCTION tenant_airbyte.set_pipeline_template(name text, destination jsonb,
	connection jsonb DEFAULT '{}', workspace jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF set_pipeline_template.name IS NULL OR NOT set_pipeline_template.name ~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
		RAISE EXCEPTION 'template name must be 1 to 63 lower-case letters, digits, "_" or "-", starting with a letter or digit'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The template named "default" applies to every tenant not assigned another.';
	END IF;
	IF set_pipeline_template.destination IS NULL THEN
		RAISE EXCEPTION 'destination must not be NULL'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'For example {"destinationType": "postgres", "configuration": {...}}.';
	END IF;
	PERFORM tenant_airbyte.pipeline_check_destination(set_pipeline_template.destination);
	PERFORM tenant_airbyte.pipeline_check_connection(coalesce(set_pipeline_template.connection, '{}'));
	PERFORM tenant_airbyte.pipeline_check_workspace(coalesce(set_pipeline_template.workspace, '{}'));

	INSERT INTO tenant_airbyte.pipeline_templates AS t (name, destination, connection, workspace)
	VALUES (set_pipeline_template.name, set_pipeline_template.destination,
			coalesce(set_pipeline_template.connection, '{}'), coalesce(set_pipeline_template.workspace, '{}'))
	ON CONFLICT ON CONSTRAINT pipeline_templates_pkey DO UPDATE
		SET destination = EXCLUDED.destination,
			connection = EXCLUDED.connection,
			workspace = EXCLUDED.workspace;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.set_pipeline_template(text, jsonb, jsonb, jsonb) IS
	'Creates or replaces a pipeline template after checking every field against what the Airbyte API accepts (22023 naming the field and the allowed values). Superusers only; the statement is never logged (the destination may carry a password). apply_template() brings existing tenants up to it.';

CREATE FUNCTION tenant_airbyte.assign_template(tenant_id text, template text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(assign_template.tenant_id);
	IF assign_template.template IS NULL THEN
		DELETE FROM tenant_airbyte.tenant_templates AS t
		 WHERE t.tenant_id OPERATOR(pg_catalog.=) assign_template.tenant_id;
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT FROM tenant_airbyte.pipeline_templates AS p
					WHERE p.name OPERATOR(pg_catalog.=) assign_template.template) THEN
		RAISE EXCEPTION 'pipeline template "%" does not exist', assign_template.template
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it first with tenant_airbyte.set_pipeline_template(); existing templates are in tenant_airbyte.pipeline_templates.';
	END IF;
	INSERT INTO tenant_airbyte.tenant_templates AS t (tenant_id, template)
	VALUES (assign_template.tenant_id, assign_template.template)
	ON CONFLICT ON CONSTRAINT tenant_templates_pkey DO UPDATE
		SET template = EXCLUDED.template, assigned_at = pg_catalog.now();
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.assign_template(text, text) IS
	'Makes the tenant follow the named pipeline template instead of "default" (42704 when it does not exist); NULL puts it back on "default". Superusers only; apply_template() brings its pipeline up to it.';

/* The template a tenant follows: its assignment, else "default" if there is one. */
CREATE FUNCTION tenant_airbyte.template_for_tenant(tenant_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/*
	 * plpgsql, not sql: every provision and the destination trigger ask
	 * this, and a sql function with subqueries (which cannot be inlined)
	 * is parsed and planned on every call, where plpgsql keeps its plans.
	 */
	RETURN coalesce(
		(SELECT t.template FROM tenant_airbyte.tenant_templates AS t
		  WHERE t.tenant_id OPERATOR(pg_catalog.=) template_for_tenant.tenant_id),
		(SELECT p.name FROM tenant_airbyte.pipeline_templates AS p
		  WHERE p.name OPERATOR(pg_catalog.=) 'default'));
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.template_for_tenant(text) IS
	'The pipeline template the tenant follows: its assignment, else "default" when that exists, else NULL (no pipeline).';

/*
 * The tenant's data schema ({{tenant_schema}}): data_schema_for() of
 * section 6, the name the workspace row, the event trigger's binding and
 * authenticate()'s search path all use.
 */
CREATE FUNCTION tenant_airbyte.tenant_schema_for(tenant_id text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT tenant_airbyte.data_schema_for(tenant_schema_for.tenant_id);
$$;
COMMENT ON FUNCTION tenant_airbyte.tenant_schema_for(text) IS
	'The tenant''s data schema ({{tenant_schema}}): data_schema_for(tenant_id).';

/* Replaces every {{placeholder}} in the strings of a JSON value. */
CREATE FUNCTION tenant_airbyte.pipeline_render(value jsonb, vars jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s text;
	found text[];
BEGIN
	CASE jsonb_typeof(value)
	WHEN 'object' THEN
		RETURN coalesce((SELECT jsonb_object_agg(e.key, tenant_airbyte.pipeline_render(e.value, vars))
						   FROM jsonb_each(value) AS e), '{}'::jsonb);
	WHEN 'array' THEN
		RETURN coalesce((SELECT jsonb_agg(tenant_airbyte.pipeline_render(e.v, vars) ORDER BY e.ord)
						   FROM jsonb_array_elements(value) WITH ORDINALITY AS e(v, ord)), '[]'::jsonb);
	WHEN 'string' THEN
		s := value #>> '{}';
		FOR found IN SELECT DISTINCT m FROM regexp_matches(s, '(\{\{\s*([a-z_]+)\s*\}\})', 'g') AS m LOOP
			IF vars ->> found[2] IS NULL THEN
				RAISE EXCEPTION 'placeholder {{%}} has no value for this tenant', found[2]
					USING ERRCODE = 'object_not_in_prerequisite_state',
						  HINT = CASE WHEN found[2] LIKE 'loader_%'
									  THEN 'Loader credentials exist once tenant data schemas are installed and the tenant is provisioned.'
									  ELSE 'Provision the tenant first.' END;
			END IF;
			s := replace(s, found[1], vars ->> found[2]);
		END LOOP;
		RETURN to_jsonb(s);
	ELSE
		RETURN value;
	END CASE;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_render(jsonb, jsonb) IS
	'Internal: value with each {{name}} in its strings replaced by vars->>name; 55000 for a placeholder vars has no value for.';

/*
 * The placeholder values of one tenant.  {{loader_user}} and
 * {{loader_password}} come from tenant_airbyte.loader_credentials(tenant_id),
 * which creates the tenant's data schema and loader first when it has none:
 * the destination is created with them.
 */
CREATE FUNCTION tenant_airbyte.pipeline_variables(tenant_id text)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	vars jsonb;
	loader jsonb;
BEGIN
	SELECT jsonb_build_object('workspace_name', w.airbyte_workspace_name) INTO vars
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.tenant_id OPERATOR(pg_catalog.=) pipeline_variables.tenant_id;
	vars := coalesce(vars, '{}'::jsonb) || jsonb_build_object(
		'tenant_id', pipeline_variables.tenant_id,
		'tenant_schema', tenant_airbyte.tenant_schema_for(pipeline_variables.tenant_id));
	loader := tenant_airbyte.loader_credentials(pipeline_variables.tenant_id);
	vars := vars || jsonb_strip_nulls(jsonb_build_object(
		'loader_user', loader ->> 'user', 'loader_password', loader ->> 'password'));
	RETURN vars;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_variables(text) IS
	'Internal: the placeholder values of a tenant (tenant_id, tenant_schema, workspace_name once provisioned, loader_user and loader_password, creating the tenant''s data schema and loader when missing). Holds a secret: superusers and the worker only.';

/* The destination's name in the tenant's workspace: the template's, rendered, or "<workspace name> data". */
CREATE FUNCTION tenant_airbyte.pipeline_destination_name(tenant_id text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.left(tenant_airbyte.pipeline_render(
			   coalesce(p.destination -> 'name', '"{{workspace_name}} data"'::jsonb),
			   tenant_airbyte.pipeline_variables(pipeline_destination_name.tenant_id)) #>> '{}', 255)
	  FROM tenant_airbyte.pipeline_templates AS p
	 WHERE p.name OPERATOR(pg_catalog.=) tenant_airbyte.template_for_tenant(pipeline_destination_name.tenant_id);
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_destination_name(text) IS
	'The name the tenant''s destination gets in Airbyte: the template''s destination.name rendered, else "<workspace name> data"; one destination per workspace, so unique in it. NULL without a template.';

/*
 * A connection's name: "<source name> → <destination name>", then the
 * first 8 characters of the source id, so that two sources a tenant named
 * alike still get names unique in the workspace.
 */
CREATE FUNCTION tenant_airbyte.pipeline_connection_name(source_name text, source_id uuid, destination_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.left(source_name, 100) OPERATOR(pg_catalog.||) ' → '
		   OPERATOR(pg_catalog.||) pg_catalog.left(destination_name, 100)
		   OPERATOR(pg_catalog.||) ' (' OPERATOR(pg_catalog.||) pg_catalog.left(source_id::text, 8)
		   OPERATOR(pg_catalog.||) ')';
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_connection_name(text, uuid, text) IS
	'The name of a source''s connection in Airbyte: "<source name> → <destination name> (<first 8 characters of the source id>)", unique in the workspace.';

/*
 * The request bodies the worker sends, built from the tenant's template.
 * Each is exactly what the Airbyte API's request schema takes (the tests
 * check them against it); the destination's carries its credentials, so
 * these are for superusers and the worker only, and are never stored.
 */
CREATE FUNCTION tenant_airbyte.pipeline_workspace_fields(tenant_id text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(
		(SELECT tenant_airbyte.pipeline_render(p.workspace, tenant_airbyte.pipeline_variables(pipeline_workspace_fields.tenant_id))
		   FROM tenant_airbyte.pipeline_templates AS p
		  WHERE p.name OPERATOR(pg_catalog.=) tenant_airbyte.template_for_tenant(pipeline_workspace_fields.tenant_id)),
		'{}'::jsonb);
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_workspace_fields(text) IS
	'What the tenant''s template adds to POST /workspaces: {"regionId"?, "notifications"?}; {} without a template.';

CREATE FUNCTION tenant_airbyte.pipeline_destination_request(tenant_id text, workspace_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_strip_nulls(jsonb_build_object(
			   'name', tenant_airbyte.pipeline_destination_name(pipeline_destination_request.tenant_id),
			   'workspaceId', pipeline_destination_request.workspace_id,
			   'definitionId', p.destination -> 'definitionId',
			   'configuration',
			   tenant_airbyte.pipeline_render(p.destination -> 'configuration',
											  tenant_airbyte.pipeline_variables(pipeline_destination_request.tenant_id))
			   || jsonb_strip_nulls(jsonb_build_object('destinationType', p.destination -> 'destinationType'))))
	  FROM tenant_airbyte.pipeline_templates AS p
	 WHERE p.name OPERATOR(pg_catalog.=) tenant_airbyte.template_for_tenant(pipeline_destination_request.tenant_id);
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_destination_request(text, uuid) IS
	'The POST /destinations body for the tenant: its template''s destination rendered for it, named pipeline_destination_name(). Carries credentials: superusers only, never stored. NULL without a template.';

CREATE FUNCTION tenant_airbyte.pipeline_connection_request(tenant_id text, source_id uuid,
	source_name text, destination_id uuid)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH t AS (
		SELECT tenant_airbyte.pipeline_render(p.connection,
				   tenant_airbyte.pipeline_variables(pipeline_connection_request.tenant_id)) AS c
		  FROM tenant_airbyte.pipeline_templates AS p
		 WHERE p.name OPERATOR(pg_catalog.=) tenant_airbyte.template_for_tenant(pipeline_connection_request.tenant_id)
	)
	SELECT jsonb_strip_nulls(jsonb_build_object(
			   'name', tenant_airbyte.pipeline_connection_name(pipeline_connection_request.source_name,
					pipeline_connection_request.source_id,
					tenant_airbyte.pipeline_destination_name(pipeline_connection_request.tenant_id)),
			   'sourceId', pipeline_connection_request.source_id,
			   'destinationId', pipeline_connection_request.destination_id,
			   'status', 'active',
			   'schedule', CASE
					WHEN jsonb_typeof(t.c -> 'schedule') = 'object' THEN t.c -> 'schedule'
					WHEN t.c ->> 'schedule' IS NULL OR t.c ->> 'schedule' = 'manual'
						THEN '{"scheduleType": "manual"}'::jsonb
					ELSE jsonb_build_object('scheduleType', 'cron', 'cronExpression', t.c ->> 'schedule') END,
			   'namespaceDefinition', t.c -> 'namespaceDefinition',
			   'namespaceFormat', t.c -> 'namespaceFormat',
			   'prefix', t.c -> 'prefix',
			   'nonBreakingSchemaUpdatesBehavior', t.c -> 'nonBreakingSchemaUpdatesBehavior',
			   'configurations', CASE WHEN t.c ? 'streams' THEN jsonb_build_object('streams',
					(SELECT coalesce(jsonb_agg(jsonb_strip_nulls(
								CASE jsonb_typeof(s.v)
								WHEN 'string' THEN jsonb_build_object('name', s.v, 'syncMode', t.c -> 'syncMode')
								ELSE jsonb_build_object('syncMode', t.c -> 'syncMode') || s.v END) ORDER BY s.ord), '[]'::jsonb)
					   FROM jsonb_array_elements(t.c -> 'streams') WITH ORDINALITY AS s(v, ord))) END))
	  FROM t;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_connection_request(text, uuid, text, uuid) IS
	'The POST /connections body for a tenant source: the template''s schedule, namespace, prefix, schema-change policy and streams (each with the template''s syncMode unless it names its own), named pipeline_connection_name(). NULL without a template.';

CREATE FUNCTION tenant_airbyte.pipeline_sync_on_create(tenant_id text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((SELECT (p.connection ->> 'sync_on_create')::boolean
					   FROM tenant_airbyte.pipeline_templates AS p
					  WHERE p.name OPERATOR(pg_catalog.=) tenant_airbyte.template_for_tenant(pipeline_sync_on_create.tenant_id)),
					false);
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_sync_on_create(text) IS
	'Whether a new connection of the tenant starts its first sync at once (the template''s connection.sync_on_create; false by default).';

/*
 * The lifecycle's first step: a tenant that has a template and gets an
 * active workspace (provisioned, or restored) gets its destination.  The
 * operation is recorded in the same transaction as the workspace row, so
 * neither exists without the other; the worker claims it after the
 * operation that wrote the row (one operation per tenant at a time) and
 * carries it out (src/operations/kind_create_destination.c).  An
 * unfinished one is not recorded twice.
 */
CREATE FUNCTION tenant_airbyte.pipeline_enqueue_destination()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF tenant_airbyte.template_for_tenant(NEW.tenant_id) IS NOT NULL
	   AND NOT EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS d
					    WHERE d.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id) THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
		VALUES ('create_destination', NEW.tenant_id, '')
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_enqueue_destination() IS
	'Trigger: records a create_destination operation when a tenant that has a pipeline template gets an active workspace and has no destination yet.';

CREATE TRIGGER tenant_airbyte_workspaces_pipeline_destination
	AFTER INSERT OR UPDATE OF status ON tenant_airbyte.tenant_airbyte_workspaces
	FOR EACH ROW WHEN (NEW.status = 'active')
	EXECUTE FUNCTION tenant_airbyte.pipeline_enqueue_destination();

/*
 * The second step: each source a tenant with a template records gets its
 * connection to the tenant's destination (and, with sync_on_create, its
 * first sync): src/operations/kind_create_connection.c.  The subject is
 * the source, so the connections of several sources are told apart.
 */
CREATE FUNCTION tenant_airbyte.pipeline_enqueue_connection()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF tenant_airbyte.template_for_tenant(NEW.tenant_id) IS NOT NULL THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
		VALUES ('create_connection', NEW.tenant_id, NEW.airbyte_source_id::text,
				pg_catalog.jsonb_build_object('source_id', NEW.airbyte_source_id))
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_enqueue_connection() IS
	'Trigger: records a create_connection operation for each source recorded for a tenant that has a pipeline template.';

CREATE TRIGGER tenant_sources_pipeline_connection
	AFTER INSERT ON tenant_airbyte.tenant_sources
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.pipeline_enqueue_connection();

/*
 * The worker follows the jobs of every tenant connection (poll_syncs,
 * src/operations/kind_poll_syncs.c, every tenant_airbyte.sync_poll_interval_s):
 * recording a connection starts the poll unless one is already pending or
 * running.  The poll belongs to the pseudo tenant tenant_airbyte.sync_poll,
 * so that its waiting never holds back a real tenant's operations.
 */
CREATE FUNCTION tenant_airbyte.pipeline_enqueue_poll()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM tenant_airbyte.operations AS o
					WHERE o.tenant_id OPERATOR(pg_catalog.=) 'tenant_airbyte.sync_poll'
					  AND o.status OPERATOR(pg_catalog.=) ANY ('{pending,in_flight}'::text[])) THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
		VALUES ('poll_syncs', 'tenant_airbyte.sync_poll', '0', '{"round": "0"}')
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_enqueue_poll() IS
	'Trigger: makes sure a poll_syncs operation is pending once a tenant connection is recorded.';

CREATE TRIGGER tenant_connections_pipeline_poll
	AFTER INSERT ON tenant_airbyte.tenant_connections
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_airbyte.pipeline_enqueue_poll();

/*
 * Deprovisioning pauses every connection of the tenant (Airbyte runs no
 * more syncs; nothing is deleted), and a restore within retention_days
 * resumes them: src/operations/kind_connection_status.c.  Recorded in the
 * transaction that changes the workspace's status.
 */
CREATE FUNCTION tenant_airbyte.pipeline_enqueue_connection_status()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c
				WHERE c.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id) THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
		VALUES (CASE WHEN NEW.status OPERATOR(pg_catalog.=) 'active'
					 THEN 'resume_connections' ELSE 'pause_connections' END,
				NEW.tenant_id, '')
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.pipeline_enqueue_connection_status() IS
	'Trigger: records pause_connections when a tenant''s workspace is soft-deleted, resume_connections when it is restored, if the tenant has connections.';

CREATE TRIGGER tenant_airbyte_workspaces_pipeline_status
	AFTER UPDATE OF status ON tenant_airbyte.tenant_airbyte_workspaces
	FOR EACH ROW
	WHEN ((OLD.status = 'active' AND NEW.status = 'deleted') OR (OLD.status = 'deleted' AND NEW.status = 'active'))
	EXECUTE FUNCTION tenant_airbyte.pipeline_enqueue_connection_status();

/*
 * An operation those triggers record in a backend's transaction (a source
 * created there, a workspace row written by an administrator) wakes the
 * worker when that transaction commits, as work put in the inbox does.
 */
CREATE TRIGGER operations_wake
	AFTER INSERT ON tenant_airbyte.operations
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_airbyte.inbox_wake();

/*
 * apply_template: what the triggers above do for new tenants and new
 * sources, for the existing ones: a create_destination operation for each
 * active tenant that follows a template and has no destination, and a
 * create_connection one for each of its sources without a connection.
 * The worker carries them out (a tenant's in the order recorded, so the
 * destination comes before its connections).  Calling it again records
 * nothing that is already recorded or pending.
 */
CREATE FUNCTION tenant_airbyte.apply_template(tenant_id text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	recorded bigint[];
	redundant integer;
BEGIN
	IF apply_template.tenant_id IS NOT NULL THEN
		PERFORM tenant_airbyte.validate_tenant_id(apply_template.tenant_id);
	END IF;

	WITH added AS (
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
		SELECT 'create_destination', w.tenant_id, ''
		  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
		 WHERE w.status OPERATOR(pg_catalog.=) 'active'
		   AND (apply_template.tenant_id IS NULL OR w.tenant_id OPERATOR(pg_catalog.=) apply_template.tenant_id)
		   AND tenant_airbyte.template_for_tenant(w.tenant_id) IS NOT NULL
		   AND NOT EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS d
						    WHERE d.tenant_id OPERATOR(pg_catalog.=) w.tenant_id)
		 ORDER BY w.tenant_id
		ON CONFLICT DO NOTHING
		RETURNING id
	)
	SELECT pg_catalog.array_agg(added.id) INTO recorded FROM added;

	WITH added AS (
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
		SELECT 'create_connection', s.tenant_id, s.airbyte_source_id::text,
			   pg_catalog.jsonb_build_object('source_id', s.airbyte_source_id)
		  FROM tenant_airbyte.tenant_sources AS s
		  JOIN tenant_airbyte.tenant_airbyte_workspaces AS w
			ON w.airbyte_workspace_id OPERATOR(pg_catalog.=) s.airbyte_workspace_id
		   AND w.status OPERATOR(pg_catalog.=) 'active'
		 WHERE (apply_template.tenant_id IS NULL OR s.tenant_id OPERATOR(pg_catalog.=) apply_template.tenant_id)
		   AND tenant_airbyte.template_for_tenant(s.tenant_id) IS NOT NULL
		   AND NOT EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c
						    WHERE c.tenant_id OPERATOR(pg_catalog.=) s.tenant_id
							  AND c.airbyte_source_id OPERATOR(pg_catalog.=) s.airbyte_source_id)
		 ORDER BY s.tenant_id, s.created_at
		ON CONFLICT DO NOTHING
		RETURNING id
	)
	SELECT pg_catalog.array_cat(recorded, pg_catalog.array_agg(added.id)) INTO recorded FROM added;

	/*
	 * Each INSERT looked for the row with its own snapshot, then waited
	 * for the unfinished operation it would duplicate.  A worker that
	 * finished that operation in between committed its row after the
	 * look and its operation stopped being unfinished: the INSERT went
	 * ahead.  This statement's snapshot sees every such commit, and what
	 * it made redundant goes now, before anyone can claim it.
	 */
	DELETE FROM tenant_airbyte.operations AS o
	 WHERE o.id OPERATOR(pg_catalog.=) ANY (recorded)
	   AND ((o.kind OPERATOR(pg_catalog.=) 'create_destination'
			 AND EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS d
						  WHERE d.tenant_id OPERATOR(pg_catalog.=) o.tenant_id))
			OR (o.kind OPERATOR(pg_catalog.=) 'create_connection'
			 AND EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c
						  WHERE c.tenant_id OPERATOR(pg_catalog.=) o.tenant_id
							AND c.airbyte_source_id::text OPERATOR(pg_catalog.=) o.subject)));
	GET DIAGNOSTICS redundant = ROW_COUNT;

	RETURN coalesce(pg_catalog.cardinality(recorded), 0) OPERATOR(pg_catalog.-) redundant;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.apply_template(text) IS
	'Brings existing tenants (all when NULL) up to their pipeline template: records the operations that create each missing destination and connection, and returns how many it recorded; the worker carries them out. Idempotent. Superusers only.';

/*
 * Syncs on demand.  trigger_sync() and cancel_sync() are for the
 * application role, for its own tenant only, like create_source(): they
 * are SECURITY DEFINER, check the caller's tenant first (42501), and hand
 * the work to the worker (src/operations/kind_syncs.c), waiting for it.
 */
CREATE FUNCTION tenant_airbyte.pipeline_run(kind text, tenant_id text, params jsonb, subject text)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_pipeline_run';
COMMENT ON FUNCTION tenant_airbyte.pipeline_run(text, text, jsonb, text) IS
	'Internal: records a pipeline operation for the worker and waits for its outcome. Superusers only; checks no tenant.';

CREATE FUNCTION tenant_airbyte.trigger_sync(tenant_id text, source_id uuid DEFAULT NULL)
RETURNS SETOF tenant_airbyte.tenant_syncs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	outcome jsonb;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(trigger_sync.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(trigger_sync.tenant_id);
	IF trigger_sync.source_id IS NOT NULL AND NOT EXISTS (
		SELECT FROM tenant_airbyte.tenant_connections AS c
		 WHERE c.tenant_id OPERATOR(pg_catalog.=) trigger_sync.tenant_id
		   AND c.airbyte_source_id OPERATOR(pg_catalog.=) trigger_sync.source_id) THEN
		RAISE EXCEPTION 'tenant "%" has no connection for source %', trigger_sync.tenant_id, trigger_sync.source_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'A source gets its connection once the tenant''s pipeline template has a destination; see tenant_airbyte.sync_status.';
	END IF;
	outcome := tenant_airbyte.pipeline_run('trigger_sync', trigger_sync.tenant_id,
		pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('source_id', trigger_sync.source_id)),
		coalesce(trigger_sync.source_id::text, ''));
	RETURN QUERY
		SELECT s.* FROM tenant_airbyte.tenant_syncs AS s
		 WHERE s.tenant_id OPERATOR(pg_catalog.=) trigger_sync.tenant_id
		   AND s.airbyte_job_id OPERATOR(pg_catalog.=) ANY (ARRAY(
				SELECT pg_catalog.jsonb_array_elements_text(outcome -> 'job_ids')::bigint))
		 ORDER BY s.airbyte_job_id;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.trigger_sync(text, uuid) IS
	'Starts a sync of each of the tenant''s active connections, or of one source''s, and returns the jobs started (a connection whose job is already running starts none). For the application role, its own tenant only (42501).';

CREATE FUNCTION tenant_airbyte.cancel_sync(tenant_id text, job_id bigint)
RETURNS tenant_airbyte.tenant_syncs
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result tenant_airbyte.tenant_syncs;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(cancel_sync.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(cancel_sync.tenant_id);
	IF NOT EXISTS (SELECT FROM tenant_airbyte.tenant_syncs AS s
					WHERE s.tenant_id OPERATOR(pg_catalog.=) cancel_sync.tenant_id
					  AND s.airbyte_job_id OPERATOR(pg_catalog.=) cancel_sync.job_id) THEN
		RAISE EXCEPTION 'tenant "%" has no sync with job id %', cancel_sync.tenant_id, cancel_sync.job_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'The tenant''s jobs are in tenant_airbyte.tenant_syncs.';
	END IF;
	PERFORM tenant_airbyte.pipeline_run('cancel_sync', cancel_sync.tenant_id,
		pg_catalog.jsonb_build_object('job_id', cancel_sync.job_id::text), cancel_sync.job_id::text);
	SELECT s.* INTO result FROM tenant_airbyte.tenant_syncs AS s
	 WHERE s.tenant_id OPERATOR(pg_catalog.=) cancel_sync.tenant_id
	   AND s.airbyte_job_id OPERATOR(pg_catalog.=) cancel_sync.job_id;
	RETURN result;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.cancel_sync(text, bigint) IS
	'Cancels one of the tenant''s Airbyte jobs (DELETE /jobs/{id}) and returns its row of tenant_syncs with the status Airbyte answered. For the application role, its own tenant only (42501); another tenant''s job is "no sync with job id" (P0002).';

/*
 * Grants.  Reading a tenant's destinations, connections and syncs is
 * filtered by row-level security, like its sources.  Templates, their
 * assignment and everything that renders them are for superusers: the
 * section 5 REVOKE does not reach objects created after it, so it is
 * repeated here.
 */
REVOKE ALL ON tenant_airbyte.pipeline_templates, tenant_airbyte.tenant_templates,
	tenant_airbyte.tenant_destinations, tenant_airbyte.tenant_connections,
	tenant_airbyte.tenant_syncs, tenant_airbyte.sync_status FROM PUBLIC;
REVOKE ALL ON FUNCTION
	tenant_airbyte.pipeline_check_enum(text, jsonb, text[]),
	tenant_airbyte.pipeline_check_keys(text, jsonb, text[]),
	tenant_airbyte.pipeline_is_cron(text),
	tenant_airbyte.pipeline_check_placeholders(text, jsonb),
	tenant_airbyte.pipeline_check_destination(jsonb),
	tenant_airbyte.pipeline_check_connection(jsonb),
	tenant_airbyte.pipeline_check_workspace(jsonb),
	tenant_airbyte.set_pipeline_template(text, jsonb, jsonb, jsonb),
	tenant_airbyte.assign_template(text, text),
	tenant_airbyte.template_for_tenant(text),
	tenant_airbyte.tenant_schema_for(text),
	tenant_airbyte.pipeline_render(jsonb, jsonb),
	tenant_airbyte.pipeline_variables(text),
	tenant_airbyte.pipeline_destination_name(text),
	tenant_airbyte.pipeline_connection_name(text, uuid, text),
	tenant_airbyte.pipeline_workspace_fields(text),
	tenant_airbyte.pipeline_destination_request(text, uuid),
	tenant_airbyte.pipeline_connection_request(text, uuid, text, uuid),
	tenant_airbyte.pipeline_sync_on_create(text),
	tenant_airbyte.pipeline_enqueue_destination(),
	tenant_airbyte.pipeline_enqueue_connection(),
	tenant_airbyte.pipeline_enqueue_connection_status(),
	tenant_airbyte.pipeline_enqueue_poll(),
	tenant_airbyte.apply_template(text),
	tenant_airbyte.pipeline_run(text, text, jsonb, text),
	tenant_airbyte.trigger_sync(text, uuid),
	tenant_airbyte.cancel_sync(text, bigint)
	FROM PUBLIC;

GRANT SELECT ON tenant_airbyte.tenant_destinations, tenant_airbyte.tenant_connections,
	tenant_airbyte.tenant_syncs, tenant_airbyte.sync_status TO PUBLIC;

/*
 * The worker (section 6) records destinations, connections and syncs and
 * renders templates; it runs with session_replication_role = replica, so
 * the triggers of these tables that must fire for it (updated_at, and the
 * internal ones of the foreign keys, which cascade a purge) are ENABLE
 * ALWAYS, as section 6 does for the tables before them.
 */
GRANT SELECT ON tenant_airbyte.pipeline_templates, tenant_airbyte.tenant_templates
	TO tenant_airbyte_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_airbyte.tenant_destinations,
	tenant_airbyte.tenant_connections, tenant_airbyte.tenant_syncs
	TO tenant_airbyte_worker;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.loader_credentials(text),
	tenant_airbyte.data_schema_for(text),
	tenant_airbyte.template_for_tenant(text),
	tenant_airbyte.tenant_schema_for(text),
	tenant_airbyte.pipeline_render(jsonb, jsonb),
	tenant_airbyte.pipeline_variables(text),
	tenant_airbyte.pipeline_destination_name(text),
	tenant_airbyte.pipeline_connection_name(text, uuid, text),
	tenant_airbyte.pipeline_workspace_fields(text),
	tenant_airbyte.pipeline_destination_request(text, uuid),
	tenant_airbyte.pipeline_connection_request(text, uuid, text, uuid),
	tenant_airbyte.pipeline_sync_on_create(text),
	tenant_airbyte.pipeline_enqueue_destination(),
	tenant_airbyte.pipeline_enqueue_connection(),
	tenant_airbyte.pipeline_enqueue_connection_status(),
	tenant_airbyte.pipeline_enqueue_poll()
	TO tenant_airbyte_worker;

ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ENABLE ALWAYS TRIGGER tenant_airbyte_workspaces_drop_data;
ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ENABLE ALWAYS TRIGGER tenant_airbyte_workspaces_pipeline_destination;
ALTER TABLE tenant_airbyte.tenant_sources
	ENABLE ALWAYS TRIGGER tenant_sources_pipeline_connection;
ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ENABLE ALWAYS TRIGGER tenant_airbyte_workspaces_pipeline_status;
ALTER TABLE tenant_airbyte.tenant_connections
	ENABLE ALWAYS TRIGGER tenant_connections_pipeline_poll;
ALTER TABLE tenant_airbyte.pipeline_templates
	ENABLE ALWAYS TRIGGER pipeline_templates_touch_updated_at;
ALTER TABLE tenant_airbyte.tenant_connections
	ENABLE ALWAYS TRIGGER tenant_connections_touch_updated_at;
ALTER TABLE tenant_airbyte.tenant_syncs
	ENABLE ALWAYS TRIGGER tenant_syncs_touch_updated_at;
DO $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT c.relname, g.tgname
		  FROM pg_catalog.pg_trigger AS g
		  JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
		 WHERE g.tgisinternal
		   AND g.tgenabled OPERATOR(pg_catalog.<>) 'A'
		   AND c.relnamespace OPERATOR(pg_catalog.=) 'tenant_airbyte'::pg_catalog.regnamespace
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE tenant_airbyte.%I ENABLE ALWAYS TRIGGER %I',
								  t.relname, t.tgname);
	END LOOP;
END;
$$;

/* ------------------------------------------------------------------------
 * 9. Install-time check
 *
 * Without shared_preload_libraries there is no worker, and a CREATE
 * EXTENSION that succeeds quietly looks like a working install:
 * worker_state() raises a WARNING then, here as in worker_status.
 * ------------------------------------------------------------------------ */

DO $preload$
BEGIN
	PERFORM tenant_airbyte.worker_state();
END
$preload$;

/* ------------------------------------------------------------------------
 * 10. OAuth consents and apps (src/operations/kind_source.c,
 *     src/operations/kind_oauth_apps.c)
 *
 * Connecting a tenant's Meta Ads or Google Ads account through OAuth:
 *
 *   initiate_oauth_consent()   records a pending consent (tenant, source
 *   (initiate_oauth())         type, redirect URL, expiry) and returns
 *                              Airbyte's consent URL.  The redirect URL
 *                              Airbyte is given carries consent=<id>.
 *   the user approves          Airbyte sends the browser to the redirect
 *                              URL with secret_id=... appended.
 *   complete_oauth()           the application, for its own tenant: the
 *   oauth_callback()           shim's GET /api/oauth/callback, by consent
 *                              id.  Either creates the source with
 *                              POST /sources {..., secretId} (no
 *                              credentials in the configuration), exactly
 *                              once, through the create_source operation.
 *
 * A consent completes once.  The secret_id is a credential: it reaches
 * the worker in memory only, never the row, WAL or logs; what the row
 * keeps of it is its SHA-256, so that a replayed secret_id is recognised
 * and refused.  The consent is claimed (status completing) by the worker
 * when it decides to send the create, and given back (pending) when
 * Airbyte refuses the create for good, so a refused attempt does not burn
 * the user's consent.
 *
 * OAuth apps: a SaaS's own client id and secret per source type
 * (set_oauth_app), applied to each tenant's workspace with
 * PUT /workspaces/{id}/oauthCredentials, so the consent screen shows the
 * SaaS's app instead of Airbyte's.  The worker applies every app to each
 * workspace that becomes active, and to all existing ones after
 * apply_oauth_apps().
 * ------------------------------------------------------------------------ */

CREATE TABLE tenant_airbyte.oauth_consents (
	consent_id uuid PRIMARY KEY,
	tenant_id varchar(255) NOT NULL,
	source_type varchar(255) NOT NULL,
	redirect_url text NOT NULL,
	source_name varchar(255),
	configuration jsonb NOT NULL DEFAULT '{}',
	status text NOT NULL DEFAULT 'pending',
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at timestamptz NOT NULL,
	operation_id bigint,
	secret_sha256 bytea,
	airbyte_source_id uuid,
	used_at timestamptz,

	CONSTRAINT oauth_consents_tenant_id_check CHECK (btrim(tenant_id) <> ''),
	CONSTRAINT oauth_consents_status_check CHECK (status IN ('pending', 'completing', 'used')),
	CONSTRAINT oauth_consents_configuration_check
		CHECK (pg_catalog.jsonb_typeof(configuration) = 'object' AND NOT configuration ? 'credentials')
);

/* What complete_oauth() looks up: a tenant's consents for a source type. */
CREATE INDEX oauth_consents_tenant_type
	ON tenant_airbyte.oauth_consents (tenant_id, source_type, created_at);
/* A secret_id completes one consent, ever. */
CREATE UNIQUE INDEX oauth_consents_secret
	ON tenant_airbyte.oauth_consents (secret_sha256)
	WHERE secret_sha256 IS NOT NULL;

COMMENT ON TABLE tenant_airbyte.oauth_consents IS
	'OAuth consents started by initiate_oauth() and completed once by complete_oauth() or the shim''s callback. Tenant-scoped (row-level security). Never holds a secret_id, only its SHA-256.';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.consent_id IS
	'Random id; the redirect URL Airbyte is given carries it as consent=<id>.';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.redirect_url IS
	'Where Airbyte sends the user after the consent (with consent=<id>; Airbyte appends secret_id).';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.source_name IS
	'Name of the source the shim''s callback creates (NULL: "<source type> - <first 8 characters of the consent id>").';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.configuration IS
	'The source''s configuration without credentials (Airbyte adds those from the consent), used by the shim''s callback.';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.status IS
	'pending (waiting for the user), completing (the worker is creating the source), used (the source exists).';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.expires_at IS
	'After this, the consent can no longer be completed (tenant_airbyte.oauth_consent_ttl_s after it was started).';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.operation_id IS
	'The create_source operation that completes it.';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.secret_sha256 IS
	'SHA-256 of the secret_id that completed it, to refuse a replay; never the secret_id itself.';
COMMENT ON COLUMN tenant_airbyte.oauth_consents.airbyte_source_id IS
	'The source it created.';

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.oauth_consents', '');

ALTER TABLE tenant_airbyte.oauth_consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.oauth_consents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_airbyte.oauth_consents
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

/*
 * oauth_apps: the SaaS's own OAuth app per source type.  The configuration
 * holds its client secret: nothing is granted on the table, and row-level
 * security with no policy refuses every role that is not a superuser or
 * BYPASSRLS (the worker) even if someone grants it.
 */
CREATE TABLE tenant_airbyte.oauth_apps (
	source_type varchar(255) PRIMARY KEY,
	actor_type text NOT NULL DEFAULT 'source',
	configuration jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),

	CONSTRAINT oauth_apps_source_type_check CHECK (btrim(source_type) <> ''),
	CONSTRAINT oauth_apps_actor_type_check CHECK (actor_type IN ('source', 'destination')),
	CONSTRAINT oauth_apps_configuration_check CHECK (pg_catalog.jsonb_typeof(configuration) = 'object')
);

COMMENT ON TABLE tenant_airbyte.oauth_apps IS
	'The SaaS''s own OAuth apps, one per source type, applied to every tenant workspace (PUT /workspaces/{id}/oauthCredentials). Holds client secrets: superusers only.';
COMMENT ON COLUMN tenant_airbyte.oauth_apps.configuration IS
	'OAuthCredentialsConfiguration of the source type, e.g. {"credentials": {"client_id": ..., "client_secret": ...}}.';

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.oauth_apps', '');

ALTER TABLE tenant_airbyte.oauth_apps ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.oauth_apps FORCE ROW LEVEL SECURITY;

/* The error every OAuth function gives for a bad source type. */
CREATE FUNCTION tenant_airbyte.oauth_check_source_type(source_type text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF source_type IS NULL OR btrim(source_type) = '' THEN
		RAISE EXCEPTION 'source type must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an Airbyte sourceType that supports OAuth, such as ''facebook-marketing'' or ''google-ads''.';
	END IF;
	IF length(source_type) > 255 THEN
		RAISE EXCEPTION 'source type is at most 255 characters'
			USING ERRCODE = 'string_data_right_truncation';
	END IF;
	IF source_type = 'shopify' THEN
		RAISE EXCEPTION 'shopify sources do not use Airbyte''s OAuth consent flow'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Create the source with the shop''s access token: tenant_airbyte.create_shopify_source(tenant_id, shop, access_token).';
	END IF;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.oauth_check_source_type(text) IS
	'Internal to the OAuth functions: 22023 for an empty source type or shopify (which uses its app token, not Airbyte''s OAuth).';

CREATE FUNCTION tenant_airbyte.initiate_oauth_consent(tenant_id text, source_type text, redirect_url text,
	name text DEFAULT NULL, configuration jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	consent uuid := pg_catalog.gen_random_uuid();
	redirect text;
	config jsonb := coalesce(initiate_oauth_consent.configuration, '{}'::jsonb);
	outcome jsonb;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(initiate_oauth_consent.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(initiate_oauth_consent.tenant_id);
	PERFORM tenant_airbyte.oauth_check_source_type(initiate_oauth_consent.source_type);

	IF initiate_oauth_consent.redirect_url IS NULL
	   OR initiate_oauth_consent.redirect_url !~* '^https?://[^/[:space:]]+'
	   OR initiate_oauth_consent.redirect_url ~ '[#[:space:]]' THEN
		RAISE EXCEPTION 'redirect URL must be an absolute http or https URL without a fragment'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Airbyte sends the user back there with consent=<id>&secret_id=... in the query; pass both to complete_oauth(), or use the shim''s https://<shim>/api/oauth/callback, which completes the consent itself.';
	END IF;
	IF jsonb_typeof(config) <> 'object' OR config ? 'credentials' OR config ? 'sourceType' THEN
		RAISE EXCEPTION 'an OAuth source''s configuration is a JSON object without "credentials" or "sourceType"'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Airbyte adds the credentials from the consent; give only the other fields, e.g. ''{"account_ids": ["123"]}''.';
	END IF;
	IF initiate_oauth_consent.name IS NOT NULL
	   AND (btrim(initiate_oauth_consent.name) = '' OR length(initiate_oauth_consent.name) > 255) THEN
		RAISE EXCEPTION 'source name must be 1 to 255 characters'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	PERFORM tenant_airbyte.workspace_for_sources(initiate_oauth_consent.tenant_id);
	redirect := initiate_oauth_consent.redirect_url
		|| CASE WHEN strpos(initiate_oauth_consent.redirect_url, '?') > 0 THEN '&' ELSE '?' END
		|| 'consent=' || consent::text;
	/* The worker records the consent, then asks Airbyte for its URL. */
	outcome := tenant_airbyte.run_operation('initiate_oauth', initiate_oauth_consent.tenant_id,
		jsonb_build_object('source_type', initiate_oauth_consent.source_type,
						   'redirect_url', redirect,
						   'consent_id', consent,
						   /* the setting shows with its unit ("30min"), which interval reads */
						   'expires_at', now() +
								coalesce(nullif(current_setting('tenant_airbyte.oauth_consent_ttl_s', true), ''), '1800s')::interval,
						   'name', initiate_oauth_consent.name,
						   'configuration', config),
		initiate_oauth_consent.source_type, NULL);
	RETURN outcome;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.initiate_oauth_consent(text, text, text, text, jsonb) IS
	'Starts an OAuth consent for a source in the tenant''s workspace: records a pending consent and returns consent_id, consent_url (Airbyte''s, POST /sources/initiateOAuth), redirect_url (with consent=<id>) and expires_at. name and configuration (without credentials) are what the shim''s callback creates the source with. 0A000 when the Airbyte server answers 501, 42501 for another tenant.';

/*
 * oauth_pending_consent: the consent a completion is for, or the error
 * that says why there is none.  By consent id (the shim's callback) or by
 * tenant and source type (complete_oauth(): the newest pending one).  A
 * secret_id that completed a consent before is a replay, whatever
 * consent it now comes with.
 */
CREATE FUNCTION tenant_airbyte.oauth_pending_consent(consent_id uuid, tenant_id text, source_type text,
	secret_sha256 bytea)
RETURNS tenant_airbyte.oauth_consents
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c tenant_airbyte.oauth_consents;
	what text := CASE WHEN oauth_pending_consent.consent_id IS NOT NULL
		THEN pg_catalog.format('OAuth consent %s', oauth_pending_consent.consent_id)
		ELSE pg_catalog.format('OAuth consent for tenant "%s" and source type "%s"',
							   oauth_pending_consent.tenant_id, oauth_pending_consent.source_type) END;
BEGIN
	IF EXISTS (SELECT FROM tenant_airbyte.oauth_consents AS u
				WHERE u.secret_sha256 OPERATOR(pg_catalog.=) oauth_pending_consent.secret_sha256) THEN
		RAISE EXCEPTION 'this OAuth secret_id was already used'
			USING ERRCODE = 'duplicate_object',
				  DETAIL = 'Each secret_id Airbyte hands out completes one consent, once; a replayed one is refused.',
				  HINT = 'To connect another account, start a new consent with initiate_oauth().';
	END IF;

	SELECT k.* INTO c
	  FROM tenant_airbyte.oauth_consents AS k
	 WHERE (oauth_pending_consent.consent_id IS NULL
			OR k.consent_id OPERATOR(pg_catalog.=) oauth_pending_consent.consent_id)
	   AND (oauth_pending_consent.tenant_id IS NULL
			OR k.tenant_id OPERATOR(pg_catalog.=) oauth_pending_consent.tenant_id)
	   AND (oauth_pending_consent.source_type IS NULL
			OR k.source_type OPERATOR(pg_catalog.=) oauth_pending_consent.source_type)
	 ORDER BY k.status OPERATOR(pg_catalog.=) 'pending' DESC,
			  k.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() DESC,
			  k.created_at DESC
	 LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no pending %', what
			USING ERRCODE = 'no_data_found',
				  HINT = 'Start the consent with initiate_oauth(tenant_id, source_type, redirect_url) for this tenant, and complete it with the same source type.';
	END IF;
	IF c.status OPERATOR(pg_catalog.<>) 'pending' THEN
		RAISE EXCEPTION '% was already used', what
			USING ERRCODE = 'duplicate_object',
				  DETAIL = pg_catalog.format('It was completed at %s.', c.used_at),
				  HINT = 'A consent completes once; start a new one with initiate_oauth().';
	END IF;
	IF c.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
		RAISE EXCEPTION '% expired at %', what, c.expires_at
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'A consent must be completed within tenant_airbyte.oauth_consent_ttl_s seconds; start a new one with initiate_oauth().';
	END IF;
	RETURN c;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.oauth_pending_consent(uuid, text, text, bytea) IS
	'Internal to complete_oauth() and oauth_callback(): the pending, unexpired consent, or P0002 (none), 42710 (already used, or a replayed secret_id), 55000 (expired).';

/* Hands the completion to the worker: create_source with secretId. */
CREATE FUNCTION tenant_airbyte.oauth_complete(c tenant_airbyte.oauth_consents, secret_id text,
	secret_sha256 bytea, name text, configuration jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	config jsonb := coalesce(oauth_complete.configuration, '{}'::jsonb);
BEGIN
	IF jsonb_typeof(config) <> 'object' OR config ? 'credentials' THEN
		RAISE EXCEPTION 'an OAuth source''s configuration is a JSON object without "credentials"'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Airbyte adds the credentials from the consent; give only the other fields, e.g. ''{"account_ids": ["123"]}''.';
	END IF;
	IF config ? 'sourceType' AND config -> 'sourceType' IS DISTINCT FROM to_jsonb(c.source_type::text) THEN
		RAISE EXCEPTION 'configuration.sourceType does not match the source type "%"', c.source_type
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave sourceType out of the configuration.';
	END IF;
	PERFORM tenant_airbyte.workspace_for_sources(c.tenant_id);
	/* The secret_id travels to the worker as the operation's secret. */
	RETURN tenant_airbyte.run_operation('create_source', c.tenant_id,
		jsonb_build_object('name', oauth_complete.name,
						   'source_type', c.source_type,
						   'consent_id', c.consent_id,
						   'secret_sha256', encode(oauth_complete.secret_sha256, 'hex')),
		oauth_complete.name,
		jsonb_build_object('secretId', oauth_complete.secret_id,
						   'configuration', config || jsonb_build_object('sourceType', c.source_type::text)));
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.oauth_complete(tenant_airbyte.oauth_consents, text, bytea, text, jsonb) IS
	'Internal to complete_oauth() and oauth_callback(): creates the consent''s source (POST /sources with secretId) through the worker.';

CREATE FUNCTION tenant_airbyte.complete_oauth(tenant_id text, source_type text, secret_id text,
	name text, configuration jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c tenant_airbyte.oauth_consents;
	hash bytea;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(complete_oauth.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(complete_oauth.tenant_id);
	PERFORM tenant_airbyte.oauth_check_source_type(complete_oauth.source_type);
	IF complete_oauth.secret_id IS NULL OR btrim(complete_oauth.secret_id) = '' THEN
		RAISE EXCEPTION 'secret_id must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the secret_id Airbyte appended to the redirect URL after the user''s consent.';
	END IF;
	IF complete_oauth.name IS NULL OR btrim(complete_oauth.name) = '' OR length(complete_oauth.name) > 255 THEN
		RAISE EXCEPTION 'source name must be 1 to 255 characters'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name the source as it should appear in Airbyte, e.g. ''Meta Ads - acme''.';
	END IF;

	hash := sha256(convert_to(complete_oauth.secret_id, 'UTF8'));
	c := tenant_airbyte.oauth_pending_consent(NULL, complete_oauth.tenant_id,
											  complete_oauth.source_type, hash);
	RETURN tenant_airbyte.oauth_complete(c, complete_oauth.secret_id, hash, complete_oauth.name,
		c.configuration || coalesce(complete_oauth.configuration, '{}'::jsonb));
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.complete_oauth(text, text, text, text, jsonb) IS
	'Completes the tenant''s pending OAuth consent for source_type: creates the source in the tenant''s workspace with Airbyte''s secret_id (POST /sources with secretId, no credentials), exactly once, records it in tenant_sources (and its connection when the tenant has a pipeline). Refused: no pending consent (P0002), already used or a replayed secret_id (42710), expired (55000), another tenant (42501). For the application role, its own tenant only.';

/*
 * oauth_callback: the shim's way to finish a consent.  The shim's role
 * gets EXECUTE on this function only: it names a consent by its random
 * id, and can complete an existing, unexpired, unused consent with the
 * name and configuration initiate_oauth_consent() recorded, and nothing
 * else (no tenant context, no other source, no other function).
 */
CREATE FUNCTION tenant_airbyte.oauth_callback(consent_id uuid, secret_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c tenant_airbyte.oauth_consents;
	hash bytea;
BEGIN
	IF oauth_callback.consent_id IS NULL THEN
		RAISE EXCEPTION 'consent id must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The redirect URL initiate_oauth() gave Airbyte carries consent=<id>.';
	END IF;
	IF oauth_callback.secret_id IS NULL OR btrim(oauth_callback.secret_id) = '' THEN
		RAISE EXCEPTION 'secret_id must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Airbyte appends secret_id to the redirect URL once the user has approved; a user who declined has none.';
	END IF;
	hash := sha256(convert_to(oauth_callback.secret_id, 'UTF8'));
	c := tenant_airbyte.oauth_pending_consent(oauth_callback.consent_id, NULL, NULL, hash);
	RETURN tenant_airbyte.oauth_complete(c, oauth_callback.secret_id, hash,
		coalesce(c.source_name, c.source_type || ' - ' || left(c.consent_id::text, 8)),
		c.configuration);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.oauth_callback(uuid, text) IS
	'The shim''s GET /api/oauth/callback: completes the pending, unexpired, unused consent consent_id like complete_oauth(), with the name and configuration initiate_oauth_consent() recorded. Grant EXECUTE to the shim''s role; it can do nothing else with it.';

/* OAuth apps: superusers only. */
CREATE FUNCTION tenant_airbyte.oauth_require_superuser(what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r
			 WHERE r.rolname OPERATOR(pg_catalog.=) session_user) THEN
		RAISE EXCEPTION 'permission denied for function %', what
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'OAuth apps hold the SaaS''s client secrets: only superusers manage them.';
	END IF;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.oauth_require_superuser(text) IS
	'Internal: 42501 unless the session user is a superuser.';

CREATE FUNCTION tenant_airbyte.set_oauth_app(source_type text, configuration jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_airbyte.oauth_require_superuser('set_oauth_app');
	PERFORM tenant_airbyte.oauth_check_source_type(set_oauth_app.source_type);
	IF set_oauth_app.configuration IS NULL OR jsonb_typeof(set_oauth_app.configuration) <> 'object'
	   OR set_oauth_app.configuration = '{}'::jsonb THEN
		RAISE EXCEPTION 'an OAuth app''s configuration must be a non-empty JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The source type''s OAuth credentials, e.g. ''{"credentials": {"client_id": "...", "client_secret": "..."}}''.';
	END IF;
	INSERT INTO tenant_airbyte.oauth_apps AS a (source_type, configuration)
	VALUES (set_oauth_app.source_type, set_oauth_app.configuration)
	ON CONFLICT ON CONSTRAINT oauth_apps_pkey DO UPDATE
		SET configuration = EXCLUDED.configuration, updated_at = pg_catalog.now();
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.set_oauth_app(text, jsonb) IS
	'Stores the SaaS''s own OAuth app for a source type (its client id and secret); the worker applies it to every workspace that becomes active, and to existing ones after apply_oauth_apps(). Superusers only; the configuration is never readable by other roles nor logged.';

CREATE FUNCTION tenant_airbyte.drop_oauth_app(source_type text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM tenant_airbyte.oauth_require_superuser('drop_oauth_app');
	DELETE FROM tenant_airbyte.oauth_apps AS a
	 WHERE a.source_type OPERATOR(pg_catalog.=) drop_oauth_app.source_type;
	RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.drop_oauth_app(text) IS
	'Forgets the OAuth app of a source type; false when there was none. New workspaces no longer get it; workspaces that have it keep it (Airbyte''s API has no call to remove an override). Superusers only.';

CREATE FUNCTION tenant_airbyte.apply_oauth_apps()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	recorded integer;
BEGIN
	PERFORM tenant_airbyte.oauth_require_superuser('apply_oauth_apps');
	IF NOT EXISTS (SELECT FROM tenant_airbyte.oauth_apps) THEN
		RETURN 0;
	END IF;
	INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
	SELECT 'apply_oauth_apps', w.tenant_id, ''
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.status OPERATOR(pg_catalog.=) 'active'
	 ORDER BY w.tenant_id
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS recorded = ROW_COUNT;
	RETURN recorded;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.apply_oauth_apps() IS
	'Records an apply_oauth_apps operation for every active workspace (none already pending) and returns how many; the worker sends each OAuth app to each with PUT /workspaces/{id}/oauthCredentials. Outcomes, including "this Airbyte server does not support OAuth app overrides", are in tenant_airbyte.operations. Superusers only.';

/*
 * A workspace that becomes active gets the OAuth apps: an apply_oauth_apps
 * operation after its creation (or restore).  SECURITY DEFINER because
 * whoever writes the workspace row may not read oauth_apps; it only ever
 * records that operation.
 */
CREATE FUNCTION tenant_airbyte.oauth_enqueue_apps()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM tenant_airbyte.oauth_apps) THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
		VALUES ('apply_oauth_apps', NEW.tenant_id, '')
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.oauth_enqueue_apps() IS
	'Trigger: records an apply_oauth_apps operation when a workspace becomes active and OAuth apps are set.';

CREATE TRIGGER tenant_airbyte_workspaces_oauth_apps
	AFTER INSERT OR UPDATE OF status ON tenant_airbyte.tenant_airbyte_workspaces
	FOR EACH ROW WHEN (NEW.status = 'active')
	EXECUTE FUNCTION tenant_airbyte.oauth_enqueue_apps();
ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ENABLE ALWAYS TRIGGER tenant_airbyte_workspaces_oauth_apps;

/*
 * Grants.  The consent functions are for the application role, like
 * create_source(); oauth_callback() for the shim's role; the app functions
 * for superusers.  Nothing is granted on either table: a tenant reads its
 * consents through initiate_oauth_consent()'s answer.  The worker records
 * consents and reads the apps.
 */
REVOKE ALL ON tenant_airbyte.oauth_consents, tenant_airbyte.oauth_apps FROM PUBLIC;
REVOKE ALL ON FUNCTION
	tenant_airbyte.oauth_check_source_type(text),
	tenant_airbyte.initiate_oauth_consent(text, text, text, text, jsonb),
	tenant_airbyte.oauth_pending_consent(uuid, text, text, bytea),
	tenant_airbyte.oauth_complete(tenant_airbyte.oauth_consents, text, bytea, text, jsonb),
	tenant_airbyte.complete_oauth(text, text, text, text, jsonb),
	tenant_airbyte.oauth_callback(uuid, text),
	tenant_airbyte.oauth_require_superuser(text),
	tenant_airbyte.set_oauth_app(text, jsonb),
	tenant_airbyte.drop_oauth_app(text),
	tenant_airbyte.apply_oauth_apps(),
	tenant_airbyte.oauth_enqueue_apps()
	FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_airbyte.oauth_consents TO tenant_airbyte_worker;
GRANT SELECT ON tenant_airbyte.oauth_apps TO tenant_airbyte_worker;
GRANT EXECUTE ON FUNCTION tenant_airbyte.oauth_enqueue_apps() TO tenant_airbyte_worker;

/* ------------------------------------------------------------------------
 * 11. Signing keys refresh
 *
 * With tenant_airbyte.jwks_url set, the background worker fetches the
 * issuer's JWKS on start, every tenant_airbyte.jwks_refresh_s, and within
 * a minute of a token whose kid no stored key has (authenticate() asks
 * through shared memory; it never makes a network call itself).  The
 * worker hands the document to apply_jwks() in a short transaction of
 * its own (src/auth/jwks_refresh.c).
 *
 * Fetched and hand-loaded keys live side by side in jwt_keys:
 * fetched_from says which is which.  The refresh adds and updates only
 * the keys it fetched, and marks those that vanish from the JWKS with
 * removed_at; authenticate() accepts such a key for
 * tenant_airbyte.jwks_grace_s more, then refuses it.  load_jwks() makes
 * the keys it stores hand-loaded, and the refresh never touches those.
 * A document that cannot be used leaves every key as it was, and
 * worker_status says why (jwks_error).
 * ------------------------------------------------------------------------ */

ALTER TABLE tenant_airbyte.jwt_keys
	ADD COLUMN fetched_from text,
	ADD COLUMN removed_at timestamptz;

COMMENT ON COLUMN tenant_airbyte.jwt_keys.fetched_from IS
	'The tenant_airbyte.jwks_url the worker fetched the key from; NULL for a key loaded by hand with load_jwks(), which the refresh never changes or retires.';
COMMENT ON COLUMN tenant_airbyte.jwt_keys.removed_at IS
	'When the key vanished from the fetched JWKS; authenticate() accepts it for tenant_airbyte.jwks_grace_s after that. NULL while it is published.';
COMMENT ON COLUMN tenant_airbyte.jwt_keys.loaded_at IS
	'When load_jwks() or the refresh last stored or changed the key.';

/*
 * apply_jwks: what the worker does with a fetched document.  jsonb parses
 * it; only keys authenticate() can verify are kept (RSA, for signing,
 * RS256 or no alg, a kid, jwk_problem() NULL).  Not JSON, no "keys"
 * array, no keys at all, or no usable key: an error, so that the caller's
 * transaction rolls back and the stored keys stay as they were.  Returns
 * the number of usable keys.  Runs with the caller's rights (the worker's
 * role, or an administrator testing a document).
 */
CREATE FUNCTION tenant_airbyte.apply_jwks(document text, source_url text)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	jwks jsonb;
	key_issuer text := nullif(current_setting('tenant_airbyte.jwt_issuer'), '');
	jwk jsonb;
	problem text;
	first_problem text;
	listed integer := 0;
	kids text[] := '{}';
BEGIN
	IF source_url IS NULL OR source_url = '' THEN
		RAISE EXCEPTION 'apply_jwks() needs the URL the document came from'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	BEGIN
		jwks := document::jsonb;
	EXCEPTION WHEN data_exception THEN
		RAISE EXCEPTION 'the JWKS is not valid JSON'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = SQLERRM;
	END;
	IF jsonb_typeof(jwks) IS DISTINCT FROM 'object'
	   OR jsonb_typeof(jwks -> 'keys') IS DISTINCT FROM 'array' THEN
		RAISE EXCEPTION 'the JWKS has no "keys" array'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_array_length(jwks -> 'keys') = 0 THEN
		RAISE EXCEPTION 'the JWKS lists no keys'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	FOR jwk IN SELECT k.value FROM jsonb_array_elements(jwks -> 'keys') AS k LOOP
		listed := listed + 1;
		problem := CASE
			WHEN jsonb_typeof(jwk) IS DISTINCT FROM 'object' THEN 'not a JSON object'
			WHEN jsonb_typeof(jwk -> 'kid') IS DISTINCT FROM 'string' OR jwk ->> 'kid' = '' THEN 'no kid'
			WHEN jwk ->> 'kty' IS DISTINCT FROM 'RSA' THEN
				format('kty %s, not RSA', coalesce(left(jwk ->> 'kty', 16), 'missing'))
			WHEN jwk ->> 'use' IS DISTINCT FROM 'sig' AND jwk ? 'use' THEN 'not a signing key (use)'
			WHEN jwk ->> 'alg' IS DISTINCT FROM 'RS256' AND jwk ? 'alg' THEN
				format('alg %s, not RS256', left(jwk ->> 'alg', 16))
			WHEN (jwk ->> 'kid') = ANY (kids) THEN 'kid listed twice'
			ELSE tenant_airbyte.jwk_problem(jwk)
		END;
		IF problem IS NOT NULL THEN
			first_problem := coalesce(first_problem,
				format('key %s: %s', coalesce(quote_literal(left(jwk ->> 'kid', 64)), 'without kid'), problem));
			CONTINUE;
		END IF;
		kids := kids || (jwk ->> 'kid');

		/* New or changed keys; a hand-loaded key of the same kid stays as it is. */
		INSERT INTO tenant_airbyte.jwt_keys AS k (kid, jwk, issuer, fetched_from)
		VALUES (jwk ->> 'kid', jwk, key_issuer, source_url)
		ON CONFLICT (kid) DO UPDATE
			SET jwk = excluded.jwk, issuer = excluded.issuer,
				fetched_from = excluded.fetched_from, removed_at = NULL,
				loaded_at = pg_catalog.now()
		  WHERE k.fetched_from IS NOT NULL
			AND (k.jwk IS DISTINCT FROM excluded.jwk
				 OR k.issuer IS DISTINCT FROM excluded.issuer
				 OR k.fetched_from IS DISTINCT FROM excluded.fetched_from
				 OR k.removed_at IS NOT NULL);
	END LOOP;

	IF cardinality(kids) = 0 THEN
		RAISE EXCEPTION 'the JWKS holds no key authenticate() can use'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('%s keys listed, none an RSA signing key (RS256, at least 2048 bits) with a kid; first: %s.',
								  listed, first_problem);
	END IF;

	/* Fetched keys the issuer no longer publishes enter their grace period. */
	UPDATE tenant_airbyte.jwt_keys AS k
	   SET removed_at = pg_catalog.now()
	 WHERE k.fetched_from IS NOT NULL
	   AND k.removed_at IS NULL
	   AND k.kid <> ALL (kids);

	RETURN cardinality(kids);
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.apply_jwks(text, text) IS
	'Internal to the worker''s JWKS refresh: parses a fetched JWKS, stores its usable keys as fetched from source_url, starts the grace period of fetched keys it no longer lists; raises an error (keeping every key) for a document that is not JSON or holds no usable key. Returns the number of usable keys.';

/*
 * jwks_state(): the refresh as the worker's shared memory describes it.
 * worker_status shows it in its last columns.
 */
CREATE FUNCTION tenant_airbyte.jwks_state(
	OUT checked_at timestamptz,
	OUT refreshed_at timestamptz,
	OUT keys integer,
	OUT error text,
	OUT fetches bigint)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_jwks_state';

COMMENT ON FUNCTION tenant_airbyte.jwks_state() IS
	'The JWKS refresh: when the worker last fetched tenant_airbyte.jwks_url, when a fetched JWKS was last applied and with how many usable keys, why the last fetch changed nothing (NULL when it did not fail), fetches since the server started.';

CREATE OR REPLACE VIEW tenant_airbyte.worker_status WITH (security_invoker = true) AS
SELECT w.pid,
	   w.state,
	   w.started_at,
	   w.requests_in_flight,
	   c.pending,
	   c.in_flight,
	   c.done,
	   c.ignored,
	   c.failed,
	   c.dead,
	   pg_catalog.now() OPERATOR(pg_catalog.-) c.oldest_pending_received_at AS oldest_pending_age,
	   w.last_error,
	   w.last_error_at,
	   w.deliveries_finished,
	   w.commit_wakeups,
	   j.checked_at AS jwks_checked_at,
	   j.refreshed_at AS jwks_refreshed_at,
	   j.keys AS jwks_keys,
	   j.error AS jwks_error
  FROM tenant_airbyte.worker_state() AS w,
	   (SELECT pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS pending,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'in_flight') AS in_flight,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'done') AS done,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'ignored') AS ignored,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'dead') AS dead,
			   pg_catalog.min(i.received_at) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS oldest_pending_received_at
		  FROM tenant_airbyte.webhook_inbox AS i) AS c,
	   tenant_airbyte.jwks_state() AS j;

COMMENT ON VIEW tenant_airbyte.worker_status IS
	'The background worker at a glance: pid, state, Airbyte requests in flight, inbox rows per status, age of the oldest pending delivery, last error; and the JWKS refresh: last fetch, last applied JWKS and its usable keys, why the last fetch changed nothing.';

/* Section 5's REVOKE does not reach objects created after it. */
REVOKE ALL ON FUNCTION
	tenant_airbyte.apply_jwks(text, text),
	tenant_airbyte.jwks_state()
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_airbyte.jwks_state() TO pg_monitor;

/* The worker applies what it fetched (section 7: its role). */
GRANT SELECT, INSERT, UPDATE ON tenant_airbyte.jwt_keys TO tenant_airbyte_worker;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.apply_jwks(text, text),
	tenant_airbyte.jwk_problem(jsonb)
	TO tenant_airbyte_worker;

/* ------------------------------------------------------------------------
 * 12. Drift
 *
 * reconcile(dry_run) compares the extension's rows with what Airbyte holds
 * (src/operations/kind_reconcile.c lists; drift_compare() below decides)
 * and, without dry_run, records one operation per repair
 * (src/operations/kind_drift_repair.c, or the pipeline kinds for a
 * destination or connection to create again).  Every run is a row of
 * reconcile_runs and each problem it found a row of reconcile_findings;
 * doc/operations.md ("Drift") lists the problems and actions.
 *
 * The functions here run with search_path = pg_catalog, pg_temp (set on
 * each), so their unqualified operators and functions can only be
 * PostgreSQL's own; every table is schema-qualified.
 * ------------------------------------------------------------------------ */

CREATE TABLE tenant_airbyte.reconcile_runs (
	run_id bigint PRIMARY KEY,
	started_at timestamptz NOT NULL,
	finished_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	dry_run boolean NOT NULL,
	periodic boolean NOT NULL,
	orphan_policy text NOT NULL,
	objects_listed integer NOT NULL,
	problems integer NOT NULL,
	repairs integer NOT NULL
);

COMMENT ON TABLE tenant_airbyte.reconcile_runs IS
	'One row per reconciliation with Airbyte (reconcile(), or the periodic run every tenant_airbyte.reconcile_interval_s): run_id is the reconcile operation''s id; problems found, repairs recorded.  The last 100 runs are kept.  No tenant data.';

CREATE TABLE tenant_airbyte.reconcile_findings (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id bigint NOT NULL,
	found_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	tenant_id varchar(255) NOT NULL,
	object text NOT NULL,
	airbyte_id uuid NOT NULL,
	problem text NOT NULL,
	detail text NOT NULL,
	action text NOT NULL,
	operation_id bigint,

	CONSTRAINT reconcile_findings_object_check
		CHECK (object IN ('workspace', 'source', 'destination', 'connection')),
	CONSTRAINT reconcile_findings_problem_check
		CHECK (problem IN ('gone', 'orphan', 'renamed', 'duplicate', 'status')),
	CONSTRAINT reconcile_findings_action_check
		CHECK (action IN ('recreate', 'adopt', 'rename_back', 'set_status', 'delete', 'report'))
);

CREATE INDEX reconcile_findings_run_id ON tenant_airbyte.reconcile_findings (run_id);

/* The runs hold no tenant data: superusers, the worker and pg_monitor read them. */
ALTER TABLE tenant_airbyte.reconcile_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.reconcile_runs FORCE ROW LEVEL SECURITY;

CREATE POLICY monitoring ON tenant_airbyte.reconcile_runs
	FOR SELECT TO pg_monitor USING (true);

COMMENT ON TABLE tenant_airbyte.reconcile_findings IS
	'What each reconciliation found: the tenant, the Airbyte object (workspace, source, destination, connection) and its id, the problem (gone, orphan, renamed, duplicate, status), a detail, the action (recreate, adopt, rename_back, set_status, delete, report) and, when it was carried out, the operation that does it.  Tenant-scoped (row-level security).';

ALTER TABLE tenant_airbyte.reconcile_findings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.reconcile_findings FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant_airbyte.reconcile_findings
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());

/*
 * drift_present_workspaces(listed): the rows' workspaces (not soft-deleted)
 * that the live listing holds, whose sources, destinations and connections
 * the reconcile operation lists next, and whether any row's workspace is
 * missing from it (then the listing with includeDeleted=true tells deleted
 * from unknown).
 */
CREATE FUNCTION tenant_airbyte.drift_present_workspaces(listed jsonb,
	OUT workspace_id text, OUT present boolean)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT w.airbyte_workspace_id::text, l.id IS NOT NULL
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	  LEFT JOIN (SELECT DISTINCT e -> 'd' ->> 'workspaceId' AS id
				   FROM jsonb_array_elements(listed) AS e
				  WHERE e ->> 'o' = 'workspace') AS l
		ON l.id = w.airbyte_workspace_id::text
	 WHERE w.status <> 'deleted'
	 ORDER BY 1;
$$;

COMMENT ON FUNCTION tenant_airbyte.drift_present_workspaces(jsonb) IS
	'Internal to the reconcile operation: each recorded workspace (not soft-deleted) and whether Airbyte''s live listing holds it.';

/*
 * drift_problems(listed): every problem, from the rows and what the
 * reconcile operation listed (an array of {"o": object, "d": Airbyte's
 * object}; "o" is workspace, workspace_any (includeDeleted=true), source,
 * destination or connection).  The rules are in doc/operations.md; the
 * names are the ones the kinds give (workspace_name_candidate(),
 * pipeline_destination_name(), a source's own name, a connection of a
 * recorded source).
 */
CREATE FUNCTION tenant_airbyte.drift_problems(listed jsonb, orphan_action text,
	OUT tenant_id text, OUT object text, OUT airbyte_id uuid, OUT problem text,
	OUT detail text, OUT action text, OUT repair jsonb)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH l AS (
	SELECT e ->> 'o' AS o, e -> 'd' AS d FROM jsonb_array_elements(listed) AS e
), ws AS (
	SELECT DISTINCT ON (d ->> 'workspaceId') d ->> 'workspaceId' AS id, d ->> 'name' AS name
	  FROM l WHERE o = 'workspace'
), ws_any AS (
	SELECT DISTINCT d ->> 'workspaceId' AS id FROM l WHERE o = 'workspace_any'
), rw AS (
	SELECT w.tenant_id::text AS tenant_id, w.airbyte_workspace_id::text AS id,
		   w.airbyte_workspace_name::text AS name, w.status::text AS status
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
), present AS (
	SELECT rw.* FROM rw JOIN ws ON ws.id = rw.id WHERE rw.status <> 'deleted'
), child AS (
	SELECT l.o, l.d, p.tenant_id, p.id AS workspace_id
	  FROM l JOIN present AS p ON p.id = l.d ->> 'workspaceId'
	 WHERE l.o IN ('source', 'destination', 'connection')
), unmapped_ws AS (
	SELECT ws.* FROM ws WHERE NOT EXISTS (SELECT FROM rw WHERE rw.id = ws.id)
), known_tenants AS (
	SELECT rw.tenant_id FROM rw
	UNION
	SELECT o.tenant_id::text FROM tenant_airbyte.operations AS o WHERE o.kind = 'provision'
), intents AS (
	/* provision operations that ended without a workspace, their name decided */
	SELECT DISTINCT ON (o.intended_name) o.tenant_id::text AS tenant_id, o.intended_name, o.id
	  FROM tenant_airbyte.operations AS o
	 WHERE o.kind = 'provision' AND o.status IN ('failed', 'dead')
	   AND o.intended_name IS NOT NULL
	   AND NOT EXISTS (SELECT FROM rw WHERE rw.tenant_id = o.tenant_id::text)
	 ORDER BY o.intended_name, o.id DESC
), busy AS (
	SELECT o.intended_name FROM tenant_airbyte.operations AS o
	 WHERE o.status IN ('pending', 'in_flight') AND o.intended_name IS NOT NULL
), id_prefixes AS (
	/* what workspace_name_candidate() puts after " - ": 8 or more characters of the id, or all of it */
	SELECT DISTINCT ON (left(k.tenant_id, n)) left(k.tenant_id, n) AS prefix, k.tenant_id
	  FROM known_tenants AS k,
		   generate_series(least(8, length(k.tenant_id)), length(k.tenant_id)) AS n
	 ORDER BY left(k.tenant_id, n), length(k.tenant_id), k.tenant_id
), holders AS (
	SELECT DISTINCT ON (rw.name) rw.name, rw.tenant_id FROM rw ORDER BY rw.name, rw.tenant_id
), ws_orphans AS (
	SELECT u.id, u.name,
		   row_number() OVER (PARTITION BY u.name ORDER BY u.id) AS nth,
		   i.tenant_id AS intent_tenant, i.id AS intent_id,
		   h.tenant_id AS holder, p.tenant_id AS named_for
	  FROM unmapped_ws AS u
	  LEFT JOIN intents AS i ON i.intended_name = u.name
	  LEFT JOIN holders AS h ON h.name = u.name
	  LEFT JOIN id_prefixes AS p ON p.prefix = substring(u.name FROM '^.* - (.+)$')
	 WHERE NOT EXISTS (SELECT FROM busy WHERE busy.intended_name = u.name)
), src AS (
	SELECT c.tenant_id, c.workspace_id, c.d ->> 'sourceId' AS id, c.d ->> 'name' AS name,
		   c.d ->> 'sourceType' AS type
	  FROM child AS c WHERE c.o = 'source'
), dst AS (
	SELECT c.tenant_id, c.workspace_id, c.d ->> 'destinationId' AS id, c.d ->> 'name' AS name,
		   c.d ->> 'destinationType' AS type
	  FROM child AS c WHERE c.o = 'destination'
), con AS (
	SELECT c.tenant_id, c.workspace_id, c.d ->> 'connectionId' AS id, c.d ->> 'name' AS name,
		   c.d ->> 'status' AS status, c.d ->> 'sourceId' AS source_id,
		   c.d ->> 'destinationId' AS destination_id,
		   coalesce(c.d -> 'schedule' ->> 'cronExpression', 'manual') AS schedule
	  FROM child AS c WHERE c.o = 'connection'
)
/* workspaces: gone, renamed */
SELECT r.tenant_id, 'workspace', r.id::uuid, 'gone',
	   CASE WHEN r.id IN (SELECT id FROM ws_any) THEN 'deleted in Airbyte' ELSE 'not in Airbyte' END,
	   'recreate', jsonb_build_object('action', 'recreate', 'object', 'workspace', 'airbyte_id', r.id, 'name', r.name)
  FROM rw AS r
 WHERE r.status <> 'deleted' AND NOT EXISTS (SELECT FROM ws WHERE ws.id = r.id)
UNION ALL
SELECT p.tenant_id, 'workspace', p.id::uuid, 'renamed',
	   format('named %s in Airbyte, %s recorded', quote_literal(ws.name), quote_literal(p.name)),
	   'rename_back', jsonb_build_object('action', 'rename_back', 'object', 'workspace', 'airbyte_id', p.id, 'name', p.name)
  FROM present AS p JOIN ws ON ws.id = p.id
 WHERE ws.name IS DISTINCT FROM p.name
UNION ALL
/* workspaces: orphans and duplicates */
SELECT coalesce(o.intent_tenant, o.holder, o.named_for), 'workspace', o.id::uuid,
	   CASE WHEN o.intent_tenant IS NOT NULL AND o.nth = 1 THEN 'orphan'
			WHEN o.holder IS NOT NULL OR o.nth > 1 THEN 'duplicate'
			ELSE 'orphan' END,
	   CASE WHEN o.intent_tenant IS NOT NULL AND o.nth = 1
				THEN format('named as operation %s intended, which ended without recording it', o.intent_id)
			WHEN o.holder IS NOT NULL
				THEN format('a second workspace named %s, which the tenant''s row records under another id', quote_literal(o.name))
			WHEN o.nth > 1 THEN format('another workspace named %s', quote_literal(o.name))
			ELSE format('named %s, like the tenant''s workspaces, recorded nowhere', quote_literal(o.name)) END,
	   CASE WHEN o.intent_tenant IS NOT NULL AND o.nth = 1 THEN 'adopt' ELSE orphan_action END,
	   CASE WHEN o.intent_tenant IS NOT NULL AND o.nth = 1
				THEN jsonb_build_object('action', 'adopt', 'object', 'workspace', 'airbyte_id', o.id, 'name', o.name)
			ELSE jsonb_build_object('action', orphan_action, 'object', 'workspace', 'airbyte_id', o.id, 'name', o.name) END
  FROM ws_orphans AS o
 WHERE coalesce(o.intent_tenant, o.holder, o.named_for) IS NOT NULL
UNION ALL
/* sources: gone (credentials are not kept: reported), renamed, orphans of an interrupted create_source */
SELECT s.tenant_id::text, 'source', s.airbyte_source_id, 'gone',
	   'not in Airbyte; its credentials are not kept, so delete_source() and create_source() again',
	   'report', NULL
  FROM tenant_airbyte.tenant_sources AS s JOIN present AS p ON p.id = s.airbyte_workspace_id::text
 WHERE NOT EXISTS (SELECT FROM src WHERE src.id = s.airbyte_source_id::text)
UNION ALL
SELECT s.tenant_id::text, 'source', s.airbyte_source_id, 'renamed',
	   format('named %s in Airbyte, %s recorded', quote_literal(src.name), quote_literal(s.name)),
	   'rename_back', jsonb_build_object('action', 'rename_back', 'object', 'source', 'airbyte_id', s.airbyte_source_id, 'name', s.name)
  FROM tenant_airbyte.tenant_sources AS s JOIN src ON src.id = s.airbyte_source_id::text
 WHERE src.name IS DISTINCT FROM s.name
UNION ALL
SELECT u.tenant_id, 'source', u.id::uuid,
	   CASE WHEN held THEN 'duplicate' ELSE 'orphan' END,
	   CASE WHEN held THEN format('a second source named %s in the tenant''s workspace', quote_literal(u.name))
			ELSE format('named as a create_source() that ended without recording it (%s)', quote_literal(u.name)) END,
	   CASE WHEN held THEN orphan_action ELSE 'adopt' END,
	   jsonb_build_object('action', CASE WHEN held THEN orphan_action ELSE 'adopt' END, 'object', 'source',
						  'airbyte_id', u.id, 'name', u.name, 'workspace_id', u.workspace_id, 'type', u.type)
  FROM src AS u
  CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM tenant_airbyte.tenant_sources AS s
									  WHERE s.tenant_id::text = u.tenant_id AND s.name::text = u.name) AS held) AS h
 WHERE NOT EXISTS (SELECT FROM tenant_airbyte.tenant_sources AS s WHERE s.airbyte_source_id::text = u.id)
   AND (held OR EXISTS (SELECT FROM tenant_airbyte.operations AS o
						 WHERE o.kind = 'create_source' AND o.tenant_id::text = u.tenant_id
						   AND o.intended_name = u.name AND o.status IN ('failed', 'dead')))
UNION ALL
/* destinations: gone, renamed, orphans and duplicates by the template's name */
SELECT d.tenant_id::text, 'destination', d.airbyte_destination_id, 'gone', 'not in Airbyte',
	   'recreate', jsonb_build_object('action', 'recreate', 'object', 'destination', 'airbyte_id', d.airbyte_destination_id)
  FROM tenant_airbyte.tenant_destinations AS d JOIN present AS p ON p.id = d.airbyte_workspace_id::text
 WHERE NOT EXISTS (SELECT FROM dst WHERE dst.id = d.airbyte_destination_id::text)
UNION ALL
SELECT d.tenant_id::text, 'destination', d.airbyte_destination_id, 'renamed',
	   format('named %s in Airbyte, %s recorded', quote_literal(dst.name), quote_literal(d.name)),
	   'rename_back', jsonb_build_object('action', 'rename_back', 'object', 'destination', 'airbyte_id', d.airbyte_destination_id, 'name', d.name)
  FROM tenant_airbyte.tenant_destinations AS d JOIN dst ON dst.id = d.airbyte_destination_id::text
 WHERE dst.name IS DISTINCT FROM d.name
UNION ALL
SELECT u.tenant_id, 'destination', u.id::uuid,
	   CASE WHEN has_row THEN 'duplicate' ELSE 'orphan' END,
	   CASE WHEN has_row THEN format('a second destination named %s in the tenant''s workspace', quote_literal(u.name))
			ELSE format('named %s as the tenant''s template names its destination, recorded nowhere', quote_literal(u.name)) END,
	   CASE WHEN has_row THEN orphan_action ELSE 'adopt' END,
	   jsonb_build_object('action', CASE WHEN has_row THEN orphan_action ELSE 'adopt' END, 'object', 'destination',
						  'airbyte_id', u.id, 'name', u.name, 'workspace_id', u.workspace_id, 'type', u.type)
  FROM dst AS u
  CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS d
									  WHERE d.tenant_id::text = u.tenant_id) AS has_row) AS h
 WHERE NOT EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS d WHERE d.airbyte_destination_id::text = u.id)
   AND u.name = tenant_airbyte.pipeline_destination_name(u.tenant_id)
UNION ALL
/* connections: gone, renamed, status, orphans and duplicates of a recorded source */
SELECT c.tenant_id::text, 'connection', c.airbyte_connection_id, 'gone', 'not in Airbyte',
	   'recreate', jsonb_build_object('action', 'recreate', 'object', 'connection', 'airbyte_id', c.airbyte_connection_id,
									  'source_id', c.airbyte_source_id)
  FROM tenant_airbyte.tenant_connections AS c JOIN present AS p ON p.id = c.airbyte_workspace_id::text
 WHERE NOT EXISTS (SELECT FROM con WHERE con.id = c.airbyte_connection_id::text)
UNION ALL
SELECT c.tenant_id::text, 'connection', c.airbyte_connection_id, 'renamed',
	   format('named %s in Airbyte, %s recorded', quote_literal(con.name), quote_literal(c.name)),
	   'rename_back', jsonb_build_object('action', 'rename_back', 'object', 'connection', 'airbyte_id', c.airbyte_connection_id, 'name', c.name)
  FROM tenant_airbyte.tenant_connections AS c JOIN con ON con.id = c.airbyte_connection_id::text
 WHERE con.name IS DISTINCT FROM c.name
UNION ALL
SELECT c.tenant_id::text, 'connection', c.airbyte_connection_id, 'status',
	   format('%s in Airbyte, %s recorded', con.status, c.status),
	   'set_status', jsonb_build_object('action', 'set_status', 'object', 'connection', 'airbyte_id', c.airbyte_connection_id, 'status', c.status)
  FROM tenant_airbyte.tenant_connections AS c JOIN con ON con.id = c.airbyte_connection_id::text
 WHERE con.status IS DISTINCT FROM c.status::text
UNION ALL
SELECT u.tenant_id, 'connection', u.id::uuid,
	   CASE WHEN has_row THEN 'duplicate' ELSE 'orphan' END,
	   CASE WHEN has_row THEN format('a second connection of source %s', u.source_id)
			ELSE format('a connection of source %s to the tenant''s destination, recorded nowhere', u.source_id) END,
	   CASE WHEN has_row THEN orphan_action ELSE 'adopt' END,
	   jsonb_build_object('action', CASE WHEN has_row THEN orphan_action ELSE 'adopt' END, 'object', 'connection',
						  'airbyte_id', u.id, 'name', u.name, 'workspace_id', u.workspace_id, 'status', u.status,
						  'source_id', u.source_id, 'destination_id', u.destination_id, 'schedule', u.schedule)
  FROM con AS u
  JOIN tenant_airbyte.tenant_sources AS s
	ON s.tenant_id::text = u.tenant_id AND s.airbyte_source_id::text = u.source_id
  CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c
									  WHERE c.tenant_id::text = u.tenant_id
										AND c.airbyte_source_id::text = u.source_id) AS has_row) AS h
 WHERE NOT EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c WHERE c.airbyte_connection_id::text = u.id)
   AND (has_row OR EXISTS (SELECT FROM tenant_airbyte.tenant_destinations AS d
							WHERE d.tenant_id::text = u.tenant_id AND d.airbyte_destination_id::text = u.destination_id));
$$;

COMMENT ON FUNCTION tenant_airbyte.drift_problems(jsonb, text) IS
	'Internal to the reconcile operation: every difference between the rows and what it listed in Airbyte, with the action that repairs it.';

/*
 * drift_compare(): the reconcile operation's last step.  Records the run
 * and its findings and, unless dry_run, the repairs: one drift_repair
 * operation each (rename back, set a connection's status, delete an
 * orphan, adopt, create a gone workspace again), or for a gone destination
 * or connection its row forgotten and the pipeline's own create_destination
 * / create_connection recorded.  All in the operation's transaction: the
 * findings and the repairs they name commit together, once.
 */
CREATE FUNCTION tenant_airbyte.drift_compare(run_id bigint, dry_run boolean, periodic boolean,
	orphan_policy text, listed jsonb, started_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	f record;
	op bigint;
	problems integer := 0;
	repairs integer := 0;
	orphan_action text := CASE WHEN orphan_policy = 'delete' THEN 'delete' ELSE 'report' END;
BEGIN
	FOR f IN SELECT * FROM tenant_airbyte.drift_problems(listed, orphan_action) AS p
			  ORDER BY p.tenant_id, array_position('{workspace,destination,source,connection}'::text[], p.object),
					   p.airbyte_id, p.problem
	LOOP
		problems := problems + 1;
		op := NULL;
		IF NOT dry_run AND f.action <> 'report' THEN
			IF f.action = 'recreate' AND f.object = 'destination' THEN
				DELETE FROM tenant_airbyte.tenant_destinations AS d
				 WHERE d.tenant_id = f.tenant_id AND d.airbyte_destination_id = f.airbyte_id;
				INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
				VALUES ('create_destination', f.tenant_id, '')
				ON CONFLICT DO NOTHING RETURNING id INTO op;
				INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
				SELECT 'create_connection', s.tenant_id, s.airbyte_source_id::text,
					   jsonb_build_object('source_id', s.airbyte_source_id)
				  FROM tenant_airbyte.tenant_sources AS s
				 WHERE s.tenant_id = f.tenant_id
				   AND NOT EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c
									WHERE c.tenant_id = s.tenant_id AND c.airbyte_source_id = s.airbyte_source_id)
				 ORDER BY s.created_at, s.airbyte_source_id
				ON CONFLICT DO NOTHING;
				IF op IS NULL THEN
					SELECT o.id INTO op FROM tenant_airbyte.operations AS o
					 WHERE o.kind = 'create_destination' AND o.tenant_id = f.tenant_id
					   AND o.status IN ('pending', 'in_flight');
				END IF;
			ELSIF f.action = 'recreate' AND f.object = 'connection' THEN
				DELETE FROM tenant_airbyte.tenant_connections AS c
				 WHERE c.tenant_id = f.tenant_id AND c.airbyte_connection_id = f.airbyte_id;
				INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
				VALUES ('create_connection', f.tenant_id, f.repair ->> 'source_id',
						jsonb_build_object('source_id', f.repair ->> 'source_id'))
				ON CONFLICT DO NOTHING RETURNING id INTO op;
				IF op IS NULL THEN
					SELECT o.id INTO op FROM tenant_airbyte.operations AS o
					 WHERE o.kind = 'create_connection' AND o.tenant_id = f.tenant_id
					   AND o.subject = f.repair ->> 'source_id' AND o.status IN ('pending', 'in_flight');
				END IF;
			ELSE
				INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
				VALUES ('drift_repair', f.tenant_id, f.action || ':' || f.airbyte_id::text,
						f.repair || jsonb_build_object('run_id', run_id))
				ON CONFLICT DO NOTHING RETURNING id INTO op;
				IF op IS NULL THEN
					SELECT o.id INTO op FROM tenant_airbyte.operations AS o
					 WHERE o.kind = 'drift_repair' AND o.tenant_id = f.tenant_id
					   AND o.subject = f.action || ':' || f.airbyte_id::text
					   AND o.status IN ('pending', 'in_flight');
				END IF;
			END IF;
			repairs := repairs + 1;
		END IF;
		INSERT INTO tenant_airbyte.reconcile_findings
			(run_id, tenant_id, object, airbyte_id, problem, detail, action, operation_id)
		VALUES (drift_compare.run_id, f.tenant_id, f.object, f.airbyte_id, f.problem, f.detail,
				f.action, op);
	END LOOP;

	INSERT INTO tenant_airbyte.reconcile_runs
		(run_id, started_at, dry_run, periodic, orphan_policy, objects_listed, problems, repairs)
	VALUES (drift_compare.run_id, drift_compare.started_at, dry_run, periodic, orphan_action,
			jsonb_array_length(listed), problems, repairs);

	/* keep the last 100 runs */
	DELETE FROM tenant_airbyte.reconcile_runs AS r
	 WHERE r.run_id < (SELECT k.run_id FROM tenant_airbyte.reconcile_runs AS k
						ORDER BY k.run_id DESC OFFSET 99 LIMIT 1);
	DELETE FROM tenant_airbyte.reconcile_findings AS x
	 WHERE x.run_id < (SELECT min(k.run_id) FROM tenant_airbyte.reconcile_runs AS k);

	RETURN jsonb_build_object('run_id', run_id, 'dry_run', dry_run, 'problems', problems,
							  'repairs', repairs);
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.drift_compare(bigint, boolean, boolean, text, jsonb, timestamptz) IS
	'Internal to the reconcile operation: records the run, its findings and (unless dry_run) one operation per repair, in the operation''s transaction.';

/*
 * drift_adopt(): a drift_repair operation's database step for "adopt": the
 * object Airbyte holds under the name the extension intended becomes the
 * tenant's row, as the kind that meant to create it would have recorded
 * it (so the same triggers follow: a workspace gets its destination, a
 * source its connection).  Nothing when the tenant meanwhile has one.
 */
CREATE FUNCTION tenant_airbyte.drift_adopt(tenant_id text, repair jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	CASE repair ->> 'object'
	WHEN 'workspace' THEN
		INSERT INTO tenant_airbyte.tenant_airbyte_workspaces (tenant_id, airbyte_workspace_id, airbyte_workspace_name)
		VALUES (drift_adopt.tenant_id, (repair ->> 'airbyte_id')::uuid, repair ->> 'name')
		ON CONFLICT DO NOTHING;
	WHEN 'source' THEN
		INSERT INTO tenant_airbyte.tenant_sources (tenant_id, airbyte_workspace_id, airbyte_source_id, source_type, name)
		VALUES (drift_adopt.tenant_id, (repair ->> 'workspace_id')::uuid, (repair ->> 'airbyte_id')::uuid,
				coalesce(repair ->> 'type', 'custom'), repair ->> 'name')
		ON CONFLICT DO NOTHING;
	WHEN 'destination' THEN
		INSERT INTO tenant_airbyte.tenant_destinations
			(tenant_id, airbyte_workspace_id, airbyte_destination_id, destination_type, name, template)
		VALUES (drift_adopt.tenant_id, (repair ->> 'workspace_id')::uuid, (repair ->> 'airbyte_id')::uuid,
				coalesce(repair ->> 'type', 'custom'), repair ->> 'name',
				tenant_airbyte.template_for_tenant(drift_adopt.tenant_id))
		ON CONFLICT DO NOTHING;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n > 0 THEN
			INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject, params)
			SELECT 'create_connection', s.tenant_id, s.airbyte_source_id::text,
				   jsonb_build_object('source_id', s.airbyte_source_id)
			  FROM tenant_airbyte.tenant_sources AS s
			 WHERE s.tenant_id = drift_adopt.tenant_id
			   AND NOT EXISTS (SELECT FROM tenant_airbyte.tenant_connections AS c
								WHERE c.tenant_id = s.tenant_id AND c.airbyte_source_id = s.airbyte_source_id)
			 ORDER BY s.created_at, s.airbyte_source_id
			ON CONFLICT DO NOTHING;
		END IF;
		RETURN CASE WHEN n > 0 THEN 'adopted' ELSE 'skipped' END;
	WHEN 'connection' THEN
		INSERT INTO tenant_airbyte.tenant_connections
			(tenant_id, airbyte_workspace_id, airbyte_source_id, airbyte_destination_id,
			 airbyte_connection_id, name, status, schedule)
		VALUES (drift_adopt.tenant_id, (repair ->> 'workspace_id')::uuid, (repair ->> 'source_id')::uuid,
				(repair ->> 'destination_id')::uuid, (repair ->> 'airbyte_id')::uuid, repair ->> 'name',
				coalesce(repair ->> 'status', 'active'), coalesce(repair ->> 'schedule', 'manual'))
		ON CONFLICT DO NOTHING;
	ELSE
		RAISE EXCEPTION 'cannot adopt a %', repair ->> 'object';
	END CASE;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN CASE WHEN n > 0 THEN 'adopted' ELSE 'skipped' END;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.drift_adopt(text, jsonb) IS
	'Internal to the drift_repair operation: records an adopted Airbyte object as the tenant''s row.';

/*
 * drift_rebind_workspace(): a gone workspace was created again under the
 * recorded name.  What lived in the old one went with it in Airbyte, so
 * its rows go (sources must be created again: their credentials are not
 * kept); the row moves to the new id, and a tenant with a pipeline
 * template gets its destination again.
 */
CREATE FUNCTION tenant_airbyte.drift_rebind_workspace(tenant_id text, old_id uuid, new_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM tenant_airbyte.tenant_connections AS c WHERE c.airbyte_workspace_id = old_id;
	DELETE FROM tenant_airbyte.tenant_sources AS s WHERE s.airbyte_workspace_id = old_id;
	DELETE FROM tenant_airbyte.tenant_destinations AS d WHERE d.airbyte_workspace_id = old_id;
	UPDATE tenant_airbyte.tenant_airbyte_workspaces AS w
	   SET airbyte_workspace_id = new_id
	 WHERE w.tenant_id = drift_rebind_workspace.tenant_id AND w.airbyte_workspace_id = old_id;
	IF tenant_airbyte.template_for_tenant(drift_rebind_workspace.tenant_id) IS NOT NULL THEN
		INSERT INTO tenant_airbyte.operations (kind, tenant_id, subject)
		VALUES ('create_destination', drift_rebind_workspace.tenant_id, '')
		ON CONFLICT DO NOTHING;
	END IF;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.drift_rebind_workspace(text, uuid, uuid) IS
	'Internal to the drift_repair operation: a tenant''s workspace created again; its row moves to the new id.';

/*
 * reconcile(dry_run): superusers only.  Hands a reconcile operation to the
 * worker (only the worker talks to Airbyte), waits for it like
 * provision_tenant() does, and returns what it found.  With dry_run (the
 * default) it sends Airbyte only GET requests and changes nothing but
 * reconcile_runs and reconcile_findings.
 */
CREATE FUNCTION tenant_airbyte.reconcile(dry_run boolean DEFAULT true)
RETURNS TABLE(tenant_id text, object text, airbyte_id text, problem text, action text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	outcome jsonb;
BEGIN
	IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user) THEN
		RAISE EXCEPTION 'permission denied for function reconcile'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Only a superuser may reconcile the extension''s rows with Airbyte.';
	END IF;
	IF dry_run IS NULL THEN
		RAISE EXCEPTION 'dry_run must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	outcome := tenant_airbyte.pipeline_run('reconcile', 'tenant_airbyte.reconcile',
										   jsonb_build_object('dry_run', dry_run::text), '');
	RETURN QUERY
		SELECT f.tenant_id::text, f.object, f.airbyte_id::text, f.problem, f.action
		  FROM tenant_airbyte.reconcile_findings AS f
		 WHERE f.run_id = (outcome ->> 'run_id')::bigint
		 ORDER BY f.id;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.reconcile(boolean) IS
	'Superusers only: compares the extension''s rows with Airbyte (workspaces, sources, destinations, connections) through the worker and returns each problem with its action; with dry_run => false each repair is recorded as an operation.  The run is in reconcile_runs and reconcile_findings.';

REVOKE ALL ON FUNCTION
	tenant_airbyte.reconcile(boolean),
	tenant_airbyte.drift_present_workspaces(jsonb),
	tenant_airbyte.drift_problems(jsonb, text),
	tenant_airbyte.drift_compare(bigint, boolean, boolean, text, jsonb, timestamptz),
	tenant_airbyte.drift_adopt(text, jsonb),
	tenant_airbyte.drift_rebind_workspace(text, uuid, uuid)
	FROM PUBLIC;

GRANT SELECT, INSERT, DELETE ON tenant_airbyte.reconcile_runs, tenant_airbyte.reconcile_findings
	TO tenant_airbyte_worker;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.drift_present_workspaces(jsonb),
	tenant_airbyte.drift_problems(jsonb, text),
	tenant_airbyte.drift_compare(bigint, boolean, boolean, text, jsonb, timestamptz),
	tenant_airbyte.drift_adopt(text, jsonb),
	tenant_airbyte.drift_rebind_workspace(text, uuid, uuid)
	TO tenant_airbyte_worker;
GRANT SELECT ON tenant_airbyte.reconcile_runs, tenant_airbyte.reconcile_findings TO pg_monitor;

/*
 * worker_status gains the last reconciliation, at the end (the columns
 * before stay as they are): when it finished and how many problems it
 * found.
 */
CREATE OR REPLACE VIEW tenant_airbyte.worker_status WITH (security_invoker = true) AS
SELECT w.pid,
	   w.state,
	   w.started_at,
	   w.requests_in_flight,
	   c.pending,
	   c.in_flight,
	   c.done,
	   c.ignored,
	   c.failed,
	   c.dead,
	   pg_catalog.now() OPERATOR(pg_catalog.-) c.oldest_pending_received_at AS oldest_pending_age,
	   w.last_error,
	   w.last_error_at,
	   w.deliveries_finished,
	   w.commit_wakeups,
	   j.checked_at AS jwks_checked_at,
	   j.refreshed_at AS jwks_refreshed_at,
	   j.keys AS jwks_keys,
	   j.error AS jwks_error,
	   r.finished_at AS reconcile_last_at,
	   r.problems AS reconcile_last_problems
  FROM tenant_airbyte.worker_state() AS w,
	   (SELECT pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS pending,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'in_flight') AS in_flight,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'done') AS done,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'ignored') AS ignored,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'dead') AS dead,
			   pg_catalog.min(i.received_at) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS oldest_pending_received_at
		  FROM tenant_airbyte.webhook_inbox AS i) AS c,
	   tenant_airbyte.jwks_state() AS j
  LEFT JOIN (SELECT k.finished_at, k.problems FROM tenant_airbyte.reconcile_runs AS k
			  ORDER BY k.run_id DESC LIMIT 1) AS r ON true;

COMMENT ON VIEW tenant_airbyte.worker_status IS
	'The background worker at a glance: pid, state, Airbyte requests in flight, inbox rows per status, age of the oldest pending delivery, last error; the JWKS refresh; the last reconciliation with Airbyte and how many problems it found.';

/* ------------------------------------------------------------------------
 * 13. Backfill, budget, pause
 *
 * provision_tenants() provisions tenants that existed before the
 * extension: one statement records the whole batch in backfill_tenants,
 * and the worker feeds it into the operations queue a few tenants at a
 * time (src/engine/backfill.c), so that the batch never holds more than
 * tenant_airbyte.backfill_share of the worker's window and deliveries keep
 * flowing beside it.  Each tenant is provisioned exactly once, across
 * crashes and restarts, by the same provision operation a tenant.created
 * delivery becomes.
 *
 * One request budget paces every Airbyte request of the worker
 * (src/engine/budget.c): tenant_airbyte.max_requests_per_second, lowered
 * and raised again as Airbyte answers 429, and a circuit that stops
 * sending while Airbyte refuses the credentials for every request.
 *
 * pause_worker() and resume_worker() set worker_control.paused, which the
 * worker reads every cycle: paused, it takes no new work.  A table, not
 * shared memory, so the pause survives a restart.
 *
 * worker_status gains, at its end, the budget's and the backfill's
 * columns; its state reads 'paused' while the switch is on.
 * ------------------------------------------------------------------------ */

/* The pause switch: exactly one row. */
CREATE TABLE tenant_airbyte.worker_control (
	only_row boolean PRIMARY KEY DEFAULT true,
	paused boolean NOT NULL DEFAULT false,
	changed_at timestamptz,		/* NULL until the first pause or resume */
	changed_by name,
	CONSTRAINT worker_control_one_row CHECK (only_row)
);
INSERT INTO tenant_airbyte.worker_control DEFAULT VALUES;

COMMENT ON TABLE tenant_airbyte.worker_control IS
	'The background worker''s pause switch (pause_worker(), resume_worker()); one row.';

CREATE TRIGGER worker_control_wake
	AFTER UPDATE ON tenant_airbyte.worker_control
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_airbyte.inbox_wake();

/*
 * backfill_batches, backfill_tenants: one row per provision_tenants()
 * call, and one per tenant it queued.  A tenant row is 'waiting' until
 * the worker records its provision operation ('running', operation_id),
 * then 'done' (provisioned, already there or restored) or 'failed' (the
 * operation failed or ran out of attempts: its last_error says why).
 * At most one unfinished row per tenant: a tenant queued twice, in one
 * array or in two batches, is provisioned once.
 */
CREATE TABLE tenant_airbyte.backfill_batches (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	submitted integer NOT NULL,
	queued integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	created_by name NOT NULL DEFAULT SESSION_USER
);

COMMENT ON TABLE tenant_airbyte.backfill_batches IS
	'One row per provision_tenants() call: elements submitted, tenants queued (the others were already provisioned, already queued, or repeated in the array).';

CREATE TABLE tenant_airbyte.backfill_tenants (
	batch_id bigint NOT NULL,
	position integer NOT NULL,
	tenant_id varchar(255) NOT NULL,
	tenant_name text NOT NULL,
	status text NOT NULL DEFAULT 'waiting',
	operation_id bigint,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	finished_at timestamptz,
	PRIMARY KEY (batch_id, position),
	CONSTRAINT backfill_tenants_status_check
		CHECK (status IN ('waiting', 'running', 'done', 'failed')),
	CONSTRAINT backfill_tenants_operation_check
		CHECK ((status = 'waiting') = (operation_id IS NULL))
);

CREATE UNIQUE INDEX backfill_tenants_one_unfinished
	ON tenant_airbyte.backfill_tenants (tenant_id)
	WHERE status IN ('waiting', 'running');
CREATE INDEX backfill_tenants_waiting
	ON tenant_airbyte.backfill_tenants (batch_id, position)
	WHERE status = 'waiting';
CREATE INDEX backfill_tenants_running
	ON tenant_airbyte.backfill_tenants (operation_id)
	WHERE status = 'running';

COMMENT ON TABLE tenant_airbyte.backfill_tenants IS
	'One row per tenant a provision_tenants() batch queued: waiting, running (operation_id), done or failed. Tenant-scoped (row-level security).';
COMMENT ON COLUMN tenant_airbyte.backfill_tenants.position IS
	'The element''s index (from 0) in the array given to provision_tenants().';
COMMENT ON COLUMN tenant_airbyte.backfill_tenants.operation_id IS
	'The provision operation that serves the row (tenant_airbyte.operations), once the worker recorded it.';

CREATE TRIGGER backfill_tenants_wake
	AFTER INSERT ON tenant_airbyte.backfill_tenants
	FOR EACH STATEMENT EXECUTE FUNCTION tenant_airbyte.inbox_wake();

SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.backfill_batches', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.backfill_batches_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.backfill_tenants', '');

ALTER TABLE tenant_airbyte.backfill_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.backfill_tenants FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant_airbyte.backfill_tenants
	USING (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant())
	WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant_airbyte.current_tenant());
CREATE POLICY monitoring ON tenant_airbyte.backfill_tenants
	FOR SELECT TO pg_monitor
	USING (true);

/*
 * provision_tenants(tenants): every element is checked before anything
 * is recorded; the first bad one is named by its index (from 0) and
 * nothing is inserted.  Then one INSERT queues the tenants that are not
 * provisioned (an active workspace row) or queued already; a tenant id
 * repeated in the array is queued once, with its first name.  Returns the
 * batch id (backfill_batches.id); progress shows in worker_status and
 * per tenant in backfill_tenants.  Superusers only (EXECUTE is revoked
 * from PUBLIC, and the body checks).
 */
CREATE FUNCTION tenant_airbyte.provision_tenants(tenants jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	bad record;
	batch bigint;
	n_queued integer;
BEGIN
	IF NOT pg_catalog.current_setting('is_superuser')::boolean THEN
		RAISE EXCEPTION 'permission denied for function provision_tenants'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Only a superuser may provision tenants in bulk.';
	END IF;
	IF tenants IS NULL OR pg_catalog.jsonb_typeof(tenants) OPERATOR(pg_catalog.<>) 'array' THEN
		RAISE EXCEPTION 'tenants must be a JSON array'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('Got %s.', coalesce(pg_catalog.jsonb_typeof(tenants), 'NULL')),
				  HINT = 'Pass [{"tenantId": "...", "name": "..."}, ...].';
	END IF;

	SELECT e.i OPERATOR(pg_catalog.-) 1 AS index,
		   CASE
			   WHEN pg_catalog.jsonb_typeof(e.v) OPERATOR(pg_catalog.<>) 'object'
				   THEN 'not an object'
			   WHEN NOT e.v OPERATOR(pg_catalog.?) 'tenantId'
				   THEN 'no "tenantId"'
			   WHEN pg_catalog.jsonb_typeof(e.v OPERATOR(pg_catalog.->) 'tenantId') OPERATOR(pg_catalog.<>) 'string'
				   THEN '"tenantId" is not a string'
			   WHEN pg_catalog.btrim(e.v OPERATOR(pg_catalog.->>) 'tenantId') OPERATOR(pg_catalog.=) ''
				   THEN '"tenantId" is empty'
			   WHEN pg_catalog.length(e.v OPERATOR(pg_catalog.->>) 'tenantId') OPERATOR(pg_catalog.>) 255
				   THEN '"tenantId" is longer than 255 characters'
			   WHEN NOT e.v OPERATOR(pg_catalog.?) 'name'
				   THEN 'no "name"'
			   WHEN pg_catalog.jsonb_typeof(e.v OPERATOR(pg_catalog.->) 'name') OPERATOR(pg_catalog.<>) 'string'
				   THEN '"name" is not a string'
			   WHEN pg_catalog.btrim(e.v OPERATOR(pg_catalog.->>) 'name') OPERATOR(pg_catalog.=) ''
				   THEN '"name" is empty'
		   END AS problem
	  INTO bad
	  FROM pg_catalog.jsonb_array_elements(tenants) WITH ORDINALITY AS e(v, i)
	 WHERE pg_catalog.jsonb_typeof(e.v) OPERATOR(pg_catalog.<>) 'object'
		OR pg_catalog.jsonb_typeof(e.v OPERATOR(pg_catalog.->) 'tenantId') IS DISTINCT FROM 'string'
		OR pg_catalog.jsonb_typeof(e.v OPERATOR(pg_catalog.->) 'name') IS DISTINCT FROM 'string'
		OR pg_catalog.btrim(e.v OPERATOR(pg_catalog.->>) 'tenantId') OPERATOR(pg_catalog.=) ''
		OR pg_catalog.length(e.v OPERATOR(pg_catalog.->>) 'tenantId') OPERATOR(pg_catalog.>) 255
		OR pg_catalog.btrim(e.v OPERATOR(pg_catalog.->>) 'name') OPERATOR(pg_catalog.=) ''
	 ORDER BY e.i
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'element % of tenants is invalid: %', bad.index, bad.problem
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Nothing was queued.',
				  HINT = 'Every element must be {"tenantId": "<non-empty string, at most 255 characters>", "name": "<non-empty string>"}.';
	END IF;

	INSERT INTO tenant_airbyte.backfill_batches (submitted)
	VALUES (pg_catalog.jsonb_array_length(tenants))
	RETURNING id INTO batch;

	INSERT INTO tenant_airbyte.backfill_tenants AS b (batch_id, position, tenant_id, tenant_name)
	SELECT batch, d.i OPERATOR(pg_catalog.-) 1, d.tenant_id, d.tenant_name
	  FROM (SELECT DISTINCT ON (e.v OPERATOR(pg_catalog.->>) 'tenantId')
				   e.i, e.v OPERATOR(pg_catalog.->>) 'tenantId' AS tenant_id,
				   e.v OPERATOR(pg_catalog.->>) 'name' AS tenant_name
			  FROM pg_catalog.jsonb_array_elements(tenants) WITH ORDINALITY AS e(v, i)
			 ORDER BY e.v OPERATOR(pg_catalog.->>) 'tenantId', e.i) AS d
	 WHERE NOT EXISTS (
			SELECT FROM tenant_airbyte.tenant_airbyte_workspaces AS w
			 WHERE w.tenant_id OPERATOR(pg_catalog.=) d.tenant_id
			   AND w.status OPERATOR(pg_catalog.=) 'active')
	 ORDER BY d.i
	ON CONFLICT (tenant_id) WHERE status IN ('waiting', 'running') DO NOTHING;
	GET DIAGNOSTICS n_queued = ROW_COUNT;

	UPDATE tenant_airbyte.backfill_batches SET queued = n_queued
	 WHERE id OPERATOR(pg_catalog.=) batch;
	RETURN batch;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.provision_tenants(jsonb) IS
	'Superuser: queue a workspace for each {"tenantId", "name"} of the array (validated first; already provisioned, already queued and repeated tenants skipped). Returns the batch id; the worker provisions each tenant exactly once, resuming after crashes; progress in worker_status and backfill_tenants.';

/*
 * pause_worker(), resume_worker(): flip the switch; true when it changed.
 * The worker is woken at commit and stops (or starts) taking new work;
 * requests already in flight finish either way.
 */
CREATE FUNCTION tenant_airbyte.pause_worker()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed integer;
BEGIN
	IF NOT pg_catalog.current_setting('is_superuser')::boolean THEN
		RAISE EXCEPTION 'permission denied for function pause_worker'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	UPDATE tenant_airbyte.worker_control
	   SET paused = true, changed_at = pg_catalog.now(), changed_by = SESSION_USER
	 WHERE NOT paused;
	GET DIAGNOSTICS changed = ROW_COUNT;
	RETURN changed OPERATOR(pg_catalog.>) 0;
END;
$$;

CREATE FUNCTION tenant_airbyte.resume_worker()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed integer;
BEGIN
	IF NOT pg_catalog.current_setting('is_superuser')::boolean THEN
		RAISE EXCEPTION 'permission denied for function resume_worker'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	UPDATE tenant_airbyte.worker_control
	   SET paused = false, changed_at = pg_catalog.now(), changed_by = SESSION_USER
	 WHERE paused;
	GET DIAGNOSTICS changed = ROW_COUNT;
	RETURN changed OPERATOR(pg_catalog.>) 0;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.pause_worker() IS
	'Superuser: the background worker takes no new work (requests in flight finish) until resume_worker(); survives restarts. True when it was running.';
COMMENT ON FUNCTION tenant_airbyte.resume_worker() IS
	'Superuser: the background worker takes work again after pause_worker(). True when it was paused.';

/* The request budget as the worker last published it. */
CREATE FUNCTION tenant_airbyte.worker_budget(
	OUT paused boolean,
	OUT allowed_requests_per_second double precision,
	OUT concurrency integer,
	OUT circuit text,
	OUT circuit_since timestamptz,
	OUT rate_limited_answers bigint,
	OUT refused_answers bigint)
RETURNS record
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_worker_budget';

COMMENT ON FUNCTION tenant_airbyte.worker_budget() IS
	'The worker''s request budget: paused, allowed requests per second (NULL: unlimited), operations it may hold at once, circuit (closed, open, probing) and since when, 429s without Retry-After and 401/403 answers since the worker started.';

CREATE OR REPLACE VIEW tenant_airbyte.worker_status WITH (security_invoker = true) AS
SELECT w.pid,
	   CASE WHEN k.paused AND w.pid IS NOT NULL THEN 'paused' ELSE w.state END AS state,
	   w.started_at,
	   w.requests_in_flight,
	   c.pending,
	   c.in_flight,
	   c.done,
	   c.ignored,
	   c.failed,
	   c.dead,
	   pg_catalog.now() OPERATOR(pg_catalog.-) c.oldest_pending_received_at AS oldest_pending_age,
	   w.last_error,
	   w.last_error_at,
	   w.deliveries_finished,
	   w.commit_wakeups,
	   j.checked_at AS jwks_checked_at,
	   j.refreshed_at AS jwks_refreshed_at,
	   j.keys AS jwks_keys,
	   j.error AS jwks_error,
	   r.finished_at AS reconcile_last_at,
	   r.problems AS reconcile_last_problems,
	   f.backfill_total,
	   f.backfill_done,
	   f.backfill_failed,
	   b.allowed_requests_per_second,
	   b.concurrency,
	   b.circuit,
	   b.circuit_since,
	   b.rate_limited_answers,
	   b.refused_answers
  FROM tenant_airbyte.worker_state() AS w,
	   (SELECT pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS pending,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'in_flight') AS in_flight,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'done') AS done,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'ignored') AS ignored,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'dead') AS dead,
			   pg_catalog.min(i.received_at) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS oldest_pending_received_at
		  FROM tenant_airbyte.webhook_inbox AS i) AS c,
	   tenant_airbyte.jwks_state() AS j,
	   (SELECT pg_catalog.count(*) AS backfill_total,
			   pg_catalog.count(*) FILTER (WHERE t.status OPERATOR(pg_catalog.=) 'done') AS backfill_done,
			   pg_catalog.count(*) FILTER (WHERE t.status OPERATOR(pg_catalog.=) 'failed') AS backfill_failed
		  FROM tenant_airbyte.backfill_tenants AS t) AS f,
	   tenant_airbyte.worker_budget() AS b,
	   (SELECT coalesce(pg_catalog.bool_or(x.paused), false) AS paused
		  FROM tenant_airbyte.worker_control AS x) AS k
  LEFT JOIN (SELECT z.finished_at, z.problems FROM tenant_airbyte.reconcile_runs AS z
			  ORDER BY z.run_id DESC LIMIT 1) AS r ON true;

COMMENT ON VIEW tenant_airbyte.worker_status IS
	'The background worker at a glance: pid, state (paused while pause_worker() holds), Airbyte requests in flight, inbox rows per status, age of the oldest pending delivery, last error; the JWKS refresh; the last reconciliation with Airbyte and how many problems it found; provision_tenants() progress; the request budget and the circuit.';

REVOKE ALL ON FUNCTION
	tenant_airbyte.provision_tenants(jsonb),
	tenant_airbyte.pause_worker(),
	tenant_airbyte.resume_worker(),
	tenant_airbyte.worker_budget()
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_airbyte.worker_budget() TO pg_monitor;
GRANT SELECT (status) ON tenant_airbyte.backfill_tenants TO pg_monitor;
GRANT SELECT (paused) ON tenant_airbyte.worker_control TO pg_monitor;

/* The worker reads the switch and feeds the batches (backfill.c). */
GRANT SELECT ON tenant_airbyte.worker_control TO tenant_airbyte_worker;
GRANT SELECT, UPDATE ON tenant_airbyte.backfill_tenants TO tenant_airbyte_worker;

/* ------------------------------------------------------------------------
 * 14. Engine throughput and retention of operations
 *
 * The name decision of every provision looks a candidate name up among
 * the workspaces (src/operations/kinds.c); without this index that was a
 * scan of every workspace per candidate, so the worker slowed down as
 * tenants were added.
 * ------------------------------------------------------------------------ */

CREATE INDEX tenant_airbyte_workspaces_name
	ON tenant_airbyte.tenant_airbyte_workspaces (airbyte_workspace_name);


/* ------------------------------------------------------------------------
 * 15. Administration through the worker
 *
 * The superuser airbyte_* wrappers (airbyte_create_workspace() and the
 * rest, sections 4 and 4e) hand operations of the admin_* kinds to the
 * background worker like every other function (src/operations/admin.c,
 * kind_admin_workspaces.c, kind_admin_sources.c): only the worker talks
 * to Airbyte.  Their operations carry the reserved tenant id
 * '(administration)'.  A restrictive policy hides them from every role
 * under row-level security, and a trigger lets only the worker and
 * superusers write them, so that no other role can make the worker delete
 * a workspace by inserting a row.  What Airbyte answered goes to
 * admin_results, never into an outcome: forced row-level security, no
 * policy and no grant, so only superusers (the callers) and the worker
 * read it; a BYPASSRLS administrator granted SELECT on operations sees
 * that an administration operation ran (kind, ids and names in params,
 * status, error), not what Airbyte said.
 * ------------------------------------------------------------------------ */

CREATE TABLE tenant_airbyte.admin_results (
	operation_id bigint NOT NULL,
	ordinal integer NOT NULL,
	item jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (operation_id, ordinal)
);
COMMENT ON TABLE tenant_airbyte.admin_results IS
	'What Airbyte answered an administration operation (a workspace, each workspace or source of a list, a consent URL), stored by the worker for the superuser who called the airbyte_* wrapper; kept one hour. Superusers only: forced row-level security, no policy, no grant.';
CREATE INDEX admin_results_created_at ON tenant_airbyte.admin_results (created_at);
ALTER TABLE tenant_airbyte.admin_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_airbyte.admin_results FORCE ROW LEVEL SECURITY;
REVOKE ALL ON tenant_airbyte.admin_results FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_airbyte.admin_results TO tenant_airbyte_worker;

CREATE POLICY administration_hidden ON tenant_airbyte.operations AS RESTRICTIVE
	USING (tenant_id OPERATOR(pg_catalog.<>) '(administration)')
	WITH CHECK (tenant_id OPERATOR(pg_catalog.<>) '(administration)');

/*
 * guard_administration_operations: administration operations are recorded
 * by the worker, from a superuser's hand-off, and by nobody else.  ENABLE
 * ALWAYS, so that it holds whatever session_replication_role says.  In C
 * (src/operations/admin_guard.c), the test on the row inside, without a
 * WHEN clause: PostgreSQL parses a WHEN clause again for every statement,
 * and this fires on every write of operations.
 */
CREATE FUNCTION tenant_airbyte.guard_administration_operations()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'tenant_airbyte_guard_administration_operations';
COMMENT ON FUNCTION tenant_airbyte.guard_administration_operations() IS
	'Trigger: refuses an administration operation (tenant ''(administration)'', kind admin_*) written by anyone but the worker or a superuser.';
REVOKE ALL ON FUNCTION tenant_airbyte.guard_administration_operations() FROM PUBLIC;

CREATE TRIGGER operations_guard_administration_insert
	BEFORE INSERT ON tenant_airbyte.operations
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.guard_administration_operations();
CREATE TRIGGER operations_guard_administration_update
	BEFORE UPDATE ON tenant_airbyte.operations
	FOR EACH ROW EXECUTE FUNCTION tenant_airbyte.guard_administration_operations();
ALTER TABLE tenant_airbyte.operations
	ENABLE ALWAYS TRIGGER operations_guard_administration_insert;
ALTER TABLE tenant_airbyte.operations
	ENABLE ALWAYS TRIGGER operations_guard_administration_update;

/* ------------------------------------------------------------------------
 * 16. Limits
 *
 * The periodic reconciliation (tenant_airbyte.reconcile_interval_s) backs
 * off after a run that ended failed or dead instead of starting the next
 * one at once: 10 s after it, twice as long after each further failure,
 * never more than the interval (src/operations/kind_reconcile.c).  The
 * count of failed runs in a row travels in the next run's params.
 *
 * worker_status gains, at its end, when the next periodic run is due and
 * that count (NULL while no periodic run is recorded: the setting is 0).
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE VIEW tenant_airbyte.worker_status WITH (security_invoker = true) AS
SELECT w.pid,
	   CASE WHEN k.paused AND w.pid IS NOT NULL THEN 'paused' ELSE w.state END AS state,
	   w.started_at,
	   w.requests_in_flight,
	   c.pending,
	   c.in_flight,
	   c.done,
	   c.ignored,
	   c.failed,
	   c.dead,
	   pg_catalog.now() OPERATOR(pg_catalog.-) c.oldest_pending_received_at AS oldest_pending_age,
	   w.last_error,
	   w.last_error_at,
	   w.deliveries_finished,
	   w.commit_wakeups,
	   j.checked_at AS jwks_checked_at,
	   j.refreshed_at AS jwks_refreshed_at,
	   j.keys AS jwks_keys,
	   j.error AS jwks_error,
	   r.finished_at AS reconcile_last_at,
	   r.problems AS reconcile_last_problems,
	   f.backfill_total,
	   f.backfill_done,
	   f.backfill_failed,
	   b.allowed_requests_per_second,
	   b.concurrency,
	   b.circuit,
	   b.circuit_since,
	   b.rate_limited_answers,
	   b.refused_answers,
	   p.next_attempt_at AS reconcile_next_at,
	   p.failures AS reconcile_failures
  FROM tenant_airbyte.worker_state() AS w,
	   (SELECT pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS pending,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'in_flight') AS in_flight,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'done') AS done,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'ignored') AS ignored,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'dead') AS dead,
			   pg_catalog.min(i.received_at) FILTER (WHERE i.status OPERATOR(pg_catalog.=) 'pending') AS oldest_pending_received_at
		  FROM tenant_airbyte.webhook_inbox AS i) AS c,
	   tenant_airbyte.jwks_state() AS j,
	   (SELECT pg_catalog.count(*) AS backfill_total,
			   pg_catalog.count(*) FILTER (WHERE t.status OPERATOR(pg_catalog.=) 'done') AS backfill_done,
			   pg_catalog.count(*) FILTER (WHERE t.status OPERATOR(pg_catalog.=) 'failed') AS backfill_failed
		  FROM tenant_airbyte.backfill_tenants AS t) AS f,
	   tenant_airbyte.worker_budget() AS b,
	   (SELECT coalesce(pg_catalog.bool_or(x.paused), false) AS paused
		  FROM tenant_airbyte.worker_control AS x) AS k
  LEFT JOIN (SELECT z.finished_at, z.problems FROM tenant_airbyte.reconcile_runs AS z
			  ORDER BY z.run_id DESC LIMIT 1) AS r ON true
  LEFT JOIN (SELECT y.next_attempt_at,
					coalesce((y.params OPERATOR(pg_catalog.->>) 'failures')::integer, 0) AS failures
			   FROM tenant_airbyte.operations AS y
			  WHERE y.tenant_id OPERATOR(pg_catalog.=) 'tenant_airbyte.reconcile_periodic'
				AND y.kind OPERATOR(pg_catalog.=) 'reconcile'
				AND y.status OPERATOR(pg_catalog.=) ANY ('{pending,in_flight}'::text[])
			  ORDER BY y.id LIMIT 1) AS p ON true;

COMMENT ON VIEW tenant_airbyte.worker_status IS
	'The background worker at a glance: pid, state (paused while pause_worker() holds), Airbyte requests in flight, inbox rows per status, age of the oldest pending delivery, last error; the JWKS refresh; the last reconciliation with Airbyte and how many problems it found; provision_tenants() progress; the request budget and the circuit; when the next periodic reconciliation is due and how many periodic runs before it ended failed or dead in a row.';

/*
 * pg_monitor reads worker_status with its own rights (security_invoker):
 * the periodic runs' rows of operations, and only the columns the view
 * needs.  They hold no tenant's data.
 */
CREATE POLICY monitoring ON tenant_airbyte.operations
	FOR SELECT TO pg_monitor
	USING (tenant_id OPERATOR(pg_catalog.=) 'tenant_airbyte.reconcile_periodic');
GRANT SELECT (id, tenant_id, kind, status, next_attempt_at, params)
	ON tenant_airbyte.operations TO pg_monitor;

/* ------------------------------------------------------------------------
 * 17. Engine throughput: indexes whose plans survive a burst
 *
 * The worker runs its statements from saved plans, costed with the
 * statistics of the last vacuum, usually taken while few deliveries and
 * operations were unfinished.  During a burst of thousands the partial
 * indexes on unfinished rows grow while the planner still rates a walk of
 * all of them as cheap (src/engine/opqueue.c says which statement relies
 * on which index):
 *
 * - Taking up deliveries walked every inbox row of the burst that was or
 *   had been 'pending', the ones already taken up included (still
 *   'pending' until their operation is claimed, and each update a new
 *   entry beside the old one, so no scan could mark the old ones dead):
 *   2,600 buffers per cycle at max_concurrency 128.  The index now holds
 *   only rows not taken up yet; a row leaves it when it is taken up.
 * - The claim's check "no earlier unfinished operation of this tenant"
 *   walked all of operations_intended_name for every candidate instead of
 *   looking the tenant up.  It now looks the tenant up in
 *   operations_tenant, with its statuses as parameters, so that no partial
 *   index can stand in.
 * ------------------------------------------------------------------------ */

DROP INDEX tenant_airbyte.webhook_inbox_pending_due;
CREATE INDEX webhook_inbox_pending_due
	ON tenant_airbyte.webhook_inbox (next_attempt_at, delivery_id)
	WHERE status = 'pending' AND operation_id IS NULL;

CREATE INDEX operations_tenant
	ON tenant_airbyte.operations (tenant_id);

/* ------------------------------------------------------------------------
 * 18. Reserved tenant ids
 *
 * The engine runs its own operations under pseudo tenants: the superuser
 * airbyte_* wrappers' under '(administration)' (hidden from every role,
 * section 15), the sync poll's and the reconciliations' under
 * 'tenant_airbyte.sync_poll', 'tenant_airbyte.reconcile' and
 * 'tenant_airbyte.reconcile_periodic' (the last readable by pg_monitor,
 * section 16).  A real tenant with one of those ids would share their rows
 * and their policies.  validate_tenant_id() (section 1) refuses them for
 * every function; this constraint refuses them on the tenant map, the one
 * table every way of provisioning writes, a delivery included.
 * ------------------------------------------------------------------------ */

ALTER TABLE tenant_airbyte.tenant_airbyte_workspaces
	ADD CONSTRAINT tenant_airbyte_workspaces_tenant_id_reserved_check
	CHECK (tenant_id <> '(administration)' AND NOT starts_with(tenant_id, 'tenant_airbyte.'));

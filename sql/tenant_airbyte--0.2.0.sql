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
 *
 * Inside policies and SECURITY DEFINER bodies every name is schema
 * qualified and operators are written OPERATOR(pg_catalog.=), so that no
 * object a user creates earlier on the search_path can be substituted.
 *
 *-------------------------------------------------------------------------
 */

\echo Use "CREATE EXTENSION tenant_airbyte" to load this file. \quit

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
	RETURN tenant_id;
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.validate_tenant_id(text) IS
	'Returns its argument, or raises a clear error for a NULL, empty or over-long (> 255 characters) tenant id.';

/* ------------------------------------------------------------------------
 * 2. Tables
 * ------------------------------------------------------------------------ */

/* Keeps updated_at honest on every tenant-scoped table that has one. */
CREATE FUNCTION tenant_airbyte.touch_updated_at()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	NEW.updated_at := pg_catalog.now();
	RETURN NEW;
END;
$$;

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
 * each version of the document.  Runs with the caller's rights: only an
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
			SET jwk = excluded.jwk, issuer = excluded.issuer, loaded_at = pg_catalog.now();
	END LOOP;

	IF cardinality(kids) = 0 THEN
		RAISE EXCEPTION 'JWKS has no RSA signing key'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The stored keys were left as they were.';
	END IF;

	/* Keys the issuer no longer publishes are retired. */
	DELETE FROM tenant_airbyte.jwt_keys AS k
	 WHERE k.issuer IS NOT DISTINCT FROM key_issuer
	   AND k.kid OPERATOR(pg_catalog.<>) ALL (kids);

	RETURN cardinality(kids);
END;
$$;

COMMENT ON FUNCTION tenant_airbyte.load_jwks(jsonb, text) IS
	'Stores the RSA signing keys of a JWKS document (as served at https://<frontegg-domain>/.well-known/jwks.json) for issuer (default: tenant_airbyte.jwt_issuer), and retires that issuer''s keys the document no longer lists. Returns the number of keys loaded.';

CREATE FUNCTION tenant_airbyte.authenticate(token text)
RETURNS jsonb
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'tenant_airbyte_authenticate';

COMMENT ON FUNCTION tenant_airbyte.authenticate(text) IS
	'Verifies a Frontegg access token (RS256, key by kid from jwt_keys; exp, nbf, iss, aud, type, tenantId) and sets the tenant context (tenant_airbyte.tenant_id) for the current transaction only. Returns sub, tenantId, tenantIds, roles, permissions, email and type. Refusals are SQLSTATE 28000 naming the failed check.';

/* ------------------------------------------------------------------------
 * 4d. Airbyte client and provisioning (src/airbyte/airbyte_sql.c, src/engine/retry.c,
 *     src/operations/provision.c).  Everything here is revoked from PUBLIC in
 *     section 5: it spends the deployment's Airbyte credentials.
 * ------------------------------------------------------------------------ */

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
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_retry_delay_ms';
COMMENT ON FUNCTION tenant_airbyte.retry_delay_ms(integer, bigint, bigint, double precision, bigint) IS
	'The wait before the next attempt, as the worker computes it: the full-jitter backoff, or retry_after_ms (NULL or negative: none) when that asks for longer.';

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
 * tenant (kind_provision.c).
 */
CREATE FUNCTION tenant_airbyte.workspace_name_candidate(tenant_id text, tenant_name text, id_chars integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
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
 * the product is about (DESIGN.md section 5, the spec's source-shopify,
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
	PERFORM tenant_airbyte.validate_tenant_id(initiate_oauth.tenant_id);
	PERFORM tenant_airbyte.check_tenant_access(initiate_oauth.tenant_id);

	IF initiate_oauth.source_type IS NULL OR btrim(initiate_oauth.source_type) = '' THEN
		RAISE EXCEPTION 'source type must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an Airbyte sourceType that supports OAuth, such as ''facebook-marketing'' or ''google-ads''.';
	END IF;
	IF initiate_oauth.source_type = 'shopify' THEN
		RAISE EXCEPTION 'shopify sources do not use Airbyte''s OAuth consent flow'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Create the source with the shop''s access token: tenant_airbyte.create_shopify_source(tenant_id, shop, access_token).';
	END IF;
	IF initiate_oauth.redirect_url IS NULL OR initiate_oauth.redirect_url !~* '^https?://[^/[:space:]]+' THEN
		RAISE EXCEPTION 'redirect URL must be an absolute http or https URL'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Airbyte sends the user back there with ?secret_id=...; pass that to create_source() as the credentials.';
	END IF;

	PERFORM tenant_airbyte.workspace_for_sources(initiate_oauth.tenant_id);
	RETURN tenant_airbyte.run_operation('initiate_oauth', initiate_oauth.tenant_id,
		jsonb_build_object('source_type', initiate_oauth.source_type,
						   'redirect_url', initiate_oauth.redirect_url),
		initiate_oauth.source_type, NULL) ->> 'consent_url';
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.initiate_oauth(text, text, text) IS
	'The consent URL (POST /sources/initiateOAuth) for connecting a source to the tenant''s workspace; 0A000 when the Airbyte server answers 501 (open-source servers), 42501 for another tenant.';

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

/* ------------------------------------------------------------------------
 * 6. The background worker's role
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
	tenant_airbyte.tenant_sources
	TO tenant_airbyte_worker;
GRANT USAGE ON SEQUENCE tenant_airbyte.operations_id_seq TO tenant_airbyte_worker;
GRANT EXECUTE ON FUNCTION
	tenant_airbyte.current_tenant(),
	tenant_airbyte.validate_tenant_id(text),
	tenant_airbyte.touch_updated_at(),
	tenant_airbyte.workspace_name_for(text, text),
	tenant_airbyte.workspace_name_candidate(text, text, integer)
	TO tenant_airbyte_worker;

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

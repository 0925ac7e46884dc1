/*-------------------------------------------------------------------------
 *
 * tenant_airbyte--0.1.0.sql
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

	CONSTRAINT webhook_inbox_dedupe_key UNIQUE (dedupe_key),
	CONSTRAINT webhook_inbox_status_check
		CHECK (status IN ('pending', 'in_flight', 'done', 'ignored', 'failed', 'dead')),
	CONSTRAINT webhook_inbox_lease_check
		CHECK ((status = 'in_flight') = (lease_expires_at IS NOT NULL)),
	CONSTRAINT webhook_inbox_attempts_check CHECK (attempts >= 0)
);

/* The worker's two questions: what is due, and whose lease ran out. */
CREATE INDEX webhook_inbox_pending_due
	ON tenant_airbyte.webhook_inbox (next_attempt_at)
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

/*
 * Rows of extension tables are not dumped by pg_dump unless marked: these
 * hold the tenants and their deliveries, so a backup must include them.
 */
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.tenant_airbyte_workspaces', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.webhook_inbox', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_airbyte.webhook_inbox_delivery_id_seq', '');

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

/* ------------------------------------------------------------------------
 * 4b. Webhook intake: receive_webhook(), requeue()
 *
 * receive_webhook() is what the shim (tenant_airbyte_webhookd) calls with
 * the raw request; everything about trust happens here, where SQL tests
 * can reach it.  Order of checks: size (413), authenticity (401), JSON and
 * tenant id (400), dedupe (200), then one inbox row: pending work (202) or
 * an ignored event (200).  Both are in C: the signature schemes in
 * src/webhook_verify.c, parsing, routing and the insert in
 * src/webhook_intake.c.
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
 * in C (src/webhook_intake.c) beside receive_webhook(), its one user.
 */
CREATE FUNCTION tenant_airbyte.webhook_work(event_key text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenant_airbyte_webhook_work';

COMMENT ON FUNCTION tenant_airbyte.webhook_work(text) IS
	'The work an event key (Frontegg eventKey, route name or the seed''s eventType) asks for: tenant.created, tenant.updated or tenant.deleted; NULL when the event needs no work (frontegg.user.*, unknown events).';

/*
 * receive_webhook: in C (src/webhook_intake.c), because it is the shim's
 * statement for every delivery and its cost per call is the intake's
 * ceiling; it parses the body once and inserts through a saved plan.
 */
CREATE FUNCTION tenant_airbyte.receive_webhook(event text, headers jsonb, body bytea)
RETURNS TABLE (http_status integer, delivery_id bigint, message text)
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
		   finished_at = NULL
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
 * Verification is in C (src/authenticate.c, src/jwt.c).
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
 * 4d. Airbyte client and provisioning (src/airbyte_sql.c, src/retry.c,
 *     src/provision.c).  Everything here is revoked from PUBLIC in
 *     section 5: it spends the deployment's Airbyte credentials.
 * ------------------------------------------------------------------------ */

/* Retry policy (pure functions of src/retry.c), exposed for its tests. */
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

/* Workspace administration, superusers only (src/airbyte_sql.c). */
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
 * Provisioning steps.  provision_tenant() (C) runs them in the caller's
 * transaction; the background worker runs provision_begin() and
 * provision_finish() in two short transactions with the Airbyte call in
 * between.  The exactly-once design is the comment block at the top of
 * src/provision.c.
 */

/* The seed's workspace name: "<name trimmed, at most 50 chars> - <first 8 chars of id>". */
CREATE FUNCTION tenant_airbyte.workspace_name_for(tenant_id text, tenant_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT pg_catalog.left(
			   pg_catalog.btrim(COALESCE(NULLIF(pg_catalog.btrim(tenant_name), ''),
										 'Tenant ' OPERATOR(pg_catalog.||) tenant_id)),
			   50)
		   OPERATOR(pg_catalog.||) ' - '
		   OPERATOR(pg_catalog.||) pg_catalog.left(tenant_id, 8);
$$;
COMMENT ON FUNCTION tenant_airbyte.workspace_name_for(text, text) IS
	'The Airbyte workspace name of a tenant: "<tenant name trimmed, at most 50 characters> - <first 8 characters of the tenant id>"; "Tenant <id>" stands in for a missing name.';

/* Non-transactional "a create may have been sent" marker (src/provision.c). */
CREATE FUNCTION tenant_airbyte.provision_marker(tenant_id text, operation text)
RETURNS boolean
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'tenant_airbyte_provision_marker';
COMMENT ON FUNCTION tenant_airbyte.provision_marker(text, text) IS
	'Internal. operation ''set'' (returns whether it was set before), ''exists'', or ''clear_at_commit'': the crash- and rollback-proof record that a workspace create may have been sent for this tenant.';

/* Serialise everything that provisions one tenant or one workspace name. */
CREATE FUNCTION tenant_airbyte.provision_lock(tenant_id text, workspace_name text, nowait boolean)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tenant_key bigint := pg_catalog.hashtextextended('tenant_airbyte.tenant:' OPERATOR(pg_catalog.||) tenant_id, 0);
	name_key bigint := pg_catalog.hashtextextended('tenant_airbyte.workspace:' OPERATOR(pg_catalog.||) workspace_name, 0);
BEGIN
	IF nowait THEN
		RETURN pg_catalog.pg_try_advisory_xact_lock(tenant_key)
		   AND pg_catalog.pg_try_advisory_xact_lock(name_key);
	END IF;
	PERFORM pg_catalog.pg_advisory_xact_lock(tenant_key);
	PERFORM pg_catalog.pg_advisory_xact_lock(name_key);
	RETURN true;
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.provision_lock(text, text, boolean) IS
	'Internal. Takes the transaction-level advisory locks of a tenant and of its workspace name (tenant first, so two callers cannot deadlock); with nowait, returns false instead of waiting.';

/*
 * provision_begin: step 1.  Decides what to do and, when a workspace must
 * be created, sets the tenant's marker before anyone can send the create.
 * Returns {"action": "done", "result": {...}}, {"action": "purge",
 * "workspace_id"}, {"action": "busy"} (nowait only) or {"action": "create",
 * "workspace_name", "reconcile"}.
 */
CREATE FUNCTION tenant_airbyte.provision_begin(tenant_id text, tenant_name text, nowait boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name text;
	v_row tenant_airbyte.tenant_airbyte_workspaces;
	v_retention integer := pg_catalog.current_setting('tenant_airbyte.retention_days')::integer;
	v_reconcile boolean;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	v_name := tenant_airbyte.workspace_name_for(tenant_id, tenant_name);

	IF NOT tenant_airbyte.provision_lock(tenant_id, v_name, nowait) THEN
		RETURN pg_catalog.jsonb_build_object('action', 'busy');
	END IF;

	SELECT w.* INTO v_row
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.tenant_id OPERATOR(pg_catalog.=) provision_begin.tenant_id
	   FOR UPDATE;

	IF FOUND AND v_row.status OPERATOR(pg_catalog.<>) 'deleted' THEN
		RETURN pg_catalog.jsonb_build_object('action', 'done', 'result',
			pg_catalog.jsonb_build_object('status', 'already_exists',
				'tenant_id', v_row.tenant_id,
				'workspace_id', v_row.airbyte_workspace_id,
				'workspace_name', v_row.airbyte_workspace_name));
	END IF;

	IF FOUND AND v_row.deleted_at OPERATOR(pg_catalog.>)
			(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => v_retention)) THEN
		UPDATE tenant_airbyte.tenant_airbyte_workspaces
		   SET status = 'active', deleted_at = NULL
		 WHERE id OPERATOR(pg_catalog.=) v_row.id;
		RETURN pg_catalog.jsonb_build_object('action', 'done', 'result',
			pg_catalog.jsonb_build_object('status', 'restored',
				'tenant_id', v_row.tenant_id,
				'workspace_id', v_row.airbyte_workspace_id,
				'workspace_name', v_row.airbyte_workspace_name));
	END IF;

	IF FOUND THEN
		-- Deleted longer ago than the retention period, not purged yet.
		RETURN pg_catalog.jsonb_build_object('action', 'purge',
			'workspace_id', v_row.airbyte_workspace_id);
	END IF;

	v_reconcile := tenant_airbyte.provision_marker(tenant_id, 'set');
	RETURN pg_catalog.jsonb_build_object('action', 'create',
		'workspace_name', v_name, 'reconcile', v_reconcile);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.provision_begin(text, text, boolean) IS
	'Internal, step 1 of provisioning: decides (already_exists, restored, purge first, or create) under the tenant''s lock and marks a create as possibly sent before it is.';

/*
 * provision_finish: step 3.  Records the workspace unless the tenant got
 * one meanwhile; then the caller's workspace is an orphan and is named in
 * "orphan_workspace_id" so the caller deletes it if it created it.
 */
CREATE FUNCTION tenant_airbyte.provision_finish(tenant_id text, tenant_name text, workspace_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name text;
	v_row tenant_airbyte.tenant_airbyte_workspaces;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	v_name := tenant_airbyte.workspace_name_for(tenant_id, tenant_name);
	PERFORM tenant_airbyte.provision_lock(tenant_id, v_name, false);

	SELECT w.* INTO v_row
	  FROM tenant_airbyte.tenant_airbyte_workspaces AS w
	 WHERE w.tenant_id OPERATOR(pg_catalog.=) provision_finish.tenant_id
	   FOR UPDATE;

	IF NOT FOUND THEN
		INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
			(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
		VALUES (tenant_id, workspace_id, v_name);
		PERFORM tenant_airbyte.provision_marker(tenant_id, 'clear_at_commit');
		RETURN pg_catalog.jsonb_build_object('status', 'provisioned',
			'tenant_id', tenant_id, 'workspace_id', workspace_id,
			'workspace_name', v_name);
	END IF;

	PERFORM tenant_airbyte.provision_marker(tenant_id, 'clear_at_commit');
	IF v_row.airbyte_workspace_id OPERATOR(pg_catalog.=) workspace_id THEN
		RETURN pg_catalog.jsonb_build_object('status', 'already_exists',
			'tenant_id', v_row.tenant_id, 'workspace_id', v_row.airbyte_workspace_id,
			'workspace_name', v_row.airbyte_workspace_name);
	END IF;
	RETURN pg_catalog.jsonb_build_object('status', 'already_exists',
		'tenant_id', v_row.tenant_id, 'workspace_id', v_row.airbyte_workspace_id,
		'workspace_name', v_row.airbyte_workspace_name,
		'orphan_workspace_id', workspace_id);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.provision_finish(text, text, uuid) IS
	'Internal, step 3 of provisioning: records the tenant''s workspace unless it has one already, in which case the given workspace is returned as orphan_workspace_id.';

/* provision_forget: after the Airbyte workspace of an expired row was deleted. */
CREATE FUNCTION tenant_airbyte.provision_forget(tenant_id text, workspace_id uuid)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH gone AS (
		DELETE FROM tenant_airbyte.tenant_airbyte_workspaces AS w
		 WHERE w.tenant_id OPERATOR(pg_catalog.=) provision_forget.tenant_id
		   AND w.airbyte_workspace_id OPERATOR(pg_catalog.=) provision_forget.workspace_id
		   AND w.status OPERATOR(pg_catalog.=) 'deleted'
		RETURNING 1)
	SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM gone;
$$;
COMMENT ON FUNCTION tenant_airbyte.provision_forget(text, uuid) IS
	'Internal: removes a soft-deleted row whose Airbyte workspace has been deleted.';

CREATE FUNCTION tenant_airbyte.provision_tenant(tenant_id text, tenant_name text)
RETURNS jsonb
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'tenant_airbyte_provision_tenant';
COMMENT ON FUNCTION tenant_airbyte.provision_tenant(text, text) IS
	'Gives a tenant exactly one Airbyte workspace: {"status": "provisioned" | "already_exists" | "restored", "tenant_id", "workspace_id", "workspace_name"}. Safe to call concurrently, again after a rollback, or after a crash.';

/* deprovision_mark: the database half of deprovision_tenant(). */
CREATE FUNCTION tenant_airbyte.deprovision_mark(tenant_id text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_row tenant_airbyte.tenant_airbyte_workspaces;
BEGIN
	PERFORM tenant_airbyte.validate_tenant_id(tenant_id);
	PERFORM pg_catalog.pg_advisory_xact_lock(
		pg_catalog.hashtextextended('tenant_airbyte.tenant:' OPERATOR(pg_catalog.||) tenant_id, 0));

	UPDATE tenant_airbyte.tenant_airbyte_workspaces AS w
	   SET status = 'deleted', deleted_at = COALESCE(w.deleted_at, pg_catalog.now())
	 WHERE w.tenant_id OPERATOR(pg_catalog.=) deprovision_mark.tenant_id
	RETURNING w.* INTO v_row;

	IF NOT FOUND THEN
		RETURN pg_catalog.jsonb_build_object('status', 'not_found', 'tenant_id', tenant_id);
	END IF;
	RETURN pg_catalog.jsonb_build_object('status', 'deprovisioned',
		'tenant_id', v_row.tenant_id,
		'workspace_id', v_row.airbyte_workspace_id,
		'action', 'soft_deleted',
		'retention_days', pg_catalog.current_setting('tenant_airbyte.retention_days')::integer);
END;
$$;
COMMENT ON FUNCTION tenant_airbyte.deprovision_mark(text) IS
	'Internal: soft-deletes a tenant''s row (status deleted, deleted_at kept if already set) under the tenant''s lock.';

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

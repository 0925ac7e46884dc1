-- test/lib/receive_webhook_standin.sql: a stand-in for
-- tenant_airbyte.receive_webhook(), for shim tests in a database whose
-- extension does not have the real one yet.  Test clusters only; never part
-- of the extension.  It verifies nothing: 401 when a header x-test-reject
-- is present, 200 for a body it has seen, 202 otherwise (row in the inbox).
CREATE FUNCTION tenant_airbyte.receive_webhook(event text, headers jsonb, body bytea)
RETURNS TABLE(http_status integer, delivery_id bigint, message text)
LANGUAGE plpgsql
AS $$
DECLARE
	key text := 'sha256:' || encode(sha256(body), 'hex');
	id bigint;
BEGIN
	IF headers ? 'x-test-reject' THEN
		RETURN QUERY SELECT 401, NULL::bigint, 'invalid signature (stand-in)';
		RETURN;
	END IF;
	INSERT INTO tenant_airbyte.webhook_inbox AS i (event, body, headers, dedupe_key)
	VALUES (coalesce(event, 'frontegg'), body, headers - 'x-webhook-secret', key)
	ON CONFLICT (dedupe_key) DO NOTHING
	RETURNING i.delivery_id INTO id;
	IF id IS NULL THEN
		SELECT i.delivery_id INTO id FROM tenant_airbyte.webhook_inbox AS i
		 WHERE i.dedupe_key = key;
		RETURN QUERY SELECT 200, id, 'duplicate delivery (stand-in)';
		RETURN;
	END IF;
	RETURN QUERY SELECT 202, id, 'accepted (stand-in)';
END
$$;

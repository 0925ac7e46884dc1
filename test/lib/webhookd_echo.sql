-- test/lib/webhookd_echo.sql: an "echo" receive_webhook for testing the
-- shim's side of the contract on its own, in a database without the
-- extension: it records exactly what the shim passed and answers what the
-- request asks for through test headers:
--   x-test-status: N      answer N (default 202)
--   x-test-error: SQLSTATE raise an error with that SQLSTATE
--   x-test-sleep: SECONDS  take that long
CREATE SCHEMA tenant_airbyte;

CREATE TABLE tenant_airbyte.received (
	delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event text,
	headers jsonb,
	body bytea
);

CREATE FUNCTION tenant_airbyte.receive_webhook(event text, headers jsonb, body bytea)
RETURNS TABLE(http_status integer, delivery_id bigint, message text)
LANGUAGE plpgsql
AS $$
DECLARE
	id bigint;
BEGIN
	IF headers ? 'x-test-sleep' THEN
		PERFORM pg_sleep((headers->>'x-test-sleep')::float8);
	END IF;
	IF headers ? 'x-test-error' THEN
		RAISE EXCEPTION 'echo: asked to fail' USING ERRCODE = headers->>'x-test-error';
	END IF;
	INSERT INTO tenant_airbyte.received AS r (event, headers, body)
	VALUES (event, headers, body)
	RETURNING r.delivery_id INTO id;
	RETURN QUERY SELECT coalesce((headers->>'x-test-status')::integer, 202), id, 'recorded';
END
$$;

--
-- retry_after_wins_over_backoff: the wait before the next attempt is the
-- full-jitter backoff, or the server's Retry-After when that asks for
-- longer.  This calls the C function the engine itself uses to combine
-- them (retry_delay_ms in src/engine/retry.c) through its SQL wrapper, so
-- an engine that dropped Retry-After would fail here, not only a
-- greatest() written in SQL.
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;

-- Arguments: attempt, base_ms, cap_ms, random_fraction, retry_after_ms
-- (-1 when the answer had no readable Retry-After).
SELECT attempt, random_fraction, retry_after_ms,
       tenant_airbyte.retry_backoff_ms(attempt, 200, 30000, random_fraction) AS backoff_ms,
       tenant_airbyte.retry_delay_ms(attempt, 200, 30000, random_fraction, retry_after_ms) AS delay_ms
  FROM (VALUES
        -- Retry-After: 3 on the first 429 wins over a 100 ms backoff
        (1, 0.5::float8, 3000::bigint),
        -- ... also when the jitter drew the whole window
        (1, 0.999999, 3000),
        -- a backoff longer than Retry-After wins
        (8, 0.9, 3000),
        -- no Retry-After: the backoff alone
        (1, 0.5, -1),
        (5, 0.5, -1),
        -- Retry-After: 0 (or a date in the past) never shortens the backoff
        (3, 0.5, 0),
        -- a Retry-After beyond the backoff cap is still honoured
        (10, 0.999999, 120000)
       ) AS v(attempt, random_fraction, retry_after_ms);

-- The header as Airbyte sends it, read by retry_after_ms, then combined.
SELECT tenant_airbyte.retry_delay_ms(1, 200, 30000, 0.5,
           tenant_airbyte.retry_after_ms('3', '2024-01-01 00:00:00+00')) AS delay_after_header_3,
       tenant_airbyte.retry_delay_ms(1, 200, 30000, 0.5,
           tenant_airbyte.retry_after_ms('Mon, 01 Jan 2024 00:00:07 GMT', '2024-01-01 00:00:00+00')) AS delay_after_http_date;

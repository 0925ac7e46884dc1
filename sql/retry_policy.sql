--
-- retry_policy: which Airbyte failures are retried, whether a failed
-- request may have taken effect, and how long to wait (src/engine/retry.c).
--
SET client_min_messages TO warning;
CREATE EXTENSION IF NOT EXISTS tenant_airbyte;
RESET client_min_messages;

-- HTTP statuses: exactly the transient list of doc/operations.md.
SELECT s AS http_status, tenant_airbyte.retry_transient_http_status(s) AS transient
  FROM unnest(ARRAY[200, 204, 400, 401, 403, 404, 408, 409, 422, 425, 429,
                    500, 501, 502, 503, 504]) AS s;

-- libcurl codes: 6 resolve, 7 connect, 28 timeout, 52 got nothing, 55/56
-- send/receive, 35 TLS handshake are transient; 3 bad URL, 60 certificate
-- not trusted, 63 response too large, 42 aborted (cancel) are not.
SELECT c AS curl_code, tenant_airbyte.retry_transient_curl_code(c) AS transient
  FROM unnest(ARRAY[3, 6, 7, 28, 35, 42, 52, 55, 56, 60, 63]) AS c;

-- May a failed create have been carried out anyway?  Not when we never
-- connected or the server refused (4xx, 429); yes after a timeout, a
-- dropped connection or a 5xx.
SELECT curl_code, http_status,
       tenant_airbyte.retry_may_have_taken_effect(curl_code, http_status) AS may_have_taken_effect
  FROM (VALUES (7, 0), (6, 0), (60, 0), (28, 0), (52, 0), (56, 0),
               (0, 400), (0, 429), (0, 500), (0, 502), (0, 503), (0, 200)) AS v(curl_code, http_status);

-- Full jitter: the wait is random_fraction times the window, and the
-- window doubles from base_ms up to cap_ms.
SELECT attempt,
       tenant_airbyte.retry_backoff_ms(attempt, 200, 30000, 0.0) AS lowest,
       tenant_airbyte.retry_backoff_ms(attempt, 200, 30000, 0.5) AS middle,
       tenant_airbyte.retry_backoff_ms(attempt, 200, 30000, 0.999999) AS highest
  FROM generate_series(1, 10) AS attempt;
-- Absurd inputs stay in range.
SELECT tenant_airbyte.retry_backoff_ms(1000, 200, 30000, 0.5) AS huge_attempt,
       tenant_airbyte.retry_backoff_ms(0, 200, 30000, 1.5) AS clamped_fraction,
       tenant_airbyte.retry_backoff_ms(3, 200, 30000, -1) AS negative_fraction;

-- Retry-After: delta-seconds or any of the three HTTP-date formats.
SELECT v AS retry_after,
       tenant_airbyte.retry_after_ms(v, '2024-01-01 00:00:00+00') AS wait_ms
  FROM unnest(ARRAY['0', '2', ' 120 ', 'Mon, 01 Jan 2024 00:00:30 GMT',
                    'Monday, 01-Jan-24 00:01:00 GMT', 'Mon Jan  1 00:00:05 2024',
                    'Sun, 31 Dec 2023 23:59:00 GMT', '', '-5', '1.5', 'soon']) AS v;

-- The server's Retry-After wins only when it asks for longer than the
-- backoff (checked through the building blocks the C code combines).
SELECT greatest(tenant_airbyte.retry_backoff_ms(1, 200, 30000, 0.5),
                tenant_airbyte.retry_after_ms('2', now())) AS wait_ms;

-- ... but never for longer than tenant_airbyte.max_retry_after_s (300 s by
-- default): a Retry-After of a year waits 300 s; a shorter one is obeyed;
-- no Retry-After (NULL) is the backoff alone.
SHOW tenant_airbyte.max_retry_after_s;
SELECT v AS retry_after,
       tenant_airbyte.retry_delay_ms(1, 200, 30000, 0.0,
                                     tenant_airbyte.retry_after_ms(v, '2024-01-01 00:00:00+00')) AS wait_ms
  FROM unnest(ARRAY['31536000', '299', '1', NULL]) AS v;
ALTER SYSTEM SET tenant_airbyte.max_retry_after_s = 10;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset
SELECT tenant_airbyte.retry_delay_ms(1, 200, 30000, 0.0, 31536000000) AS wait_ms;
ALTER SYSTEM RESET tenant_airbyte.max_retry_after_s;
SELECT pg_reload_conf(), pg_sleep(0.2) \gset

#!/usr/bin/env bash
# webhookd_headers.t: the headers object the shim builds for
# receive_webhook(): one key per header name (lower-cased), the values of a
# repeated header joined with ", " in the order they arrived, however the
# repeats are interleaved and however many headers a request carries.
#
# Runs against the echo stand-in (test/lib/webhookd_echo.sql): the shim
# alone, whatever the extension's receive_webhook() does.
set -u
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
. test/lib/tap.sh
. test/lib/webhookd.sh

DB=ta_webhookd_headers
W=$TA_WORKDIR/webhookd-headers
rm -rf "$W"
mkdir -p "$W"
ta_webhookd_echo_database $DB >/dev/null || { echo "Bail out! could not create $DB"; exit 1; }

PORT=$(ta_free_port)
TA_WEBHOOKD_DB=$DB ta_webhookd_start "$PORT" ||
	{ echo "Bail out! the shim did not start"; exit 1; }
URL=$TA_WEBHOOKD_URL

sql() { ta_psql -d $DB -At -c "$1"; }

# post [curl args...]: posts a small body, prints the delivery id
post()
{
	curl -s -o /dev/null -D "$W/h" -X POST "$@" --data-binary '{}' "$URL/api/webhooks/frontegg"
	tr -d '\r' <"$W/h" | sed -n 's/^x-delivery-id: //Ip' | head -1
}

# Interleaved repeats, names in mixed case.
id=$(post -H 'X-Multi: one' -H 'X-Other: a' -H 'x-multi: two' -H 'X-Other: b' -H 'X-MULTI: three')
is "$(sql "SELECT headers->>'x-multi' FROM tenant_airbyte.received WHERE delivery_id = $id")" "one, two, three" \
	"interleaved repeats of a header are joined in arrival order"
is "$(sql "SELECT headers->>'x-other' FROM tenant_airbyte.received WHERE delivery_id = $id")" "a, b" \
	"... each name on its own"
is "$(sql "SELECT count(*) FROM tenant_airbyte.received, jsonb_object_keys(headers) AS k WHERE delivery_id = $id AND k LIKE 'x-%'")" 2 \
	"one key per name"

# An empty value is a value.
id=$(post -H 'X-Empty;' -H 'X-Empty: later')
is "$(sql "SELECT headers->>'x-empty' FROM tenant_airbyte.received WHERE delivery_id = $id")" ", later" \
	"an empty repeat keeps its place"

# Many headers: 300 distinct names and 300 repeats of one (about what
# fits in the shim's 64 kB per connection).
args=()
for i in $(seq 1 300); do
	args+=(-H "X-Many-$i: v$i" -H "X-Same: $i")
done
id=$(post "${args[@]}")
is "$(sql "SELECT count(*) FROM tenant_airbyte.received, jsonb_object_keys(headers) AS k WHERE delivery_id = $id AND k LIKE 'x-many-%'")" 300 \
	"300 distinct headers arrive as 300 keys"
is "$(sql "SELECT headers->>'x-same' = string_agg(g::text, ', ' ORDER BY g) FROM tenant_airbyte.received, generate_series(1, 300) AS g WHERE delivery_id = $id GROUP BY headers")" t \
	"300 repeats of one header arrive joined, in order"
is "$(sql "SELECT headers->>'x-many-300' FROM tenant_airbyte.received WHERE delivery_id = $id")" v300 \
	"... and each value stays with its name"

ta_webhookd_stop
ok $? "the shim exits cleanly"
ta_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
tap_done

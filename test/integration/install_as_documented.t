#!/usr/bin/env bash
# install_as_documented.t: the README's "Installing into an existing
# PostgreSQL", step by step, on a cluster of Debian's own PostgreSQL
# package made with pg_createcluster on a spare port (TA_PORT + 2), as
# root; the cluster, the shim's OS user and role are removed afterwards.
# Only the names differ from the README: cluster ta_doc instead of main,
# its port given to each client, the stand-in as Airbyte.
#
# Needs root, postgresql-common and PG_CONFIG pointing at Debian's
# packaged PostgreSQL (/usr/lib/postgresql/N/bin/pg_config, as on a Debian
# machine and in test/matrix's chroots); skipped otherwise.  test/run has
# already done step 1 (make install with that PG_CONFIG).
#
# Keep it in step with README.md: a change to one is a change to both.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. test/lib/tap.sh
. test/lib/webhookd.sh

PG_CONFIG=${PG_CONFIG:-pg_config}
N=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]\+\).*/\1/p')
BINDIR=$("$PG_CONFIG" --bindir)
if [ "$(id -u)" -ne 0 ] || ! command -v pg_createcluster >/dev/null ||
	[ "$BINDIR" != "/usr/lib/postgresql/$N/bin" ]; then
	echo "1..0 # SKIP needs root and Debian's packaged PostgreSQL (PG_CONFIG=/usr/lib/postgresql/N/bin/pg_config)"
	exit 0
fi
[ -n "${TA_STANDIN_URL:-}" ] || { echo "1..1"; echo "not ok 1 - the stand-in is not running (test/run starts it)"; exit 1; }

tap_plan 10

CLUSTER=ta_doc
PORT=$((${TA_PORT:-25432} + 2))
SHIM_USER=tenant_airbyte_webhookd
SECRET=doc-$RANDOM-$RANDOM
TENANT=doc-org-$RANDOM
# Clients reach the cluster through Debian's socket directory, by port.
unset PGHOST PGUSER PGDATABASE
export PGPORT=$PORT
created_user=
shim_pid=

cleanup()
{
	[ -n "$shim_pid" ] && kill "$shim_pid" 2>/dev/null && wait "$shim_pid" 2>/dev/null
	pg_dropcluster --stop "$N" "$CLUSTER" >/dev/null 2>&1
	[ -n "$created_user" ] && userdel "$SHIM_USER" >/dev/null 2>&1
}
trap cleanup EXIT
mkdir -p "${TA_WORKDIR:=/tmp/tenant_airbyte_test}"
cd /tmp || exit 1

# What Debian's package does for its main cluster.
pg_dropcluster --stop "$N" "$CLUSTER" >/dev/null 2>&1
pg_createcluster "$N" "$CLUSTER" --port "$PORT" >"$TA_WORKDIR/createcluster.log" 2>&1 &&
	pg_ctlcluster "$N" "$CLUSTER" start >>"$TA_WORKDIR/createcluster.log" 2>&1
tap_ok $? "a Debian cluster $N/$CLUSTER on port $PORT, made with pg_createcluster"

# 1. make install put the shim beside PostgreSQL's programs.
tap_ok "$([ -x "/usr/lib/postgresql/$N/bin/tenant_airbyte_webhookd" ]; echo $?)" \
	"step 1: the shim is at /usr/lib/postgresql/$N/bin/tenant_airbyte_webhookd"

# 2. Preload, name the database, restart.
cat >"/etc/postgresql/$N/$CLUSTER/conf.d/tenant_airbyte.conf" <<'EOF'
shared_preload_libraries = 'tenant_airbyte'
tenant_airbyte.database = 'app'
EOF
pg_ctlcluster "$N" "$CLUSTER" restart >>"$TA_WORKDIR/createcluster.log" 2>&1
tap_is "$(runuser -u postgres -- psql -X -At -c 'SHOW shared_preload_libraries' 2>&1)" tenant_airbyte \
	"step 2: after the restart the library is preloaded"

# 3. A UTF8 database and the extension, with no warning.
out=$(runuser -u postgres -- createdb --encoding=UTF8 --locale=C --template=template0 app 2>&1 &&
	runuser -u postgres -- psql -d app -c 'CREATE EXTENSION tenant_airbyte' 2>&1)
tap_is "$out" "CREATE EXTENSION" "step 3: createdb and CREATE EXTENSION succeed without a warning"

q() { runuser -u postgres -- psql -X -At -d app -c "$1" 2>&1; }

state=
for _ in $(seq 1 120); do
	state=$(q "SELECT pid IS NOT NULL FROM tenant_airbyte.worker_status")
	[ "$state" = t ] && break
	sleep 0.5
done
tap_is "$state" t "the worker runs and serves database app"

# 4. Credentials, then a new session.
runuser -u postgres -- psql -X -q -d app -v ON_ERROR_STOP=1 -v url="$TA_STANDIN_URL/v1" >/dev/null <<'SQL'
ALTER SYSTEM SET tenant_airbyte.api_url = :'url';
ALTER SYSTEM SET tenant_airbyte.api_token = 'standin-token';
SELECT pg_reload_conf();
SQL
tap_is "$(runuser -u postgres -- psql -d app -At -c "SELECT tenant_airbyte.provision_tenant('$TENANT-0', 'Acme Corp') ->> 'status'" 2>&1)" \
	provisioned "step 4: a new session after pg_reload_conf() provisions a tenant"

# 5. The shim as its own OS user, reaching the role of the same name by peer.
if ! id "$SHIM_USER" >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin "$SHIM_USER" && created_user=1
fi
runuser -u postgres -- psql -X -q -d app -v ON_ERROR_STOP=1 -v secret="$SECRET" >/dev/null <<'SQL'
CREATE ROLE tenant_airbyte_webhookd LOGIN;
GRANT EXECUTE ON FUNCTION tenant_airbyte.receive_webhook(text, jsonb, bytea) TO tenant_airbyte_webhookd;
ALTER SYSTEM SET tenant_airbyte.webhook_secret = :'secret';
SELECT pg_reload_conf();
SQL
tap_ok $? "step 5: the shim's role, its grant and the webhook secret"

shim_port=$(ta_free_port)
runuser -u "$SHIM_USER" -- "/usr/lib/postgresql/$N/bin/tenant_airbyte_webhookd" \
	--listen "127.0.0.1:$shim_port" --conninfo "host=/var/run/postgresql port=$PORT dbname=app" \
	>"$TA_WORKDIR/doc-webhookd.log" 2>&1 &
shim_pid=$!
health=
for _ in $(seq 1 100); do
	health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$shim_port/health")
	[ "$health" = 200 ] && break
	kill -0 "$shim_pid" 2>/dev/null || break
	sleep 0.2
done
tap_is "$health" 200 "the shim, run as $SHIM_USER, reaches the database (GET /health)"
[ "$health" = 200 ] || cat "$TA_WORKDIR/doc-webhookd.log" | sed 's/^/# /'

status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$shim_port/api/webhooks/frontegg" \
	-H 'Content-Type: application/json' -H "x-webhook-secret: $(ta_frontegg_jwt "$SECRET")" \
	--data-binary "{\"eventKey\":\"frontegg.tenant.created\",\"eventContext\":{\"tenantId\":\"$TENANT\"},\"tenant\":{\"name\":\"Documented\"}}")
tap_is "$status" 202 "a signed Frontegg delivery through the shim is accepted"

row=
for _ in $(seq 1 120); do
	row=$(q "SELECT status FROM tenant_airbyte.tenant_airbyte_workspaces WHERE tenant_id = '$TENANT'")
	[ "$row" = active ] && break
	sleep 0.5
done
tap_is "$row" active "the worker provisions that tenant"

cd "$ROOT"
exit $((TAP_FAILED > 0))

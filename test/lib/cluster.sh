# test/lib/cluster.sh: a throwaway PostgreSQL cluster for tests, the demo
# and benchmarks.  Source it, then call ta_cluster_init / _start / _stop.
#
# Environment (all optional):
#   PG_CONFIG    pg_config of the PostgreSQL to use   (default: pg_config)
#   TA_WORKDIR   where data, logs and sockets go      (default: /tmp/tenant_airbyte_test)
#   TA_PORT      port on 127.0.0.1                    (default: 25432)
#
# Clusters run as the postgres user, because initdb refuses root.

PG_CONFIG=${PG_CONFIG:-pg_config}
TA_WORKDIR=${TA_WORKDIR:-/tmp/tenant_airbyte_test}
TA_PORT=${TA_PORT:-25432}
TA_BINDIR=$("$PG_CONFIG" --bindir)
TA_PGDATA=$TA_WORKDIR/data
TA_PGLOG=$TA_WORKDIR/postgres.log

export PGHOST=127.0.0.1 PGPORT=$TA_PORT PGUSER=postgres
export TA_WORKDIR TA_PORT TA_BINDIR TA_PGDATA TA_PGLOG PG_CONFIG

# ta_as_postgres CMD...: run a command as the cluster's owner, from the root
# directory: postgres may not be able to enter the caller's (/root/...),
# and PostgreSQL's programs then complain that they cannot change back to
# it.  Paths given to it must therefore be absolute.
ta_as_postgres()
{
	if [ "$(id -un)" = postgres ]; then
		"$@"
	else
		(cd / && runuser -u postgres -- "$@")
	fi
}

# ta_cluster_init [DATABASE]: a fresh cluster with the extension preloaded
# and its worker serving DATABASE (default: postgres).  Extra settings can
# be appended to $TA_PGDATA/postgresql.conf afterwards.  The cluster is
# UTF8 with the C locale whatever the environment's locale (none, as on a
# fresh Debian, would give SQL_ASCII, where the extension refuses to
# install), so results do not depend on the machine.
ta_cluster_init()
{
	local database=${1:-postgres}

	ta_cluster_stop >/dev/null 2>&1 || true
	rm -rf "$TA_WORKDIR"
	mkdir -p "$TA_WORKDIR"
	chown postgres: "$TA_WORKDIR"
	ta_as_postgres "$TA_BINDIR/initdb" -D "$TA_PGDATA" -A trust -U postgres \
		--encoding=UTF8 --locale=C --no-instructions >"$TA_WORKDIR/initdb.log" 2>&1 ||
		{ cat "$TA_WORKDIR/initdb.log" >&2; return 1; }
	cat >>"$TA_PGDATA/postgresql.conf" <<CONF

# --- tenant_airbyte test cluster ---
listen_addresses = '127.0.0.1'
port = $TA_PORT
unix_socket_directories = '$TA_WORKDIR'
shared_preload_libraries = 'tenant_airbyte'
tenant_airbyte.database = '$database'
max_connections = 200
log_line_prefix = '%m [%p] %q%u@%d '
CONF
}

ta_cluster_start()
{
	ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$TA_PGDATA" -l "$TA_PGLOG" -w -t 60 start >/dev/null
}

ta_cluster_stop()
{
	[ -f "$TA_PGDATA/postmaster.pid" ] || return 0
	ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$TA_PGDATA" -m "${1:-fast}" -w -t 60 stop >/dev/null
}

ta_cluster_restart()
{
	ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$TA_PGDATA" -l "$TA_PGLOG" -m fast -w -t 60 restart >/dev/null
}

# ta_psql ARGS...: psql against the cluster, quiet, stop on error.
ta_psql()
{
	"$TA_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

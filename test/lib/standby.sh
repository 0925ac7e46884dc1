# test/lib/standby.sh: a primary and a synchronous streaming standby on
# 127.0.0.1, both with tenant_airbyte preloaded and its worker serving the
# same database, for the failover tests.  Self-contained: it does not use
# the single cluster of test/lib/cluster.sh (source that first anyway, for
# PG_CONFIG, TA_BINDIR and ta_as_postgres).
#
#   ta_pair_init DIR PRIMARY_PORT STANDBY_PORT [DATABASE]
#       initdb a primary in DIR/primary and start it (asynchronous until
#       ta_standby_create: a primary that waits for a standby that does
#       not exist yet would hang every commit).  Sets TA_PRIMARY_DATA,
#       TA_STANDBY_DATA, TA_PRIMARY_PORT, TA_STANDBY_PORT.
#   ta_standby_create
#       pg_basebackup -R of the running primary into DIR/standby, with the
#       primary's settings (postgresql.conf and postgresql.auto.conf, so
#       also tenant_airbyte.*), its own port, application_name ta_standby;
#       start it; then make the primary wait for it at every commit
#       (synchronous_standby_names = 'ta_standby', synchronous_commit = on)
#       and wait until the primary reports it as the sync standby.  The
#       standby itself has no synchronous_standby_names: once promoted it
#       commits alone.
#   ta_crash_primary
#       kill -9 the primary's postmaster, then every process it had
#       started: the host is gone, nothing it had not yet replicated
#       survives.
#   ta_promote_standby
#       pg_ctl promote, and wait until the standby accepts writes.
#   ta_pair_stop
#       stop whatever still runs (immediate) and remove DIR.
#   ta_pq PORT SQL
#       one value from DATABASE on that server.

ta_pq()
{
	PGOPTIONS='-c client_min_messages=warning' \
		"$TA_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres \
		-d "${TA_PAIR_DB:-postgres}" -c "$2"
}

ta_pair_init()
{
	TA_PAIR_DIR=$1
	TA_PRIMARY_PORT=$2
	TA_STANDBY_PORT=$3
	TA_PAIR_DB=${4:-postgres}
	TA_PRIMARY_DATA=$TA_PAIR_DIR/primary
	TA_STANDBY_DATA=$TA_PAIR_DIR/standby
	export TA_PAIR_DIR TA_PRIMARY_PORT TA_STANDBY_PORT TA_PAIR_DB TA_PRIMARY_DATA TA_STANDBY_DATA

	ta_pair_stop >/dev/null 2>&1
	mkdir -p "$TA_PAIR_DIR"
	chown postgres: "$TA_PAIR_DIR"
	ta_as_postgres "$TA_BINDIR/initdb" -D "$TA_PRIMARY_DATA" -A trust -U postgres \
		--encoding=UTF8 --locale=C --no-instructions >"$TA_PAIR_DIR/initdb.log" 2>&1 ||
		{ cat "$TA_PAIR_DIR/initdb.log" >&2; return 1; }
	cat >>"$TA_PRIMARY_DATA/postgresql.conf" <<CONF

# --- tenant_airbyte failover test: primary ---
listen_addresses = '127.0.0.1'
port = $TA_PRIMARY_PORT
unix_socket_directories = '$TA_PAIR_DIR'
shared_preload_libraries = 'tenant_airbyte'
tenant_airbyte.database = '$TA_PAIR_DB'
max_connections = 100
wal_level = replica
max_wal_senders = 5
hot_standby = on
synchronous_commit = on
log_line_prefix = '%m [%p] %q%u@%d '
CONF
	ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$TA_PRIMARY_DATA" -l "$TA_PAIR_DIR/primary.log" -w -t 60 start >/dev/null
}

ta_standby_create()
{
	local i

	ta_as_postgres "$TA_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$TA_PRIMARY_PORT" -U postgres \
		-D "$TA_STANDBY_DATA" -R -X stream -c fast >"$TA_PAIR_DIR/basebackup.log" 2>&1 ||
		{ cat "$TA_PAIR_DIR/basebackup.log" >&2; return 1; }
	cat >>"$TA_STANDBY_DATA/postgresql.conf" <<CONF

# --- tenant_airbyte failover test: standby ---
port = $TA_STANDBY_PORT
CONF
	# -R wrote primary_conninfo; the last line wins, with our name in it.
	echo "primary_conninfo = 'host=127.0.0.1 port=$TA_PRIMARY_PORT user=postgres application_name=ta_standby'" \
		>>"$TA_STANDBY_DATA/postgresql.auto.conf"
	ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$TA_STANDBY_DATA" -l "$TA_PAIR_DIR/standby.log" -w -t 60 start >/dev/null ||
		{ cat "$TA_PAIR_DIR/standby.log" >&2; return 1; }
	ta_pq "$TA_PRIMARY_PORT" "ALTER SYSTEM SET synchronous_standby_names = 'ta_standby'" >/dev/null &&
		ta_pq "$TA_PRIMARY_PORT" "SELECT pg_reload_conf()" >/dev/null || return 1
	for i in $(seq 1 600); do
		[ "$(ta_pq "$TA_PRIMARY_PORT" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'ta_standby'" 2>/dev/null)" = sync ] &&
			return 0
		sleep 0.1
	done
	echo "ta_standby_create: the standby never became the synchronous standby" >&2
	return 1
}

ta_crash_primary()
{
	local pm children p

	pm=$(head -1 "$TA_PRIMARY_DATA/postmaster.pid" 2>/dev/null)
	[ -n "$pm" ] || return 1
	children=$(ps -o pid= --ppid "$pm")
	kill -9 "$pm"
	for p in $children; do
		kill -9 "$p" 2>/dev/null
	done
	return 0
}

ta_promote_standby()
{
	local i
	ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$TA_STANDBY_DATA" -w -t 60 promote >/dev/null || return 1
	for i in $(seq 1 600); do
		[ "$(ta_pq "$TA_STANDBY_PORT" "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] && return 0
		sleep 0.1
	done
	return 1
}

ta_pair_stop()
{
	local d
	for d in "$TA_STANDBY_DATA" "$TA_PRIMARY_DATA"; do
		[ -n "$d" ] && [ -f "$d/postmaster.pid" ] &&
			ta_as_postgres "$TA_BINDIR/pg_ctl" -D "$d" -m immediate -w -t 60 stop >/dev/null 2>&1
	done
	[ -n "${TA_PAIR_DIR:-}" ] && rm -rf "$TA_PAIR_DIR"
	return 0
}

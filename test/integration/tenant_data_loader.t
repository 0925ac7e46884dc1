#!/usr/bin/env python3
"""tenant_data_loader.t: synced data written by each tenant's own loader.

Three tenants get their data schema and loader (ensure_tenant_data()).
The stand-in's Postgres loader (test/standin_loader.py, what the
stand-in runs when a sync succeeds) logs in with each tenant's
credentials, over TCP with SCRAM (pg_hba.conf is given scram-sha-256
lines for the three loaders), and writes final and raw tables the way
Airbyte's destination does, by append and by the overwrite swap.  Then
each tenant context sees exactly its own rows, a loader cannot reach
another tenant's schema, a wrong or rotated-away password does not log
in, the loader refuses superuser credentials, and the server log, with
log_statement = all, contains no loader password.
"""
import json
import os
import subprocess
import sys
import time

DB = "ta_tenant_data_it"
APP = "ta_data_it_app"
TENANTS = ["it-data-a", "it-data-b", "it-data-c"]
BINDIR = os.environ["TA_BINDIR"]
PGDATA = os.environ["TA_PGDATA"]
PGLOG = os.environ.get("TA_PGLOG", "")
PORT = os.environ.get("TA_PORT", "25432")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADER = os.path.join(ROOT, "test", "standin_loader.py")
HBA = os.path.join(PGDATA, "pg_hba.conf")

results = []


def ok(cond, name):
    results.append((bool(cond), name))


def psql(sql, db=DB, user="postgres", password=None, host="127.0.0.1"):
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    cmd = [os.path.join(BINDIR, "psql"), "-X", "-q", "-At", "-h", host, "-p", PORT,
           "-d", db, "-U", user, "-v", "VERBOSITY=verbose"]
    p = subprocess.run(cmd, input=sql.encode(), capture_output=True, env=env, cwd="/tmp")
    return p.stdout.decode().splitlines(), p.stderr.decode()


def admin(sql, db=DB):
    out, err = psql("\\set ON_ERROR_STOP 1\n" + sql, db=db)
    if err.strip() and "NOTICE" not in err:
        sys.stderr.write(err)
    return out


def reload():
    admin("SELECT pg_reload_conf();", db="postgres")
    time.sleep(0.5)


def load(config, streams, mode="append"):
    p = subprocess.run([sys.executable, LOADER, "--config", json.dumps(config),
                        "--streams", json.dumps(streams), "--mode", mode],
                       capture_output=True)
    try:
        return json.loads(p.stdout.decode() or "{}")
    except ValueError:
        return {"error": p.stdout.decode() + p.stderr.decode()}


def counts(context):
    """orders, customers and raw orders rows of every tenant, seen by the
    application role under a tenant context (empty: none)."""
    sql = "SET tenant_airbyte.tenant_id = '%s';\nSET ROLE %s;\n" % (context, APP)
    for t in TENANTS:
        s = creds[t]["tenant_schema"]
        sql += ("SELECT (SELECT count(*) FROM %s.orders) || ',' || (SELECT count(*) FROM %s.customers)"
                " || ',' || (SELECT count(*) FROM %s.%s_raw__stream_orders);\n" % (s, s, s, s))
    out, err = psql(sql)
    if err.strip():
        sys.stderr.write("# " + err)
    return out


creds = {}
hba_before = None


def config_of(t, password=None):
    c = creds[t]
    return {"host": "127.0.0.1", "port": int(PORT), "database": DB,
            "schema": c["tenant_schema"], "raw_data_schema": c["tenant_schema"],
            "username": c["loader_user"],
            "password": c["loader_password"] if password is None else password}


def main():
    global hba_before
    admin("DROP DATABASE IF EXISTS %s;" % DB, db="postgres")
    admin("DROP ROLE IF EXISTS %s;" % APP, db="postgres")
    admin("CREATE DATABASE %s;" % DB, db="postgres")
    admin("CREATE ROLE %s LOGIN;" % APP, db="postgres")
    admin("ALTER DATABASE %s SET tenant_airbyte.tenant_roles = '%s';" % (DB, APP), db="postgres")
    admin("ALTER DATABASE %s SET log_statement = 'all';" % DB, db="postgres")
    admin("CREATE EXTENSION tenant_airbyte;")
    for t in TENANTS:
        # a loader left behind by an interrupted run would be refused
        role = admin("SELECT tenant_airbyte.loader_role_for('%s');" % t)[0]
        admin('DROP ROLE IF EXISTS "%s";' % role, db="postgres")
        admin("SELECT tenant_airbyte.ensure_tenant_data('%s');" % t)
        row = json.loads(admin("SELECT tenant_airbyte.loader_credentials('%s');" % t)[0])
        creds[t] = {"tenant_schema": row["tenant_schema"], "loader_user": row["user"],
                    "loader_password": row["password"]}

    # The loaders log in with their passwords (SCRAM), not by trust.
    hba_before = open(HBA).read()
    lines = "".join("host all %s 127.0.0.1/32 scram-sha-256\n" % creds[t]["loader_user"]
                    for t in TENANTS)
    with open(HBA, "w") as f:
        f.write(lines + hba_before)
    reload()

    a, b, c = TENANTS
    bad = load(config_of(a, password="not-the-password"), ["orders"])
    ok("password authentication failed" in bad.get("error", ""),
       "a wrong password does not log in as a loader (%s)" % bad.get("error", bad))

    r1 = load(config_of(a), ["orders"])
    r2 = load(config_of(a), ["orders"])
    r3 = load(config_of(a), ["customers"], "overwrite")
    r4 = load(config_of(a), [{"name": "customers", "records": [{"id": 7, "email": "x@a"}]}],
              "full_refresh_overwrite")
    r5 = load(config_of(b), ["orders", "customers"])
    r6 = load(config_of(c), ["orders"])
    r7 = load(config_of(c), ["customers"], "overwrite")
    ok(all(r.get("recordsSynced") for r in (r1, r2, r3, r4, r5, r6, r7)),
       "each loader writes its tenant's syncs, append and overwrite (%r)" % [r1, r4, r5, r7])

    ok(counts(a) == ["6,1,6", "0,0,0", "0,0,0"],
       "tenant a sees its two appends and the last overwrite, nothing of b or c (%r)" % counts(a))
    ok(counts(b) == ["0,0,0", "3,3,3", "0,0,0"], "tenant b sees only its rows (%r)" % counts(b))
    ok(counts(c) == ["0,0,0", "0,0,0", "3,3,3"], "tenant c sees only its rows (%r)" % counts(c))
    ok(counts("") == ["0,0,0", "0,0,0", "0,0,0"], "no tenant context sees nothing (%r)" % counts(""))

    sa = creds[a]["tenant_schema"]
    out, err = psql("SET tenant_airbyte.tenant_id = '%s'; SET ROLE %s;"
                    " SELECT DISTINCT source FROM %s.orders;" % (a, APP, sa))
    ok(out == [sa], "the rows tenant a sees are the ones written with its credentials (%r)" % out)

    out, err = psql("SELECT count(*) FROM %s.orders;" % sa, user=creds[b]["loader_user"],
                    password=creds[b]["loader_password"])
    ok("permission denied for schema" in err, "b's loader cannot read a's synced table")
    stolen = dict(config_of(b), schema=sa, raw_data_schema=sa)
    r = load(stolen, ["orders"])
    ok("permission denied" in r.get("error", ""),
       "b's credentials with a's schema in the configuration write nothing (%s)" % r.get("error", r))
    out, err = psql("SELECT count(*) FROM %s.orders;" % sa, user=creds[a]["loader_user"],
                    password=creds[a]["loader_password"])
    ok(out == ["6"], "a's loader reads all of its own table (%r)" % out)

    superuser = dict(config_of(a), username="postgres", password="")
    r = load(superuser, ["orders"])
    ok("must not be a superuser" in r.get("error", ""), "the loader refuses superuser credentials")

    old = creds[a]["loader_password"]
    out, err = psql("SELECT tenant_airbyte.rotate_loader_password('%s') ->> 'destination_update_operation' IS NULL;" % a)
    ok(out == ["t"], "rotation records no destination update for a tenant without a destination (%s)" % (out or err))
    new = json.loads(admin("SELECT tenant_airbyte.loader_credentials('%s');" % a)[0])["password"]
    out_old, err_old = psql("SELECT 1;", user=creds[a]["loader_user"], password=old)
    out_new, err_new = psql("SELECT 1;", user=creds[a]["loader_user"], password=new)
    ok(new != old and "password authentication failed" in err_old and out_new == ["1"],
       "after rotation the old password is refused and the new one logs in")

    if PGLOG and os.path.exists(PGLOG):
        log = open(PGLOG, errors="replace").read()
        secrets = [old, new] + [creds[t]["loader_password"] for t in (b, c)]
        ok("ensure_tenant_data" in log and "rotate_loader_password" in log
           and not any(s in log for s in secrets),
           "with log_statement = all the log has the calls but no loader password")
    else:
        ok(True, "the server log has no loader password # SKIP no log file")


try:
    main()
finally:
    if hba_before is not None:
        with open(HBA, "w") as f:
            f.write(hba_before)
    for t in TENANTS:
        psql("SELECT tenant_airbyte.drop_tenant_data('%s');" % t)
    reload()
    admin("DROP DATABASE IF EXISTS %s;" % DB, db="postgres")
    admin("DROP ROLE IF EXISTS %s;" % APP, db="postgres")
    print("1..%d" % len(results))
    for i, (passed, name) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if passed else "not ok", i, name))
    sys.exit(0 if results and all(p for p, _ in results) else 1)

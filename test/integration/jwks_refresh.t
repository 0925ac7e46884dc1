#!/usr/bin/env python3
"""jwks_refresh.t: signing keys that refresh themselves.

The issuer's JWKS endpoint is test/lib/jwks_server.py, run in this
process; RSA keys are made with the openssl command line and tokens
signed with `openssl dgst`.  With tenant_airbyte.jwks_url pointing at it,
the background worker (which serves the database "postgres") must pick
up a rotation without a restart, both by the periodic refresh and soon
after a token with an unknown kid, fetch once for any number of such
tokens, keep the current keys when the JWKS is broken and say why in
worker_status, accept a removed key during its grace period and refuse
it after, and leave keys loaded by hand alone.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "lib"))
from jwks_server import JwksServer  # noqa: E402

DB = "postgres"
APP = "ta_jwks_it_app"
ISSUER = "https://jwks-it.frontegg.test"
BINDIR = os.environ["TA_BINDIR"]
TIMEOUT = 90

results = []


def ok(cond, name):
    results.append((bool(cond), name))
    return bool(cond)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def run(cmd, data=None):
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def psql(sql, user="postgres", **variables):
    cmd = [os.path.join(BINDIR, "psql"), "-X", "-q", "-At", "-d", DB, "-U", user,
           "-v", "VERBOSITY=verbose"]
    for name, value in variables.items():
        cmd += ["-v", "%s=%s" % (name, value)]
    p = subprocess.run(cmd, input=sql.encode(), capture_output=True)
    return p.stdout.decode().splitlines(), p.stderr.decode()


def admin(sql):
    out, err = psql("\\set ON_ERROR_STOP 1\n" + sql)
    if err.strip() and "NOTICE" not in err:
        sys.stderr.write(err)
    return out


def setting(name, value):
    if value is None:
        admin("ALTER SYSTEM RESET %s;" % name)
    else:
        admin("ALTER SYSTEM SET %s = '%s';" % (name, value))
    admin("SELECT pg_reload_conf();")


def wait_for(cond, timeout=TIMEOUT, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


tmp = tempfile.mkdtemp()


def new_key(name):
    path = os.path.join(tmp, name + ".pem")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", path])
    modulus = run(["openssl", "rsa", "-in", path, "-noout", "-modulus"]).decode()
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    return path, {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": name,
                  "n": b64url(n), "e": "AQAB"}


def token(kid, key_path):
    now = int(time.time())
    claims = {"sub": "user-1", "iss": ISSUER, "iat": now, "exp": now + 3600,
              "type": "userToken", "tenantId": "org-jwks"}
    signing_input = (b64url(json.dumps({"alg": "RS256", "kid": kid}).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    signature = run(["openssl", "dgst", "-sha256", "-sign", key_path],
                    signing_input.encode())
    return signing_input + "." + b64url(signature)


def authenticate(tok):
    """(accepted, stderr) of authenticate() called by the application role."""
    out, err = psql("SELECT tenant_airbyte.authenticate(:'token') ->> 'tenantId';",
                    user=APP, token=tok)
    return out == ["org-jwks"], err


def accepted(tok):
    return authenticate(tok)[0]


def jwks_status():
    out = admin("SELECT row_to_json(s) FROM (SELECT w.jwks_checked_at, w.jwks_refreshed_at,"
                " w.jwks_keys, w.jwks_error, j.fetches"
                " FROM tenant_airbyte.worker_status AS w, tenant_airbyte.jwks_state() AS j) s;")
    return json.loads(out[0]) if out else {}


def keys():
    """kid -> (fetched, removed) of the stored keys."""
    out = admin("SELECT kid, fetched_from IS NOT NULL, removed_at IS NOT NULL"
                " FROM tenant_airbyte.jwt_keys ORDER BY kid;")
    return {line.split("|")[0]: tuple(v == "t" for v in line.split("|")[1:]) for line in out}


def drop_app():
    admin("DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN"
          " DROP OWNED BY %s; DROP ROLE %s; END IF; END $$;" % (APP, APP, APP))


def free_port():
    return int(run([sys.executable, os.path.join(ROOT, "test", "lib", "free_port.py")]).decode())


def main():
    key1, jwk1 = new_key("jwks-it-1")
    key2, jwk2 = new_key("jwks-it-2")
    key3, jwk3 = new_key("jwks-it-3")
    key4, jwk4 = new_key("jwks-it-hand")
    tok1 = token("jwks-it-1", key1)
    tok2 = token("jwks-it-2", key2)
    tok3 = token("jwks-it-3", key3)
    tok4 = token("jwks-it-hand", key4)
    tok9 = token("jwks-it-unknown", key1)

    server = JwksServer(free_port())
    server.publish([jwk1])

    admin("CREATE EXTENSION IF NOT EXISTS tenant_airbyte;")
    drop_app()
    admin("CREATE ROLE %s LOGIN;" % APP)
    admin("GRANT EXECUTE ON FUNCTION tenant_airbyte.authenticate(text) TO %s;" % APP)
    admin("DELETE FROM tenant_airbyte.jwt_keys;")
    ok(wait_for(lambda: admin("SELECT state FROM tenant_airbyte.worker_state();")
                in (["idle"], ["working"])), "the worker serves the database")

    # Set up: no refresh yet; a kid not loaded is refused as before.
    setting("tenant_airbyte.jwt_issuer", ISSUER)
    setting("tenant_airbyte.jwks_refresh_s", "3600")
    setting("tenant_airbyte.jwks_grace_s", "3600")
    time.sleep(0.5)
    fine, err = authenticate(tok1)
    ok(not fine and "unknown signing key (kid)" in err and "refresh" not in err,
       "without jwks_url an unknown kid is refused and no refresh is promised (%s)" % err.strip())

    # On start (here: as soon as jwks_url is set) the worker fetches it.
    setting("tenant_airbyte.jwks_url", server.url)
    ok(wait_for(lambda: keys().get("jwks-it-1") == (True, False)),
       "the worker fetches tenant_airbyte.jwks_url as soon as it is set (%r)" % keys())
    status = wait_for(lambda: (lambda s: s if s.get("jwks_refreshed_at") else None)(jwks_status()))
    ok(status and status["jwks_keys"] == 1 and status["jwks_error"] is None,
       "worker_status shows when the JWKS was applied and how many keys it had (%r)" % status)
    ok(accepted(tok1), "a token signed with the fetched key is accepted")

    # Rotation seen through an unknown kid: one fetch, whatever the calls.
    server.publish([jwk1, jwk2])
    before = server.fetches
    fine, err = authenticate(tok2)
    ok(not fine and "28000" in err
       and "unknown signing key (kid), a refresh of the signing keys was requested" in err
       and "try again shortly" in err,
       "a token with an unknown kid is refused with 28000, saying a refresh was requested (%s)" % err.strip())
    psql("".join("SELECT tenant_airbyte.authenticate(:'a');\nSELECT tenant_airbyte.authenticate(:'b');\n"
                 for _ in range(15)), user=APP, a=tok2, b=tok9)
    ok(wait_for(lambda: accepted(tok2)),
       "the new key is picked up without a restart, soon after a token named it")
    time.sleep(3)
    psql("".join("SELECT tenant_airbyte.authenticate(:'b');\n" for _ in range(20)), user=APP, b=tok9)
    time.sleep(3)
    ok(server.fetches - before == 1,
       "some 50 tokens with unknown kids caused one fetch, not one per call (%d)" % (server.fetches - before))
    ok(accepted(tok1), "... and the key published before still works")

    # Rotation seen by the periodic refresh: no token names the new key first.
    server.publish([jwk2, jwk3])
    setting("tenant_airbyte.jwks_refresh_s", "2")
    ok(wait_for(lambda: keys().get("jwks-it-3") == (True, False)
                and keys().get("jwks-it-1") == (True, True)),
       "the periodic refresh picks up a rotation: the new key stored, the old one marked removed (%r)" % keys())
    ok(accepted(tok3), "a token of the new key is accepted")
    ok(accepted(tok1), "a token of the removed key is accepted during the grace period")

    # The grace period ends.
    setting("tenant_airbyte.jwks_grace_s", "1")
    time.sleep(1.5)
    fine, err = wait_for(lambda: (lambda r: r if not r[0] else None)(authenticate(tok1))) or (True, "")
    ok(not fine and "28000" in err
       and "signing key was removed from the issuer's JWKS" in err,
       "after the grace period a token of the removed key is refused (%s)" % err.strip())
    ok(accepted(tok3) and accepted(tok2), "... while the published keys still work")
    setting("tenant_airbyte.jwks_grace_s", "3600")

    # Broken documents keep the keys and say why.
    for mode, why in [("invalid-json", "the JWKS is not valid JSON"),
                      ("empty", "the JWKS lists no keys"),
                      ("no-keys", 'the JWKS has no "keys" array'),
                      ("unusable", "the JWKS holds no key authenticate() can use"),
                      ("http-500", "answered HTTP 500")]:
        stored = keys()
        server.break_with(mode)
        status = wait_for(lambda: (lambda s: s if why in (s.get("jwks_error") or "") else None)(jwks_status()))
        ok(status and keys() == stored and accepted(tok2) and accepted(tok3),
           "a JWKS that is %s keeps the current keys, and worker_status says why (%r)"
           % (mode, status and status.get("jwks_error")))
    server.break_with(None)
    status = wait_for(lambda: (lambda s: s if s.get("jwks_error") is None else None)(jwks_status()))
    ok(status and status["jwks_keys"] == 2, "once the JWKS is good again the error is gone (%r)" % status)

    # Keys loaded by hand are the administrator's: the refresh leaves them.
    admin("SELECT tenant_airbyte.load_jwks('%s');" % json.dumps({"keys": [jwk4]}))
    seen = server.fetches
    ok(wait_for(lambda: server.fetches >= seen + 2), "the refresh goes on every jwks_refresh_s")
    ok(keys().get("jwks-it-hand") == (False, False) and accepted(tok4)
       and keys().get("jwks-it-2") == (True, False),
       "a key loaded by hand with load_jwks() survives refreshes and works beside the fetched ones (%r)" % keys())

    # The refresh turned off: no fetches, and the unknown-kid hint says so.
    setting("tenant_airbyte.jwks_url", None)
    time.sleep(1)
    seen = server.fetches
    time.sleep(4)
    fine, err = authenticate(tok9)
    ok(server.fetches == seen and "load_jwks" in err and "refresh" not in err,
       "with jwks_url reset nothing is fetched any more (%d)" % (server.fetches - seen))
    server.close()


try:
    main()
finally:
    for name in ("jwks_url", "jwks_refresh_s", "jwks_grace_s", "jwt_issuer"):
        admin("ALTER SYSTEM RESET tenant_airbyte.%s;" % name)
    admin("SELECT pg_reload_conf();")
    admin("DELETE FROM tenant_airbyte.jwt_keys;")
    drop_app()
    print("1..%d" % len(results))
    for i, (passed, name) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if passed else "not ok", i, name))
    sys.exit(0 if results and all(p for p, _ in results) else 1)

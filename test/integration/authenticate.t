#!/usr/bin/env python3
"""authenticate.t: Frontegg access tokens verified in the database.

RSA keys are generated for each run with the openssl command line, the
JWKS is built from them and tokens are signed with `openssl dgst`, so
nothing here shares code with the extension.  An application role that
holds only EXECUTE on authenticate() sees exactly its tenant's rows, every
kind of bad token is refused with SQLSTATE 28000 naming the check, the
context ends with the transaction, and keys rotate by kid.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

DB = "ta_authenticate_it"
APP = "ta_it_app"
ISSUER = "https://it.frontegg.test"
BINDIR = os.environ["TA_BINDIR"]
PGLOG = os.environ.get("TA_PGLOG", "")

results = []


def ok(cond, name):
    results.append((bool(cond), name))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def run(cmd, data=None):
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def psql(sql, db=DB, user="postgres", **variables):
    cmd = [os.path.join(BINDIR, "psql"), "-X", "-q", "-At", "-d", db, "-U", user,
           "-v", "VERBOSITY=verbose"]
    for name, value in variables.items():
        cmd += ["-v", "%s=%s" % (name, value)]
    p = subprocess.run(cmd, input=sql.encode(), capture_output=True)
    return p.stdout.decode().splitlines(), p.stderr.decode()


def admin(sql, db=DB):
    out, err = psql("\\set ON_ERROR_STOP 1\n" + sql, db=db)
    if err.strip() and "NOTICE" not in err:
        sys.stderr.write(err)
    return out


def reload():
    admin("SELECT pg_reload_conf();", db="postgres")
    time.sleep(0.3)


tmp = tempfile.mkdtemp()


def new_key(name):
    path = os.path.join(tmp, name + ".pem")
    run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", path])
    modulus = run(["openssl", "rsa", "-in", path, "-noout", "-modulus"]).decode()
    n = bytes.fromhex(modulus.strip().split("=", 1)[1])
    return path, {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": name,
                  "n": b64url(n), "e": "AQAB"}


def sign(header, claims, key_path):
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    signature = run(["openssl", "dgst", "-sha256", "-sign", key_path],
                    signing_input.encode())
    return signing_input + "." + b64url(signature)


def claims(**changes):
    now = int(time.time())
    c = {"sub": "user-1", "iss": ISSUER, "aud": "frontegg-app", "iat": now,
         "exp": now + 600, "type": "userToken", "tenantId": "org-a",
         "tenantIds": ["org-a"], "roles": ["admin"], "permissions": ["read"],
         "email": "a@example.com"}
    c.update(changes)
    return {k: v for k, v in c.items() if v is not None}


def authenticate_in_transaction(token):
    """Runs authenticate() as the app role; returns (output lines, stderr)."""
    return psql("""
BEGIN;
SELECT tenant_airbyte.authenticate(:'token') ->> 'tenantId';
SELECT coalesce(string_agg(tenant_id, ',' ORDER BY tenant_id), '<no rows>')
  FROM tenant_airbyte.tenant_airbyte_workspaces;
SELECT coalesce(tenant_airbyte.current_tenant(), '<none>');
COMMIT;
SELECT coalesce(tenant_airbyte.current_tenant(), '<none>');
SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces;
""", user=APP, token=token)


def rejected(token, check, name):
    out, err = authenticate_in_transaction(token)
    signature = token.rsplit(".", 1)[-1]
    fine = ("28000" in err and ("access token rejected: " + check) in err
            and out == ["<none>", "0"]
            and (len(signature) < 8 or signature not in err))
    if not fine:
        sys.stderr.write("# %s\n# out=%r\n# err=%r\n" % (name, out, err))
    ok(fine, name)


def main():
    key1, jwk1 = new_key("it-key-1")
    key2, jwk2 = new_key("it-key-2")

    admin("DROP DATABASE IF EXISTS %s;" % DB, db="postgres")
    admin("DROP ROLE IF EXISTS %s;" % APP, db="postgres")
    admin("CREATE DATABASE %s;" % DB, db="postgres")
    admin("CREATE ROLE %s LOGIN;" % APP, db="postgres")
    admin("ALTER SYSTEM SET tenant_airbyte.jwt_issuer = '%s';" % ISSUER, db="postgres")
    # The test cluster logs only LOG and above; errors must reach the log
    # for the check that the log never contains a token to mean anything.
    admin("ALTER SYSTEM SET log_min_messages = 'error';", db="postgres")
    reload()
    admin("""
CREATE EXTENSION tenant_airbyte;
GRANT EXECUTE ON FUNCTION tenant_airbyte.authenticate(text) TO %s;
INSERT INTO tenant_airbyte.tenant_airbyte_workspaces
	(tenant_id, airbyte_workspace_id, airbyte_workspace_name)
VALUES ('org-a', 'aaaaaaaa-0000-4000-8000-00000000000a', 'A - org-a'),
       ('org-b', 'bbbbbbbb-0000-4000-8000-00000000000b', 'B - org-b');
""" % APP)
    loaded = admin("SELECT tenant_airbyte.load_jwks(:'jwks');".replace(
        ":'jwks'", "'%s'" % json.dumps({"keys": [jwk1]})))
    ok(loaded == ["1"], "load_jwks() stores the key of a JWKS built from an openssl key")

    header = {"alg": "RS256", "kid": "it-key-1", "typ": "JWT"}
    good = sign(header, claims(), key1)

    out, err = authenticate_in_transaction(good)
    ok(out == ["org-a", "org-a", "org-a", "<none>", "0"],
       "a valid token sets the context: the tenant sees exactly its rows, and the context ends at COMMIT (%r %s)" % (out, err.strip()))

    out, err = psql("""
BEGIN;
SELECT tenant_airbyte.authenticate(:'token') IS NOT NULL;
SELECT tenant_airbyte.current_tenant();
ROLLBACK;
SELECT coalesce(tenant_airbyte.current_tenant(), '<none>');
BEGIN;
SELECT count(*) FROM tenant_airbyte.tenant_airbyte_workspaces;
COMMIT;
""", user=APP, token=good)
    ok(out == ["t", "org-a", "<none>", "0"],
       "the context ends at ROLLBACK and does not reach the next transaction (%r)" % out)

    out, err = psql("SELECT tenant_airbyte.authenticate(:'token');", user=APP, token=good)
    returned = json.loads(out[0]) if out else {}
    ok(set(returned) == {"sub", "tenantId", "tenantIds", "roles", "permissions", "email", "type"}
       and returned["tenantId"] == "org-a" and returned["roles"] == ["admin"],
       "authenticate() returns the claims an application needs (%s)" % sorted(returned))

    now = int(time.time())
    rejected(b64url(b'{"alg":"none","kid":"it-key-1"}') + "." +
             b64url(json.dumps(claims(tenantId="org-b")).encode()) + ".",
             "token algorithm is not RS256", "alg none is refused")
    hs_input = (b64url(b'{"alg":"HS256","kid":"it-key-1"}') + "." +
                b64url(json.dumps(claims(tenantId="org-b")).encode()))
    hs_sig = run(["openssl", "dgst", "-sha256", "-hmac", json.dumps(jwk1), "-binary"],
                 hs_input.encode())
    rejected(hs_input + "." + b64url(hs_sig), "token algorithm is not RS256",
             "HS256 signed with the public key is refused")
    rejected(sign(header, claims(tenantId="org-b"), key2), "signature does not verify",
             "a token signed by another key under a known kid is refused")
    a_sig = good.rsplit(".", 1)[1]
    forged = (good.split(".")[0] + "." + b64url(json.dumps(claims(tenantId="org-b")).encode())
              + "." + a_sig)
    rejected(forged, "signature does not verify", "a token whose claims were changed is refused")
    rejected(sign({"alg": "RS256", "kid": "it-key-9"}, claims(), key1),
             "unknown signing key (kid)", "an unknown kid is refused")
    rejected(sign({"alg": "RS256"}, claims(), key1), "token header has no kid",
             "a token without kid is refused")
    rejected("not.a-token", "malformed token", "a malformed token is refused")
    rejected(sign(header, claims(exp=now - 3600), key1), "token has expired (exp)",
             "an expired token is refused")
    rejected(sign(header, claims(exp=None), key1), "token has no exp claim",
             "a token without exp is refused")
    rejected(sign(header, claims(nbf=now + 3600), key1), "token is not valid yet (nbf)",
             "a token not valid yet is refused")
    rejected(sign(header, claims(iss="https://evil.frontegg.test"), key1),
             "issuer (iss) is not tenant_airbyte.jwt_issuer", "another issuer is refused")
    rejected(sign(header, claims(type="serviceToken"), key1),
             "token type is not in tenant_airbyte.jwt_allowed_types",
             "a type outside jwt_allowed_types is refused")
    rejected(sign(header, claims(tenantId=None), key1), "token has no tenantId",
             "a token without tenantId is refused")
    ok(sign(header, claims(exp=now - 10), key1) and
       authenticate_in_transaction(sign(header, claims(exp=now - 10), key1))[0][0] == "org-a",
       "exp within tenant_airbyte.jwt_leeway_s is accepted")

    admin("ALTER SYSTEM SET tenant_airbyte.jwt_audience = 'api.example.com';", db="postgres")
    reload()
    rejected(good, "audience (aud) does not include tenant_airbyte.jwt_audience",
             "with jwt_audience set, a token for another audience is refused")
    out, _ = authenticate_in_transaction(sign(header, claims(aud=["x", "api.example.com"]), key1))
    ok(out[:1] == ["org-a"], "... and one whose aud array includes it is accepted")
    admin("ALTER SYSTEM RESET tenant_airbyte.jwt_audience;", db="postgres")
    reload()

    # Rotation: Frontegg publishes old and new key side by side, then the new one.
    header2 = {"alg": "RS256", "kid": "it-key-2"}
    admin("SELECT tenant_airbyte.load_jwks('%s');" % json.dumps({"keys": [jwk1, jwk2]}))
    out1, _ = authenticate_in_transaction(good)
    out2, _ = authenticate_in_transaction(sign(header2, claims(tenantId="org-b"), key2))
    ok(out1[:2] == ["org-a", "org-a"] and out2[:2] == ["org-b", "org-b"],
       "during a rotation tokens of both keys are accepted, each selected by kid")
    admin("SELECT tenant_airbyte.load_jwks('%s');" % json.dumps({"keys": [jwk2]}))
    rejected(good, "unknown signing key (kid)", "after the rotation the retired key is gone")
    out2, _ = authenticate_in_transaction(sign(header2, claims(tenantId="org-b"), key2))
    ok(out2[:2] == ["org-b", "org-b"], "... and the new key still works")

    # The app role cannot load keys or reach them.
    out, err = psql("SELECT tenant_airbyte.load_jwks('{\"keys\": []}');", user=APP)
    ok("42501" in err, "the application role cannot call load_jwks()")
    out, err = psql("SELECT count(*) FROM tenant_airbyte.jwt_keys;", user=APP)
    ok("42501" in err, "the application role cannot read jwt_keys")

    if PGLOG and os.path.exists(PGLOG):
        log = open(PGLOG, errors="replace").read()
        ok("access token rejected" in log and a_sig not in log
           and good.split(".")[1] not in log,
           "refusals are logged, but the server log never contains a token")
    else:
        ok(True, "the server log never contains a token # SKIP no log file")


try:
    main()
finally:
    admin("ALTER SYSTEM RESET tenant_airbyte.jwt_issuer;", db="postgres")
    admin("ALTER SYSTEM RESET tenant_airbyte.jwt_audience;", db="postgres")
    admin("ALTER SYSTEM RESET log_min_messages;", db="postgres")
    reload()
    admin("DROP DATABASE IF EXISTS %s;" % DB, db="postgres")
    admin("DROP ROLE IF EXISTS %s;" % APP, db="postgres")
    print("1..%d" % len(results))
    for i, (passed, name) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if passed else "not ok", i, name))
    sys.exit(0 if results and all(p for p, _ in results) else 1)

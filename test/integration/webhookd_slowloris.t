#!/usr/bin/env python3
"""webhookd_slowloris.t: slow clients cannot deny service.

300 connections that each send the start of a request and then one
header line every 3 s (test/lib/slow_clients.py) are held open against
the shim with its default limits, first all from 127.0.0.1, then spread
over 30 loopback addresses (127.0.0.2 to .31).  Meanwhile GET /health and
a signed Frontegg delivery into the real receive_webhook() must be
answered, each within a second, from the attackers' own address and from
another.  Then: a connection that trickles a header line every second
(so it is never idle) is still closed at --request-timeout.
"""
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.chdir(ROOT)
BINDIR = os.environ["TA_BINDIR"]
WORKDIR = os.environ["TA_WORKDIR"]
DB = "ta_webhookd_slowloris"
SECRET = "slowloris-secret-%d" % os.getpid()
count = 0
failed = 0


def ok(cond, desc, diag=None):
    global count, failed
    count += 1
    print(("ok" if cond else "not ok"), count, "-", desc)
    if not cond:
        failed += 1
        if diag is not None:
            print("#", repr(diag)[:300])
    sys.stdout.flush()


def sh(script):
    return subprocess.run(["bash", "-c", ". test/lib/cluster.sh; . test/lib/webhookd.sh; " + script],
                          capture_output=True, text=True)


def request(port, raw, source="127.0.0.1", timeout=5.0):
    """One request on a fresh connection from source; (status, seconds).
    Status None when the connection failed or was reset."""
    t0 = time.monotonic()
    try:
        s = socket.socket()
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(raw)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
    except OSError:
        return None, time.monotonic() - t0
    status = int(data[9:12]) if data.startswith(b"HTTP/1.") and len(data) >= 12 else None
    return status, time.monotonic() - t0


def health(port, source):
    return request(port, b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", source)


def delivery(port, source, token, n):
    body = ('{"eventKey":"frontegg.tenant.created","eventContext":{"tenantId":"slow-%d-%d"},'
            '"tenant":{"name":"Slow %d"}}' % (os.getpid(), n, n)).encode()
    raw = (b"POST /api/webhooks/frontegg HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nx-webhook-secret: " + token.encode() +
           b"\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    return request(port, raw, source)


def start_shim(port, *extra):
    log = os.path.join(WORKDIR, "webhookd-slowloris-%d.log" % port)
    shim = subprocess.Popen([os.path.join(BINDIR, "tenant_airbyte_webhookd"),
                             "--listen", "127.0.0.1:%d" % port,
                             "--conninfo", "host=127.0.0.1 port=%s user=postgres dbname=%s" % (os.environ["TA_PORT"], DB),
                             "--log-file", log] + list(extra))
    for _ in range(100):
        if health(port, "127.0.0.1")[0] == 200:
            return shim
        time.sleep(0.1)
    shim.kill()
    print("Bail out! the shim did not come up; log:", open(log).read()[-2000:])
    sys.exit(1)


def stop_shim(shim):
    shim.send_signal(signal.SIGTERM)
    try:
        return shim.wait(timeout=60)
    except subprocess.TimeoutExpired:
        shim.kill()
        return None


def under_load(port, sources, label, token, probes_from):
    """Hold 300 slow connections from sources and probe from probes_from."""
    load = subprocess.Popen([sys.executable, "test/lib/slow_clients.py", "127.0.0.1", str(port),
                             "300", "25", "3"] + sources,
                            stdout=subprocess.PIPE, text=True)
    time.sleep(6)               # all 300 opened, two rounds of trickling
    n = 0
    for source in probes_from:
        for attempt in range(3):
            status, took = health(port, source)
            ok(status == 200 and took < 1.0,
               "%s: GET /health from %s answered 200 within a second (#%d: %s in %.2f s)"
               % (label, source, attempt + 1, status, took))
            n += 1
            status, took = delivery(port, source, token, len(label) * 100 + n)
            ok(status == 202 and took < 1.0,
               "%s: a signed delivery from %s accepted (202) within a second (#%d: %s in %.2f s)"
               % (label, source, attempt + 1, status, took))
            time.sleep(1)
    load.send_signal(signal.SIGTERM)
    try:
        out, _ = load.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        load.kill()
        out = ""
    print("# slow clients:", (out or "").strip())


r = sh("ta_webhookd_database %s >/dev/null && ta_psql -d postgres -c \"ALTER SYSTEM SET tenant_airbyte.webhook_secret = '%s'\" "
       "-c 'SELECT pg_reload_conf()' >/dev/null && ta_frontegg_jwt '%s'" % (DB, SECRET, SECRET))
if r.returncode != 0:
    print("Bail out! could not set up the database:", r.stderr)
    sys.exit(1)
token = r.stdout.strip().splitlines()[-1]
time.sleep(0.5)

try:
    port = int(sh("ta_free_port").stdout.strip())
    shim = start_shim(port)          # default limits

    under_load(port, ["127.0.0.1"], "300 slow connections from 127.0.0.1", token,
               ["127.0.0.1", "127.0.0.200"])
    under_load(port, ["127.0.0.%d" % i for i in range(2, 32)],
               "300 slow connections from 30 addresses", token,
               ["127.0.0.1", "127.0.0.200"])

    ok(shim.poll() is None, "the shim is still running after both loads")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    text = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        text += chunk
    s.close()
    ok(b'tenant_airbyte_webhookd_connections_closed_total{reason="per_address"} 0' not in text and
       b'tenant_airbyte_webhookd_connections_closed_total{reason="per_address"}' in text and
       b'tenant_airbyte_webhookd_connections_closed_total{reason="headroom"} 0' not in text,
       "/metrics counts the connections closed over the per-address limit and to keep slots free")
    ok(health(port, "127.0.0.1")[0] == 200, "... and answers /health")
    ok(stop_shim(shim) == 0, "... and exits 0 on SIGTERM")

    # A connection that is never idle still has a deadline.
    port = int(sh("ta_free_port").stdout.strip())
    shim = start_shim(port, "--request-timeout", "3", "--timeout", "30")
    s = socket.create_connection(("127.0.0.1", port), timeout=1)
    s.sendall(b"POST /api/webhooks/frontegg HTTP/1.1\r\nHost: t\r\n")
    t0 = time.monotonic()
    closed_after = None
    while time.monotonic() - t0 < 15:
        try:
            s.sendall(b"X-Trickle: %d\r\n" % int(time.monotonic() - t0))
            s.settimeout(1)
            if s.recv(1024) == b"":
                closed_after = time.monotonic() - t0
                break
        except socket.timeout:
            continue
        except OSError:
            closed_after = time.monotonic() - t0
            break
    s.close()
    ok(closed_after is not None and 2.5 <= closed_after <= 8,
       "a connection trickling a header line every second is closed at --request-timeout 3 (after %s s)"
       % (None if closed_after is None else "%.1f" % closed_after))
    ok(health(port, "127.0.0.1")[0] == 200, "... and the shim serves on")
    ok(stop_shim(shim) == 0, "SIGTERM exits 0")
finally:
    sh("ta_psql -d postgres -c 'ALTER SYSTEM RESET tenant_airbyte.webhook_secret' -c 'SELECT pg_reload_conf()' "
       "-c 'DROP DATABASE IF EXISTS %s WITH (FORCE)'" % DB)

print("1..%d" % count)
sys.exit(1 if failed else 0)

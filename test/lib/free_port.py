#!/usr/bin/env python3
"""test/lib/free_port.py: print a TCP port on 127.0.0.1 nobody listens on.

Searches TA_PORT+1 .. TA_PORT+50 (TA_PORT defaults to 25432), starting
at a place that moves with each call (a counter file in TA_WORKDIR), so
two calls in a row give two ports even before the first one is bound.
Test ports stay outside Linux's ephemeral range (32768-60999).
"""
import os
import socket
import sys

base = int(os.environ.get("TA_PORT", "25432"))
counter = os.path.join(os.environ.get("TA_WORKDIR", "/tmp"), ".free_port")
try:
    with open(counter) as f:
        start = int(f.read().strip() or 0)
except (OSError, ValueError):
    start = 0
for k in range(50):
    offset = (start + k) % 50 + 1
    port = base + offset
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    try:
        with open(counter, "w") as f:
            f.write(str(offset))
    except OSError:
        pass
    print(port)
    sys.exit(0)
sys.exit("free_port.py: no free port in %d..%d" % (base + 1, base + 50))

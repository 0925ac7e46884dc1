#!/usr/bin/env python3
"""test/lib/slow_clients.py: a bounded slowloris load for the shim's tests.

Keeps COUNT connections open to HOST:PORT for SECONDS, spread round-robin
over the given source addresses (any 127.0.0.x works on Linux loopback).
Each sends the start of a webhook request and then one more header line
every INTERVAL seconds, never finishing it.  A connection the server
closes is opened again at its next turn, so the load lasts.  It stops by
itself after SECONDS (at most 300), or at SIGTERM, and prints one line of counts:

    opened=N closed_by_server=N refused=N most_open=N

    slow_clients.py HOST PORT COUNT SECONDS INTERVAL [SOURCE_ADDRESS...]
"""
import errno
import select
import signal
import socket
import sys
import time

MAX_COUNT = 2000
MAX_SECONDS = 300


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    host, port = sys.argv[1], int(sys.argv[2])
    count = min(int(sys.argv[3]), MAX_COUNT)
    seconds = min(float(sys.argv[4]), MAX_SECONDS)
    interval = max(float(sys.argv[5]), 0.1)
    sources = sys.argv[6:] or ["127.0.0.1"]

    stop_at = time.monotonic() + seconds

    def stop(signum, frame):
        nonlocal stop_at
        stop_at = 0
    signal.signal(signal.SIGTERM, stop)
    # per slot: socket or None, time of its next action, lines sent
    conns = [None] * count
    due = [time.monotonic() + i * 0.002 for i in range(count)]
    lines = [0] * count
    stats = {"opened": 0, "closed_by_server": 0, "refused": 0}
    most_open = 0

    def open_slot(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((sources[i % len(sources)], 0))
            err = s.connect_ex((host, port))
        except OSError:
            s.close()
            stats["refused"] += 1
            return None
        if err not in (0, errno.EINPROGRESS):
            s.close()
            stats["refused"] += 1
            return None
        stats["opened"] += 1
        return s

    def send(i, data):
        try:
            conns[i].send(data)
            return True
        except BlockingIOError:
            return True      # not connected yet or buffer full: try later
        except OSError:
            conns[i].close()
            conns[i] = None
            stats["closed_by_server"] += 1
            return False

    while time.monotonic() < stop_at:
        now = time.monotonic()
        for i in range(count):
            if due[i] > now:
                continue
            due[i] = now + interval
            if conns[i] is None:
                conns[i] = open_slot(i)
                lines[i] = 0
                if conns[i] is None:
                    continue
                send(i, b"POST /api/webhooks/frontegg HTTP/1.1\r\nHost: t\r\n"
                        b"Content-Type: application/json\r\n")
            else:
                lines[i] += 1
                send(i, b"X-Slow-%d: %d\r\n" % (lines[i], i))
        # notice connections the server closed (readable: EOF or an answer)
        live = [c for c in conns if c is not None]
        if live:
            try:
                readable, _, _ = select.select(live, [], [], 0.05)
            except (OSError, ValueError):
                readable = []
            for c in readable:
                try:
                    data = c.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    i = conns.index(c)
                    c.close()
                    conns[i] = None
                    stats["closed_by_server"] += 1
        else:
            time.sleep(0.05)
        most_open = max(most_open, sum(1 for c in conns if c is not None))

    for c in conns:
        if c is not None:
            c.close()
    print("opened=%d closed_by_server=%d refused=%d most_open=%d"
          % (stats["opened"], stats["closed_by_server"], stats["refused"], most_open))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

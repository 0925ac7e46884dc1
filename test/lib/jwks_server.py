#!/usr/bin/env python3
"""test/lib/jwks_server.py: a token issuer's JWKS endpoint, for tests.

Serves GET /.well-known/jwks.json on 127.0.0.1 the way Frontegg does,
and lets a test rotate the keys, break the document and count the
fetches.  Import it and run JwksServer in a thread of the test:

    server = JwksServer(port)          # serving {"keys": []}
    server.publish([jwk1, jwk2])       # what the next GET returns
    server.break_with("invalid-json")  # or "empty", "unusable", "http-500",
                                       # "no-keys"; server.break_with(None) heals
    server.fetches                     # GETs answered so far
    server.close()

or run it alone (python3 jwks_server.py PORT) with the same controls over
HTTP: POST /_control/keys (body: a JSON array of JWKs), POST
/_control/break (body: {"mode": ...}), GET /_control/fetches.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/.well-known/jwks.json"

# What each broken mode answers instead of the published keys.
BROKEN = {
    "invalid-json": (200, b'{"keys": [{"kty": "RSA", '),
    "empty": (200, b'{"keys": []}'),
    "no-keys": (200, b'{"issuer": "nobody"}'),
    "unusable": (200, json.dumps({"keys": [
        {"kty": "EC", "kid": "ec-only", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "use": "enc", "kid": "enc-only", "n": "AQAB", "e": "AQAB"},
    ]}).encode()),
    "http-500": (500, b'{"message": "internal error"}'),
}


class JwksServer:
    def __init__(self, port):
        self.keys = []
        self.mode = None
        self.fetches = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == PATH:
                    with owner.lock:
                        owner.fetches += 1
                        if owner.mode is not None:
                            status, body = BROKEN[owner.mode]
                        else:
                            status, body = 200, json.dumps({"keys": owner.keys}).encode()
                    self.answer(status, body)
                elif self.path == "/_control/fetches":
                    self.answer(200, json.dumps({"fetches": owner.fetches}).encode())
                else:
                    self.answer(404, b'{"message": "not found"}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                if self.path == "/_control/keys":
                    owner.publish(body)
                elif self.path == "/_control/break":
                    owner.break_with(body.get("mode"))
                else:
                    self.answer(404, b'{"message": "not found"}')
                    return
                self.answer(200, b"{}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d%s" % (port, PATH)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, keys):
        with self.lock:
            self.keys = list(keys)
            self.mode = None

    def break_with(self, mode):
        if mode is not None and mode not in BROKEN:
            raise ValueError("unknown mode %r" % mode)
        with self.lock:
            self.mode = mode

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    server = JwksServer(int(sys.argv[1]))
    print("serving %s" % server.url, flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.close()

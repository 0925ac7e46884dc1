#!/usr/bin/env python3
"""
browser_consent.py: a user's browser through an OAuth consent, for
test/integration/oauth_browser.t.

    browser_consent.py CONSENT_URL DONE_PORT DRIVER_PORT

Serves a tiny "done" page on 127.0.0.1:DONE_PORT (GET /connected shows its
query), starts chromedriver on DRIVER_PORT, and drives headless Chromium
through the plain W3C WebDriver HTTP API (no client library): open
CONSENT_URL, click the consent page's Approve button, follow whatever
redirects come (Airbyte's to the shim's callback, the shim's to the done
page) until the done page has loaded.  Prints one JSON object: the final
URL, the done page's text, and the URLs the done page server was asked for.

Chromium runs with --headless=new, its own throwaway --user-data-dir, and
--no-sandbox (its sandbox cannot run as root, which is how test/run runs).
Exits 1, saying why, when chromium or chromedriver is missing or the page
never arrives: a browser test that cannot run fails, it is never skipped.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = []


class DonePage(BaseHTTPRequestHandler):
    def do_GET(self):
        SEEN.append(self.path)
        query = self.path.split("?", 1)[1] if "?" in self.path else ""
        body = ("<!DOCTYPE html><html><head><title>done</title></head><body>"
                "<p id=\"outcome\">%s</p></body></html>" % query.replace("&", "&amp;").replace("<", "&lt;"))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


def call(base, method, path, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)["value"]
    except urllib.error.HTTPError as e:
        raise RuntimeError("WebDriver %s %s: %s" % (method, path, e.read().decode(errors="replace")))


def main():
    consent_url, done_port, driver_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        print("chromium or chromedriver is not installed (test/install-deps installs them)", file=sys.stderr)
        return 1

    server = ThreadingHTTPServer(("127.0.0.1", done_port), DonePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="ta_chromium_")
    log = open(os.path.join(profile, "chromedriver.log"), "w")
    proc = subprocess.Popen([driver, "--port=%d" % driver_port, "--allowed-ips=127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % driver_port
    session = None
    try:
        for _ in range(300):
            try:
                if call(base, "GET", "/status", timeout=2).get("ready"):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--user-data-dir=" + os.path.join(profile, "profile")]}}}}
        session = call(base, "POST", "/session", caps, timeout=120)["sessionId"]
        s = "/session/" + session
        call(base, "POST", s + "/timeouts", {"pageLoad": 60000, "implicit": 10000})
        call(base, "POST", s + "/url", {"url": consent_url}, timeout=90)
        button = call(base, "POST", s + "/element", {"using": "css selector", "value": "#approve"})
        element = next(iter(button.values()))
        call(base, "POST", s + "/element/%s/click" % element, {}, timeout=90)
        url = ""
        deadline = time.time() + 90
        while time.time() < deadline:
            url = call(base, "GET", s + "/url")
            if url.startswith("http://127.0.0.1:%d/" % done_port):
                break
            time.sleep(0.2)
        text = ""
        if url.startswith("http://127.0.0.1:%d/" % done_port):
            outcome = call(base, "POST", s + "/element", {"using": "css selector", "value": "#outcome"})
            text = call(base, "GET", s + "/element/%s/text" % next(iter(outcome.values())))
        print(json.dumps({"url": url, "text": text, "done_requests": SEEN}))
        return 0 if text else 1
    finally:
        if session is not None:
            try:
                call(base, "DELETE", "/session/" + session, timeout=30)
            except Exception:
                pass
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

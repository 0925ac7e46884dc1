#!/usr/bin/env python3
r"""
airbyte_standin.py: a stateful loopback stand-in for the Airbyte API v1,
with fault injection and counters, for tenant_airbyte's tests.

    python3 test/airbyte_standin.py [--host 127.0.0.1] [--port 18080]
                                    [--tls-cert PEM --tls-key PEM]   (HTTPS)
    python3 test/airbyte_standin.py ctl METHOD PATH [JSON]     (prints nothing)
    python3 test/airbyte_standin.py counter KEY [SUBKEY]       (prints the value)

The last two talk to the running stand-in at $TA_STANDIN_URL, for tests
(pg_regress files call them with \!); a missing counter prints 0.

Python standard library only.  Every API route is served with or without
a "/v1" or "/api/public/v1" prefix, so tenant_airbyte.api_url may be
http://127.0.0.1:PORT/v1 (Cloud style) or .../api/public/v1 (self-managed).

API routes (shapes from Airbyte's public OpenAPI spec, api_sdk.yaml of
airbyte-platform; the request schemas are in test/airbyte/)
--------------------------------------------------------------
  POST   /applications/token        {client_id, client_secret} -> {access_token,
                                    token_type: "Bearer", expires_in}; 401 if wrong
  POST   /workspaces                {name, organizationId?} -> 200 WorkspaceResponse
  GET    /workspaces                ?workspaceIds=&includeDeleted=&limit=(1..100,
                                    default 20)&offset= -> {data, next, previous};
                                    like Airbyte, `next` is sent even on the last page
  GET    /workspaces/{id}           404 when unknown or deleted
  PATCH  /workspaces/{id}           {name}
  DELETE /workspaces/{id}           204; 404 when unknown or already deleted
  POST   /sources                   {name, workspaceId, configuration: {sourceType,..}
                                    | definitionId}; per-type required fields for
                                    shopify, facebook-marketing, google-ads; a
                                    sourceType not in config source_types is 400
  GET    /sources                   ?workspaceIds=&limit=&offset=
  GET    /sources/{id}, DELETE /sources/{id} (204)
  PATCH  /sources/{id}              {name?, configuration?} (test/airbyte/drift.py)
  POST   /sources/initiateOAuth     {sourceType, redirectUrl, workspaceId} ->
                                    {consentUrl}, or 501 when config oauth = "501"
                                    (the consent pages, secretId in POST /sources
                                    and PUT /workspaces/{id}/oauthCredentials:
                                    test/airbyte/oauth.py)
  POST   /destinations              {name, workspaceId, configuration:
                                    {destinationType, ...} | definitionId} ->
                                    DestinationResponse (secret fields shown as
                                    **********); a destinationType not in config
                                    destination_types is 400; unknown workspace 404
  GET    /destinations              ?workspaceIds=&includeDeleted=&limit=&offset=
  GET/PATCH/DELETE /destinations/{id}  PATCH {name?, configuration?}; DELETE 204
                                    (and deletes the destination's connections)
  POST   /connections               {sourceId, destinationId, name?, schedule
                                    {scheduleType manual|cron, cronExpression},
                                    namespaceDefinition, namespaceFormat, prefix,
                                    nonBreakingSchemaUpdatesBehavior, status,
                                    configurations {streams}} -> ConnectionResponse
                                    with Airbyte's defaults (manual, destination,
                                    ignore, active, every stream of the source);
                                    400 on a bad enum or cron expression, or when
                                    source and destination are in different
                                    workspaces; 404 when either is unknown
  GET    /connections               ?workspaceIds=&includeDeleted=&limit=&offset=
  GET/PATCH/DELETE /connections/{id}   PATCH {status: "inactive"} pauses one
  POST   /jobs                      {connectionId, jobType} -> JobResponse,
                                    status pending; 404 unknown connection, 400
                                    inactive one, 409 when a job of the connection
                                    is still pending or running
  GET    /jobs                      ?workspaceIds=&connectionId=&status=&jobType=
                                    &createdAtStart=&updatedAtStart=&orderBy=
                                    &limit=&offset= (orderBy updatedAt|DESC:
                                    most recently updated first)
  GET    /jobs/{id}, DELETE /jobs/{id} (cancels: 200 with the job, status cancelled)

Frontegg emulation (for verify-by-fetch, tenant_airbyte.frontegg_api_url
pointing at this stand-in's base URL, no prefix)
--------------------------------------------------------------------------
  POST   /auth/vendor[/]            {clientId, secret} -> {token, expiresIn};
                                    401 unless they are config frontegg_client_id /
                                    frontegg_api_key
  GET    /tenants/resources/tenants/v1/{tenantId}
                                    Bearer <vendor token> -> [tenant] ({tenantId,
                                    name, deletedAt: null, ...}), or [] when the
                                    tenant is unknown (as Frontegg answers); 401
                                    without a valid vendor token
  Route keys "POST /auth/vendor" and "GET /frontegg/tenants/{id}" (faults and
  counters as for the Airbyte routes).  Tenants are seeded with the control
  API below.
A job goes pending -> running (after config job_pending_ms) -> job_outcome
(after job_running_ms more), evaluated whenever it is read; see
test/airbyte/pipelines.py, which also calls the test loader
(test/standin_loader.py) when a sync into a postgres destination succeeds.
Deleting a workspace deletes what it holds (sources, destinations,
connections) and cancels its jobs; deleting a source deletes its
connections.

Every request body is checked against the spec's request schema for its
endpoint (test/airbyte/request_schemas.json; a connector configuration
against its own source-*/destination-* schema).  A body that breaks it is
answered 400 with the field and the rule in the detail, counted in
spec_violations, and the last 20 are kept in spec_violation_log, so a test
can assert that the extension sent nothing Airbyte would refuse.  A body
sent to a route the extract has no schema for is refused the same way
(except the token routes of request_check.NO_SCHEMA), so no request
goes unchecked.

Every API route requires "Authorization: Bearer <token>", where the token is
the configured api_token or one issued by /applications/token and not yet
expired or revoked; otherwise 401.  Bad input gets 400 with an Airbyte-style
body {status, type, title, detail}.

Route keys (used by faults and counters) are "METHOD /template", e.g.
"POST /workspaces", "GET /workspaces", "GET /workspaces/{id}",
"PATCH /workspaces/{id}", "DELETE /workspaces/{id}", "POST /applications/token",
"POST /sources", "GET /sources", "DELETE /sources/{id}",
"POST /sources/initiateOAuth", "POST /jobs", "GET /jobs", "DELETE /jobs/{id}".

Control API (no auth; JSON in and out)
--------------------------------------
  POST /_control/reset              forget all state, faults, counters, tokens;
                                    config back to defaults (a JSON body, if
                                    any, is applied as config afterwards);
                                    releases hanging requests
  POST /_control/config             merge settings:
        api_token        (default "standin-token"; "" disables static tokens)
        client_id        (default "standin-client")
        client_secret    (default "standin-secret")
        token_expires_in (seconds, default 900)
        oauth            "consent" (default) or "501"
        oauth_auto_approve  true: the consent page approves at once (302)
        oauth_apps       "ok" (default) or "501": PUT .../oauthCredentials
        source_types     sourceTypes POST /sources knows (default: shopify,
                         facebook-marketing, google-ads, postgres, stripe,
                         hubspot, faker, file); any other is 400
        echo_configuration  true: a 400 from POST /sources quotes the whole
                         request configuration in its detail, as verbose
                         validators do (default false), so tests can prove
                         no credential reaches an SQL error
        latency_ms       added to every API request (default 0)
        seed             random seed for probabilistic faults
        destination_types  destinationTypes POST /destinations knows
                         (default: postgres, bigquery, snowflake, s3, dev-null)
        job_pending_ms   how long a new job stays pending (default 100)
        job_running_ms   then how long it runs (default 1000)
        job_outcome      "succeeded" (default) or "failed"
        validate_requests  false turns the spec check off (default true)
  POST /_control/fault              add a fault rule:
        {"route": "POST /workspaces" | "*",
         "kind": "latency" | "429" | any other HTTP status ("500", "503",
                 "400", "401", ...: an Airbyte error body) | "hang"
                 | "malformed" | "drop",
         "count": N (times it fires; omitted = unlimited),
         "probability": 0..1 (default 1),
         "ms": latency / hang duration (default 1000 / 60000),
         "retry_after": "2" or an HTTP-date (429 only; omitted = no header),
         "apply": true to perform the request before answering with the fault
                  (a create that succeeded but whose answer was lost),
        "name_prefix": fire only for requests whose JSON body has a "name"
                  starting with this (one tenant's creates and renames)}
        The first matching rule that fires decides; "latency" then goes on to
        serve the request normally.  "drop" reads the request and closes the
        connection without an answer.
  DELETE /_control/faults           remove every fault rule
  POST /_control/revoke_tokens      every issued token becomes invalid (401)
  POST /_control/workspaces         {name} create a workspace behind the
                                    extension's back (an orphan), not counted
                                    as an API request
  POST /_control/jobs               {workspaceId, status?, connectionId?}
                                    -> the job (status default "running")
  POST /_control/frontegg_tenants   {tenantId, name}: a tenant Frontegg knows
  DELETE /_control/frontegg_tenants/{tenantId}: Frontegg forgets it
                                    -> the job (status default "running"),
                                    which keeps that status until cancelled
  GET  /_control/destinations/{id}  {configuration (secrets unmasked: what its
                                    syncs log in with), patches (PATCH count)}
  POST /_control/scheduled_job      {connectionId, jobType?}: Airbyte's
                                    scheduler starts a job (a cron schedule
                                    firing); it runs its course like one from
                                    POST /jobs; not counted as an API request
  GET  /_control/counters           {requests: {route: n}, statuses: {route:
        {code: n}}, workspaces_created_by_name: {name: n},
        live_workspaces_by_name: {name: n}, live_workspaces, in_flight,
        peak_in_flight, cancelled_jobs, tokens_issued, faults_fired: {kind: n},
        auth_failures, spec_violations: {route: n}, spec_violation_log,
        live_destinations, duplicate_destinations ("workspaceId name" pairs
        held by more than one live destination), destinations_created_by_name,
        live_connections, active_connections, inactive_connections,
        duplicate_connections, connections_created_by_name, jobs_started,
        jobs_by_status, loads, connections_paused, connections_resumed}
  GET  /_control/counters?name_prefix=P   the same, with the by-name maps
                                    holding only names that start with P
                                    (keeps the answer small beside 20,000
                                    seeded workspaces)
  POST /_control/reset_counters     zero the counters and the request log,
                                    keep workspaces, sources, jobs and faults
  POST /_control/seed_workspaces    {count, prefix?} count workspaces named
                                    "<prefix> <n>" at once (default prefix
                                    "Seeded"), not counted as API requests
  GET  /_control/requests           {requests: [{route, name, query, status,
                                    arrived_us, answered_us, on_connection
                                    (1 on a new connection, n for its n-th
                                    request)}]}: every API
                                    request in arrival order (the last
                                    200,000); ?route=R and ?name_prefix=P
                                    filter.  Times are CLOCK_REALTIME in
                                    microseconds since the epoch, taken when
                                    the request line arrived and when the
                                    answer was written, so a test can compare
                                    them with clock_timestamp() of the
                                    database on the same host
  GET  /_control/state              every workspace, source, destination,
                                    connection and job
  GET  /_control/health             "ok"
  POST /_control/limits             {rate_limit: N requests/s (0 off), revoked:
                                    bool}: Airbyte's rate limit (429 without
                                    Retry-After beyond N/s) and a revoked
                                    token (every request 401); see
                                    test/airbyte/limits.py; counters under
                                    "limits"
"""

import argparse
import email.utils
import json
import os
import random
import re
import socketserver
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "airbyte"))
import pipelines  # noqa: E402  (test/airbyte/pipelines.py)
import limits  # noqa: E402  (test/airbyte/limits.py: rate limit, revoked token)
import drift  # noqa: E402  (test/airbyte/drift.py)
import oauth  # noqa: E402  (test/airbyte/oauth.py: consent pages, secretId, OAuth apps)

REQUEST_CHECK = None  # loaded by main(): the client commands need no jsonschema

DEFAULT_CONFIG = {
    "api_token": "standin-token",
    "client_id": "standin-client",
    "client_secret": "standin-secret",
    "token_expires_in": 900,
    "oauth": "consent",
    "source_types": ["shopify", "facebook-marketing", "google-ads", "postgres",
                     "stripe", "hubspot", "faker", "file"],
    "echo_configuration": False,
    "latency_ms": 0,
    "seed": None,
    "frontegg_client_id": "standin-frontegg-client",
    "frontegg_api_key": "standin-frontegg-key",
    "frontegg_token_expires_in": 86400,
    "destination_types": ["postgres", "bigquery", "snowflake", "s3", "dev-null"],
    "job_pending_ms": 100,
    "job_running_ms": 1000,
    "job_outcome": "succeeded",
    "validate_requests": True,
    "load_postgres": True,      # a sync into postgres runs test/standin_loader.py
}

ROUTES = [
    ("POST", r"/applications/token", "POST /applications/token"),
    ("POST", r"/workspaces", "POST /workspaces"),
    ("GET", r"/workspaces", "GET /workspaces"),
    ("GET", r"/workspaces/([^/]+)", "GET /workspaces/{id}"),
    ("PATCH", r"/workspaces/([^/]+)", "PATCH /workspaces/{id}"),
    ("DELETE", r"/workspaces/([^/]+)", "DELETE /workspaces/{id}"),
    ("PUT", r"/workspaces/([^/]+)/oauthCredentials", "PUT /workspaces/{id}/oauthCredentials"),
    ("POST", r"/sources/initiateOAuth", "POST /sources/initiateOAuth"),
    ("POST", r"/sources", "POST /sources"),
    ("GET", r"/sources", "GET /sources"),
    ("GET", r"/sources/([^/]+)", "GET /sources/{id}"),
    ("PATCH", r"/sources/([^/]+)", "PATCH /sources/{id}"),
    ("DELETE", r"/sources/([^/]+)", "DELETE /sources/{id}"),
    ("POST", r"/destinations", "POST /destinations"),
    ("GET", r"/destinations", "GET /destinations"),
    ("GET", r"/destinations/([^/]+)", "GET /destinations/{id}"),
    ("PATCH", r"/destinations/([^/]+)", "PATCH /destinations/{id}"),
    ("DELETE", r"/destinations/([^/]+)", "DELETE /destinations/{id}"),
    ("POST", r"/connections", "POST /connections"),
    ("GET", r"/connections", "GET /connections"),
    ("GET", r"/connections/([^/]+)", "GET /connections/{id}"),
    ("PATCH", r"/connections/([^/]+)", "PATCH /connections/{id}"),
    ("DELETE", r"/connections/([^/]+)", "DELETE /connections/{id}"),
    ("POST", r"/jobs", "POST /jobs"),
    ("GET", r"/jobs", "GET /jobs"),
    ("GET", r"/jobs/([^/]+)", "GET /jobs/{id}"),
    ("DELETE", r"/jobs/([^/]+)", "DELETE /jobs/{id}"),
    ("POST", r"/auth/vendor/?", "POST /auth/vendor"),
    ("GET", r"/tenants/resources/tenants/v1/([^/]+)", "GET /frontegg/tenants/{id}"),
]
ROUTES = [(m, re.compile("^" + p + "$"), k) for m, p, k in ROUTES]
PREFIXES = ("/api/public/v1", "/v1")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

SOURCE_DEFINITIONS = {
    "shopify": "9da77001-af33-4bcd-be46-6252bf9342b9",
    "facebook-marketing": "e7778cfc-e97c-4458-9ecb-b4f2bba8946c",
    "google-ads": "253487c0-2246-43ba-a21f-5116b20a2c50",
}


class ApiError(Exception):
    def __init__(self, status, title, detail):
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class State:
    """Everything the stand-in remembers, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.release_hangs = threading.Event()
        self.reset()

    def reset(self, config=None):
        with self.lock:
            self.release_hangs.set()
            self.release_hangs = threading.Event()
            self.config = dict(DEFAULT_CONFIG)
            if config:
                self.config.update(config)
            self.rng = random.Random(self.config.get("seed"))
            self.workspaces = {}      # id -> dict (with "_deleted", "_seq")
            self.sources = {}
            self.jobs = {}
            self.next_job_id = 1000
            self.seq = 0
            self.tokens = {}          # token -> expiry (epoch seconds)
            self.faults = []
            self.requests = {}
            self.statuses = {}
            self.created_by_name = {}
            self.in_flight = 0
            self.peak_in_flight = 0
            self.cancelled_jobs = 0
            self.tokens_issued = 0
            self.faults_fired = {}
            self.auth_failures = 0
            self.request_log = []
            self.frontegg_tenants = {}   # tenantId -> tenant object
            self.frontegg_tokens = {}    # vendor token -> expiry
            self.spec_violations = {}
            self.spec_violation_log = []
            pipelines.reset(self)
            limits.reset()
            oauth.reset(self)

    def reset_counters(self):
        """Zero what tests count, keep what Airbyte would remember."""
        with self.lock:
            self.requests = {}
            self.statuses = {}
            self.created_by_name = {}
            self.peak_in_flight = self.in_flight
            self.cancelled_jobs = 0
            self.tokens_issued = 0
            self.faults_fired = {}
            self.auth_failures = 0
            self.request_log = []
        limits.reset_counters()

    def counters(self, name_prefix=None):
        with self.lock:
            live = {}
            count = 0
            for w in self.workspaces.values():
                if not w["_deleted"]:
                    count += 1
                    if name_prefix is None or w["name"].startswith(name_prefix):
                        live[w["name"]] = live.get(w["name"], 0) + 1
            created = {k: v for k, v in self.created_by_name.items()
                       if name_prefix is None or k.startswith(name_prefix)}
            return {
                "requests": dict(self.requests),
                "statuses": {k: dict(v) for k, v in self.statuses.items()},
                "workspaces_created_by_name": created,
                "live_workspaces_by_name": live,
                "live_workspaces": count,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "cancelled_jobs": self.cancelled_jobs,
                "tokens_issued": self.tokens_issued,
                "faults_fired": dict(self.faults_fired),
                "auth_failures": self.auth_failures,
                "spec_violations": dict(self.spec_violations),
                "spec_violation_log": list(self.spec_violation_log),
                **pipelines.counters(self),
                **limits.counters(),
            }

    def pick_fault(self, route, name=None):
        """The first rule for this route (and name) that fires, or None."""
        with self.lock:
            for f in self.faults:
                if f["route"] not in ("*", route):
                    continue
                if f.get("name_prefix") is not None and \
                        not (isinstance(name, str) and name.startswith(f["name_prefix"])):
                    continue
                if f.get("count") is not None and f["count"] <= 0:
                    continue
                if self.rng.random() >= float(f.get("probability", 1.0)):
                    continue
                if f.get("count") is not None:
                    f["count"] -= 1
                self.faults_fired[f["kind"]] = self.faults_fired.get(f["kind"], 0) + 1
                return dict(f)
        return None

    def seed_workspaces(self, count, prefix):
        """count workspaces at once, as if made long ago by someone else."""
        with self.lock:
            for i in range(1, count + 1):
                self.seq += 1
                w = {"workspaceId": str(uuid.uuid4()), "name": "%s %d" % (prefix, i),
                     "dataResidency": "auto", "notifications": {},
                     "_deleted": False, "_seq": self.seq}
                self.workspaces[w["workspaceId"]] = w
            return len(self.workspaces)

    def new_workspace(self, name, organization_id=None, notifications=None, region_id=None):
        # caller holds the lock
        self.seq += 1
        w = {"workspaceId": str(uuid.uuid4()), "name": name,
             "dataResidency": "auto", "notifications": notifications or {},
             "_regionId": region_id, "_deleted": False, "_seq": self.seq}
        if organization_id:
            w["organizationId"] = organization_id
        self.workspaces[w["workspaceId"]] = w
        self.created_by_name[name] = self.created_by_name.get(name, 0) + 1
        return w


STATE = State()


def public(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def require_fields(body, fields):
    if not isinstance(body, dict):
        raise ApiError(400, "bad-request", "The request body must be a JSON object.")
    for f in fields:
        if f not in body or body[f] is None or body[f] == "":
            raise ApiError(400, "bad-request",
                           "The request body is missing the required property '%s'." % f)


def require_uuid(value, what):
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise ApiError(400, "bad-request", "%s must be a UUID, got %r." % (what, value))


def page(items, query, base):
    """limit/offset paging with Airbyte's next link (sent even on the last page)."""
    try:
        limit = int(query.get("limit", ["20"])[0])
        offset = int(query.get("offset", ["0"])[0])
    except ValueError:
        raise ApiError(400, "bad-request", "limit and offset must be integers.")
    if limit < 1 or limit > 100:
        raise ApiError(400, "bad-request", "limit must be between 1 and 100.")
    if offset < 0:
        raise ApiError(400, "bad-request", "offset must not be negative.")
    out = {"data": items[offset:offset + limit],
           "next": "%s?limit=%d&offset=%d" % (base, limit, offset + limit)}
    if offset > 0:
        out["previous"] = "%s?limit=%d&offset=%d" % (base, limit, max(0, offset - limit))
    return out


def id_list(query, name):
    ids = []
    for v in query.get(name, []):
        ids.extend(x for x in v.split(",") if x)
    return ids


def validate_source_configuration(cfg, has_definition, has_secret=False):
    if not isinstance(cfg, dict):
        raise ApiError(400, "bad-request", "configuration must be a JSON object.")
    stype = cfg.get("sourceType")
    if stype is None and not has_definition:
        raise ApiError(400, "bad-request",
                       "One of configuration.sourceType or definitionId must be provided.")
    creds = cfg.get("credentials")
    if has_secret:
        # OAuth: Airbyte fills the credentials in from the consent's secretId
        if stype == "facebook-marketing":
            require_fields(cfg, ["account_ids"])
        return stype
    if stype == "shopify":
        require_fields(cfg, ["shop", "credentials"])
        method = creds.get("auth_method") if isinstance(creds, dict) else None
        if method not in ("oauth2.0", "api_password"):
            raise ApiError(400, "bad-request",
                           "configuration.credentials.auth_method must be oauth2.0 or api_password.")
        if method == "api_password":
            require_fields(creds, ["api_password"])
    elif stype == "facebook-marketing":
        require_fields(cfg, ["account_ids", "credentials"])
        kind = creds.get("auth_type") if isinstance(creds, dict) else None
        if kind == "Client":
            require_fields(creds, ["client_id", "client_secret"])
        elif kind == "Service":
            require_fields(creds, ["access_token"])
        else:
            raise ApiError(400, "bad-request",
                           "configuration.credentials.auth_type must be Client or Service.")
    elif stype == "google-ads":
        require_fields(cfg, ["credentials"])
        require_fields(creds, ["developer_token", "client_id", "client_secret", "refresh_token"])
    return stype


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "airbyte-standin/1"
    disable_nagle_algorithm = True

    def parse_request(self):
        # The request line has just been read: its arrival time, as close to
        # the first byte as the standard library lets us see it.
        self.arrived_us = time.time_ns() // 1000
        return super().parse_request()

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    # --- plumbing -----------------------------------------------------

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        self.raw_body = raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "bad-request", "The request body is not valid JSON.")

    def send_json(self, status, obj, extra_headers=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.status_sent = status

    def send_error_body(self, status, title, detail, extra_headers=None):
        self.send_json(status, {
            "status": status,
            "type": "https://reference.airbyte.com/reference/errors#%s" % title,
            "title": title,
            "detail": detail,
            "documentationUrl": None,
            "data": {},
        }, extra_headers)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method):
        self.status_sent = None
        # one handler per connection: which request on it this is (1 = the
        # connection is new), so tests can tell a reused connection
        self.requests_on_connection = getattr(self, "requests_on_connection", 0) + 1
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query)
        if path.startswith("/_control/"):
            try:
                self.control(method, path[len("/_control/"):], self.read_body() if method != "GET" else None)
            except ApiError as e:
                self.send_error_body(e.status, e.title, e.detail)
            return
        if path.startswith("/oauth/"):
            self.read_body_quietly()
            oauth.browser(self, STATE, path, query)
            return
        for p in PREFIXES:
            if path.startswith(p + "/"):
                path = path[len(p):]
                break
        route, args = None, ()
        for m, rx, key in ROUTES:
            mt = rx.match(path)
            if mt and m == method:
                route, args = key, mt.groups()
                break
        if route is None:
            self.read_body_quietly()
            self.send_error_body(404, "not-found", "No route %s %s." % (method, url.path))
            return
        entry = {"route": route, "name": None, "query": url.query, "status": None,
                 "arrived_us": getattr(self, "arrived_us", time.time_ns() // 1000),
                 "answered_us": None, "on_connection": self.requests_on_connection}
        with STATE.lock:
            STATE.requests[route] = STATE.requests.get(route, 0) + 1
            STATE.in_flight += 1
            STATE.peak_in_flight = max(STATE.peak_in_flight, STATE.in_flight)
            latency = STATE.config.get("latency_ms") or 0
            hang_event = STATE.release_hangs
            STATE.request_log.append(entry)
            if len(STATE.request_log) > 200000:
                del STATE.request_log[:len(STATE.request_log) - 200000]
        self.log_entry = entry
        try:
            self.api(method, route, args, query, latency, hang_event)
        finally:
            with STATE.lock:
                STATE.in_flight -= 1
                entry["status"] = self.status_sent
                if self.status_sent is not None:
                    entry["answered_us"] = time.time_ns() // 1000
                    s = STATE.statuses.setdefault(route, {})
                    s[str(self.status_sent)] = s.get(str(self.status_sent), 0) + 1

    def read_body_quietly(self):
        try:
            self.read_body()
        except ApiError:
            pass

    def api(self, method, route, args, query, latency, hang_event):
        try:
            body = self.read_body()
        except ApiError as e:
            body = e
        name = body.get("name") if isinstance(body, dict) else None
        if isinstance(name, str):
            with STATE.lock:
                self.log_entry["name"] = name
        if limits.refuse(self, route):
            return
        if latency:
            time.sleep(latency / 1000.0)
        fault = STATE.pick_fault(route, name)
        if fault and fault["kind"] == "latency":
            time.sleep(int(fault.get("ms", 1000)) / 1000.0)
            fault = None
        if fault and fault.get("apply"):
            self.serve(method, route, args, query, body, answer=False)
        if fault:
            self.fault(fault, hang_event)
            return
        self.serve(method, route, args, query, body, answer=True)

    def fault(self, f, hang_event):
        kind = f["kind"]
        if kind == "429":
            headers = {}
            if f.get("retry_after") is not None:
                headers["Retry-After"] = str(f["retry_after"])
            # The real 429 body is not an Airbyte problem document.
            self.send_json(429, {"message": "You are being rate limited."}, headers)
        elif kind.isdigit():
            status = int(kind)
            title = {400: "bad-request", 401: "unauthorized", 403: "forbidden",
                     404: "resource-not-found", 409: "conflict"}.get(
                status, "internal-server-error" if status >= 500 else "error")
            self.send_error_body(status, title, "Injected fault %d." % status)
        elif kind == "malformed":
            data = b'{"workspaceId": "1234'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.status_sent = 200
        elif kind == "hang":
            hang_event.wait(int(f.get("ms", 60000)) / 1000.0)
            self.close_connection = True
            self.drop()
        elif kind == "drop":
            self.drop()
        else:
            self.send_error_body(500, "internal-server-error", "unknown fault kind %r" % kind)

    def drop(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass

    # --- the API ------------------------------------------------------

    def authorized(self, route):
        if route in ("POST /applications/token", "POST /auth/vendor"):
            return True
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        token = auth[len("Bearer "):]
        with STATE.lock:
            if route.startswith("GET /frontegg/"):
                exp = STATE.frontegg_tokens.get(token)
                return exp is not None and exp > time.time()
            if STATE.config.get("api_token") and token == STATE.config["api_token"]:
                return True
            exp = STATE.tokens.get(token)
            return exp is not None and exp > time.time()

    def serve(self, method, route, args, query, body, answer):
        try:
            if not self.authorized(route):
                with STATE.lock:
                    STATE.auth_failures += 1
                raise ApiError(401, "unauthorized", "Invalid or expired bearer token.")
            if isinstance(body, ApiError):
                raise body
            self.check_request(route, body)
            self.pending_loads = []
            status, obj = self.api_route(method, route, args, query, body)
            if self.pending_loads:
                pipelines.run_loader(STATE, self.pending_loads)
                if route == "GET /jobs/{id}":
                    with STATE.lock:
                        obj = pipelines.public(STATE.jobs[obj["jobId"]])
            if answer:
                self.send_json(status, obj)
        except ApiError as e:
            if answer:
                self.send_error_body(e.status, e.title, e.detail)

    def check_request(self, route, body):
        """400 for a body that breaks the spec's request schema, counted."""
        with STATE.lock:
            enabled = STATE.config.get("validate_requests", True)
        if not enabled or REQUEST_CHECK is None or body is None:
            return
        if REQUEST_CHECK.unchecked(route):
            with STATE.lock:
                STATE.spec_violations[route] = STATE.spec_violations.get(route, 0) + 1
                STATE.spec_violation_log = (STATE.spec_violation_log + ["%s: no request schema" % route])[-20:]
            raise ApiError(400, "bad-request",
                           "The stand-in has no request schema for %s: add the route to "
                           "test/airbyte/extract_request_schemas.py and regenerate "
                           "request_schemas.json from the spec." % route)
        problems = REQUEST_CHECK.problems(route, body)
        if not problems:
            return
        with STATE.lock:
            STATE.spec_violations[route] = STATE.spec_violations.get(route, 0) + 1
            STATE.spec_violation_log = (STATE.spec_violation_log + ["%s: %s" % (route, p) for p in problems])[-20:]
        raise ApiError(400, "bad-request",
                       "The request body does not match the %s schema: %s"
                       % (REQUEST_CHECK.routes[route], "; ".join(problems)))

    def api_route(self, method, route, args, query, body):
        base = "http://%s:%d%s" % (self.server.server_address[0], self.server.server_address[1],
                                   urlsplit(self.path).path)
        if route == "POST /applications/token":
            require_fields(body, ["client_id", "client_secret"])
            with STATE.lock:
                if body["client_id"] != STATE.config["client_id"] or \
                        body["client_secret"] != STATE.config["client_secret"]:
                    raise ApiError(401, "unauthorized", "Invalid client credentials.")
                token = "tok-" + uuid.uuid4().hex
                expires_in = int(STATE.config["token_expires_in"])
                STATE.tokens[token] = time.time() + expires_in
                STATE.tokens_issued += 1
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}

        if route == "POST /auth/vendor":
            require_fields(body, ["clientId", "secret"])
            with STATE.lock:
                if body["clientId"] != STATE.config["frontegg_client_id"] or \
                        body["secret"] != STATE.config["frontegg_api_key"]:
                    raise ApiError(401, "unauthorized", "Invalid authentication.")
                token = "fe-" + uuid.uuid4().hex
                expires_in = int(STATE.config["frontegg_token_expires_in"])
                STATE.frontegg_tokens[token] = time.time() + expires_in
            return 200, {"token": token, "expiresIn": expires_in}

        if route == "GET /frontegg/tenants/{id}":
            from urllib.parse import unquote
            with STATE.lock:
                t = STATE.frontegg_tenants.get(unquote(args[0]))
                return 200, ([dict(t)] if t else [])

        if route == "POST /workspaces":
            require_fields(body, ["name"])
            if not isinstance(body["name"], str):
                raise ApiError(400, "bad-request", "name must be a string.")
            if body.get("organizationId") is not None:
                require_uuid(body["organizationId"], "organizationId")
            with STATE.lock:
                if body.get("regionId") is not None:
                    require_uuid(body["regionId"], "regionId")
                w = STATE.new_workspace(body["name"], body.get("organizationId"),
                                        body.get("notifications"), body.get("regionId"))
                return 200, public(w)
        if route == "GET /workspaces":
            ids = set(id_list(query, "workspaceIds"))
            include_deleted = query.get("includeDeleted", ["false"])[0] == "true"
            with STATE.lock:
                # dicts keep insertion order, which is creation (_seq) order;
                # only the page itself is copied, so 20,000 workspaces list fast
                items = [w for w in STATE.workspaces.values()
                         if (include_deleted or not w["_deleted"]) and (not ids or w["workspaceId"] in ids)]
                out = page(items, query, base)
                out["data"] = [public(w) for w in out["data"]]
            return 200, out
        if route in ("GET /workspaces/{id}", "PATCH /workspaces/{id}", "DELETE /workspaces/{id}"):
            wid = args[0]
            with STATE.lock:
                w = STATE.workspaces.get(wid)
                if w is None or w["_deleted"]:
                    raise ApiError(404, "resource-not-found", "Could not find a workspace with id %s." % wid)
                if method == "GET":
                    return 200, public(w)
                if method == "PATCH":
                    require_fields(body, ["name"])
                    w["name"] = body["name"]
                    return 200, public(w)
                w["_deleted"] = True
                pipelines.workspace_deleted(STATE, wid)
                return 204, None

        if route == "POST /sources":
            require_fields(body, ["name", "workspaceId", "configuration"])
            require_uuid(body["workspaceId"], "workspaceId")
            if body.get("definitionId") is not None:
                require_uuid(body["definitionId"], "definitionId")
            try:
                stype = validate_source_configuration(body["configuration"], body.get("definitionId") is not None,
                                                      body.get("secretId") is not None)
                with STATE.lock:
                    known = list(STATE.config.get("source_types") or [])
                if stype is not None and stype not in known:
                    raise ApiError(400, "bad-request",
                                   "Unknown sourceType '%s': no source definition has that name." % stype)
            except ApiError as e:
                with STATE.lock:
                    echo = STATE.config.get("echo_configuration")
                if echo and e.status == 400:
                    e.detail += " Configuration received: %s" % json.dumps(body["configuration"])
                raise
            with STATE.lock:
                w = STATE.workspaces.get(body["workspaceId"])
                if w is None or w["_deleted"]:
                    raise ApiError(404, "resource-not-found", "Could not find a workspace with id %s." % body["workspaceId"])
                if body.get("secretId") is not None:
                    oauth.take_secret(STATE, body, stype, ApiError)
                STATE.seq += 1
                s = {"sourceId": str(uuid.uuid4()), "name": body["name"],
                     "sourceType": stype or "custom",
                     "definitionId": body.get("definitionId") or SOURCE_DEFINITIONS.get(stype, str(uuid.uuid4())),
                     "workspaceId": body["workspaceId"],
                     "configuration": body["configuration"],
                     "createdAt": int(time.time()), "_seq": STATE.seq}
                STATE.sources[s["sourceId"]] = s
                return 200, public(s)
        if route == "GET /sources":
            ids = set(id_list(query, "workspaceIds"))
            with STATE.lock:
                items = [public(s) for s in sorted(STATE.sources.values(), key=lambda s: s["_seq"])
                         if not ids or s["workspaceId"] in ids]
            return 200, page(items, query, base)
        if route in ("GET /sources/{id}", "DELETE /sources/{id}"):
            with STATE.lock:
                s = STATE.sources.get(args[0])
                if s is None:
                    raise ApiError(404, "resource-not-found", "Could not find a source with id %s." % args[0])
                if method == "GET":
                    return 200, public(s)
                del STATE.sources[args[0]]
                pipelines.source_deleted(STATE, args[0])
                return 204, None
        if route == "PATCH /sources/{id}":
            with STATE.lock:
                return drift.patch_source(STATE, args[0], body, ApiError)
        if route == "POST /sources/initiateOAuth":
            with STATE.lock:
                origin = "%s://%s:%d" % ("https" if self.server.ssl_context else "http",
                                         self.server.server_address[0], self.server.server_address[1])
                return oauth.initiate(STATE, body, origin, ApiError, require_fields, require_uuid)
        if route == "PUT /workspaces/{id}/oauthCredentials":
            with STATE.lock:
                return oauth.put_credentials(STATE, args[0], body, ApiError, require_fields, require_uuid)

        if route == "POST /destinations":
            with STATE.lock:
                return pipelines.create_destination(STATE, body, ApiError, require_fields, require_uuid)
        if route in ("POST /connections", "POST /jobs"):
            create = pipelines.create_connection if route == "POST /connections" else pipelines.create_job
            with STATE.lock:
                return create(STATE, body, ApiError, require_fields, require_uuid)
        if route in ("GET /destinations", "GET /connections"):
            ids = set(id_list(query, "workspaceIds"))
            include_deleted = query.get("includeDeleted", ["false"])[0] == "true"
            with STATE.lock:
                objs = STATE.destinations if route == "GET /destinations" else STATE.connections
                items = [pipelines.public(o) for o in sorted(objs.values(), key=lambda o: o["_seq"])
                         if (include_deleted or not o["_deleted"]) and (not ids or o["workspaceId"] in ids)]
            return 200, page(items, query, base)
        if route in ("GET /destinations/{id}", "PATCH /destinations/{id}", "DELETE /destinations/{id}"):
            with STATE.lock:
                return pipelines.destination_route(STATE, method, args[0], body, ApiError)
        if route in ("GET /connections/{id}", "PATCH /connections/{id}", "DELETE /connections/{id}"):
            with STATE.lock:
                return pipelines.connection_route(STATE, method, args[0], body, ApiError)
        if route == "GET /jobs":
            ids = set(id_list(query, "workspaceIds"))
            with STATE.lock:
                items, self.pending_loads = pipelines.list_jobs(STATE, query, ids, ApiError)
            return 200, page(items, query, base)
        if route in ("GET /jobs/{id}", "DELETE /jobs/{id}"):
            try:
                jid = int(args[0])
            except ValueError:
                raise ApiError(400, "bad-request", "jobId must be an integer.")
            with STATE.lock:
                status, obj, self.pending_loads = pipelines.job_route(STATE, method, jid, ApiError)
            return status, obj
        raise ApiError(404, "not-found", "No route.")

    # --- control ------------------------------------------------------

    def control(self, method, what, body):
        if what == "health":
            self.send_json(200, "ok")
        elif what == "reset" and method == "POST":
            STATE.reset(body if isinstance(body, dict) else None)
            self.send_json(200, {"reset": True})
        elif what == "config" and method == "POST":
            if not isinstance(body, dict):
                raise ApiError(400, "bad-request", "config needs a JSON object")
            with STATE.lock:
                STATE.config.update(body)
                if "seed" in body:
                    STATE.rng = random.Random(body["seed"])
                self.send_json(200, dict(STATE.config))
        elif what == "fault" and method == "POST":
            require_fields(body, ["route", "kind"])
            with STATE.lock:
                STATE.faults.append(dict(body))
            self.send_json(200, {"faults": len(STATE.faults)})
        elif what == "faults" and method == "DELETE":
            with STATE.lock:
                STATE.faults = []
            self.send_json(200, {"faults": 0})
        elif what == "revoke_tokens" and method == "POST":
            with STATE.lock:
                STATE.tokens = {}
            self.send_json(200, {"revoked": True})
        elif what == "workspaces" and method == "POST":
            require_fields(body, ["name"])
            with STATE.lock:
                w = STATE.new_workspace(body["name"], body.get("organizationId"))
            self.send_json(200, public(w))
        elif what == "jobs" and method == "POST":
            require_fields(body, ["workspaceId"])
            with STATE.lock:
                c = STATE.connections.get(body.get("connectionId") or "")
                j = pipelines.new_job(STATE, c, "sync", body.get("status", "running"),
                                      workspace_id=body["workspaceId"], frozen=True)
                if body.get("connectionId"):
                    j["connectionId"] = body["connectionId"]
            self.send_json(200, public(j))
        elif what == "scheduled_job" and method == "POST":
            require_fields(body, ["connectionId"])
            with STATE.lock:
                c = pipelines.get_connection(STATE, body["connectionId"], ApiError)
                j = pipelines.new_job(STATE, c, body.get("jobType", "sync"), "pending")
            self.send_json(200, public(j))
        elif what == "frontegg_tenants" and method == "POST":
            require_fields(body, ["tenantId"])
            with STATE.lock:
                STATE.frontegg_tenants[body["tenantId"]] = {
                    "id": str(uuid.uuid4()), "tenantId": body["tenantId"],
                    "name": body.get("name"), "deletedAt": None, "metadata": "{}",
                    "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
            self.send_json(200, {"tenants": len(STATE.frontegg_tenants)})
        elif what.startswith("frontegg_tenants/") and method == "DELETE":
            from urllib.parse import unquote
            with STATE.lock:
                STATE.frontegg_tenants.pop(unquote(what[len("frontegg_tenants/"):]), None)
            self.send_json(200, {"tenants": len(STATE.frontegg_tenants)})
        elif what == "limits":
            self.send_json(200, limits.configure(body) if method == "POST" else limits.counters()["limits"])
        elif what == "oauth" and method == "GET":
            with STATE.lock:
                self.send_json(200, oauth.snapshot(STATE))
        elif what == "counters":
            prefix = parse_qs(urlsplit(self.path).query).get("name_prefix", [None])[0]
            self.send_json(200, STATE.counters(prefix))
        elif what == "reset_counters" and method == "POST":
            STATE.reset_counters()
            self.send_json(200, {"reset_counters": True})
        elif what == "seed_workspaces" and method == "POST":
            require_fields(body, ["count"])
            total = STATE.seed_workspaces(int(body["count"]), str(body.get("prefix") or "Seeded"))
            self.send_json(200, {"workspaces": total})
        elif what == "requests" and method == "GET":
            q = parse_qs(urlsplit(self.path).query)
            route = q.get("route", [None])[0]
            prefix = q.get("name_prefix", [None])[0]
            with STATE.lock:
                items = [dict(e) for e in STATE.request_log
                         if (route is None or e["route"] == route)
                         and (prefix is None or (e["name"] or "").startswith(prefix))]
            self.send_json(200, {"requests": items})
        elif what.startswith("destinations/") and method == "GET":
            with STATE.lock:
                self.send_json(200, pipelines.destination_configuration(STATE, what.split("/", 1)[1], ApiError))
        elif what == "state":
            with STATE.lock:
                pending = [p for p in (pipelines.advance(STATE, j) for j in STATE.jobs.values()) if p]
            if pending:
                pipelines.run_loader(STATE, pending)
            with STATE.lock:
                self.send_json(200, {
                    "workspaces": [dict(public(w), deleted=w["_deleted"], regionId=w["_regionId"])
                               for w in STATE.workspaces.values()],
                    "sources": [public(s) for s in STATE.sources.values()],
                    "jobs": [dict(public(j), workspaceId=j["_workspaceId"]) for j in STATE.jobs.values()],
                    **pipelines.snapshot(STATE),
                })
        else:
            raise ApiError(404, "not-found", "unknown control request %s %s" % (method, what))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    ssl_context = None          # set by --tls-cert/--tls-key

    def get_request(self):
        # The TLS handshake happens on the handler's thread, at its first
        # read, so a slow or broken client never holds up accept().
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr


def client(argv):
    import os
    import urllib.request
    base = os.environ.get("TA_STANDIN_URL", "http://127.0.0.1:18080")
    if argv[0] == "ctl":
        data = argv[3].encode() if len(argv) > 3 else b""
        req = urllib.request.Request(base + argv[2], data=data if argv[1] != "GET" else None,
                                     method=argv[1], headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
        return
    with urllib.request.urlopen(base + "/_control/counters", timeout=10) as r:
        value = json.load(r)
    for key in argv[1:]:
        value = value.get(key, 0) if isinstance(value, dict) else 0
    print(json.dumps(value, sort_keys=True))


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("ctl", "counter"):
        client(sys.argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS instead of HTTP")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args()
    global REQUEST_CHECK
    from request_check import RequestCheck  # test/airbyte/request_check.py
    REQUEST_CHECK = RequestCheck()
    pipelines.load_loader()
    srv = Server((args.host, args.port), Handler)
    scheme = "http"
    if args.tls_cert:
        import ssl
        srv.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        scheme = "https"
    sys.stderr.write("airbyte stand-in on %s://%s:%d\n" % (scheme, args.host, args.port))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""
oauth.py: the OAuth side of the Airbyte stand-in (test/airbyte_standin.py):
the consent flow a user's browser goes through, the secretId a source is
then created with, and per-workspace OAuth app overrides.

The flow, as on Airbyte Cloud:
  POST /sources/initiateOAuth {sourceType, redirectUrl, workspaceId}
        -> {consentUrl}: http://<stand-in>/oauth/consent?ticket=<t>
  GET  /oauth/consent?ticket=   an HTML consent page with an "Approve"
                                button (config oauth_auto_approve: true
                                answers 302 to the approval at once)
  GET  /oauth/approve?ticket=   issues a secret_id and answers 302 to the
                                redirectUrl with secret_id appended
  POST /sources {..., secretId} a secretId this stand-in never issued, or
                                issued for another sourceType or
                                workspace, or already used: 400.  The
                                configuration then needs no credentials
                                (Airbyte fills them from the consent).
  PUT  /workspaces/{id}/oauthCredentials {actorType, name, configuration}
                                200, or 501 with config oauth_apps = "501"
                                (what open-source servers answer)

GET /_control/oauth shows what tests check: secret ids issued and used,
each POST /sources that carried a secretId (with whether its
configuration had credentials), and the overrides per workspace (their
configurations are the client secrets tests set, shown as sent).

Every function is called with the stand-in's State lock held, except
browser(), which takes it itself.
"""

import html
import json
import uuid
from urllib.parse import urlencode, urlsplit

ACTOR_TYPES = ("source", "destination")


def reset(state):
    state.oauth_tickets = {}       # ticket -> {sourceType, workspaceId, redirectUrl}
    state.oauth_secrets = {}       # secret_id -> {sourceType, workspaceId, used}
    state.oauth_source_requests = []
    state.oauth_credentials = {}   # workspaceId -> {name: {actorType, configuration}}


def initiate(state, body, base, ApiError, require_fields, require_uuid):
    """POST /sources/initiateOAuth: a consent URL on this stand-in."""
    require_fields(body, ["redirectUrl", "workspaceId", "sourceType"])
    require_uuid(body["workspaceId"], "workspaceId")
    if state.config.get("oauth") == "501":
        raise ApiError(501, "not-implemented", "OAuth is not available on this server.")
    w = state.workspaces.get(body["workspaceId"])
    if w is None or w["_deleted"]:
        raise ApiError(404, "resource-not-found",
                       "Could not find a workspace with id %s." % body["workspaceId"])
    ticket = uuid.uuid4().hex
    state.oauth_tickets[ticket] = {"sourceType": body["sourceType"],
                                   "workspaceId": body["workspaceId"],
                                   "redirectUrl": body["redirectUrl"]}
    return 200, {"consentUrl": "%s/oauth/consent?%s" % (base, urlencode({"ticket": ticket}))}


def take_secret(state, body, stype, ApiError):
    """POST /sources with a secretId: it must be one issued for this
    sourceType and workspace, and unused; it is used up."""
    secret_id = body["secretId"]
    s = state.oauth_secrets.get(secret_id) if isinstance(secret_id, str) else None
    if s is None:
        raise ApiError(400, "bad-request", "Unknown secretId: no OAuth consent issued it.")
    if s["used"]:
        raise ApiError(400, "bad-request", "This secretId was already used to create a source.")
    if s["sourceType"] != stype or s["workspaceId"] != body["workspaceId"]:
        raise ApiError(400, "bad-request",
                       "This secretId was issued for another source type or workspace.")
    s["used"] = True
    cfg = body.get("configuration") or {}
    state.oauth_source_requests.append({
        "name": body.get("name"), "workspaceId": body["workspaceId"], "secretId": secret_id,
        "sourceType": stype, "configuration_keys": sorted(cfg.keys()),
        "credentials_present": "credentials" in cfg})


def put_credentials(state, workspace_id, body, ApiError, require_fields, require_uuid):
    """PUT /workspaces/{id}/oauthCredentials: create or replace."""
    require_uuid(workspace_id, "workspaceId")
    if state.config.get("oauth_apps") == "501":
        raise ApiError(501, "not-implemented",
                       "OAuth credential overrides are not available on this server.")
    require_fields(body, ["actorType", "name", "configuration"])
    if body["actorType"] not in ACTOR_TYPES:
        raise ApiError(400, "bad-request", "actorType must be source or destination.")
    if not isinstance(body["configuration"], dict):
        raise ApiError(400, "bad-request", "configuration must be a JSON object.")
    w = state.workspaces.get(workspace_id)
    if w is None or w["_deleted"]:
        raise ApiError(404, "resource-not-found", "Could not find a workspace with id %s." % workspace_id)
    state.oauth_credentials.setdefault(workspace_id, {})[body["name"]] = {
        "actorType": body["actorType"], "configuration": body["configuration"]}
    return 200, None


def snapshot(state):
    return {
        "secrets_issued": len(state.oauth_secrets),
        "secrets_used": sum(1 for s in state.oauth_secrets.values() if s["used"]),
        "source_requests": list(state.oauth_source_requests),
        "credentials": {w: dict(v) for w, v in state.oauth_credentials.items()},
    }


CONSENT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Authorize %(type)s</title></head>
<body>
<h1>Connect %(type)s</h1>
<p>The stand-in's consent screen for workspace %(workspace)s.</p>
<form method="get" action="/oauth/approve">
<input type="hidden" name="ticket" value="%(ticket)s">
<button id="approve" type="submit">Approve</button>
</form>
</body></html>
"""


def browser(handler, state, path, query):
    """The pages a user's browser sees: /oauth/consent, /oauth/approve."""
    ticket = (query.get("ticket") or [""])[0]
    with state.lock:
        t = state.oauth_tickets.get(ticket)
        auto = bool(state.config.get("oauth_auto_approve"))
    if t is None or path not in ("/oauth/consent", "/oauth/approve"):
        send(handler, 404, "text/plain", b"unknown consent\n")
        return
    if path == "/oauth/consent" and not auto:
        page = CONSENT_PAGE % {"type": html.escape(t["sourceType"]),
                               "workspace": html.escape(t["workspaceId"]),
                               "ticket": html.escape(ticket)}
        send(handler, 200, "text/html; charset=utf-8", page.encode())
        return
    secret_id = "standin-secret-" + uuid.uuid4().hex
    with state.lock:
        state.oauth_tickets.pop(ticket, None)
        state.oauth_secrets[secret_id] = {"sourceType": t["sourceType"],
                                          "workspaceId": t["workspaceId"], "used": False}
    url = t["redirectUrl"]
    sep = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
    send(handler, 302, "text/plain", b"", {"Location": url + sep + urlencode({"secret_id": secret_id})})


def send(handler, status, content_type, data, headers=None):
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    if data:
        handler.wfile.write(data)
    handler.status_sent = status


def dump(state):
    return json.dumps(snapshot(state))

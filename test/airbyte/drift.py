"""
drift.py: what the Airbyte stand-in needs so that tests can change
objects behind tenant_airbyte's back (drift), through Airbyte's own API:
PATCH /sources/{id} renames a source (SourcePatchRequest: name,
configuration).  Workspaces, destinations and connections are renamed,
deleted and paused with the routes the stand-in already has, an orphan is
made with a plain POST, and GET /workspaces?includeDeleted=true lists the
deleted workspaces too.

Called by test/airbyte_standin.py with the state's lock held.
"""


def patch_source(state, sid, body, ApiError):
    s = state.sources.get(sid)
    if s is None:
        raise ApiError(404, "resource-not-found", "Could not find a source with id %s." % sid)
    if not isinstance(body, dict):
        raise ApiError(400, "bad-request", "The request body must be a JSON object.")
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"]:
            raise ApiError(400, "bad-request", "name must be a non-empty string.")
        s["name"] = body["name"]
    if isinstance(body.get("configuration"), dict):
        cfg = dict(s["configuration"])
        cfg.update(body["configuration"])
        s["configuration"] = cfg
    return 200, {k: v for k, v in s.items() if not k.startswith("_")}

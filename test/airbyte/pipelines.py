"""
pipelines.py: the destinations, connections and jobs of the Airbyte
stand-in (test/airbyte_standin.py), with the shapes, defaults and refusals
of Airbyte's public API v1.

Every function here is called with the stand-in's State lock held, except
run_loader(), which the request thread calls after releasing it.

Objects (the API's shapes; keys starting with "_" are the stand-in's own):
  destination  {destinationId, name, destinationType, definitionId,
                workspaceId, configuration (secrets shown as **********),
                createdAt}
  connection   {connectionId, name, sourceId, destinationId, workspaceId,
                status, schedule {scheduleType, cronExpression?},
                namespaceDefinition, namespaceFormat?, prefix,
                nonBreakingSchemaUpdatesBehavior, configurations {streams},
                createdAt, tags}
  job          {jobId, status, jobType, startTime, connectionId,
                lastUpdatedAt, duration, rowsSynced, bytesSynced}

A job started by POST /jobs (or "by cron", /_control/scheduled_job) is
pending for config job_pending_ms, running for job_running_ms, then ends
as config job_outcome says ("succeeded" or "failed"); a job's state is
brought up to date whenever it is read.  When a sync of a connection whose
destination is a postgres one succeeds, the loader hook
(test/standin_loader.py, load_sync(destination_configuration, streams,
mode)) is called first, if that module exists, so that what a test reads
from the database is what the sync wrote; a loader that raises makes the
job fail with its message.
"""

import datetime
import re
import time
import uuid

MASK = "**********"
ACTIVE_JOB_STATUSES = ("pending", "queued", "running", "incomplete")
JOB_TYPES = ("sync", "reset", "refresh", "clear")
NAMESPACE_DEFINITIONS = ("source", "destination", "custom_format")
SCHEMA_BEHAVIOURS = ("ignore", "disable_connection", "propagate_columns", "propagate_fully")
CONNECTION_STATUSES = ("active", "inactive", "deprecated", "locked")
SYNC_MODES = ("full_refresh_overwrite", "full_refresh_overwrite_deduped", "full_refresh_append",
              "full_refresh_update", "full_refresh_soft_delete", "incremental_append",
              "incremental_deduped_history", "incremental_update", "incremental_soft_delete")

DESTINATION_DEFINITIONS = {
    "postgres": "25c5221d-dce2-4163-ade9-739ef790f503",
    "bigquery": "22f6c74f-5699-40ff-833c-4a879ea40133",
    "snowflake": "424892c4-daac-4491-b35d-c6688ba547ba",
    "s3": "4816b78f-1489-44c1-9060-4b19d5fa9362",
    "dev-null": "a7bcc9d8-13b3-4e49-b80d-d020b90045e3",
}
# Fields Airbyte's connector specs mark airbyte_secret: never sent back.
SECRET_FIELDS = ("password", "credentials_json", "secret_access_key", "access_key_id",
                 "private_key", "api_key", "client_secret", "access_token")

# The streams Airbyte discovers for each source type, when a connection
# does not list its own.
DEFAULT_STREAMS = {
    "shopify": ["orders", "customers", "products"],
    "facebook-marketing": ["campaigns", "ads_insights"],
    "google-ads": ["campaigns", "ad_group_ad_report"],
    "faker": ["users", "products", "purchases"],
}

# A Quartz cron expression, as Airbyte takes it: seconds minutes hours
# day-of-month month day-of-week [year], with a time zone name after it
# allowed ("0 0 * * * ? UTC").
CRON_FIELD = r"[0-9A-Za-z*?/,\-#LW]+"
CRON_RE = re.compile(r"^\s*(%s\s+){5}%s(\s+%s)?(\s+[A-Za-z_]+(/[A-Za-z_]+)?)?\s*$"
                     % (CRON_FIELD, CRON_FIELD, CRON_FIELD))


def reset(state):
    state.destinations = {}
    state.connections = {}
    state.destinations_created_by_name = {}
    state.connections_created_by_name = {}
    state.jobs_started = 0
    state.loads = 0
    state.pauses = 0
    state.resumes = 0


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def public(obj):
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def masked(cfg):
    out = {}
    for k, v in cfg.items():
        if k in SECRET_FIELDS and isinstance(v, str):
            out[k] = MASK
        elif isinstance(v, dict):
            out[k] = masked(v)
        else:
            out[k] = v
    return out


def enum_check(value, allowed, what, ApiError):
    if value is not None and value not in allowed:
        raise ApiError(400, "bad-request", "%s must be one of %s, got %r."
                       % (what, ", ".join(allowed), value))


# --- destinations ------------------------------------------------------

def create_destination(state, body, ApiError, require_fields, require_uuid):
    require_fields(body, ["name", "workspaceId", "configuration"])
    require_uuid(body["workspaceId"], "workspaceId")
    cfg = body["configuration"]
    if not isinstance(cfg, dict):
        raise ApiError(400, "bad-request", "configuration must be a JSON object.")
    dtype = cfg.get("destinationType")
    if dtype is None and body.get("definitionId") is None:
        raise ApiError(400, "bad-request",
                       "One of configuration.destinationType or definitionId must be provided.")
    known = list(state.config.get("destination_types") or [])
    if dtype is not None and dtype not in known:
        raise ApiError(400, "bad-request",
                       "Unknown destinationType '%s': no destination definition has that name." % dtype)
    w = state.workspaces.get(body["workspaceId"])
    if w is None or w["_deleted"]:
        raise ApiError(404, "resource-not-found",
                       "Could not find a workspace with id %s." % body["workspaceId"])
    state.seq += 1
    d = {"destinationId": str(uuid.uuid4()), "name": body["name"],
         "destinationType": dtype or "custom",
         "definitionId": body.get("definitionId") or DESTINATION_DEFINITIONS.get(dtype, str(uuid.uuid4())),
         "workspaceId": body["workspaceId"], "configuration": masked(cfg),
         "createdAt": int(time.time()),
         "_configuration": cfg, "_deleted": False, "_seq": state.seq}
    state.destinations[d["destinationId"]] = d
    key = "%s %s" % (d["workspaceId"], d["name"])
    state.destinations_created_by_name[key] = state.destinations_created_by_name.get(key, 0) + 1
    return 200, public(d)


def get_destination(state, did, ApiError):
    d = state.destinations.get(did)
    if d is None or d["_deleted"]:
        raise ApiError(404, "resource-not-found", "Could not find a destination with id %s." % did)
    return d


def destination_route(state, method, did, body, ApiError):
    d = get_destination(state, did, ApiError)
    if method == "GET":
        return 200, public(d)
    if method == "PATCH":
        if not isinstance(body, dict):
            raise ApiError(400, "bad-request", "The request body must be a JSON object.")
        d["_patches"] = d.get("_patches", 0) + 1
        if "name" in body:
            d["name"] = body["name"]
        if isinstance(body.get("configuration"), dict):
            cfg = dict(d["_configuration"])
            cfg.update(body["configuration"])
            d["_configuration"] = cfg
            d["configuration"] = masked(cfg)
        return 200, public(d)
    d["_deleted"] = True
    for c in state.connections.values():
        if c["destinationId"] == did:
            delete_connection(state, c)
    return 204, None


def destination_configuration(state, did, ApiError):
    """For tests (GET /_control/destinations/{id}): the configuration the
    destination holds, secrets unmasked (what its syncs log in with), and
    how many PATCH requests it took."""
    d = state.destinations.get(did)
    if d is None:
        raise ApiError(404, "resource-not-found", "Could not find a destination with id %s." % did)
    return {"configuration": d["_configuration"], "patches": d.get("_patches", 0)}


# --- connections -------------------------------------------------------

def check_schedule(schedule, ApiError):
    if not isinstance(schedule, dict):
        raise ApiError(400, "bad-request", "schedule must be an object with scheduleType.")
    stype = schedule.get("scheduleType")
    if stype is None:
        raise ApiError(400, "bad-request", "The request body is missing the required property 'schedule.scheduleType'.")
    enum_check(stype, ("manual", "cron"), "schedule.scheduleType", ApiError)
    if stype == "cron":
        expr = schedule.get("cronExpression")
        if not isinstance(expr, str) or not CRON_RE.match(expr):
            raise ApiError(400, "bad-request",
                           "schedule.cronExpression %r is not a valid Quartz cron expression "
                           "(seconds minutes hours day-of-month month day-of-week [year])." % (expr,))
        return {"scheduleType": "cron", "cronExpression": expr}
    return {"scheduleType": "manual"}


def check_streams(configurations, ApiError):
    if configurations is None:
        return None
    if not isinstance(configurations, dict):
        raise ApiError(400, "bad-request", "configurations must be an object with streams.")
    streams = configurations.get("streams")
    if streams is None:
        return None
    if not isinstance(streams, list):
        raise ApiError(400, "bad-request", "configurations.streams must be an array.")
    for i, s in enumerate(streams):
        if not isinstance(s, dict) or not s.get("name"):
            raise ApiError(400, "bad-request", "configurations.streams[%d].name is required." % i)
        enum_check(s.get("syncMode"), SYNC_MODES, "configurations.streams[%d].syncMode" % i, ApiError)
    return [dict(s) for s in streams]


def create_connection(state, body, ApiError, require_fields, require_uuid):
    require_fields(body, ["sourceId", "destinationId"])
    require_uuid(body["sourceId"], "sourceId")
    require_uuid(body["destinationId"], "destinationId")
    enum_check(body.get("namespaceDefinition"), NAMESPACE_DEFINITIONS, "namespaceDefinition", ApiError)
    enum_check(body.get("nonBreakingSchemaUpdatesBehavior"), SCHEMA_BEHAVIOURS,
               "nonBreakingSchemaUpdatesBehavior", ApiError)
    enum_check(body.get("status"), CONNECTION_STATUSES, "status", ApiError)
    schedule = check_schedule(body["schedule"], ApiError) if body.get("schedule") is not None \
        else {"scheduleType": "manual"}
    streams = check_streams(body.get("configurations"), ApiError)
    src = state.sources.get(body["sourceId"])
    if src is None:
        raise ApiError(404, "resource-not-found", "Could not find a source with id %s." % body["sourceId"])
    dst = state.destinations.get(body["destinationId"])
    if dst is None or dst["_deleted"]:
        raise ApiError(404, "resource-not-found",
                       "Could not find a destination with id %s." % body["destinationId"])
    if src["workspaceId"] != dst["workspaceId"]:
        raise ApiError(400, "bad-request",
                       "Source %s and destination %s are in different workspaces."
                       % (src["sourceId"], dst["destinationId"]))
    if streams is None:
        streams = [{"name": n, "syncMode": "full_refresh_overwrite"}
                   for n in DEFAULT_STREAMS.get(src.get("sourceType"), ["default"])]
    for s in streams:
        s.setdefault("syncMode", "full_refresh_overwrite")
    state.seq += 1
    c = {"connectionId": str(uuid.uuid4()),
         "name": body.get("name") or "%s → %s" % (src["name"], dst["name"]),
         "sourceId": src["sourceId"], "destinationId": dst["destinationId"],
         "workspaceId": dst["workspaceId"], "status": body.get("status") or "active",
         "schedule": schedule,
         "namespaceDefinition": body.get("namespaceDefinition") or "destination",
         "prefix": body.get("prefix") or "",
         "nonBreakingSchemaUpdatesBehavior": body.get("nonBreakingSchemaUpdatesBehavior") or "ignore",
         "configurations": {"streams": streams},
         "createdAt": int(time.time()), "tags": [],
         "_deleted": False, "_seq": state.seq}
    if body.get("namespaceFormat") is not None:
        c["namespaceFormat"] = body["namespaceFormat"]
    state.connections[c["connectionId"]] = c
    key = "%s %s" % (c["workspaceId"], c["name"])
    state.connections_created_by_name[key] = state.connections_created_by_name.get(key, 0) + 1
    return 200, public(c)


def get_connection(state, cid, ApiError):
    c = state.connections.get(cid)
    if c is None or c["_deleted"]:
        raise ApiError(404, "resource-not-found", "Could not find a connection with id %s." % cid)
    return c


def delete_connection(state, c):
    c["_deleted"] = True
    for j in state.jobs.values():
        if j["connectionId"] == c["connectionId"]:
            advance(state, j)
            if j["status"] in ACTIVE_JOB_STATUSES:
                j["status"] = "cancelled"
                j["lastUpdatedAt"] = now_iso()


def connection_route(state, method, cid, body, ApiError):
    c = get_connection(state, cid, ApiError)
    if method == "GET":
        return 200, public(c)
    if method == "PATCH":
        if not isinstance(body, dict):
            raise ApiError(400, "bad-request", "The request body must be a JSON object.")
        enum_check(body.get("status"), CONNECTION_STATUSES, "status", ApiError)
        enum_check(body.get("namespaceDefinition"), NAMESPACE_DEFINITIONS, "namespaceDefinition", ApiError)
        enum_check(body.get("nonBreakingSchemaUpdatesBehavior"), SCHEMA_BEHAVIOURS,
                   "nonBreakingSchemaUpdatesBehavior", ApiError)
        if body.get("schedule") is not None:
            c["schedule"] = check_schedule(body["schedule"], ApiError)
        streams = check_streams(body.get("configurations"), ApiError)
        if streams is not None:
            c["configurations"] = {"streams": streams}
        was = c["status"]
        for k in ("name", "status", "namespaceDefinition", "namespaceFormat", "prefix",
                  "nonBreakingSchemaUpdatesBehavior"):
            if body.get(k) is not None:
                c[k] = body[k]
        if was == "active" and c["status"] == "inactive":
            state.pauses += 1
        elif was == "inactive" and c["status"] == "active":
            state.resumes += 1
        return 200, public(c)
    delete_connection(state, c)
    return 204, None


# --- jobs ----------------------------------------------------------------

def new_job(state, connection, job_type, status, workspace_id=None, frozen=False):
    state.next_job_id += 1
    t = time.time()
    j = {"jobId": state.next_job_id, "status": status, "jobType": job_type,
         "startTime": now_iso(), "lastUpdatedAt": now_iso(),
         "connectionId": connection["connectionId"] if connection else str(uuid.uuid4()),
         "duration": "PT0S", "rowsSynced": 0, "bytesSynced": 0,
         "_workspaceId": connection["workspaceId"] if connection else workspace_id,
         "_created": t, "_frozen": frozen, "_loading": False}
    state.jobs[j["jobId"]] = j
    state.jobs_started += 1
    return j


def create_job(state, body, ApiError, require_fields, require_uuid):
    require_fields(body, ["connectionId", "jobType"])
    require_uuid(body["connectionId"], "connectionId")
    enum_check(body["jobType"], JOB_TYPES, "jobType", ApiError)
    c = get_connection(state, body["connectionId"], ApiError)
    if c["status"] != "active":
        raise ApiError(400, "bad-request",
                       "Connection %s is %s: only an active connection can run a job."
                       % (c["connectionId"], c["status"]))
    for j in state.jobs.values():
        if j["connectionId"] == c["connectionId"]:
            advance(state, j)
            if j["status"] in ACTIVE_JOB_STATUSES:
                raise ApiError(409, "conflict",
                               "A sync is already running for connection %s (job %d)."
                               % (c["connectionId"], j["jobId"]))
    return 200, public(new_job(state, c, body["jobType"], "pending"))


def advance(state, j):
    """Bring a job's status up to date; a due success is left to the loader."""
    if j["_frozen"] or j["status"] not in ACTIVE_JOB_STATUSES or j["_loading"]:
        return None
    elapsed_ms = (time.time() - j["_created"]) * 1000.0
    pending_ms = float(state.config.get("job_pending_ms", 100))
    running_ms = float(state.config.get("job_running_ms", 1000))
    secs = int(elapsed_ms / 1000)
    j["duration"] = "PT%dS" % secs
    if elapsed_ms < pending_ms:
        return None
    if elapsed_ms < pending_ms + running_ms:
        if j["status"] != "running":
            j["status"] = "running"
            j["lastUpdatedAt"] = now_iso()
        return None
    c = state.connections.get(j["connectionId"])
    streams = c["configurations"]["streams"] if c else []
    j["rowsSynced"] = 100 * max(1, len(streams))
    j["bytesSynced"] = 120 * j["rowsSynced"]
    if state.config.get("job_outcome", "succeeded") != "succeeded":
        finish(j, "failed")
        return None
    d = state.destinations.get(c["destinationId"]) if c else None
    if (j["jobType"] == "sync" and d is not None and d["destinationType"] == "postgres"
            and LOADER is not None and state.config.get("load_postgres", True)):
        j["_loading"] = True
        return (j, loader_arguments(c, d))
    finish(j, "succeeded")
    return None


def finish(j, status):
    j["status"] = status
    j["lastUpdatedAt"] = now_iso()
    j["_loading"] = False


def loader_arguments(c, d):
    """What a sync of c writes: the destination's configuration with
    "schema" set to the namespace the connection resolves to, the streams
    (names with the connection's prefix), and the first stream's sync mode."""
    cfg = dict(d["_configuration"])
    if c["namespaceDefinition"] == "custom_format" and c.get("namespaceFormat"):
        cfg["schema"] = c["namespaceFormat"].replace("${SOURCE_NAMESPACE}", cfg.get("schema", "public"))
    streams = [dict(s, name=c["prefix"] + s["name"]) for s in c["configurations"]["streams"]]
    mode = streams[0]["syncMode"] if streams else "full_refresh_overwrite"
    return (cfg, streams, mode)


def run_loader(state, pending):
    """Outside the lock: run the loader for each job whose sync just
    succeeded, then record the outcome."""
    for j, args in pending:
        try:
            LOADER.load_sync(*args)
            status = "succeeded"
        except Exception as e:  # a loader failure is a failed sync
            status = "failed"
            j["_error"] = str(e)
        with state.lock:
            if j["status"] in ACTIVE_JOB_STATUSES:
                finish(j, status)
            j["_loading"] = False
            state.loads += 1


def job_route(state, method, jid, ApiError):
    j = state.jobs.get(jid)
    if j is None:
        raise ApiError(404, "resource-not-found", "Could not find a job with id %d." % jid)
    pending = advance(state, j)
    if method == "DELETE" and j["status"] in ACTIVE_JOB_STATUSES:
        j["status"] = "cancelled"
        j["lastUpdatedAt"] = now_iso()
        state.cancelled_jobs += 1
        pending = None
        j["_loading"] = False
    return 200, public(j), [pending] if pending else []


def list_jobs(state, query, ids, ApiError):
    status = query.get("status", [None])[0]
    job_type = query.get("jobType", [None])[0]
    connection_id = query.get("connectionId", [None])[0]
    enum_check(status, ACTIVE_JOB_STATUSES + ("failed", "succeeded", "cancelled"), "status", ApiError)
    enum_check(job_type, JOB_TYPES, "jobType", ApiError)
    bounds = {}
    for param, field in (("createdAtStart", "startTime"), ("updatedAtStart", "lastUpdatedAt")):
        value = query.get(param, [None])[0]
        if value is not None:
            bounds[field] = parse_date_time(value, param, ApiError)
    pending, items = [], []
    order_by = query.get("orderBy", [""])[0]
    newest_first = order_by.upper().endswith("|DESC")
    # orderBy updatedAt|...: by lastUpdatedAt (then jobId); otherwise by jobId
    if order_by.startswith("updatedAt"):
        key = lambda j: (j["lastUpdatedAt"], j["jobId"])
    else:
        key = lambda j: j["jobId"]
    for j in state.jobs.values():
        p = advance(state, j)
        if p:
            pending.append(p)
    for j in sorted(state.jobs.values(), key=key, reverse=newest_first):
        if ids and j["_workspaceId"] not in ids:
            continue
        if connection_id and j["connectionId"] != connection_id:
            continue
        if job_type and j["jobType"] != job_type:
            continue
        if status and j["status"] != status:
            continue
        if any(parse_date_time(j[field], field, ApiError) < bound for field, bound in bounds.items()):
            continue
        items.append(public(j))
    return items, pending


def parse_date_time(value, what, ApiError):
    """An RFC 3339 date-time (the spec's "date-time" format) as a datetime."""
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise ApiError(400, "bad-request", "%s must be a date-time such as 2026-01-01T00:00:00Z." % what)


# --- cascades and counters ------------------------------------------------

def workspace_deleted(state, wid):
    """Airbyte removes what a deleted workspace held; running jobs stop."""
    for c in state.connections.values():
        if c["workspaceId"] == wid and not c["_deleted"]:
            delete_connection(state, c)
    for d in state.destinations.values():
        if d["workspaceId"] == wid:
            d["_deleted"] = True
    for sid in [s for s, v in state.sources.items() if v["workspaceId"] == wid]:
        del state.sources[sid]
    for j in state.jobs.values():
        if j["_workspaceId"] == wid and j["status"] in ACTIVE_JOB_STATUSES:
            j["status"] = "cancelled"


def source_deleted(state, sid):
    for c in state.connections.values():
        if c["sourceId"] == sid and not c["_deleted"]:
            delete_connection(state, c)


def counters(state):
    live_d, live_c = {}, {}
    for d in state.destinations.values():
        if not d["_deleted"]:
            k = "%s %s" % (d["workspaceId"], d["name"])
            live_d[k] = live_d.get(k, 0) + 1
    for c in state.connections.values():
        if not c["_deleted"]:
            k = "%s %s" % (c["workspaceId"], c["name"])
            live_c[k] = live_c.get(k, 0) + 1
    by_status = {}
    for j in state.jobs.values():
        by_status[j["status"]] = by_status.get(j["status"], 0) + 1
    return {
        "live_destinations": sum(live_d.values()),
        "duplicate_destinations": sum(n - 1 for n in live_d.values() if n > 1),
        "destinations_created_by_name": dict(state.destinations_created_by_name),
        "live_connections": sum(live_c.values()),
        "active_connections": sum(1 for c in state.connections.values()
                                  if not c["_deleted"] and c["status"] == "active"),
        "inactive_connections": sum(1 for c in state.connections.values()
                                    if not c["_deleted"] and c["status"] == "inactive"),
        "duplicate_connections": sum(n - 1 for n in live_c.values() if n > 1),
        "connections_created_by_name": dict(state.connections_created_by_name),
        "jobs_started": state.jobs_started,
        "jobs_by_status": by_status,
        "loads": state.loads,
        "connections_paused": state.pauses,
        "connections_resumed": state.resumes,
    }


def snapshot(state):
    return {
        "destinations": [dict(public(d), deleted=d["_deleted"]) for d in state.destinations.values()],
        "connections": [dict(public(c), deleted=c["_deleted"]) for c in state.connections.values()],
    }


LOADER = None


def load_loader():
    """The test loader module (test/standin_loader.py), when there is one."""
    global LOADER
    import importlib
    import importlib.util
    if importlib.util.find_spec("standin_loader") is not None:
        LOADER = importlib.import_module("standin_loader")

#!/usr/bin/env python3
"""
standin_pipelines.t: the Airbyte stand-in's destinations, connections and
jobs behave as Airbyte's public API does, so that the pipeline tests that
rely on them prove something: the spec's request schemas are enforced
(400 naming the field, counted in spec_violations), Airbyte's defaults are
filled in, refusals carry Airbyte's error body, jobs move pending ->
running -> succeeded or failed and can be cancelled, a cron-started job
shows up, and deleting a workspace takes what it holds with it.

Runs against the stand-in test/run starts ($TA_STANDIN_URL), which it
resets before and after.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ.get("TA_STANDIN_URL")
TOKEN = os.environ.get("TA_STANDIN_TOKEN", "standin-token")
count = 0
failed = 0


def ok(cond, what, diag=None):
    global count, failed
    count += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", count, what))
    if not cond:
        failed += 1
        if diag is not None:
            print("#   %s" % str(diag).replace("\n", "\n#   "))


def call(method, path, body=None, api=True):
    url = BASE + ("/v1" if api else "") + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def control(method, what, body=None):
    return call(method, "/_control/" + what, body, api=False)[1]


def is_airbyte_error(obj):
    return isinstance(obj, dict) and all(k in obj for k in ("status", "type", "title", "detail"))


def wait_job(job_id, statuses, seconds=30):
    """Poll the job until its status is in statuses; the statuses seen."""
    seen = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = call("GET", "/jobs/%d" % job_id)[1]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in statuses:
            break
        time.sleep(0.05)
    return seen


def postgres(schema="tenant_1", **over):
    cfg = {"destinationType": "postgres", "host": "127.0.0.1", "port": 5432,
           "database": "app", "schema": schema, "username": "loader", "password": "pw-secret"}
    cfg.update(over)
    return cfg


def main():
    if not BASE:
        print("1..0 # SKIP the stand-in is not running (test/run starts it)")
        return 0
    # The job model alone: the destinations here point at no database, so
    # the loader (tested by pipeline_syncs.t and tenant_data_*.t) stays off.
    control("POST", "reset", {"job_pending_ms": 300, "job_running_ms": 3000, "load_postgres": False})

    st, w1 = call("POST", "/workspaces", {"name": "Pipes - one", "regionId": "8a1f0c1e-1111-4111-8111-111111111111",
                                          "notifications": {"failure": {"email": {"enabled": True}}}})
    ok(st == 200 and w1["notifications"] == {"failure": {"email": {"enabled": True}}},
       "a workspace is created with its regionId and notifications", (st, w1))
    w2 = call("POST", "/workspaces", {"name": "Pipes - two"})[1]
    ws1, ws2 = w1["workspaceId"], w2["workspaceId"]

    # --- destinations -------------------------------------------------------
    st, d1 = call("POST", "/destinations", {"name": "Warehouse", "workspaceId": ws1, "configuration": postgres()})
    ok(st == 200 and d1["destinationType"] == "postgres" and d1["workspaceId"] == ws1,
       "POST /destinations creates a postgres destination in the workspace", (st, d1))
    ok(d1["configuration"]["password"] == "**********" and "pw-secret" not in json.dumps(d1),
       "the answer masks the password, as Airbyte does", d1)
    st, e = call("POST", "/destinations", {"name": "Bad", "workspaceId": ws1, "configuration": postgres(port="5432")})
    ok(st == 400 and is_airbyte_error(e) and "configuration.port" in e["detail"] and "integer" in e["detail"],
       "a configuration that breaks the spec's destination-postgres schema is 400 naming the field", (st, e))
    st, e = call("POST", "/destinations", {"name": "Bad", "workspaceId": ws1,
                                           "configuration": {k: v for k, v in postgres().items() if k != "host"}})
    ok(st == 400 and "host" in e["detail"], "a missing required field is 400 naming it", (st, e))
    st, e = call("POST", "/destinations", {"workspaceId": ws1, "configuration": postgres()})
    ok(st == 400 and "name" in e["detail"], "a body without name breaks DestinationCreateRequest: 400", (st, e))
    counters = control("GET", "counters")
    ok(counters["spec_violations"].get("POST /destinations") == 3 and len(counters["spec_violation_log"]) == 3,
       "each spec violation is counted and logged", counters["spec_violations"])
    st, e = call("POST", "/destinations", {"name": "X", "workspaceId": ws1, "configuration": {"destinationType": "nosuch"}})
    ok(st == 400 and "nosuch" in e["detail"], "an unknown destinationType is 400", (st, e))
    st, e = call("POST", "/destinations", {"name": "X", "workspaceId": "0b5e8ef5-0000-4000-8000-000000000000",
                                           "configuration": postgres()})
    ok(st == 404 and is_airbyte_error(e), "a destination in an unknown workspace is 404", (st, e))
    d2 = call("POST", "/destinations", {"name": "Warehouse", "workspaceId": ws2, "configuration": postgres("t2")})[1]
    listed = call("GET", "/destinations?workspaceIds=%s" % ws1)[1]["data"]
    ok([d["destinationId"] for d in listed] == [d1["destinationId"]],
       "GET /destinations?workspaceIds= lists only that workspace's", listed)
    st, p = call("PATCH", "/destinations/%s" % d1["destinationId"], {"name": "Warehouse 2"})
    ok(st == 200 and p["name"] == "Warehouse 2" and p["configuration"]["host"] == "127.0.0.1",
       "PATCH /destinations/{id} renames and keeps the configuration", p)
    call("PATCH", "/destinations/%s" % d1["destinationId"], {"name": "Warehouse"})

    # --- connections --------------------------------------------------------
    s1 = call("POST", "/sources", {"name": "Shopify", "workspaceId": ws1, "configuration": {
        "sourceType": "shopify", "shop": "acme", "credentials": {"auth_method": "api_password", "api_password": "x"}}})[1]
    s2 = call("POST", "/sources", {"name": "Shopify", "workspaceId": ws2, "configuration": {
        "sourceType": "shopify", "shop": "beta", "credentials": {"auth_method": "api_password", "api_password": "y"}}})[1]
    st, c0 = call("POST", "/connections", {"sourceId": s1["sourceId"], "destinationId": d1["destinationId"]})
    ok(st == 200 and c0["schedule"] == {"scheduleType": "manual"} and c0["status"] == "active"
       and c0["namespaceDefinition"] == "destination" and c0["nonBreakingSchemaUpdatesBehavior"] == "ignore"
       and [s["name"] for s in c0["configurations"]["streams"]] == ["orders", "customers", "products"]
       and c0["workspaceId"] == ws1,
       "a connection gets Airbyte's defaults: manual, active, destination namespace, ignore, every stream", c0)
    call("DELETE", "/connections/%s" % c0["connectionId"])
    body = {"sourceId": s1["sourceId"], "destinationId": d1["destinationId"], "name": "Shopify → Warehouse",
            "schedule": {"scheduleType": "cron", "cronExpression": "0 0 */6 * * ?"},
            "namespaceDefinition": "custom_format", "namespaceFormat": "tenant_1", "prefix": "shop_",
            "nonBreakingSchemaUpdatesBehavior": "propagate_columns", "status": "active",
            "configurations": {"streams": [{"name": "orders", "syncMode": "incremental_append"}]}}
    st, c1 = call("POST", "/connections", body)
    ok(st == 200 and c1["schedule"]["cronExpression"] == "0 0 */6 * * ?" and c1["namespaceFormat"] == "tenant_1"
       and c1["prefix"] == "shop_" and c1["configurations"]["streams"] == [{"name": "orders", "syncMode": "incremental_append"}],
       "a connection keeps its schedule, namespace, prefix, policy and streams", c1)
    for field, value, needle in (("namespaceDefinition", "customformat", "custom_format"),
                                 ("nonBreakingSchemaUpdatesBehavior", "propagate", "propagate_fully"),
                                 ("schedule", {"scheduleType": "hourly"}, "manual")):
        st, e = call("POST", "/connections", dict(body, **{field: value}))
        ok(st == 400 and field in e["detail"] and needle in e["detail"],
           "a bad %s is 400 naming the field and the allowed values" % field, (st, e))
    st, e = call("POST", "/connections", dict(body, schedule={"scheduleType": "cron", "cronExpression": "0 0 * * *"}))
    ok(st == 400 and "Quartz" in e["detail"], "a five-field (Unix) cron expression is 400: Airbyte takes Quartz", (st, e))
    st, e = call("POST", "/connections", dict(body, configurations={"streams": [{"name": "orders", "syncMode": "fast"}]}))
    ok(st == 400 and "syncMode" in e["detail"], "an unknown sync mode is 400", (st, e))
    st, e = call("POST", "/connections", dict(body, sourceId=s2["sourceId"]))
    ok(st == 400 and "different workspaces" in e["detail"], "source and destination of two workspaces: 400", (st, e))
    st, e = call("POST", "/connections", dict(body, destinationId="0b5e8ef5-0000-4000-8000-000000000000"))
    ok(st == 404, "a connection to an unknown destination is 404", (st, e))
    c2 = call("POST", "/connections", {"sourceId": s2["sourceId"], "destinationId": d2["destinationId"], "name": "B"})[1]
    listed = call("GET", "/connections?workspaceIds=%s" % ws1)[1]["data"]
    ok([c["connectionId"] for c in listed] == [c1["connectionId"]],
       "GET /connections?workspaceIds= lists only that workspace's live connections", listed)

    # --- jobs ---------------------------------------------------------------
    st, j1 = call("POST", "/jobs", {"connectionId": c1["connectionId"], "jobType": "sync"})
    ok(st == 200 and j1["status"] == "pending" and isinstance(j1["jobId"], int),
       "POST /jobs starts a pending job with an int64 id", (st, j1))
    st, e = call("POST", "/jobs", {"connectionId": c1["connectionId"], "jobType": "sync"})
    ok(st == 409 and is_airbyte_error(e), "a second job while one runs is 409", (st, e))
    st, e = call("POST", "/jobs", {"connectionId": c1["connectionId"], "jobType": "backfill"})
    ok(st == 400 and "jobType" in e["detail"], "an unknown jobType is 400 (spec enum)", (st, e))
    seen = wait_job(j1["jobId"], ("succeeded", "failed"))
    ok(seen == ["pending", "running", "succeeded"], "the job goes pending -> running -> succeeded", seen)
    j = call("GET", "/jobs/%d" % j1["jobId"])[1]
    ok(j["rowsSynced"] > 0 and j["bytesSynced"] > 0, "a finished sync reports rows and bytes", j)

    control("POST", "config", {"job_outcome": "failed", "job_running_ms": 200})
    j2 = call("POST", "/jobs", {"connectionId": c1["connectionId"], "jobType": "sync"})[1]
    ok(wait_job(j2["jobId"], ("succeeded", "failed"))[-1] == "failed", "with job_outcome failed the job fails")
    control("POST", "config", {"job_outcome": "succeeded", "job_running_ms": 60000})

    j3 = call("POST", "/jobs", {"connectionId": c2["connectionId"], "jobType": "sync"})[1]
    wait_job(j3["jobId"], ("running",))
    running = call("GET", "/jobs?workspaceIds=%s&status=running" % ws2)[1]["data"]
    ok([x["jobId"] for x in running] == [j3["jobId"]], "GET /jobs?workspaceIds=&status=running finds it", running)
    ok(call("GET", "/jobs?workspaceIds=%s&status=running" % ws1)[1]["data"] == [],
       "... and nothing of another workspace")
    st, c = call("DELETE", "/jobs/%d" % j3["jobId"])
    ok(st == 200 and c["status"] == "cancelled" and control("GET", "counters")["cancelled_jobs"] == 1,
       "DELETE /jobs/{id} cancels: 200 with the job, counted", (st, c))

    cron = control("POST", "scheduled_job", {"connectionId": c1["connectionId"]})
    listed = call("GET", "/jobs?workspaceIds=%s" % ws1)[1]["data"]
    counters = control("GET", "counters")
    ok(cron["jobId"] in [x["jobId"] for x in listed] and counters["requests"]["POST /jobs"] == 5,
       "a job started by the schedule is listed, without a POST /jobs", (listed, counters["requests"]))

    st, p = call("PATCH", "/connections/%s" % c1["connectionId"], {"status": "inactive"})
    ok(st == 200 and p["status"] == "inactive" and control("GET", "counters")["connections_paused"] == 1,
       "PATCH {status: inactive} pauses the connection", p)
    call("DELETE", "/jobs/%d" % cron["jobId"])
    st, e = call("POST", "/jobs", {"connectionId": c1["connectionId"], "jobType": "sync"})
    ok(st == 400 and "inactive" in e["detail"], "an inactive connection runs no job", (st, e))
    call("PATCH", "/connections/%s" % c1["connectionId"], {"status": "active"})
    ok(control("GET", "counters")["connections_resumed"] == 1, "PATCH {status: active} resumes it")

    # --- duplicates and cascades ----------------------------------------------
    call("POST", "/destinations", {"name": "Warehouse", "workspaceId": ws1, "configuration": postgres()})
    counters = control("GET", "counters")
    ok(counters["duplicate_destinations"] == 1 and counters["live_destinations"] == 3,
       "a second destination with the same name in a workspace is counted as a duplicate", counters)
    j4 = call("POST", "/jobs", {"connectionId": c1["connectionId"], "jobType": "sync"})[1]
    st, _ = call("DELETE", "/workspaces/%s" % ws1)
    gone = [call("GET", "/destinations/%s" % d1["destinationId"])[0],
            call("GET", "/connections/%s" % c1["connectionId"])[0],
            call("GET", "/sources/%s" % s1["sourceId"])[0]]
    ok(st == 204 and gone == [404, 404, 404], "deleting a workspace deletes its destinations, connections, sources", gone)
    ok(call("GET", "/jobs/%d" % j4["jobId"])[1]["status"] == "cancelled", "... and cancels its running job")
    ok(call("GET", "/connections/%s" % c2["connectionId"])[0] == 200, "... and leaves other workspaces alone")

    control("POST", "reset")
    print("1..%d" % count)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

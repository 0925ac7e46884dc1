#!/usr/bin/env python3
"""standin_loader.py: what Airbyte's Postgres destination does to
the database when a sync succeeds, for the Airbyte stand-in.

The stand-in calls load_sync(destination_configuration, streams, mode) when
a job of a connection whose destination is Postgres succeeds.  It logs in
with the destination's own credentials (host, port, database, username,
password: for a tenant, its loader role) and refuses to run as a superuser,
because the point is to exercise what a real destination can and cannot
do.  It writes the tables the way destination-postgres 2.x ("typing and
deduping") does, for each stream by its own syncMode when it has one
(the stand-in passes the connection's stream configurations) or by mode:

  raw    "<raw_data_schema>"."<namespace>_raw__stream_<stream>"
         (_airbyte_raw_id, _airbyte_data jsonb, _airbyte_extracted_at,
          _airbyte_loaded_at, _airbyte_meta, _airbyte_generation_id)
  final  "<schema>"."<stream>"
         (_airbyte_raw_id, _airbyte_extracted_at, _airbyte_meta,
          _airbyte_generation_id, then one column per record field)

The namespace is the destination's schema; raw_data_schema defaults to
airbyte_internal like Airbyte's.  mode "append" (also incremental_append,
full_refresh_append, incremental_deduped_history) adds the records to the
raw table and types the unloaded raw rows into the final table, reading the
final table first as deduplication does; mode "overwrite" (also
full_refresh_overwrite) fills "<stream>_airbyte_tmp" (and the raw table's
_airbyte_tmp) and swaps each in with DROP TABLE and ALTER TABLE ... RENAME.

Command line, for tests that drive it without a stand-in:
  standin_loader.py --config JSON --streams JSON [--mode MODE]
prints the result of load_sync() as JSON.
"""
import argparse
import datetime
import json
import sys
import uuid

try:
    import psycopg2
except ImportError:
    # Debian's python3-psycopg2 lives beside the system python; a python
    # from elsewhere (pyenv) of the same version can use it.
    sys.path.append("/usr/lib/python3/dist-packages")
    import psycopg2
from psycopg2 import sql

APPEND_MODES = {"append", "incremental_append", "full_refresh_append",
                "incremental_deduped_history", "incremental_append_deduped"}
OVERWRITE_MODES = {"overwrite", "full_refresh_overwrite",
                   "full_refresh_overwrite_deduped"}


class LoaderError(Exception):
    """The sync cannot be written; the stand-in fails the job with it."""


def column_type(value):
    """The Postgres type Airbyte's typing gives a JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "numeric"
    if isinstance(value, (dict, list)):
        return "jsonb"
    return "varchar"


def sample_records(stream, tag, count=3):
    """Records for a stream given by name only: count rows whose fields
    carry tag (e.g. the shop), so that tests can tell whose rows they see."""
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    return [{"id": i, "name": "%s %s #%d" % (tag, stream, i), "source": tag,
             "total_price": "%d.00" % (10 * i),
             "updated_at": (now + datetime.timedelta(hours=i)).isoformat()}
            for i in range(1, count + 1)]


def normalise_streams(streams, tag):
    """[{"name", "records"}], from names or dicts."""
    out = []
    for s in streams:
        if isinstance(s, str):
            out.append({"name": s, "records": sample_records(s, tag)})
        else:
            out.append({"name": s["name"], "syncMode": s.get("syncMode"),
                        "records": s.get("records") or sample_records(s["name"], tag)})
    return out


def connect(config):
    try:
        conn = psycopg2.connect(host=config.get("host", "127.0.0.1"),
                                port=int(config.get("port", 5432)),
                                dbname=config["database"],
                                user=config["username"],
                                password=config.get("password", ""),
                                connect_timeout=10,
                                application_name="airbyte-standin-destination-postgres")
    except KeyError as e:
        raise LoaderError("destination configuration has no %s" % e)
    except psycopg2.Error as e:
        raise LoaderError("could not log in as %s: %s" % (config.get("username"), str(e).strip()))
    with conn.cursor() as cur:
        cur.execute("SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles"
                    " WHERE rolname = current_user")
        if cur.fetchone()[0]:
            conn.close()
            raise LoaderError("refusing to load as %s: a destination must not be a superuser"
                              % config["username"])
    return conn


def columns_of(records):
    """Stream columns in first-seen order, with the type of the first non-null value."""
    cols = {}
    for r in records:
        for k, v in r.items():
            if k not in cols or (cols[k] is None and v is not None):
                cols[k] = None if v is None else column_type(v)
    return [(k, t or "varchar") for k, t in cols.items()]


def create_raw(cur, raw_schema, name):
    cur.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {}.{} (
        _airbyte_raw_id varchar(36) NOT NULL PRIMARY KEY,
        _airbyte_data jsonb,
        _airbyte_extracted_at timestamptz NOT NULL DEFAULT now(),
        _airbyte_loaded_at timestamptz,
        _airbyte_meta jsonb,
        _airbyte_generation_id bigint)""").format(sql.Identifier(raw_schema), sql.Identifier(name)))


def create_final(cur, schema, name, cols):
    defs = [sql.SQL("_airbyte_raw_id varchar(36) NOT NULL"),
            sql.SQL("_airbyte_extracted_at timestamptz NOT NULL"),
            sql.SQL("_airbyte_meta jsonb NOT NULL"),
            sql.SQL("_airbyte_generation_id bigint")]
    defs += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in cols]
    cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
        sql.Identifier(schema), sql.Identifier(name), sql.SQL(", ").join(defs)))


def insert_raw(cur, raw_schema, name, records, generation):
    for r in records:
        cur.execute(sql.SQL("INSERT INTO {}.{} (_airbyte_raw_id, _airbyte_data, _airbyte_meta,"
                            " _airbyte_generation_id) VALUES (%s, %s, %s, %s)").format(
            sql.Identifier(raw_schema), sql.Identifier(name)),
            (str(uuid.uuid4()), json.dumps(r), json.dumps({"changes": []}), generation))


def type_and_dedupe(cur, schema, final, raw_schema, raw, cols):
    """Raw rows not loaded yet, typed into the final table, as T+D does:
    it reads the final table to skip what is already there."""
    typed = [sql.SQL("CAST(r._airbyte_data ->> {} AS {})").format(sql.Literal(c), sql.SQL(t))
             if t != "jsonb" else sql.SQL("r._airbyte_data -> {}").format(sql.Literal(c))
             for c, t in cols]
    cur.execute(sql.SQL("""INSERT INTO {s}.{f} (_airbyte_raw_id, _airbyte_extracted_at,
            _airbyte_meta, _airbyte_generation_id, {names})
        SELECT r._airbyte_raw_id, r._airbyte_extracted_at, COALESCE(r._airbyte_meta, '{{}}'),
               r._airbyte_generation_id, {typed}
          FROM {rs}.{r} AS r
         WHERE r._airbyte_loaded_at IS NULL
           AND NOT EXISTS (SELECT FROM {s}.{f} AS f WHERE f._airbyte_raw_id = r._airbyte_raw_id)""").format(
        s=sql.Identifier(schema), f=sql.Identifier(final), rs=sql.Identifier(raw_schema),
        r=sql.Identifier(raw), names=sql.SQL(", ").join(sql.Identifier(c) for c, _ in cols),
        typed=sql.SQL(", ").join(typed)))
    cur.execute(sql.SQL("UPDATE {}.{} SET _airbyte_loaded_at = now() WHERE _airbyte_loaded_at IS NULL").format(
        sql.Identifier(raw_schema), sql.Identifier(raw)))


def swap_in(cur, schema, tmp, name):
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
    cur.execute(sql.SQL("ALTER TABLE {}.{} RENAME TO {}").format(
        sql.Identifier(schema), sql.Identifier(tmp), sql.Identifier(name)))


def previous_generation(cur, schema, name):
    cur.execute("SELECT to_regclass(%s) IS NOT NULL",
                (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name)).as_string(cur),))
    if not cur.fetchone()[0]:
        return -1
    cur.execute(sql.SQL("SELECT COALESCE(max(_airbyte_generation_id), -1) FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(name)))
    return cur.fetchone()[0]


def overwrites(mode):
    if mode in OVERWRITE_MODES:
        return True
    if mode in APPEND_MODES:
        return False
    raise LoaderError("unknown sync mode %r" % mode)


def load_stream(conn, schema, raw_schema, stream, overwrite):
    name, records = stream["name"], stream["records"]
    if stream.get("syncMode"):
        overwrite = overwrites(stream["syncMode"])
    raw = "%s_raw__stream_%s" % (schema, name)
    cols = columns_of(records)
    with conn.cursor() as cur:
        if overwrite:
            generation = previous_generation(cur, schema, name) + 1
            raw_tmp, final_tmp = raw + "_airbyte_tmp", name + "_airbyte_tmp"
            for s, t in ((raw_schema, raw_tmp), (schema, final_tmp)):
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(s), sql.Identifier(t)))
            create_raw(cur, raw_schema, raw_tmp)
            create_final(cur, schema, final_tmp, cols)
            insert_raw(cur, raw_schema, raw_tmp, records, generation)
            type_and_dedupe(cur, schema, final_tmp, raw_schema, raw_tmp, cols)
            swap_in(cur, raw_schema, raw_tmp, raw)
            swap_in(cur, schema, final_tmp, name)
        else:
            generation = max(previous_generation(cur, schema, name), 0)
            create_raw(cur, raw_schema, raw)
            create_final(cur, schema, name, cols)
            insert_raw(cur, raw_schema, raw, records, generation)
            type_and_dedupe(cur, schema, name, raw_schema, raw, cols)
    conn.commit()
    return len(records), sum(len(json.dumps(r)) for r in records)


def load_sync(destination_configuration, streams, mode="append"):
    """Write one successful sync into a Postgres destination.

    destination_configuration: the destination's configuration as created
    in Airbyte (host, port, database, schema, username, password,
    raw_data_schema).  streams: stream names, or {"name", "records"} dicts.
    mode: "append" or "overwrite" (or the syncMode names Airbyte uses).
    Returns {"recordsSynced": n, "bytesSynced": n}; raises LoaderError.
    """
    config = destination_configuration or {}
    overwrite = overwrites(mode)
    schema = config.get("schema") or "public"
    raw_schema = config.get("raw_data_schema") or "airbyte_internal"
    streams = normalise_streams(streams, schema)

    conn = connect(config)
    records = size = 0
    try:
        with conn.cursor() as cur:
            for s in dict.fromkeys([raw_schema, schema]):
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(s)))
        conn.commit()
        for stream in streams:
            n, b = load_stream(conn, schema, raw_schema, stream, overwrite)
            records += n
            size += b
    except psycopg2.Error as e:
        conn.rollback()
        raise LoaderError("destination refused the sync: %s" % str(e).strip())
    finally:
        conn.close()
    return {"recordsSynced": records, "bytesSynced": size}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="destination configuration (JSON)")
    p.add_argument("--streams", required=True, help="streams (JSON list)")
    p.add_argument("--mode", default="append")
    a = p.parse_args()
    try:
        result = load_sync(json.loads(a.config), json.loads(a.streams), a.mode)
    except LoaderError as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

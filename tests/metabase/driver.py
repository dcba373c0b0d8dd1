"""A MODEL of Metabase's DuckDB driver and of the JDBC layer under it, for the stand-in: not
the driver. It runs real DuckDB, in a child process of its own as Metabase's server is one.

Transcribed from the source of the pinned pair (docker/metabase/Dockerfile):

- motherduckdb/metabase_duckdb_driver, tag 1.5.5.0 (commit 249fe56), src/metabase/driver/duckdb.clj:
  `remove-internal-connection-keys` (drops `connection-pool-type`, `destination-database` and
  namespaced keys), `jdbc-spec` (every remaining detail becomes a DuckDB option; always
  `temp_directory=<file>.tmp`, `TimeZone=UTC`, `custom_user_agent`, `jdbc_stream_results`;
  `additional-options` split on `&` and `=`, keys lower-cased, applied last) and
  `ensure-init-sql!` (on every checkout: it remembers connections by object in a WeakHashMap,
  and c3p0 hands out a new proxy each time; one statement list; an error whose lower-cased
  message holds "attach" and "already exists", or "already attached", is swallowed).
  `FORWARDS_INTERNAL_KEYS` is the older driver 1.4.4.0's filter, which drops two internal keys
  only: Metabase 0.63 adds `connection-pool-type`, which it forwards (upstream issue #103).
- Metabase 0.63's `effective-details` (src/metabase/driver/connection.clj) adds the internal
  keys `::connection-pool-type` and `::database-id` to the details of every connection.
- duckdb/duckdb-java (DuckDBDriver.connect): `duckdb.read_only` becomes `access_mode=READ_ONLY`,
  `jdbc_*` keys are the JDBC layer's own, every other property is a DuckDB option.

DuckDB itself is the release the JDBC driver bundles (1.5.5 for duckdb_jdbc 1.5.5.0), installed
apart (`ENGINE_DIR`) and run by the server process; the tests' own warehouse files are written by
the project's DuckDB (1.4.4) and read by it, as Metabase reads the platform's.

One deviation: `TimeZone` needs the icu extension at start-up, which the driver's DuckDB loads
from the extension directory (Metabase's image installs it); this Python DuckDB has icu built
in but only after start-up, so the model sets it right after opening.

A pool per database: two physical connections opened on first use, taken in turn, `init_sql`
run at every checkout. A sync leaks a clone of a pooled connection per table and one more
(`describe-database`, `describe-table`), which keep the file's instance alive (`instances`). All DuckDB instances live in the one child
process, so DuckDB's rule "one configuration per open file and process" holds as in Metabase.
"""

from __future__ import annotations

import decimal
import re
import multiprocessing
import threading
from pathlib import Path

DRIVER_KEYS = (
    "database_file",
    "read_only",
    "port",
    "engine",
    "allow_unsigned_extensions",
    "old_implicit_casting",
    "motherduck_token",
    "memory_limit",
    "azure_transport_option_type",
    "advanced-options",
    "additional-options",
    "attach_mode",
    "init_sql",
)
# The DuckDB release the pinned JDBC driver bundles (docker/metabase/Dockerfile's DUCKDB_VERSION),
# installed apart by `make test` (Makefile, DRIVER_DUCKDB): the server process runs it, not the
# project's own DuckDB (`Server.version`).
ENGINE_DIR = Path(__file__).resolve().parents[2] / ".venv-metabase-duckdb"
POOL_TYPE = "metabase.driver.connection/connection-pool-type"  # a namespaced keyword, as a string here
DATABASE_ID = "metabase.driver.connection/database-id"


def effective_details(details: dict, database_id: int) -> dict:
    """The details Metabase 0.63 hands the driver for a connection of the default pool."""
    return {**details, POOL_TYPE: "default", DATABASE_ID: database_id}


def _internal(key: str) -> bool:
    return key in ("connection-pool-type", "destination-database") or "/" in key or key.startswith("metabase.")


FORWARDS_INTERNAL_KEYS = ("metabase.driver.connection/effective-connection-type", DATABASE_ID)  # driver 1.4.4.0


def properties(details: dict, older_driver: bool = False) -> dict[str, str]:
    """The JDBC properties `jdbc-spec` builds from a connection's details (driver 1.5.5.0)."""
    if older_driver:
        kept = {k.rsplit("/", 1)[-1]: v for k, v in details.items() if k not in FORWARDS_INTERNAL_KEYS}  # (name k) drops the namespace
    else:
        kept = {k: v for k, v in details.items() if not _internal(k)}
    database_file = details.get("database_file") or ""
    base, _, inline = database_file.partition("?")
    props = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in kept.items() if k not in DRIVER_KEYS}
    props.update({"custom_user_agent": "metabase", "temp_directory": f"{base}.tmp", "jdbc_stream_results": "true", "TimeZone": "UTC"})
    if details.get("read_only") is not None:
        props["duckdb.read_only"] = str(details["read_only"]).lower()
    for key in ("old_implicit_casting", "memory_limit", "allow_unsigned_extensions"):
        if details.get(key):
            props[key] = str(details[key]).lower() if isinstance(details[key], bool) else str(details[key])
    for options in (details.get("additional-options") or "", inline):
        for pair in filter(None, options.split("&")):
            key, _, value = pair.partition("=")
            props[key.lower()] = value
    return props


def duckdb_config(props: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """(DuckDB's start-up configuration, the time zone to set after opening) from JDBC properties."""
    config = {k: v for k, v in props.items() if not k.startswith("jdbc_") and k not in ("duckdb.read_only", "TimeZone")}
    if props.get("duckdb.read_only") == "true":
        config["access_mode"] = "READ_ONLY"
    return config, props.get("TimeZone")


def already_done(message: str) -> bool:
    """`already-attached-error?` of driver 1.5.5.0."""
    text = message.lower()
    return "already attached" in text or ("attach" in text and "already exists" in text)


# --- the server process ---------------------------------------------------------------------


_OPEN: dict[str, int] = {}  # path -> connections open on its DuckDB instance, in this process
# Clones that `describe-database` and `describe-table` made and never closed (driver 1.5.5.0,
# `clone-raw-connection`: `DuckDBConnection.duplicate` on the pooled connection's instance). The
# JDBC layer has no finalizer: each keeps its instance, and the file it opened, until the server
# stops. Here too: the clone is a connection of its own to the pooled connection's instance
# (DuckDB's Python client shares an open file's instance as the JDBC layer does; a cursor would
# die with the pool), held in this list and never closed.
_LEAKED: list[tuple[str, object]] = []


def _open(path: str, props: dict[str, str]):
    import duckdb

    config, zone = duckdb_config(props)
    connection = duckdb.connect(path, config=config)
    if zone and not _OPEN.get(path):  # a start-up option: applied when the instance is created, not when it is reused
        connection.execute(f"SET TimeZone = '{zone}'")
    _OPEN[path] = _OPEN.get(path, 0) + 1
    return connection


def _close(path: str, connection) -> None:
    connection.close()
    _OPEN[path] -= 1


def _json(value):
    """A value as Metabase's JSON has it: numbers as numbers, dates and times as ISO text."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _test(pools: dict, args: list) -> None:
    """can-connect?: a connection of its own, SELECT 1, closed."""
    path, props = args
    connection = _open(path, props)
    try:
        connection.execute("select 1").fetchall()
    finally:
        _close(path, connection)


def _close_pool(pools: dict, args: list) -> None:
    pool = pools.pop(args[0], {})
    for connection in pool.get("connections", []):
        _close(pool["path"], connection)


def _pooled(pool: dict, path: str, props: dict[str, str], init_sql: str | None):
    """The pool's connection whose turn it is (opened while the pool has fewer than two), its
    `init_sql` run at this checkout, as every checkout is a new proxy to the driver."""
    if len(pool["connections"]) < 2:
        pool["connections"].append(_open(path, props))
    index = pool["turn"] % len(pool["connections"])
    pool["turn"] += 1
    return _initialized(pool["connections"][index], init_sql)


def _initialized(connection, init_sql: str | None):
    """`ensure-init-sql!` on a connection (a checkout, or a clone): the list run, "already done" swallowed."""
    if init_sql:
        try:
            connection.execute(init_sql)
        except Exception as e:  # noqa: BLE001 - the driver's own rule decides
            if not already_done(str(e)):
                raise
    return connection


def _query(pools: dict, args: list) -> dict:
    """A query on the connection checked out, after its `init_sql` (whose `USE` holds for it)."""
    key, path, props, init_sql, sql = args
    pool = pools.setdefault(key, {"path": path, "connections": [], "turn": 0})
    result = _pooled(pool, path, props, init_sql).execute(sql)
    columns = [d[0] for d in result.description] if result.description else []
    types = [base_type(str(d[1])) for d in result.description] if result.description else []
    rows = [[_json(v) for v in r] for r in result.fetchall()] if result.description else []
    return {"columns": columns, "types": types, "rows": rows}


# The driver's `database-type->base-type` (src/metabase/driver/duckdb.clj at 1.5.5.0, lines
# 222-269): the first pattern found in the column's DuckDB type names its Metabase base type.
BASE_TYPES = [
    (r"BOOLEAN|BOOL|LOGICAL", "type/Boolean"),
    (r"HUGEINT|UBIGINT|BIGINT|INT8|LONG", "type/BigInteger"),
    (r"INT4|SIGNED|INT2|SHORT|INT1|UINTEGER|USMALLINT|UTINYINT|INTEGER|SMALLINT|TINYINT|INT", "type/Integer"),
    (r"DECIMAL", "type/Decimal"),
    (r"DOUBLE|FLOAT8|NUMERIC|REAL|FLOAT4|FLOAT", "type/Float"),
    (r"VARCHAR|BPCHAR|CHAR|TEXT|STRING", "type/Text"),
    (r"JSON", "type/JSON"),
    (r"UUID", "type/UUID"),
    (r"TIMESTAMPTZ|TIMESTAMP WITH TIME ZONE", "type/DateTimeWithTZ"),
    (r"DATETIME|TIMESTAMP_S|TIMESTAMP_MS|TIMESTAMP_NS|TIMESTAMP", "type/DateTime"),
    (r"DATE", "type/Date"),
    (r"TIME", "type/Time"),
]


def base_type(duckdb_type: str) -> str:
    """Metabase's base type of a column of this DuckDB type, as the driver maps it."""
    for pattern, kind in BASE_TYPES:
        if re.search(pattern, duckdb_type.upper()):
            return kind
    return "type/*"


TABLES = (
    "select table_catalog, table_schema, table_name, table_comment from information_schema.tables "
    "where table_catalog not like '__ducklake_metadata%' and table_schema not in ('information_schema', 'pg_catalog')"
)


def _describe(pools: dict, args: list) -> list[str]:
    """A sync's `describe-database` and a `describe-table` per table, as driver 1.5.5.0 runs
    them: on a clone of a pooled connection, `init_sql` run on the clone, the clone left open."""
    key, path, props, init_sql = args
    pool = pools.setdefault(key, {"path": path, "connections": [], "turn": 0})

    def clone():
        _pooled(pool, path, props, init_sql)  # the checkout the clone is made from
        cloned = _open(path, props)  # a connection of its own to the same instance, which outlives the pool
        _LEAKED.append((path, cloned))
        return _initialized(cloned, init_sql)

    tables = [row[2] for row in clone().execute(TABLES).fetchall()]
    for table in tables:
        clone().execute("select * from information_schema.columns where table_name = ?", [table]).fetchall()
    return tables


def _instances(pools: dict, args: list) -> list[str]:
    """The files whose DuckDB instance is alive in the server: a pooled connection or a leaked clone holds it."""
    return sorted({path for path, count in _OPEN.items() if count > 0} | {path for path, _ in _LEAKED})


def _attached(pools: dict, args: list) -> dict[str, list[str]]:
    """Each live instance's attached database files beside the one it opened."""
    live = {path: connection for path, connection in _LEAKED}
    live.update({pool["path"]: pool["connections"][0] for pool in pools.values() if pool["connections"]})
    found = "select path from duckdb_databases() where not internal and path is not null and path <> ?"
    return {path: sorted(row[0] for row in c.execute(found, [path]).fetchall()) for path, c in live.items()}


def _version(pools: dict, args: list) -> str:
    import duckdb

    return duckdb.__version__


# command -> what it does, answered ("ok", its result)
COMMANDS = {
    "test": _test,
    "close": _close_pool,
    "query": _query,
    "describe": _describe,
    "instances": _instances,
    "attached": _attached,
    "version": _version,
}


def _read_only_mount(writable: str) -> None:
    """This process sees the file system as Metabase's container does in docker-compose.yml: the
    warehouse's volume read-only (here the temp folder where the tests keep their warehouses), its
    own spill folder writable. A mount namespace of its own (as root, or in a user namespace)."""
    import ctypes
    import os
    import tempfile

    libc = ctypes.CDLL(None, use_errno=True)
    newns, newuser = 0x00020000, 0x10000000
    rdonly, remount, bind, rec, private = 1, 32, 4096, 16384, 1 << 18
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(newns if uid == 0 else newns | newuser) != 0:
        raise OSError(ctypes.get_errno(), "unshare: the stand-in's Metabase needs a mount namespace for its read-only mount")
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            Path(f"/proc/self/{name}").write_text(text)

    def mount(source: str | None, target: str, flags: int) -> None:
        if libc.mount(source and source.encode(), target.encode(), None, flags, None) != 0:
            raise OSError(ctypes.get_errno(), f"mount {target}")

    volume = tempfile.gettempdir()
    os.makedirs(writable, exist_ok=True)
    mount(None, "/", rec | private)
    mount(volume, volume, bind | rec)
    mount(writable, writable, bind)  # under the volume's new mount, before it turns read-only
    mount(None, volume, bind | remount | rdonly)


def _serve(pipe, engine: str, read_only: str | None) -> None:
    import sys

    unusable = None  # a read-only mount that could not be made: every command answers why, none runs writable
    if read_only:
        try:
            _read_only_mount(read_only)  # first: no thread yet, as unshare needs
        except OSError as e:
            unusable = str(e)
    sys.path.insert(0, engine)  # the JDBC driver's DuckDB release (ENGINE_DIR), ahead of the project's
    pools: dict[int, dict] = {}
    while True:
        command, *args = pipe.recv()
        if command == "stop":
            return
        if unusable:
            pipe.send(("error", unusable))
            continue
        try:
            if command in COMMANDS:
                pipe.send(("ok", COMMANDS[command](pools, args)))
            else:
                pipe.send(("error", f"unknown command {command}"))
        except Exception as e:  # noqa: BLE001 - every DuckDB error goes back as Metabase shows it
            pipe.send(("error", str(e)))


class Server:
    """Metabase's server process, as far as DuckDB is concerned."""

    def __init__(self, read_only_mount: bool = True):
        """With `read_only_mount` (the default, as docker-compose mounts the warehouse) the
        process cannot write the warehouse's folders; without it, it can."""
        from olist_bi.bi.metabase.lockdown import TEMP_DIRECTORY

        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        mount = TEMP_DIRECTORY if read_only_mount else None
        self._process = context.Process(target=_serve, args=(child, str(ENGINE_DIR), mount), daemon=True)
        self._process.start()
        self._lock = threading.Lock()

    def _call(self, *command):
        with self._lock:
            self._pipe.send(command)
            return self._pipe.recv()

    def test_connection(self, details: dict, database_id: int) -> str | None:
        """None when a connection opens, else DuckDB's message."""
        status, found = self._call("test", details.get("database_file") or "", properties(effective_details(details, database_id)))
        return None if status == "ok" else found

    def query(self, database_id: int, details: dict, sql: str) -> tuple[str, object]:
        props = properties(effective_details(details, database_id))
        return self._call("query", database_id, details.get("database_file") or "", props, details.get("init_sql"), sql)

    def sync(self, database_id: int, details: dict) -> tuple[str, object]:
        """Metabase's sync of the database's tables (describe-database, describe-table), leaks and all."""
        props = properties(effective_details(details, database_id))
        return self._call("describe", database_id, details.get("database_file") or "", props, details.get("init_sql"))

    def version(self) -> str:
        """The DuckDB release the server process runs."""
        return self._call("version")[1]

    def instances(self) -> list[str]:
        """The files whose DuckDB instance the server holds now."""
        return self._call("instances")[1]

    def attached(self) -> dict[str, list[str]]:
        """Each instance's attached database files (the generations it reads)."""
        return self._call("attached")[1]

    def close_pool(self, database_id: int) -> None:
        self._call("close", database_id)

    def stop(self) -> None:
        if self._process.is_alive():
            self._pipe.send(("stop",))
            self._process.join(timeout=10)


# Metabase's ClickHouse driver's `database-type->base-type` (modules/drivers/clickhouse/src/
# metabase/driver/clickhouse_introspection.clj, the newest copy the search index held):
# LowCardinality(...) and Nullable(...) unwrapped, DateTime* with a local time zone, Enum* text,
# else the first pattern found in the lower-cased type.
CLICKHOUSE_TYPES = [
    ("array", "type/Array"),
    ("bool", "type/Boolean"),
    ("date", "type/Date"),
    ("decimal", "type/Decimal"),
    ("enum8", "type/Text"),
    ("enum16", "type/Text"),
    ("fixedstring", "type/TextLike"),
    ("float32", "type/Float"),
    ("float64", "type/Float"),
    ("int8", "type/Integer"),
    ("int16", "type/Integer"),
    ("int32", "type/Integer"),
    ("int64", "type/BigInteger"),
    ("map", "type/Dictionary"),
    ("string", "type/Text"),
    ("uuid", "type/UUID"),
]


def clickhouse_base_type(database_type: str) -> str:
    """Metabase's base type of a ClickHouse column of this type, as its ClickHouse driver maps it."""
    kind = database_type.lower()
    for wrapper in ("lowcardinality(", "nullable("):
        if kind.startswith(wrapper):
            return clickhouse_base_type(database_type[len(wrapper) : -1])
    if kind.startswith("datetime"):
        return "type/DateTimeWithLocalTZ"
    if kind.startswith("enum"):
        return "type/Text"
    return next((base for pattern, base in CLICKHOUSE_TYPES if pattern in kind), "type/*")

"""One way to talk to ClickHouse, embedded or a server.

`OLIST_CLICKHOUSE_URL` says where it is:
- `chdb:///absolute/folder` (the default, `chdb://$OLIST_HOME/clickhouse`): embedded
  ClickHouse (chdb) keeping its data in that folder. chdb allows one folder per process and
  one process per folder, even to read: it is for tests and for trying the engine on one
  machine. A second process gets a clear error naming the folder and the way out.
- `http://user:password@host:8123` or `https://...`: a ClickHouse server or cluster,
  through clickhouse-connect (what Superset uses too).

Either way a `ClickHouse` runs statements (`command`), answers queries as rows or Arrow
(`rows`, `arrow`, with `{name:Type}` parameters), creates a table from an Arrow table
(`create_from_arrow`), and every query runs with the dialect's settings (`dialect.SETTINGS`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from olist_bi.engines.clickhouse.dialect import SETTINGS


class ClickHouseError(RuntimeError):
    """ClickHouse refused a statement or cannot be reached; the message says which and why."""


@dataclass(frozen=True)
class Endpoint:
    """A ClickHouse server's HTTP interface, as a client logs in to it."""

    host: str
    port: int
    user: str
    password: str
    secure: bool


@dataclass(frozen=True)
class Target:
    """Where ClickHouse is: an embedded folder, or a server's URL."""

    url: str

    @property
    def embedded(self) -> Path | None:
        parts = urlsplit(self.url)
        return Path(unquote(parts.path)) if parts.scheme == "chdb" else None

    @property
    def endpoint(self) -> Endpoint | None:
        """The server's endpoint (8123, or 8443 for https, unless the URL gives a port); None
        for embedded chdb."""
        parts = urlsplit(self.url)
        if parts.scheme == "chdb":
            return None
        secure = parts.scheme == "https"
        return Endpoint(
            parts.hostname,
            parts.port or (8443 if secure else 8123),
            unquote(parts.username or "default"),
            unquote(parts.password or ""),
            secure,
        )

    def describe(self) -> str:
        end = self.endpoint
        if end is None:
            return f"embedded ClickHouse (chdb) in {self.embedded}"
        return f"ClickHouse at {'https' if end.secure else 'http'}://{end.host}:{end.port}"


class ClickHouse:
    """A ClickHouse to run statements and queries on (see the module's docstring)."""

    def __init__(self, target: Target):
        self.target = target
        folder = target.embedded
        self._lock = threading.RLock()
        if folder is not None:
            self._session = _embedded(folder)
            self._client = None
        else:
            self._session = None
            self._client = _server(target.endpoint)

    # -- statements and queries ------------------------------------------------------------

    def command(self, sql: str, params: dict | None = None) -> None:
        self._run(sql, params, fmt="Null")

    def arrow(self, sql: str, params: dict | None = None) -> pa.Table:
        """The answer as Arrow. Timestamps come back as DuckDB gives them, without a time zone
        (the tables store them as UTC: `create_from_arrow`)."""
        return _naive_timestamps(self._run(sql, params, fmt="ArrowTable"))

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        table = self.arrow(sql, params)
        columns = [c.to_pylist() for c in table.columns]
        return list(zip(*columns)) if columns else []

    def scalar(self, sql: str, params: dict | None = None):
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def create_from_arrow(self, table: str, data: pa.Table, engine: str) -> None:
        """Create `table` (database.name) holding `data`, with the given engine clause.
        Timestamps without a time zone (DuckDB's) are stored as UTC, whatever the server's or
        the process's time zone, so that a date taken from them is the same on both engines."""
        data = _utc_timestamps(data)
        if self._session is not None:
            self.command(f"create table {table} {engine} as select * from Python(data)")  # chdb reads `data` from this frame
            return
        columns = ", ".join(f"`{f.name}` {_clickhouse_type(f)}" for f in data.schema)
        self.command(f"create table {table} ({columns}) {engine}")
        with self._lock:
            self._client.insert_arrow(table, data, settings=SETTINGS)

    def load(self, table: str, batches: pa.RecordBatchReader, engine: str) -> None:
        """Create `table` with `engine` holding the rows of `batches`, sent one batch at a time."""
        self.create_from_arrow(table, pa.Table.from_batches([], schema=batches.schema), engine)
        self.insert(table, batches)

    def insert(self, table: str, batches: pa.RecordBatchReader) -> None:
        """Append the rows of `batches` to `table` (columns in its order), one batch at a time:
        no more than a batch in this process's memory."""
        for batch in batches:
            data = _utc_timestamps(pa.Table.from_batches([batch]))
            if self._session is not None:
                self.command(f"insert into {table} select * from Python(data)")  # chdb reads `data` from this frame
            else:
                with self._lock:
                    self._client.insert_arrow(table, data, settings=SETTINGS)

    def insert_file(self, table: str, path: Path, columns: list[str]) -> None:
        """Append the rows of the Parquet file `path` (those `columns`) to `table`, streamed:
        embedded chdb reads the file with its own `file()` table function, a server is sent it
        as the body of an INSERT, never loaded whole into this process."""
        names = ", ".join(f"`{c}`" for c in columns)
        if self._session is not None:
            self.command(f"insert into {table} ({names}) select {names} from file({{path:String}}, Parquet)", {"path": str(path)})
            return
        with self._lock, open(path, "rb") as body:
            try:
                self._client.raw_insert(table, column_names=columns, insert_block=body, settings=SETTINGS, fmt="Parquet")
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ClickHouseError(f"{self.target.describe()}: {first}\n  in: insert into {table} of {path}") from e

    def _resynchronise(self) -> None:
        """After a failed query (a timeout, say), embedded chdb answered the next Arrow query
        with a stale empty message ("Unexpected empty message in IPC file format", seen on
        chdb 4.4): one throwaway query takes it, so the next reader's query is answered."""
        try:
            self._session.query("select 1", "CSV")
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass

    def _run(self, sql: str, params: dict | None, fmt: str):
        with self._lock:
            try:
                if self._session is not None:
                    result = self._session.query(sql, "ArrowTable" if fmt == "ArrowTable" else "CSV", params=params or None)
                    return result if fmt == "ArrowTable" else None
                if fmt == "ArrowTable":
                    return self._client.query_arrow(sql, parameters=params or None, settings=SETTINGS)
                self._client.command(sql, parameters=params or None, settings=SETTINGS)
                return None
            except Exception as e:  # chdb raises RuntimeError, clickhouse-connect its own errors
                if self._session is not None:
                    self._resynchronise()
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ClickHouseError(f"{self.target.describe()}: {first}\n  in: {' '.join(sql.split())[:300]}") from e


def _utc_timestamps(table: pa.Table) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is None:
            utc = pa.timestamp(f.type.unit, tz="UTC")
            table = table.set_column(i, pa.field(f.name, utc, f.nullable), table.column(i).cast(utc))
    return table


def _naive_timestamps(table: pa.Table) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            if f.type.tz not in ("UTC", "Etc/UTC"):
                raise ClickHouseError(f"column {f.name} comes back in time zone {f.type.tz}: the server's time zone must be UTC")
            table = table.set_column(
                i, pa.field(f.name, pa.timestamp(f.type.unit), f.nullable), table.column(i).cast(pa.timestamp(f.type.unit))
            )
    return table


_EMBEDDED: dict[str, object] = {}
_EMBEDDED_LOCK = threading.Lock()


def _embedded(folder: Path):
    """The process's one chdb session (chdb allows one folder per process)."""
    with _EMBEDDED_LOCK:
        key = str(folder)
        if key in _EMBEDDED:
            return _EMBEDDED[key]
        if _EMBEDDED:
            raise ClickHouseError(
                f"this process already uses the embedded ClickHouse in {next(iter(_EMBEDDED))}; chdb allows one folder per "
                f"process, so {folder} cannot be opened too"
            )
        try:
            from chdb import session
        except ImportError as e:
            raise ClickHouseError("embedded ClickHouse needs chdb: pip install 'olist-bi[chdb]'") from e
        folder.mkdir(parents=True, exist_ok=True)
        try:
            opened = session.Session(str(folder))
        except Exception as e:
            raise ClickHouseError(
                f"cannot open the embedded ClickHouse in {folder}: {str(e).strip().splitlines()[0] if str(e).strip() else e}. "
                "chdb allows one process per folder: stop the other process (an ETL run, a notebook), or serve "
                "several processes from a ClickHouse server (OLIST_CLICKHOUSE_URL=http://...)"
            ) from e
        for name, value in SETTINGS.items():
            opened.query(f"SET {name} = {value}")
        _EMBEDDED[key] = opened
        return opened


def _server(end: Endpoint):
    try:
        import clickhouse_connect
    except ImportError as e:
        raise ClickHouseError("a ClickHouse server needs clickhouse-connect: pip install 'olist-bi[clickhouse]'") from e
    try:
        return clickhouse_connect.get_client(
            host=end.host, port=end.port, username=end.user, password=end.password, secure=end.secure, settings=SETTINGS
        )
    except Exception as e:
        raise ClickHouseError(f"cannot reach ClickHouse at {end.host}:{end.port}: {e}") from e


def _clickhouse_type(field: pa.Field) -> str:
    t = field.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        base = "String"
    elif pa.types.is_boolean(t):
        base = "Bool"
    elif pa.types.is_integer(t):
        base = ("UInt" if pa.types.is_unsigned_integer(t) else "Int") + str(t.bit_width)
    elif pa.types.is_floating(t):
        base = f"Float{t.bit_width}"
    elif pa.types.is_decimal(t):
        base = f"Decimal({t.precision}, {t.scale})"
    elif pa.types.is_date(t):
        base = "Date32"
    elif pa.types.is_timestamp(t):
        base = f"DateTime64(6, '{t.tz}')" if t.tz else "DateTime64(6)"
    else:
        raise ClickHouseError(f"no ClickHouse type for column {field.name} ({t})")
    return f"Nullable({base})" if field.nullable else base

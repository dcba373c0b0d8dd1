"""ClickHouse as the engine (OLIST_WAREHOUSE_ENGINE=clickhouse): ClickHouse keeps the raw
history and builds and serves every model (warehouse.py). DuckDB only validates each drop,
in a scratch file of the run that holds the drop and the few history rows its rules read
(`mirror`); nothing of it is published. A publish is one exchange of ClickHouse's tables; a run
killed half-way through it is finished or undone at the next start (`reconcile`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import duckdb

from olist_bi.engines.base import BuildResult, Engine, Increment, Ledger, NothingToRollBack, Progress, Restored, ServerReader
from olist_bi.engines.clickhouse import warehouse
from olist_bi.engines.clickhouse.dialect import to_clickhouse_native
from olist_bi.settings import mask_url


class ClickHouseEngine(Engine):
    name = "clickhouse"
    history_in_file = False

    def __init__(self, settings, plan=None):
        super().__init__(settings, plan)
        self._raw: str | None = None  # where this run's raw history stands in ClickHouse (warehouse.start)

    @property
    def location(self) -> str:
        return f"ClickHouse {self.settings.clickhouse_database} at {mask_url(self.settings.clickhouse_url)}"

    def serves(self) -> bool:
        return warehouse.serves(self.settings, self.plan)

    def ledger(self) -> Ledger | None:
        return warehouse.ledger(self.settings)

    def extendable(self) -> bool:
        return warehouse.extendable(self.settings, self.plan)

    def fingerprint(self, source: duckdb.DuckDBPyConnection) -> str | None:
        return warehouse.fingerprint(self.settings)

    def held(self, source: duckdb.DuckDBPyConnection, table: str) -> int:
        return warehouse.held(self.settings, self.plan, table)

    def mirror(self, source: duckdb.DuckDBPyConnection, table: str, column: str, keys: str, rows: bool) -> None:
        warehouse.mirror(self.settings, self.plan, source, table, column, keys, rows)

    def columns(self, relation: str) -> list[str]:
        return warehouse.columns(self.settings, relation)

    def not_serving(self) -> str | None:
        if self.serves():
            return None
        return "ClickHouse serves no warehouse yet: `olist-bi etl run --full` builds it there"

    def start(self, source: duckdb.DuckDBPyConnection, incremental: bool) -> None:
        self._raw = warehouse.start(self.settings, self.plan, source, incremental)

    def hand_over(self, source: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...] | None) -> None:
        warehouse.merge_drop(self.settings, self.plan, source, table, key)

    def build(self, source: duckdb.DuckDBPyConnection, progress: Progress, increment: Increment | None = None) -> BuildResult:
        return warehouse.build(self.settings, self.plan, source, progress, increment, self._raw)

    def publish(self, built: Path) -> str:
        warehouse.publish(self.settings, self.plan)
        built.unlink(missing_ok=True)  # the run's scratch: its drops are in ClickHouse now
        return warehouse.generation(self.settings)

    def take_back(self) -> None:
        if warehouse.versions(self.settings):
            warehouse.rollback(self.settings, self.plan)

    def versions(self) -> list[str]:
        return warehouse.versions(self.settings)

    def rollback(self) -> Restored:
        if not warehouse.versions(self.settings):
            raise NothingToRollBack(f"ClickHouse keeps no previous warehouse of {self.settings.clickhouse_database} to roll back to")
        database = warehouse.rollback(self.settings, self.plan)
        return Restored(
            warehouse.generation(self.settings),
            len(warehouse.versions(self.settings)),
            f"ClickHouse: serving {database} again as {self.settings.clickhouse_database}",
        )

    def reconcile(self) -> list[str]:
        return warehouse.reconcile(self.settings, self.plan)

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        return warehouse.query(self.settings, sql, params)

    def reader_environment(self) -> dict[str, str]:
        reader = self.settings.clickhouse_reader_url or self.settings.clickhouse_url  # production requires the reader
        return {"OLIST_CLICKHOUSE_URL": reader, "OLIST_CLICKHOUSE_READER_URL": reader}

    def health(self) -> tuple[bool, str, str]:
        return health(self.settings)

    def bi_reader(self, tool: str, error: type[Exception] = RuntimeError) -> ServerReader:
        """The server of OLIST_CLICKHOUSE_READER_URL (else OLIST_CLICKHOUSE_URL), as its user;
        embedded chdb serves no BI tool."""
        end = warehouse.reader_endpoint(self.settings, tool, error)
        db = self.settings.clickhouse_database
        secure = "?secure=true" if end.secure else ""
        return ServerReader(
            sqlalchemy_uri=f"clickhousedb://{quote(end.user, safe='')}:XXXXXXXXXX@{end.host}:{end.port}/{db}{secure}",  # clickhouse-connect
            password=end.password,
            database=db,
            # Metabase's ClickHouse driver, in its core since 0.54; its connection properties:
            # modules/drivers/clickhouse/resources/metabase-plugin.yaml
            metabase_engine="clickhouse",
            metabase_details={
                "host": end.host,
                "port": end.port,
                "user": end.user,
                "password": end.password,
                "dbname": f"{db} {db}_semantic",  # the driver's list of databases to sync, space-separated
                "ssl": end.secure,
            },
        )

    def publishes_in_place(self) -> str:
        return "ClickHouse swapped the tables in place"

    def native_sql(self, sql: str) -> str:
        db = warehouse.databases(self.settings)
        return to_clickhouse_native(sql, warehouse.served_names(db), db.served)


def health(settings) -> tuple[bool, str, str]:
    """`olist-bi doctor`'s check of the engine: the libraries, and the server answering (each URL the
    platform uses), or embedded chdb installed (its folder is not opened: chdb allows one
    process per folder, and an ETL run may hold it)."""
    from urllib.parse import urlsplit

    try:
        import sqlglot  # noqa: F401
    except ImportError:
        return (False, "sqlglot is not installed", "pip install 'olist-bi[clickhouse]'")
    if urlsplit(settings.clickhouse_url).scheme == "chdb":
        try:
            import chdb
        except ImportError:
            return (
                False,
                "embedded ClickHouse needs chdb, which is not installed",
                "pip install 'olist-bi[chdb]', or set OLIST_CLICKHOUSE_URL to a server",
            )
        return (True, f"embedded chdb {chdb.__version__} in {urlsplit(settings.clickhouse_url).path} (one process at a time)", "")
    from olist_bi.engines.clickhouse.connection import ClickHouse, Target

    found = []
    for name, url in (("OLIST_CLICKHOUSE_URL", settings.clickhouse_url), ("OLIST_CLICKHOUSE_READER_URL", settings.clickhouse_reader_url)):
        if not url:
            continue
        try:
            found.append(f"{name}: ClickHouse {ClickHouse(Target(url)).scalar('select version()')}")
        except Exception as e:  # noqa: BLE001 - the check reports, never raises
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return (
                False,
                f"cannot connect with {name} ({mask_url(url)}): {mask_url(first)}",
                f"start ClickHouse or fix {name} (docs/clickhouse.md)",
            )
    return (True, "; ".join(found), "")

"""ClickHouse as the engine (OLIST_WAREHOUSE_ENGINE=clickhouse): the models are built again in
ClickHouse from the DuckDB build (after an increment, only what its drop touches, from the raw
history ClickHouse keeps beside each generation) and served there (warehouse.py). The DuckDB
file is still built and published beside it: it keeps raw history and the quarantine for the
next run.
ClickHouse publishes first; a run killed between the two publishes is undone at the next start
(`reconcile`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import duckdb

from olist_bi.engines.base import Engine, Increment, NothingToRollBack, Progress, Restored, ServerReader
from olist_bi.engines.clickhouse import warehouse
from olist_bi.engines.clickhouse.dialect import to_clickhouse_native
from olist_bi.engines.duckdb import warehouse as duckdb_warehouse
from olist_bi.engines.duckdb.engine import DuckDBEngine
from olist_bi.runtime import faults
from olist_bi.settings import mask_url


class ClickHouseEngine(Engine):
    name = "clickhouse"

    def __init__(self, settings, plan=None):
        super().__init__(settings, plan)
        self.file = DuckDBEngine(settings, plan)  # the DuckDB file: raw history, quarantine
        self._raw: str | None = None  # where this run's raw history stands in ClickHouse (warehouse.start)

    def serves(self) -> bool:
        return warehouse.serves(self.settings, self.plan)

    def not_serving(self) -> str | None:
        if self.serves():
            return None
        return "ClickHouse serves no warehouse yet: `olist-bi etl run --full` builds it there"

    def build(self, source: duckdb.DuckDBPyConnection, progress: Progress, increment: Increment | None = None) -> dict[str, int]:
        return warehouse.build(self.settings, self.plan, source, progress, increment, self._raw)

    def start(self, source: duckdb.DuckDBPyConnection, incremental: bool) -> None:
        self._raw = warehouse.start(self.settings, self.plan, source, incremental)

    def hand_over(self, source: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...] | None) -> None:
        if self._raw is not None:  # else the build loads the DuckDB build's raw tables whole
            warehouse.merge_drop(self.settings, self.plan, source, table, key)

    def publish(self, built: Path) -> Path:
        warehouse.publish(self.settings, self.plan)
        faults.point("between_engines")
        try:
            return self.file.publish(built)
        except BaseException:
            self._rollback_clickhouse()
            raise

    def take_back(self) -> None:
        self._rollback_clickhouse()
        self.file.take_back()

    def _rollback_clickhouse(self) -> None:
        if warehouse.versions(self.settings):
            warehouse.rollback(self.settings, self.plan)

    def versions(self) -> list[str]:
        return warehouse.versions(self.settings) if self.file.versions() else []

    def rollback(self) -> Restored:
        if not warehouse.versions(self.settings):
            raise NothingToRollBack(f"ClickHouse keeps no previous warehouse of {self.settings.clickhouse_database} to roll back to")
        if not self.file.versions():
            self.file.rollback()  # raises, naming the DuckDB file's missing generation; nothing changed
        database = warehouse.rollback(self.settings, self.plan)
        restored = self.file.rollback()
        return Restored(restored.generation, restored.kept, f"ClickHouse: serving {database} again as {self.settings.clickhouse_database}")

    def reconcile(self) -> list[str]:
        return warehouse.reconcile(self.settings, self.plan, _served_runs(self.settings.warehouse_path))

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        return warehouse.query(self.settings, sql, params)

    def reader_environment(self) -> dict[str, str]:
        reader = self.settings.clickhouse_reader_url or self.settings.clickhouse_url  # production requires the reader
        return {**self.file.reader_environment(), "OLIST_CLICKHOUSE_URL": reader, "OLIST_CLICKHOUSE_READER_URL": reader}

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


def _served_runs(served: Path) -> set[int]:
    """The runs whose files the served DuckDB file holds (its meta.loads); none without one."""
    try:
        with duckdb_warehouse.connect(served) as con:
            return {r for (r,) in con.execute("select distinct run_id from meta.loads").fetchall()}
    except duckdb_warehouse.WarehouseMissing:
        return set()


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

"""DuckDB as the engine (the default): the DuckDB file the pipeline builds is the warehouse.
Publishing swaps the served path's link to the new generation (publish.py); readers lease the
current generation (warehouse.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from olist_bi.engines.base import Engine, Increment, NothingToRollBack, Progress, Restored
from olist_bi.engines.duckdb import publish, warehouse


class DuckDBEngine(Engine):
    name = "duckdb"

    @property
    def served(self) -> Path:
        return self.settings.warehouse_path

    def serves(self) -> bool:
        return self.served.exists()

    def build(self, source: duckdb.DuckDBPyConnection, progress: Progress, increment: Increment | None = None) -> None:
        return None  # the DuckDB build is the warehouse

    def publish(self, built: Path) -> Path:
        return publish.publish(built, self.served)

    def take_back(self) -> None:
        if publish.versions(self.served):
            publish.rollback(self.served)

    def versions(self) -> list[Path]:
        return publish.versions(self.served)

    def rollback(self) -> Restored:
        if not publish.versions(self.served):
            raise NothingToRollBack(f"no previous warehouse in {publish.generations_dir(self.served)} to roll back to")
        restored = publish.rollback(self.served)
        return Restored(restored, len(publish.versions(self.served)))

    def reconcile(self) -> list[str]:
        return []  # one atomic link swap: nothing can be half-served

    def reader_environment(self) -> dict[str, str]:
        return {"OLIST_WAREHOUSE_PATH": str(warehouse.reader_path(self.served))}  # the reader copy: no raw, no quarantine

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        limits = warehouse.limits(self.settings)
        with warehouse.connect(self.served, query_limits=limits) as con:
            return warehouse.fetch_capped(con.execute(sql, list(params)), limits.max_result_bytes)

"""DuckDB as the engine (the default): the DuckDB file the pipeline builds is the warehouse.
Publishing swaps the served path's link to the new generation (publish.py); readers lease the
current generation (warehouse.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from olist_bi.engines.base import Damaged, Engine, Increment, Ledger, NothingToRollBack, Progress, Restored
from olist_bi.engines.duckdb import publish, warehouse


class DuckDBEngine(Engine):
    name = "duckdb"

    @property
    def served(self) -> Path:
        return self.settings.warehouse_path

    def serves(self) -> bool:
        return self.served.exists()

    def ledger(self) -> Ledger | None:
        served = self.served
        if not served.exists() and not served.is_symlink():
            return None
        # Through the process's provider: the current generation by its own name (a long-lived
        # process must not be handed a database it opened before the last publish), and no
        # second open with another configuration (DuckDB refuses one) when this process serves too.
        columns = ("run_id", "source_file", "path", "sha256", "rows_read", "rows_loaded", "rows_quarantined")
        try:
            with warehouse.connect(served) as con:
                try:
                    rows = con.execute(f"select {', '.join(columns)} from meta.loads order by run_id, source_file").fetchall()
                except duckdb.Error as e:  # it opens, but holds no ledger of ours
                    raise warehouse.WarehouseDamaged(served, warehouse.current(served), str(e)) from None
            return Ledger(warehouse.current(served).name, [dict(zip(columns, row)) for row in rows])
        except warehouse.WarehouseDamaged as e:
            raise Damaged(str(e)) from None
        except warehouse.WarehouseMissing:
            return None

    def fingerprint(self, source: duckdb.DuckDBPyConnection) -> str | None:
        try:  # the build starts from a copy of the served file
            row = source.execute("select fingerprint from meta.build").fetchone()
        except duckdb.CatalogException:
            return None
        return row[0] if row else None

    def columns(self, relation: str) -> list[str]:
        with warehouse.connect(self.served) as con:
            try:
                return [row[0] for row in con.execute(f"describe {relation}").fetchall()]
            except duckdb.CatalogException:
                return []

    def build(self, source: duckdb.DuckDBPyConnection, progress: Progress, increment: Increment | None = None) -> None:
        return None  # the DuckDB build is the warehouse

    def publish(self, built: Path) -> str:
        return str(publish.publish(built, self.served))

    def take_back(self) -> None:
        if publish.versions(self.served):
            publish.rollback(self.served)

    def versions(self) -> list[Path]:
        return publish.versions(self.served)

    def rollback(self) -> Restored:
        if not publish.versions(self.served):
            raise NothingToRollBack(f"no previous warehouse in {publish.generations_dir(self.served)} to roll back to")
        restored = publish.rollback(self.served)
        return Restored(str(restored), len(publish.versions(self.served)))

    def reconcile(self) -> list[str]:
        return []  # one atomic link swap: nothing can be half-served

    def reader_environment(self) -> dict[str, str]:
        return {"OLIST_WAREHOUSE_PATH": str(warehouse.reader_path(self.served))}  # the reader copy: no raw, no quarantine

    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        limits = warehouse.limits(self.settings)
        with warehouse.connect(self.served, query_limits=limits) as con:
            return warehouse.fetch_capped(con.execute(sql, list(params)), limits.max_result_bytes)

"""Run compiled metric queries against the served warehouse, and show their results.

Queries go through the process's warehouse connection provider (`olist_bi.engines.duckdb.warehouse`): the
same read-only, locked-down DuckDB, opened once per published generation, that the BI tools
read. With OLIST_WAREHOUSE_ENGINE=clickhouse, `answer` runs them on ClickHouse instead
(`olist_bi.engines.clickhouse.warehouse.query`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

from olist_bi.engines.duckdb import warehouse
from olist_bi.semantic.catalog import Metric
from olist_bi.semantic.compiler import Compiled
from olist_bi.engines.duckdb.warehouse import WarehouseMissing, connect

__all__ = ["WarehouseMissing", "answer", "connect", "run", "render", "format_value"]


def run(compiled: Compiled, path: Path, limits: warehouse.Limits | None = None) -> list[tuple]:
    """The rows of a compiled query on the DuckDB warehouse served at `path`, within `limits`
    (time and answer size) when given."""
    limits = limits or warehouse.Limits()
    with warehouse.connect(path, query_limits=limits) as con:
        return warehouse.fetch_capped(con.execute(compiled.sql, compiled.params), limits.max_result_bytes)


def answer(compiled: Compiled, settings) -> list[tuple]:
    """The rows of a compiled query on the served warehouse of the engine `settings` name."""
    from olist_bi.engines.base import engine

    return engine(settings).query(compiled.sql, compiled.params)


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def format_value(value, metric: Metric | None) -> str:
    """A value as a person reads it: thousands separators, two decimals for money, percents."""
    if value is None:
        return "-"
    if metric is None:
        return str(_plain(value))
    if metric.format == "currency":
        return f"{float(value):,.2f}"
    if metric.format == "percent":
        return f"{float(value):.1%}"
    if metric.format == "count":
        return f"{int(value):,}"
    return f"{float(value):,.2f}"


def render(compiled: Compiled, rows: list[tuple], fmt: str) -> str:
    """Rows as an aligned table, CSV or JSON (raw values in CSV and JSON)."""
    columns = compiled.columns
    if fmt == "json":
        return json.dumps([{c: _plain(v) for c, v in zip(columns, row)} for row in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
        return out.getvalue().rstrip("\n")
    by_name = {m.name: m for m in compiled.metrics}
    cells = [[format_value(v, by_name.get(c)) for c, v in zip(columns, row)] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [c in by_name for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])

"""The warehouse's metrics from Python: the semantic layer as a library, for analysts.

    >>> from olist_bi import api
    >>> api.metrics()                                   # what there is to ask for
    >>> api.query(["revenue", "orders"], by=["purchase_date:month"], where={"customer_state": "SP"})

Every answer is compiled by the same semantic layer as `olist-bi semantic query` and the BI
tools' charts, and runs read-only on the served warehouse through the same locked-down
connection provider (`olist_bi.engines.duckdb.warehouse`). A wrong metric, dimension, grain or filter value
raises `QueryError`, whose message names the choices.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa

from olist_bi.engines.base import engine
from olist_bi.engines.duckdb import warehouse
from olist_bi.semantic.catalog import CatalogError, UnknownName, load
from olist_bi.semantic.compiler import CompileError, Filter, Query, available, compile_query, parse_by
from olist_bi.settings import Settings


class QueryError(ValueError):
    """The question cannot be answered as asked; the message says why and names the choices."""


# A query stopped at a reader's limit (OLIST_QUERY_TIMEOUT_SECONDS, OLIST_QUERY_MAX_RESULT_MB).
LimitReached = warehouse.LimitReached


def metrics():
    """The metrics, one row each: name, label, format, unit, model, additive, description.

    A pandas DataFrame; `api.query` takes the names."""
    rows = [
        {
            "name": m.name,
            "label": m.label,
            "format": m.format,
            "unit": m.unit,
            "model": m.model,
            "additive": m.additive,
            "description": m.description,
        }
        for m in load().metrics.values()
    ]
    return pd.DataFrame(rows)


def dimensions():
    """The dimensions, one row each: name, label, type, grains (dates), the models that offer
    it, description. A pandas DataFrame; `by=` and `where=` take the names."""
    catalog = load()
    rows = [
        {
            "name": d.name,
            "label": d.label,
            "type": d.type,
            "grains": list(d.grains),
            "models": [n for n, model in catalog.models.items() if available(catalog, d, model)],
            "description": d.description,
        }
        for d in catalog.dimensions.values()
    ]
    return pd.DataFrame(rows)


def query(
    metrics: str | list[str],
    by: str | list[str] | None = None,
    where: dict[str, object] | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    complete_periods: bool = False,
    order_by: str | list[str] | None = None,
    limit: int | None = None,
    arrow: bool = False,
    warehouse_path: Path | str | None = None,
):
    """Answer metrics, grouped and filtered, from the served warehouse.

    metrics           a metric name or a list of them (`api.metrics()` lists them)
    by                dimensions to group by; dates take a grain: "purchase_date:month"
    where             {dimension: value or list of values}: keep rows with any of the values
    start, end        an inclusive purchase-date range (a date or "YYYY-MM-DD")
    complete_periods  only the warehouse's complete months, as the dashboards' time series
    order_by          a column name, or "-name" for descending; several in a list
                      (default: by the groups, as the semantic layer orders them)
    limit             at most this many rows
    arrow             a pyarrow Table (money as exact decimals) instead of a pandas
                      DataFrame (money as floats, dates as datetime64)
    warehouse_path    a DuckDB warehouse file (default: the engine's served warehouse:
                      OLIST_WAREHOUSE_PATH or $OLIST_HOME's, or ClickHouse's with
                      OLIST_WAREHOUSE_ENGINE=clickhouse)

    Returns one row per group, the groups' columns first, then one column per metric.
    """
    metric_names = [metrics] if isinstance(metrics, str) else list(metrics)
    groups = [by] if isinstance(by, str) else list(by or [])
    filters = [
        Filter(name, tuple(str(v) for v in (values if isinstance(values, (list, tuple, set)) else [values])))
        for name, values in (where or {}).items()
    ]
    try:
        catalog = load()
        q = Query(metric_names, [parse_by(g) for g in groups], filters, _date(start, "start"), _date(end, "end"), complete_periods)
        compiled = compile_query(q, catalog)
    except (UnknownName, CompileError, CatalogError) as e:
        raise QueryError(str(e)) from None
    sql = _ordered_and_limited(compiled.sql, compiled.columns, order_by, limit)
    settings = Settings.from_env()
    serving = engine(settings)
    if warehouse_path or serving.history_in_file:  # a DuckDB file
        path = Path(warehouse_path) if warehouse_path else settings.warehouse_path
        limits = warehouse.limits(settings)  # OLIST_QUERY_TIMEOUT_SECONDS and OLIST_QUERY_MAX_RESULT_MB
        with warehouse.connect(path, query_limits=limits) as con:
            if filters:
                _check_values(lambda sql, params: con.execute(sql, params).fetchall(), filters, catalog)
            table = _arrow_capped(con.execute(sql, compiled.params), limits.max_result_bytes)
    else:  # the engine's server (ClickHouse), within the same limits
        if filters:
            _check_values(serving.query, filters, catalog)
        rows = serving.query(sql, compiled.params)
        table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(compiled.columns)})
    if arrow:
        return table  # money stays exact (decimal128)
    frame = table.to_pandas(date_as_object=False)  # dates as datetime64, ready to plot
    for field in table.schema:
        if pa.types.is_decimal(field.type):
            frame[field.name] = frame[field.name].astype("float64")
    return frame


def _ordered_and_limited(sql: str, columns: list[str], order_by: str | list[str] | None, limit: int | None) -> str:
    """The compiled query wrapped to order its answer by `order_by` and keep `limit` rows, or as it is when asked neither."""
    orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
    if orders or limit is not None:
        terms = []
        for term in orders:
            name = term.removeprefix("-")
            if name not in columns:
                raise QueryError(f"cannot order by {name!r}: the answer's columns are {', '.join(columns)}")
            terms.append(f'"{name}" {"desc" if term.startswith("-") else "asc"} nulls last')
        sql = f"select * from (\n{sql}\n) as answer" + (f"\norder by {', '.join(terms)}" if terms else "")
        if limit is not None:
            if not isinstance(limit, int) or limit < 0:
                raise QueryError(f"limit is a whole number of rows, got {limit!r}")
            sql += f"\nlimit {limit}"
    return sql


def _arrow_capped(result, cap: int | None, batch: int = 100_000) -> pa.Table:
    """The answer as an Arrow table, batch by batch, refused once it passes `cap` bytes."""
    reader = result.fetch_record_batch(batch)
    batches, size = [], 0
    for chunk in reader:
        size += chunk.nbytes
        warehouse.check_size(size, cap)
        batches.append(chunk)
    return pa.Table.from_batches(batches, schema=reader.schema)


def _date(value, what: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise QueryError(f"{what} is a date, YYYY-MM-DD; got {value!r}") from None


def _check_values(ask, filters: list[Filter], catalog) -> None:
    """A filter value the warehouse does not hold would silently answer nothing: refuse it,
    naming the values there are."""
    for f in filters:
        dimension = catalog.dimension(f.dimension)
        if dimension.type == "time":
            continue
        # any metric the dimension groups, one that needs no other dimension first
        metric = min(
            (m for m in catalog.metrics.values() if available(catalog, dimension, catalog.models[m.model])), key=lambda m: len(m.requires)
        )
        groups = [parse_by(f.dimension)] + [parse_by(d) for d in metric.requires if d != f.dimension]
        listing = compile_query(Query([metric.name], groups), catalog)
        known = {str(r[0]) for r in ask(listing.sql, listing.params) if r[0] is not None}
        missing = [v for v in f.values if v not in known]
        if missing:
            shown = ", ".join(sorted(known)[:40]) + (" ..." if len(known) > 40 else "")
            raise QueryError(f"{f.dimension} has no value {', '.join(map(repr, missing))}; its values: {shown}")

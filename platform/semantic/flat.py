"""A model as one flat relation, for BI tools that want a table and metric expressions over
it (Superset's datasets and saved metrics, Metabase's native questions).

The ETL publishes each flat relation as a view in the warehouse, `semantic.<view>`
(`create_views`), so Superset reads it as a plain table: a virtual dataset's SQL is parsed
and wrapped on every chart request, which cost tens of milliseconds per request here.

The relation has one column per dimension the model offers (named after the dimension,
dates not truncated: the BI tool applies the grain) and one per column the model's metrics
read, named `<alias>__<column>` (`m__payment_value`, `o__order_status`). A metric's
expression over it is its compiled SQL with each `alias.column` renamed so. Tests check that
every metric over the flat relation equals the compiler's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from olist_bi.semantic.catalog import Catalog, Metric, SemanticModel, load
from olist_bi.semantic.compiler import available, dimension_sql, metric_sql, window_condition


SCHEMA = "semantic"
# A boolean column of every flat relation: the row's range dimension (the purchase date, a
# cohort's month) falls in the reporting window of complete months. Time series filter on it.
WINDOW_COLUMN = "in_reporting_window"


@dataclass(frozen=True)
class FlatModel:
    model: SemanticModel
    sql: str
    dimensions: tuple[str, ...]
    time_dimensions: tuple[str, ...]
    measure_columns: tuple[str, ...]
    metrics: dict[str, str]  # metric name -> expression over the flat relation

    @property
    def columns(self) -> tuple[str, ...]:
        """The relation's columns, in order."""
        return self.dimensions + (WINDOW_COLUMN,) + self.measure_columns

    @property
    def view(self) -> str:
        """The view's name in schema `semantic` (and the Superset dataset's)."""
        return "olist_" + self.model.name.removeprefix("fact_").removeprefix("mart_")


def _aliases(model: SemanticModel) -> set[str]:
    return {"m", *model.entities.values(), *model.joins}


def _references(sql: str, aliases: set[str]) -> list[tuple[str, str]]:
    pattern = re.compile(r"\b(" + "|".join(sorted(aliases)) + r")\.([a-z_][a-z0-9_]*)\b")
    return list(dict.fromkeys(pattern.findall(sql)))


def flatten_expression(sql: str, model: SemanticModel) -> str:
    pattern = re.compile(r"\b(" + "|".join(sorted(_aliases(model))) + r")\.([a-z_][a-z0-9_]*)\b")
    return pattern.sub(r"\1__\2", sql)


def flat_model(name: str, catalog: Catalog | None = None) -> FlatModel:
    catalog = catalog or load()
    model = catalog.models[name]
    metrics: dict[str, Metric] = {m.name: m for m in catalog.metrics.values() if m.model == name}
    dims = [d for d in catalog.dimensions.values() if available(catalog, d, model)]
    selects, used = [], []
    for d in dims:
        expression = dimension_sql(catalog, d, model)
        selects.append(f"{expression} as {d.name}")
        used.append(expression)
    window = window_condition(model) or "true"
    selects.append(f"{window} as {WINDOW_COLUMN}")
    used.append(window)
    rendered = {m: metric_sql(catalog, metric) for m, metric in metrics.items()}
    measures = []
    for sql in rendered.values():
        for alias, column in _references(sql, _aliases(model)):
            if (alias, column) not in measures:
                measures.append((alias, column))
    selects += [f"{alias}.{column} as {alias}__{column}" for alias, column in measures]
    used += [f"{alias}." for alias, _ in measures]
    text = " ".join(used)
    joins = [join for alias, join in model.joins.items() if re.search(rf"\b{alias}\.", text)]
    sql = "select\n" + ",\n".join(f"    {s}" for s in selects) + f"\nfrom {model.name} as m" + "".join(f"\n{j}" for j in joins)
    return FlatModel(
        model=model,
        sql=sql,
        dimensions=tuple(d.name for d in dims),
        time_dimensions=tuple(d.name for d in dims if d.type == "time"),
        measure_columns=tuple(f"{a}__{c}" for a, c in measures),
        metrics={m: flatten_expression(sql_, model) for m, sql_ in rendered.items()},
    )


def create_views(con, catalog: Catalog | None = None) -> dict[str, int]:
    """Create (or replace) `semantic.<view>` for every model in the warehouse being built;
    return each view's row count. A view must have its model's rows (its joins are to one
    row at most): a fan-out would multiply every metric, so it raises ValueError."""
    catalog = catalog or load()
    con.execute(f"create schema if not exists {SCHEMA}")
    rows = {}
    for name in catalog.models:
        flat = flat_model(name, catalog)
        con.execute(f"create or replace view {SCHEMA}.{flat.view} as\n{flat.sql}")
        ours, theirs = con.execute(f"select (select count(*) from {SCHEMA}.{flat.view}), (select count(*) from {name})").fetchone()
        if ours != theirs:
            raise ValueError(f"view {SCHEMA}.{flat.view} has {ours} rows, its model {name} {theirs}: a join fans out")
        rows[f"{SCHEMA}.{flat.view}"] = ours
    return rows

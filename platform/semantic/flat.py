"""A model as one flat relation, for BI tools that want a table and metric expressions over
it (Superset's virtual datasets and saved metrics, Metabase's native questions).

The relation has one column per dimension the model offers (named after the dimension,
dates not truncated: the BI tool applies the grain) and one per column the model's metrics
read, named `<alias>__<column>` (`m__payment_value`, `o__order_status`). A metric's
expression over it is its compiled SQL with each `alias.column` renamed so. Tests check that
every metric over the flat relation equals the compiler's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from olist_bi.semantic.catalog import Catalog, Metric, Model, load
from olist_bi.semantic.compiler import available, dimension_sql, metric_sql


@dataclass(frozen=True)
class FlatModel:
    model: Model
    sql: str
    dimensions: tuple[str, ...]
    time_dimensions: tuple[str, ...]
    measure_columns: tuple[str, ...]
    metrics: dict[str, str]  # metric name -> expression over the flat relation


def _aliases(model: Model) -> set[str]:
    return {"m", *model.entities.values(), *model.joins}


def _references(sql: str, aliases: set[str]) -> list[tuple[str, str]]:
    pattern = re.compile(r"\b(" + "|".join(sorted(aliases)) + r")\.([a-z_][a-z0-9_]*)\b")
    return list(dict.fromkeys(pattern.findall(sql)))


def flatten_expression(sql: str, model: Model) -> str:
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

"""The compiler: metrics + dimensions + filters + grain + range -> one DuckDB statement.

Templates render in Jinja's sandbox with strict undefined. Identifiers in the SQL come only
from the catalog; every value a user gives is a bound parameter (`?`), never spliced into the
text. Metrics reading the same model share one aggregate query; queries on several models are
joined on the dimensions asked for.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from dataclasses import dataclass, field

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from olist_bi.semantic.catalog import Catalog, Dimension, Metric, SemanticModel, load

ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)


class CompileError(ValueError):
    """The query cannot be compiled as asked; the message says why and what would work."""


@dataclass(frozen=True)
class GroupBy:
    dimension: str
    grain: str | None = None


@dataclass(frozen=True)
class Filter:
    dimension: str
    values: tuple[str, ...]


@dataclass
class Query:
    metrics: list[str]
    by: list[GroupBy] = field(default_factory=list)
    where: list[Filter] = field(default_factory=list)
    start: dt.date | None = None  # inclusive, on the models' range dimension
    end: dt.date | None = None  # inclusive
    complete_periods: bool = False  # only the warehouse's reporting window, on the range dimension


def window_condition(model: SemanticModel) -> str | None:
    """The condition complete periods add for a model: its rows in the reporting window of
    complete months (int_reporting_window), what time series show by default so that the sparse
    first and last months of the data are not drawn as collapses. The ETL stores it per row
    (None: the model is complete by construction)."""
    return None if model.always_complete else f"m.{model.window_column}"


@dataclass
class Compiled:
    sql: str
    params: list
    columns: list[str]
    metrics: list[Metric]


def parse_by(text: str) -> GroupBy:
    """`customer_state` or `purchase_date:month`."""
    name, _, grain = text.partition(":")
    return GroupBy(name.strip(), grain.strip() or None)


def parse_where(text: str) -> Filter:
    """`customer_state=SP` or `customer_state=SP,RJ` (any of the values)."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise CompileError(f"a filter is DIMENSION=VALUE[,VALUE...], got {text!r}")
    return Filter(name.strip(), tuple(v for v in values.split(",")))


def render(catalog: Catalog, template: str, context: dict, what: str) -> str:
    try:
        return _compiled(catalog.macros + template).render(**context).strip()
    except UndefinedError:
        raise
    except TemplateError as e:
        raise CompileError(f"{what}: {e}") from None


@lru_cache(maxsize=2048)
def _compiled(source: str):
    """A template compiled once per process: compiling costs milliseconds, rendering microseconds."""
    return ENVIRONMENT.from_string(source)


def dimension_sql(catalog: Catalog, dimension: Dimension, model: SemanticModel, grain: str | None = None, for_metric: str = "") -> str:
    """The SQL of a dimension on a model, truncated to `grain` for time dimensions (or the
    column that stores it at that grain)."""
    template = dimension.stored_grains.get(grain, dimension.sql) if grain is not None else dimension.sql
    try:
        sql = render(catalog, template, dict(model.entities), f"dimension {dimension.name}")
    except UndefinedError:
        # The dimension needs an entity (an item, a payment, ...) the model does not offer.
        offered = ", ".join(d.name for d in catalog.dimensions.values() if available(catalog, d, model))
        subject = f"metric {for_metric} (model {model.name})" if for_metric else f"model {model.name}"
        raise CompileError(f"dimension {dimension.name} is not available for {subject}; it offers: {offered}") from None
    if grain is not None and grain not in dimension.stored_grains:
        sql = render(catalog, "{{ date_grain(column, grain) }}", {"column": sql, "grain": grain}, f"dimension {dimension.name}")
    return sql


def available(catalog: Catalog, dimension: Dimension, model: SemanticModel) -> bool:
    """Whether a model offers what the dimension's template needs."""
    try:
        render(catalog, dimension.sql, dict(model.entities), dimension.name)
    except UndefinedError:
        return False
    return True


def order_sql(catalog: Catalog, dimension: Dimension, column: str | None = None) -> str | None:
    """A dimension's own order (its buckets' places) over `column`, the dimension's values
    (its name by default); None for a dimension listed by value."""
    if not dimension.order:
        return None
    return render(catalog, dimension.order, {"column": column or dimension.name}, f"dimension {dimension.name}")


def metric_sql(catalog: Catalog, metric: Metric) -> str:
    """The aggregate expression of a metric over its model (aliased `m`, with its joins)."""
    model = catalog.models[metric.model]
    try:
        return render(catalog, metric.sql, dict(model.entities), f"metric {metric.name}")
    except UndefinedError as e:
        raise CompileError(f"metric {metric.name}: its template uses what model {model.name} does not offer: {e}") from None


def _check_grain(dimension: Dimension, grain: str | None) -> str | None:
    if dimension.type != "time":
        if grain is not None:
            raise CompileError(f"dimension {dimension.name} has no grains; use it without ':{grain}'")
        return None
    grain = grain or dimension.default_grain
    if grain not in dimension.grains:
        raise CompileError(f"dimension {dimension.name} has no grain {grain!r}; its grains: {', '.join(dimension.grains)}")
    return grain


def _bind(dimension: Dimension, value: str):
    """A filter value as the parameter to bind: text, a date or an integer, never SQL."""
    if dimension.type == "time":
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise CompileError(f"dimension {dimension.name} takes dates as YYYY-MM-DD, got {value!r}") from None
    if dimension.type == "integer":
        try:
            return int(value.strip())
        except ValueError:
            raise CompileError(f"dimension {dimension.name} takes whole numbers, got {value!r}") from None
    return value


def compile_query(query: Query, catalog: Catalog | None = None) -> Compiled:
    """Compile a query into one readable DuckDB statement with bound parameters."""
    catalog = catalog or load()
    metrics = _metrics_asked(query, catalog)
    by = _groups_asked(query, catalog)
    where = [(catalog.dimension(f.dimension), f.values) for f in query.where]
    _check_range(query)
    _check_requirements(metrics, by, where)

    parts, params = [], []
    for index, (model_name, model_metrics) in enumerate(_by_model(metrics).items()):
        body, model_params = _model_query(catalog, catalog.models[model_name], model_metrics, by, where, query)
        parts.append((f"q{index}", model_metrics, body))
        params += model_params

    names = [d.name for d, _ in by]
    columns = names + [m.name for m in metrics]
    ctes = ",\n".join(f"{alias} as (\n{body}\n)" for alias, _, body in parts)
    ctes, final = _ordered(catalog, by, ctes, _joined(parts, names, metrics))
    sql = f"with {ctes}\n" + "\n".join(final)
    return Compiled(sql, params, columns, metrics)


def _metrics_asked(query: Query, catalog: Catalog) -> list[Metric]:
    """The query's metrics, each once in the order asked for; at least one."""
    if not query.metrics:
        raise CompileError(f"name at least one metric; known metrics: {', '.join(sorted(catalog.metrics))}")
    return [catalog.metric(name) for name in dict.fromkeys(query.metrics)]


def _groups_asked(query: Query, catalog: Catalog) -> list[tuple[Dimension, str | None]]:
    """The query's groups as (dimension, grain), each dimension once, a time dimension's grain checked or its default."""
    by = [(catalog.dimension(g.dimension), g.grain) for g in query.by]
    by = [(d, _check_grain(d, grain)) for d, grain in by]
    if len({d.name for d, _ in by}) != len(by):
        raise CompileError("each dimension can be grouped by once")
    return by


def _check_range(query: Query) -> None:
    """The range does not start after it ends."""
    if query.start and query.end and query.start > query.end:
        raise CompileError(f"the range starts ({query.start}) after it ends ({query.end})")


def _check_requirements(metrics: list[Metric], by: list[tuple[Dimension, str | None]], where: list[tuple[Dimension, tuple]]) -> None:
    """A metric's required dimensions: grouped by, or filtered to a single value."""
    settled = {dim.name for dim, _ in by} | {dim.name for dim, values in where if len(values) == 1}
    for metric in metrics:
        missing = [d for d in metric.requires if d not in settled]
        if missing:
            raise CompileError(f"metric {metric.name} needs --by {', '.join(missing)} (or --where with one value of it)")


def _by_model(metrics: list[Metric]) -> dict[str, list[Metric]]:
    """The metrics by the model they read, models in the order of their first metric."""
    by_model: dict[str, list[Metric]] = {}
    for metric in metrics:
        by_model.setdefault(metric.model, []).append(metric)
    return by_model


def _model_query(
    catalog: Catalog,
    model: SemanticModel,
    model_metrics: list[Metric],
    by: list[tuple[Dimension, str | None]],
    where: list[tuple[Dimension, tuple]],
    query: Query,
) -> tuple[str, list]:
    """The aggregate query of the metrics reading one model, and the parameters it binds."""
    first = model_metrics[0].name
    selects = [f"{dimension_sql(catalog, d, model, grain, first)} as {d.name}" for d, grain in by]
    selects += [f"{metric_sql(catalog, m)} as {m.name}" for m in model_metrics]
    conditions, params = _conditions(catalog, model, first, where, query)
    # No trailing commas, standard casts: the same SQL runs on DuckDB and PostgreSQL.
    lines = ["    select", ",\n".join(f"        {s}" for s in selects), f"    from {model.name} as m"]
    used = " ".join(selects + conditions)
    lines += [f"    {join}" for alias, join in model.joins.items() if re.search(rf"\b{alias}\.", used)]
    if conditions:
        lines.append("    where " + "\n      and ".join(conditions))
    if by:
        lines.append("    group by " + ", ".join(str(i + 1) for i in range(len(by))))
    return "\n".join(lines), params


def _conditions(
    catalog: Catalog, model: SemanticModel, first: str, where: list[tuple[Dimension, tuple]], query: Query
) -> tuple[list[str], list]:
    """A model's conditions and their parameters: the filters, the reporting window, then the range."""
    conditions, params = [], []
    for dimension, values in where:
        column = dimension_sql(catalog, dimension, model, None, first)
        conditions.append(f"{column} in ({', '.join('?' for _ in values)})")
        params.extend(_bind(dimension, v) for v in values)
    window = window_condition(model) if query.complete_periods else None
    if window:
        conditions.append(window)
    range_conditions, range_params = _range_conditions(catalog, model, first, query)
    return conditions + range_conditions, params + range_params


def _range_conditions(catalog: Catalog, model: SemanticModel, first: str, query: Query) -> tuple[list[str], list]:
    """The conditions of the query's range on the model's range dimension, and their parameters."""
    conditions, params = [], []
    if query.start or query.end:
        column = dimension_sql(catalog, catalog.dimensions[model.range_dimension], model, None, first)
        if query.start:
            conditions.append(f"{column} >= ?")
            params.append(query.start)
        if query.end:
            conditions.append(f"{column} <= ?")
            params.append(query.end)
    return conditions, params


def _joined(parts: list[tuple[str, list[Metric], str]], names: list[str], metrics: list[Metric]) -> list[str]:
    """The final select over the per-model queries: the one query, or all of them joined on the groups' columns."""
    if len(parts) == 1:
        return ["select *", "from q0"]
    keys = [f"coalesce({', '.join(f'{alias}.{n}' for alias, _, _ in parts)}) as {n}" for n in names]
    alias_of = {m.name: alias for alias, ms, _ in parts for m in ms}
    values = [f"{alias_of[m.name]}.{m.name}" for m in metrics]  # in the order asked for
    final = ["select", ",\n".join(f"    {c}" for c in keys + values), "from q0"]
    for k, (alias, _, _) in enumerate(parts[1:], start=1):
        if names:
            # match on the keys found so far, whichever earlier query had the row
            on = " and ".join(f"{_found_so_far(n, k)} is not distinct from {alias}.{n}" for n in names)
            final.append(f"full outer join {alias} on {on}")
        else:
            final.append(f"cross join {alias}")
    return final


def _ordered(catalog: Catalog, by: list[tuple[Dimension, str | None]], ctes: str, final: list[str]) -> tuple[str, list[str]]:
    """The CTEs and the final select, ordered by the groups: by their own order if a dimension has one, else by value."""
    ordered = [d for d, _ in by if d.order]
    if ordered:
        # A dimension with its own order (buckets): sort by its place, over the answer's columns.
        ctes += ",\nanswer as (\n" + "\n".join(f"    {line}" for line in final) + "\n)"
        keys = [order_sql(catalog, d) or d.name for d, _ in by]
        return ctes, ["select *", "from answer", "order by " + ", ".join(keys)]
    if by:
        final.append("order by " + ", ".join(d.name for d, _ in by))
    return ctes, final


def _found_so_far(column: str, k: int) -> str:
    if k == 1:
        return f"q0.{column}"
    return f"coalesce({', '.join(f'q{j}.{column}' for j in range(k))})"

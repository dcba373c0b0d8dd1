"""The warehouse in dbt's terms: `export(out)` writes a dbt project that `dbt parse` accepts.

What it holds, all derived from what the platform already declares (nothing is written by hand):

- every model of etl/models/ as a dbt model, its SQL the model's own `.sql` with each table it
  reads turned into `{{ ref('...') }}` (a model) or `{{ source('raw', '...') }}` (a file of the
  source contract), found with sqlglot as the build order finds them (transform.references);
- models/schema.yml: each model's description, its columns' descriptions and tests
  (models.yaml's, in dbt's own words), its grain and row-count checks as two small generic
  tests of the project (tests/generic/), and the semantic layer's metrics as MetricFlow
  `semantic_models:` and `metrics:`; models/sources.yml: the nine raw tables;
- dbt_project.yml and profiles.yml for dbt-duckdb, reading the warehouse named by
  OLIST_WAREHOUSE_PATH, read-only: the ETL builds and publishes it, dbt only reads it.

The two models built in Python (the forecast marts) cannot be built by dbt: their SQL reads
their own table (`{{ this }}`) and names the models the forecast reads with `-- depends_on:`
comments, so lineage and descriptions are right and `dbt run` leaves their rows as they are.
A metric is written to MetricFlow when its SQL is one aggregate or a ratio of two (safe_divide);
one that is not, or that `requires` a dimension MetricFlow cannot require, is left out and
listed in schema.yml's header (docs/dbt.md says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlglot
import yaml
from sqlglot import exp

from olist_bi.contract import SOURCE_FILES
from olist_bi.etl import transform
from olist_bi.semantic import catalog as semantic_catalog
from olist_bi.semantic import compiler

PROJECT = "olist_bi"
WAREHOUSE_VARIABLE = "OLIST_WAREHOUSE_PATH"
HEADER = (
    "# Written by `olist-bi dbt export` (platform/etl/dbt_project.py) from platform/etl/models/ and\n"
    "# platform/semantic/: edit those and export again, not this file.\n"
)
# The key column of each entity of the semantic catalog (semantic/models.yaml) that has one; the
# others (an item, a payment, a cohort, a forecast) are identified by several columns, and
# MetricFlow names them as a semantic model's primary_entity.
ENTITY_KEYS = {"order": "order_id", "customer": "customer_key", "category": "category_key", "seller": "seller_key"}
GRAINS = ("day", "week", "month", "quarter", "year")


class ExportError(RuntimeError):
    """The models or the catalog hold something the export cannot write as dbt."""


def export(out: Path) -> list[Path]:
    """Write the dbt project into `out` (created when missing; an earlier export's model files
    there are replaced) and return the paths written."""
    out = Path(out)
    files = project_files()
    for stale in sorted((out / "models").rglob("*.sql")) if (out / "models").is_dir() else []:
        if stale.relative_to(out).as_posix() not in files:
            stale.unlink()
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def project_files() -> dict[str, str]:
    """Each file of the project, by its path in the project, with its text."""
    models = transform.models()
    metrics, left_out = semantic_layer()
    files = {
        "dbt_project.yml": HEADER + _yaml(_project()),
        "profiles.yml": HEADER + _yaml(_profiles()),
        "models/sources.yml": HEADER + _yaml({"version": 2, "sources": [_raw_source()]}),
        "models/schema.yml": HEADER + _left_out_comment(left_out) + _yaml({"version": 2, "models": [_model(m) for m in models], **metrics}),
        "tests/generic/grain.sql": GRAIN_TEST,
        "tests/generic/rows_equal.sql": ROWS_EQUAL_TEST,
    }
    names = {m.name for m in models}
    for model in models:
        files[f"models/{model.layer}/{model.name}.sql"] = model_sql(model, names)
    return files


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def _project() -> dict:
    layers = dict.fromkeys(m.layer for m in transform.models())
    return {
        "name": PROJECT,
        "version": "1.0.0",
        "config-version": 2,
        "profile": PROJECT,
        "model-paths": ["models"],
        "test-paths": ["tests"],
        "flags": {"send_anonymous_usage_stats": False},
        # staging and intermediate models are views, the others tables, as the ETL builds them
        "models": {PROJECT: {layer: {"+materialized": "view" if layer in transform.VIEW_LAYERS else "table"} for layer in layers}},
    }


def _profiles() -> dict:
    warehouse = {
        "type": "duckdb",
        "path": "{{ env_var('" + WAREHOUSE_VARIABLE + "') }}",
        "schema": "main",
        "threads": 1,
        "config_options": {"access_mode": "READ_ONLY"},  # the ETL writes the warehouse; dbt reads it
    }
    return {PROJECT: {"target": "warehouse", "outputs": {"warehouse": warehouse}}}


def _raw_source() -> dict:
    return {
        "name": "raw",
        "description": "The nine Olist files, loaded through the source contract (platform/contract.py) with every earlier drop's rows.",
        "schema": "raw",
        "tables": [
            {"name": f.table, "description": f"The rows of {f.filename}.", "columns": [{"name": name} for name in f.header]}
            for f in SOURCE_FILES
        ],
    }


# --- models and their tests ----------------------------------------------------------------


def _model(model: transform.Model) -> dict:
    """A model of schema.yml: its description, its model-level tests and its columns."""
    single_key = model.grain[0] if len(model.grain) == 1 else None
    tests = []
    if len(model.grain) > 1:
        tests.append({"grain": {"arguments": {"columns": list(model.grain)}}})
    if model.rows_equal:
        tests.append({"rows_equal": {"arguments": {"to": _relation(model.rows_equal)}}})
    entry = {"name": model.name, "description": model.description}
    if model.name == "dim_date":  # MetricFlow's time spine: one row per day
        entry["time_spine"] = {"standard_granularity_column": "date_key"}
    if tests:
        entry["data_tests"] = tests
    entry["columns"] = [_column(model, c, single_key) for c in model.columns]
    return entry


def _column(model: transform.Model, column: transform.ModelColumn, single_key: str | None) -> dict:
    tests = ["unique", "not_null"] if column.name == single_key else []
    tests += [_test(t) for t in column.tests]
    entry = {"name": column.name, "description": column.description}
    if model.name == "dim_date" and column.name == "date_key":
        entry["granularity"] = "day"
    if tests:
        entry["data_tests"] = tests
    return entry


def _test(test: transform.ColumnTest) -> str | dict:
    """A column test of models.yaml in dbt's form (arguments under `arguments:`)."""
    if test.kind == "relationships":
        arguments = {"to": f"ref('{test.to}')", "field": test.field}
    elif test.kind == "accepted_values":
        arguments = {"values": list(test.values)}
        if all(isinstance(v, int) for v in test.values):
            arguments["quote"] = False
    else:
        arguments = None
    if arguments is None and test.severity == "error":
        return test.kind
    entry = {"arguments": arguments} if arguments else {}
    if test.severity != "error":
        entry["config"] = {"severity": test.severity}
    return {test.kind: entry}


def _relation(name: str) -> str:
    schema, _, table = name.rpartition(".")
    return f"source('{schema}', '{table}')" if schema == "raw" else f"ref('{table}')"


GRAIN_TEST = """{#- The platform's grain check (etl/transform.py): the columns together identify a row, and none
    is null. A failing row is a duplicated key or a row with a null key. -#}
{% test grain(model, columns) %}
select {{ columns | join(', ') }}
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
union all
select {{ columns | join(', ') }}
from {{ model }}
where {{ columns | join(' is null or ') }} is null
{% endtest %}
"""

ROWS_EQUAL_TEST = """{#- The platform's row-count check (models.yaml's rows_equal): the model has as many rows as
    the relation it is built from. A failing row holds the two counts. -#}
{% test rows_equal(model, to) %}
select ours, theirs
from (select count(*) as ours from {{ model }}) as a
cross join (select count(*) as theirs from {{ to }}) as b
where ours <> theirs
{% endtest %}
"""


# --- the models' SQL -------------------------------------------------------------------------


def model_sql(model: transform.Model, names: set[str]) -> str:
    """The model's `.sql` with each table it reads as dbt names it; a model built in Python
    reads its own table, after `-- depends_on:` lines naming the models its rows come from."""
    sql = model.sql
    if any(mark in sql for mark in ("{{", "{%", "{#")):
        raise ExportError(f"{model.path.name} holds Jinja delimiters, which dbt would render")
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    edits = sorted(((*_span(t), text) for t in tree.find_all(exp.Table) if (text := _dbt_name(t, model, names, ctes))), reverse=True)
    for start, end, text in edits:
        sql = sql[:start] + text + sql[end:]
    head = f"-- platform/etl/{model.path.relative_to(transform.MODELS.parent).as_posix()}, exported: its tables as ref() and source().\n"
    if model.python:
        head += f"-- Built by etl/{model.python}.py, not by dbt: this model reads its own table (its rows stay as the ETL wrote them).\n"
        head += "".join(f"-- depends_on: {{{{ ref('{name}') }}}}\n" for name in sorted(transform.references(model, names)))
    return head + sql


def _dbt_name(table: exp.Table, model: transform.Model, names: set[str], ctes: set[str]) -> str | None:
    if table.db == "raw":
        return "{{ source('raw', '" + table.name + "') }}"
    if table.db not in ("", "main") or table.name in ctes:
        return None
    if table.name in names and table.name != model.name:
        return "{{ ref('" + table.name + "') }}"
    if table.name == "python_rows" and model.python:
        return "{{ this }}"
    return None


def _span(table: exp.Table) -> tuple[int, int]:
    """Where the table's name, with its schema, stands in the SQL text (sqlglot's positions)."""
    first = table.args.get("db") or table.this
    if "start" not in first.meta or "end" not in table.this.meta:
        raise ExportError(f"sqlglot gave no position for {table.sql()}")
    return first.meta["start"], table.this.meta["end"] + 1


# --- the semantic layer as MetricFlow --------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    name: str
    agg: str
    expr: str


@dataclass(frozen=True)
class Part:
    """One aggregate of a metric's SQL as a MetricFlow measure; `fill_zero` when it was coalesced to 0."""

    measure: Measure
    fill_zero: bool = False


def semantic_layer() -> tuple[dict, dict[str, str]]:
    """schema.yml's `semantic_models` and `metrics`, and the catalog's metrics left out, with why."""
    catalog = semantic_catalog.load()
    measures: dict[str, list[Measure]] = {}
    metrics, left_out = [], {}
    for metric in catalog.metrics.values():
        try:
            written, used = _metric(catalog, metric)
        except ExportError as e:
            left_out[metric.name] = str(e)
            continue
        metrics += written
        measures.setdefault(metric.model, []).extend(used)
    models = [_semantic_model(catalog, catalog.models[name], found) for name, found in measures.items()]
    return {"semantic_models": models, "metrics": metrics}, left_out


def _metric(catalog, metric) -> tuple[list[dict], list[Measure]]:
    """The MetricFlow metrics of one catalog metric (a ratio comes with its two parts) and the measures they read."""
    if metric.requires:
        raise ExportError(f"a query must group it by {', '.join(metric.requires)}, which MetricFlow cannot require")
    tree = sqlglot.parse_one(compiler.metric_sql(catalog, metric), read="duckdb")
    meta = {"unit": metric.unit, "format": metric.format, "additive": metric.additive}
    written = {
        "name": metric.name,
        "label": metric.label,
        "description": f"{metric.description} Counts: {metric.counts}",
        "config": {"meta": meta},
    }
    if not (isinstance(tree, exp.Div) and isinstance(tree.expression, exp.Nullif)):
        part = _part(tree, metric.name)
        return [{**written, "type": "simple", "type_params": _measure_input(part)}], [part.measure]
    # safe_divide: cast(numerator as double precision) / nullif(denominator, 0); MetricFlow's
    # ratio divides two metrics, null when the denominator is 0, so each part is a metric too
    numerator = _part(tree.this.this if isinstance(tree.this, exp.Cast) else tree.this, f"{metric.name}_numerator")
    denominator = _part(tree.expression.this, f"{metric.name}_denominator")
    written.update(type="ratio", type_params={"numerator": numerator.measure.name, "denominator": denominator.measure.name})
    parts = [
        {
            "name": part.measure.name,
            "label": f"{metric.label} ({side})",
            "description": f"The {side} of {metric.name}.",
            "type": "simple",
            "type_params": _measure_input(part),
            "config": {"meta": {"ratio_part_of": metric.name}},
        }
        for part, side in ((numerator, "numerator"), (denominator, "denominator"))
    ]
    return [written, *parts], [numerator.measure, denominator.measure]


def _measure_input(part: Part) -> dict:
    measure = {"name": part.measure.name}
    if part.fill_zero:  # coalesce(..., 0): an empty group reads 0, not null
        measure["fill_nulls_with"] = 0
    return {"measure": measure}


def _part(node: exp.Expression, name: str) -> Part:
    """`agg(x) [filter (where c)]`, maybe inside `coalesce(..., 0)`, as a measure: the filter
    becomes a `case when` in the measure's expression, `count(*)` a sum of ones."""
    fill_zero = isinstance(node, exp.Coalesce) and [e.sql() for e in node.expressions] == ["0"]
    node = node.this if fill_zero else node
    condition = None
    if isinstance(node, exp.Filter):
        node, condition = node.this, node.expression.this
    agg, value = _aggregate(node)
    expr = _unaliased(value)
    if condition is not None:
        when = _unaliased(condition)
        expr = f"case when {when} then {expr} else 0 end" if value is None else f"case when {when} then {expr} end"
    return Part(Measure(name, agg, expr), fill_zero)


def _aggregate(node: exp.Expression) -> tuple[str, exp.Expression | None]:
    """MetricFlow's agg and the aggregated expression (None for count(*), a sum of ones)."""
    if isinstance(node, exp.Count):
        if isinstance(node.this, exp.Star):
            return "sum", None
        if isinstance(node.this, exp.Distinct):
            return "count_distinct", node.this.expressions[0]
        return "count", node.this
    for kind, agg in ((exp.Sum, "sum"), (exp.Avg, "average"), (exp.Max, "max"), (exp.Min, "min")):
        if isinstance(node, kind):
            return agg, node.this
    raise ExportError(f"its SQL ({node.sql()}) is not one aggregate, or a ratio of two, that MetricFlow has")


def _unaliased(node: exp.Expression | None) -> str:
    """The expression over the model's own columns (the catalog's alias `m` dropped); `1` for none."""
    if node is None:
        return "1"
    node = node.copy()
    for column in node.find_all(exp.Column):
        if column.table not in ("", "m"):
            raise ExportError(f"{node.sql()} reads a joined table, which a MetricFlow measure cannot")
        column.set("table", None)
    return node.sql(dialect="duckdb")


def _semantic_model(catalog, model, measures: list[Measure]) -> dict:
    """A catalog model as a MetricFlow semantic model: its entities, the catalog's dimensions it
    offers and the measures its metrics read."""
    columns = {c.name for m in transform.models() if m.name == model.name for c in m.columns}
    keyed = [e for e in model.entities if ENTITY_KEYS.get(e) in columns]
    unkeyed = [e for e in model.entities if e not in ENTITY_KEYS]
    grain = next(m.grain for m in transform.models() if m.name == model.name)
    primary = [e for e in keyed if (ENTITY_KEYS[e],) == grain]
    entities = [{"name": e, "type": "primary" if e in primary else "foreign", "expr": ENTITY_KEYS[e]} for e in keyed]
    entry = {"name": model.name, "description": model.description, "model": f"ref('{model.name}')"}
    if not primary:
        if len(unkeyed) != 1:
            raise ExportError(f"semantic model {model.name}: no entity identifies a row")
        entry["primary_entity"] = unkeyed[0]
    entry["defaults"] = {"agg_time_dimension": model.range_dimension}
    entry["entities"] = entities
    entry["dimensions"] = [_dimension(catalog, d, model) for d in catalog.dimensions.values() if compiler.available(catalog, d, model)]
    entry["measures"] = [{"name": m.name, "agg": m.agg, "expr": m.expr} for m in measures]
    return entry


def _dimension(catalog, dimension, model) -> dict:
    column = sqlglot.parse_one(compiler.dimension_sql(catalog, dimension, model), read="duckdb")
    entry = {"name": dimension.name, "label": dimension.label, "description": dimension.description}
    entry["type"] = "time" if dimension.type == "time" else "categorical"
    entry["expr"] = _unaliased(column)
    if dimension.type == "time":  # the column's own grain: the finest the catalog offers
        entry["type_params"] = {"time_granularity": min(dimension.grains, key=GRAINS.index)}
    return entry


def _left_out_comment(left_out: dict[str, str]) -> str:
    if not left_out:
        return "# Every metric of the semantic catalog is here.\n"
    lines = [f"#   {name}: {why}\n" for name, why in left_out.items()]
    return "# Metrics of the semantic catalog (platform/semantic/metrics.yaml) left out of MetricFlow:\n" + "".join(lines)

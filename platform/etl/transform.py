"""Transform: build the SQL models (staging, dims, facts, marts) and test their contracts.

Each model is one `.sql` file under `models/<layer>/`, named after the table it builds;
`models/models.yaml` gives each model's contract; the build order comes from the models'
own references (`in_build_order`). Staging models are
views over `raw` and intermediate models views over them (shared steps the facts read); the
dims, facts and marts are tables. After the build every model's grain is checked
unique and not null and, where declared, its row count against its source. Last, the
semantic layer's flat relations become views in schema `semantic` (semantic/flat.py), the
tables Superset's datasets read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

import duckdb
import sqlglot
import yaml
from sqlglot import exp

from olist_bi.dashboards import warehouse_views
from olist_bi.semantic import flat

MODELS = Path(__file__).parent / "models"
VIEW_LAYERS = ("staging", "intermediate")


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    grain: tuple[str, ...]
    rows_equal: str | None
    python: str | None = None  # the etl module whose rows the model's .sql selects (as python_rows)
    scoped: str | dict | None = None  # how a scoped reader copy holds it (etl/readers.py): whole, rebuild, {scope column: its column}
    clickhouse: dict = field(default_factory=dict, hash=False, compare=False)  # order_by, partition_by on ClickHouse

    @property
    def path(self) -> Path:
        return MODELS / self.layer / f"{self.name}.sql"

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@cache
def models() -> tuple[Model, ...]:
    """Every model of models.yaml, in build order: after the models its SQL reads (or, for a
    model built in Python, the semantic layer's queries it runs), in the file's order otherwise."""
    return in_build_order(declared())


def declared() -> tuple[Model, ...]:
    spec = yaml.safe_load((MODELS / "models.yaml").read_text(encoding="utf-8"))
    return tuple(
        Model(m["name"], m["layer"], tuple(m["grain"]), m.get("rows_equal"), m.get("python"), m.get("scoped"), m.get("clickhouse", {}))
        for m in spec["models"]
    )


class ContractViolation(RuntimeError):
    """A model broke its contract; nothing may be published."""


def references(model: Model, names: set[str]) -> set[str]:
    """The models among `names` that `model` reads: the tables of its SQL (and, for a model
    built in Python, of the semantic layer's queries it runs) that are not its own CTEs."""
    sqls = [model.sql]
    if model.python == "forecast":
        from olist_bi.etl import forecast

        sqls += [compiled.sql for compiled in forecast.history_queries()]
    found = set()
    for sql in sqls:
        tree = sqlglot.parse_one(sql, read="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        found |= {t.name for t in tree.find_all(exp.Table) if t.db in ("", "main") and t.name in names and t.name not in ctes}
    return found - {model.name}


def in_build_order(models: tuple[Model, ...]) -> tuple[Model, ...]:
    """`models` ordered so that each comes after every model it reads; among those ready, the
    one declared first. Raises ContractViolation on a cycle."""
    names = {m.name for m in models}
    needs = {m.name: references(m, names) for m in models}
    placed: list[Model] = []
    done: set[str] = set()
    waiting = list(models)
    while waiting:
        ready = next((m for m in waiting if needs[m.name] <= done), None)
        if ready is None:
            stuck = {m.name: sorted(needs[m.name] - done) for m in waiting}
            raise ContractViolation(f"models.yaml: these models read each other in a cycle, none can be built first: {stuck}")
        placed.append(ready)
        done.add(ready.name)
        waiting.remove(ready)
    return tuple(placed)


@dataclass
class BuildReport:
    rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the run should say (a model left empty, and why)


def build(con: duckdb.DuckDBPyConnection, say: Callable[[str], None] = lambda message: None) -> BuildReport:
    """Build every model in order, then test every contract; raise `ContractViolation`.
    `say` hears one line per model built: its name, rows and seconds."""
    report = BuildReport()
    python_rows: dict[str, object] = {}
    for model in models():
        began = time.perf_counter()
        kind = "view" if model.layer in VIEW_LAYERS else "table"
        try:
            if model.python:
                if model.name not in python_rows:
                    python_rows.update(_python_rows(con, model.python, report))
                con.register("python_rows", python_rows[model.name])
            con.execute(f"create or replace {kind} {model.name} as\n{model.sql}")
        except (duckdb.Error, ValueError) as e:
            raise ContractViolation(f"model {model.name} ({model.path.name}) failed to build: {e}") from e
        finally:
            if model.name in python_rows:
                con.unregister("python_rows")
        report.rows[model.name] = con.execute(f"select count(*) from {model.name}").fetchone()[0]
        say(model_line(model.name, report.rows[model.name], time.perf_counter() - began))
    test_contracts(con)
    report.rows.update(create_views(con))
    return report


def create_views(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The views the BI tools read, over the built tables: the semantic layer's flat relations
    and the dashboards' datasets. Returns each view's row count; raises `ContractViolation`."""
    try:
        rows = flat.create_views(con)
    except (duckdb.Error, ValueError) as e:
        raise ContractViolation(f"the semantic layer's views failed to build: {e}") from e
    for view, sql in warehouse_views().items():
        try:
            con.execute(f"create or replace view {view} as\n{sql}")
        except duckdb.Error as e:
            raise ContractViolation(f"the dashboards' view {view} (platform/dashboards/datasets.yaml) failed to build: {e}") from e
        rows[view] = con.execute(f"select count(*) from {view}").fetchone()[0]
    return rows


@cache
def clickhouse_plan():
    """What the ClickHouse engine builds (engines/clickhouse/warehouse.py's Plan): the models
    in build order, the views the BI tools read, and the contracts to check."""
    from olist_bi.engines.clickhouse import warehouse as clickhouse

    built = tuple(
        clickhouse.PlannedModel(
            m.name,
            m.path.name,
            m.sql,
            m.layer in VIEW_LAYERS,
            tuple(m.clickhouse.get("order_by") or m.grain),
            m.clickhouse.get("partition_by"),
            bool(m.python),
        )
        for m in models()
    )
    semantic = tuple(
        clickhouse.View(f"{flat.SCHEMA}.{r.view}", r.sql, name) for name in flat.load().models for r in [flat.flat_model(name)]
    )
    rows = tuple(clickhouse.View(view, sql) for view, sql in warehouse_views().items())
    return clickhouse.BuildPlan(built, semantic + rows, check_contracts)


def model_line(name: str, rows: int, seconds: float) -> str:
    """The progress line of one model built (the same on every engine)."""
    return f"  {name:<36} {rows:>12,} rows {seconds:>7.2f} s"


def _python_rows(con: duckdb.DuckDBPyConnection, module: str, report: BuildReport) -> dict[str, object]:
    """The rows an etl module computes for its models, by model name."""
    if module != "forecast":
        raise ValueError(f"unknown python builder {module!r}")
    from olist_bi.etl import forecast

    built = forecast.build(con)
    if built.note:
        report.notes.append(built.note)
    return {"mart_revenue_forecast": built.forecast_rows, "mart_forecast_accuracy": built.accuracy_rows}


def test_contracts(con: duckdb.DuckDBPyConnection) -> None:
    check_contracts(lambda sql: con.execute(sql).fetchone()[0])


def check_contracts(count: Callable[[str], int], table: Callable[[str], str] = str) -> None:
    """Raise `ContractViolation` unless every model's grain is unique and not null and its row
    count equals its source's. `count` answers a `select count(*)` query; `table` gives the
    name a query should use for a model or source (the engine's qualified name)."""
    problems = []
    for model in models():
        name = table(model.name)
        if model.grain:
            keys = ", ".join(model.grain)
            duplicates = count(f"select count(*) from (select {keys} from {name} group by {keys} having count(*) > 1)")
            if duplicates:
                problems.append(f"{model.name}: {duplicates} duplicated grain keys ({keys})")
            nulls = " or ".join(f"{k} is null" for k in model.grain)
            null_rows = count(f"select count(*) from {name} where {nulls}")
            if null_rows:
                problems.append(f"{model.name}: {null_rows} rows with a null grain key ({keys})")
        if model.rows_equal:
            ours, theirs = count(f"select count(*) from {name}"), count(f"select count(*) from {table(model.rows_equal)}")
            if ours != theirs:
                problems.append(f"{model.name}: {ours} rows, but {model.rows_equal} has {theirs}")
    if problems:
        raise ContractViolation("model contracts failed:\n" + "\n".join(f"  - {p}" for p in problems))

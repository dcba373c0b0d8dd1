"""Transform: build the SQL models (staging, dims, facts, marts) and test their contracts.

Each model is one `.sql` file under `models/<layer>/`, named after the table it builds;
`models/models.yaml` gives each model's contract; the build order comes from the models'
own references (`in_build_order`). Staging models are
views over `raw` and intermediate models views over them (shared steps the facts read); the
dims, facts and marts are tables. After the build every model's grain is checked
unique and not null, where declared, its row count against its source, and its columns'
tests (dbt's unique, not_null, relationships and accepted_values, declared per column in
models.yaml); each model's and column's description is then stored in the warehouse (COMMENT
ON). Last, the semantic layer's flat relations become views in schema `semantic`
(semantic/flat.py), the tables Superset's datasets read.
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

from olist_bi.contract import ORDER_TABLES
from olist_bi.dashboards import warehouse_views
from olist_bi.engines.base import BuildPlan, Increment, PlannedModel, View
from olist_bi.semantic import flat

MODELS = Path(__file__).parent / "models"
VIEW_LAYERS = ("staging", "intermediate")
TEST_KINDS = ("not_null", "unique", "relationships", "accepted_values")  # dbt's generic tests
SEVERITIES = ("error", "warn")  # dbt's: warn counts the failing rows and reports them, the run goes on


@dataclass(frozen=True)
class ColumnTest:
    """One of dbt's generic tests on a column, as models.yaml declares it."""

    kind: str
    to: str | None = None  # relationships: the parent model ...
    field: str | None = None  # ... and its column
    values: tuple[str | int, ...] = ()  # accepted_values
    severity: str = "error"

    def __str__(self) -> str:
        if self.kind == "relationships":
            return f"relationships to {self.to}.{self.field}"
        if self.kind == "accepted_values":
            return f"accepted_values ({len(self.values)} values)"
        return self.kind

    def failing_sql(self, name: str, column: str, table: Callable[[str], str] = str) -> str:
        """A `select count(*)` of what fails on table `name`'s `column`: rows, or for unique the
        values held by more than one row. Nulls pass every test but not_null, as in dbt. Plain
        SQL, which DuckDB and ClickHouse (with join_use_nulls) both run."""
        if self.kind == "not_null":
            return f"select count(*) from {name} where {column} is null"
        if self.kind == "unique":
            return f"select count(*) from (select {column} from {name} where {column} is not null group by {column} having count(*) > 1)"
        if self.kind == "accepted_values":
            return f"select count(*) from {name} where {column} not in ({', '.join(map(sql_literal, self.values))})"
        return (
            f"select count(*) from {name} as c left join {table(self.to)} as p on c.{column} = p.{self.field} "
            f"where c.{column} is not null and p.{self.field} is null"
        )

    def message(self, model: str, column: str, failing: int) -> str:
        what = "row" if failing == 1 else "rows"
        if self.kind == "unique":
            what = ("value" if failing == 1 else "values") + " held by more than one row"
        return f"{model}.{column}: test {self} fails on {failing} {what}"


@dataclass(frozen=True)
class ModelColumn:
    name: str
    description: str
    tests: tuple[ColumnTest, ...] = ()


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    grain: tuple[str, ...]
    rows_equal: str | None
    python: str | None = None  # the etl module whose rows the model's .sql selects (as python_rows)
    scoped: str | dict | None = None  # how a scoped reader copy holds it (etl/readers.py): whole, rebuild, {scope column: its column}
    clickhouse: dict = field(default_factory=dict, hash=False, compare=False)  # order_by, partition_by on ClickHouse
    description: str = ""  # one line: what a row is (COMMENT ON, the dbt export)
    columns: tuple[ModelColumn, ...] = ()  # every column it builds, with its description and tests

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
    """The models of models.yaml in the file's order; raises `ContractViolation` on a column
    test that is not one of dbt's four, or that names a model or severity that does not exist."""
    spec = yaml.load((MODELS / "models.yaml").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    found = tuple(
        Model(
            m["name"],
            m["layer"],
            tuple(m["grain"]),
            m.get("rows_equal"),
            m.get("python"),
            m.get("scoped"),
            m.get("clickhouse", {}),
            m.get("description", ""),
            tuple(_column(m["name"], c) for c in m.get("columns", ())),
        )
        for m in spec["models"]
    )
    names = {m.name for m in found}
    for model in found:
        for column in model.columns:
            for test in column.tests:
                if test.to is not None and test.to not in names:
                    raise ContractViolation(f"models.yaml: {model.name}.{column.name}: {test} names no model of models.yaml")
    return found


def _column(model: str, spec: dict) -> ModelColumn:
    return ModelColumn(spec["name"], spec.get("description", ""), tuple(_test(f"{model}.{spec['name']}", t) for t in spec.get("tests", ())))


def _test(where: str, spec: str | dict) -> ColumnTest:
    """`not_null`, `unique`, `{relationships: {to, field}}` or `{accepted_values: {values}}`,
    each with an optional `config: {severity: warn}` (dbt's forms)."""
    kind, arguments = (spec, {}) if isinstance(spec, str) else next(iter(spec.items()))
    arguments = dict(arguments or {})
    severity = (arguments.pop("config", None) or {}).get("severity", "error")
    if kind not in TEST_KINDS or severity not in SEVERITIES:
        raise ContractViolation(
            f"models.yaml: {where}: {spec!r} is not one of dbt's tests ({', '.join(TEST_KINDS)}) with a severity of {SEVERITIES}"
        )
    try:
        test = ColumnTest(kind, arguments.pop("to", None), arguments.pop("field", None), tuple(arguments.pop("values", ())), severity)
    except TypeError as e:
        raise ContractViolation(f"models.yaml: {where}: {spec!r}: {e}") from None
    wanted = {"relationships": test.to and test.field, "accepted_values": test.values}.get(kind, True)
    if arguments or not wanted:
        raise ContractViolation(f"models.yaml: {where}: {kind} takes {_ARGUMENTS[kind]}, got {spec!r}")
    unquotable = [v for v in test.values if isinstance(v, bool) or not isinstance(v, (str, int))]
    if unquotable:
        raise ContractViolation(f"models.yaml: {where}: accepted values are text or integers, not {unquotable[0]!r}")
    return test


_ARGUMENTS = {"not_null": "nothing", "unique": "nothing", "relationships": "`to` and `field`", "accepted_values": "`values`"}


def sql_literal(value: str | int) -> str:
    """A value of an accepted_values list as SQL: text quoted, integers as they are."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ContractViolation(f"models.yaml: accepted values are text or integers, not {value!r}")
    return str(value) if isinstance(value, int) else "'" + value.replace("'", "''") + "'"


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


@dataclass(frozen=True)
class Scope:
    """What an increment rebuilds (etl/increment.py), in the tables of the build it started from."""

    touched: str  # a table of the touched orders' ids: the per-order models rebuild their rows
    changed: frozenset[str]  # the raw tables the drop changed: a model reading none of them keeps its rows
    people: str | None = None  # a table of the touched people's customer_unique_id: the per-person models rebuild theirs


def build(con: duckdb.DuckDBPyConnection, say: Callable[[str], None] = lambda message: None, scope: Scope | None = None) -> BuildReport:
    """Build every model in order, then test every contract; raise `ContractViolation`.
    `say` hears one line per model built: its name, rows and seconds. With a `scope`, the
    per-order models rebuild only the touched orders' rows (`per_order`), the others are built
    whole, but for those that read no raw table the drop changed (`sources`), which keep theirs."""
    report = BuildReport()
    python_rows: dict[str, object] = {}
    if scope:
        _scope_raw(con, scope)
    for model in models():
        began = time.perf_counter()
        if scope and _built_in_scope(con, model, scope, report, say):
            continue
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
    report.notes.extend(test_contracts(con, scope))
    comment_models(con)
    report.rows.update(create_views(con))
    return report


def per_order(model: Model) -> bool:
    """Whether an increment rebuilds `model` per touched order: its grain holds `order_id`."""
    return "order_id" in model.grain


def per_person(model: Model) -> bool:
    """Whether an increment rebuilds `model` per touched person: its grain is the person."""
    return model.grain == ("customer_unique_id",)


def rebuilt_in_scope(model: Model, scope: Scope) -> bool:
    """Whether the increment `scope` rebuilds some of `model`'s rows, not all of them or none:
    a per-order model's touched orders', a per-person model's touched people's (when its
    sources changed). Those rows are `scoped_<name>`."""
    return per_order(model) or bool(per_person(model) and scope.people and sources(model.name) & scope.changed)


# What a per-person model reads in an increment, in place of staging: the touched people's rows.
_PEOPLE_SQL = {
    "stg_customers": "select * from stg_customers where customer_unique_id in (select customer_unique_id from {people})",
    "stg_orders": "select * from stg_orders where customer_id in (select customer_id from scoped_stg_customers_of_people)",
}


def _of_touched(relation: str, touched: str) -> str:
    return f"select * from {relation} where order_id in (select order_id from {touched})"


def _built_in_scope(con: duckdb.DuckDBPyConnection, model: Model, scope: Scope, report: BuildReport, say: Callable[[str], None]) -> bool:
    """In an increment: rebuild a per-order model's touched rows, or keep a view or a model whose
    sources the drop left alone; False for a model to build whole."""
    began = time.perf_counter()
    if per_order(model):
        try:
            _scope_model(con, model, scope, rebuild=True)
        except duckdb.Error as e:
            raise ContractViolation(f"model {model.name} ({model.path.name}) failed to build: {e}") from e
        touched = con.execute(f"select count(*) from scoped_{model.name}").fetchone()[0]
        if model.layer not in VIEW_LAYERS:
            report.rows[model.name] = con.execute(f"select count(*) from {model.name}").fetchone()[0]
        say(model_line(model.name, touched, time.perf_counter() - began).replace(" rows", " rows of the touched orders"))
        return True
    if rebuilt_in_scope(model, scope):  # per person
        for name, sql in _PEOPLE_SQL.items():
            con.execute(f"create or replace temp table scoped_{name}_of_people as {sql.format(people=scope.people)}")
        con.execute(f"create or replace temp table scoped_{model.name} as\n{scoped_sql(model.name)}")
        con.execute(f"delete from {model.name} where customer_unique_id in (select customer_unique_id from {scope.people})")
        con.execute(f"insert into {model.name} by name select * from scoped_{model.name}")
        report.rows[model.name] = con.execute(f"select count(*) from {model.name}").fetchone()[0]
        touched = con.execute(f"select count(*) from scoped_{model.name}").fetchone()[0]
        say(model_line(model.name, touched, time.perf_counter() - began).replace(" rows", " rows of the touched people"))
        return True
    if model.layer in VIEW_LAYERS or not sources(model.name) & scope.changed:
        if model.layer not in VIEW_LAYERS:
            report.rows[model.name] = con.execute(f"select count(*) from {model.name}").fetchone()[0]
        say(f"  {model.name:<36} kept: " + ("a view, unchanged" if model.layer in VIEW_LAYERS else "its sources are unchanged"))
        return True
    return False


def _scope_raw(con: duckdb.DuckDBPyConnection, scope: Scope) -> None:
    """`scoped_raw_<table>`: the touched orders' rows of each raw table with an order_id, a temp table."""
    for table in ORDER_TABLES:
        con.execute(f"create or replace temp table scoped_raw_{table} as {_of_touched(f'raw.{table}', scope.touched)}")


def _scope_model(con: duckdb.DuckDBPyConnection, model: Model, scope: Scope, rebuild: bool) -> None:
    """`scoped_<name>`: the touched orders' rows of a per-order model, a temp table, which the
    later models' scoped SQL and the tests read. `rebuild`: from its SQL over the scoped relations
    (`scoped_sql`), and a table's touched rows replaced by them; else a table's rows as they are.
    The views stay whole beside them (the dims read them)."""
    if model.layer in VIEW_LAYERS or rebuild:
        con.execute(f"create or replace temp table scoped_{model.name} as\n{scoped_sql(model.name)}")
    else:
        con.execute(f"create or replace temp table scoped_{model.name} as {_of_touched(model.name, scope.touched)}")
    if model.layer not in VIEW_LAYERS and rebuild:
        con.execute(f"delete from {model.name} where order_id in (select order_id from {scope.touched})")
        con.execute(f"insert into {model.name} by name select * from scoped_{model.name}")


def scope_tables(con: duckdb.DuckDBPyConnection, scope: Scope) -> None:
    """The temp tables of the touched orders' rows an increment builds (`_scope_model`), made
    from a file as it is (its tables not rebuilt): what its tests read."""
    _scope_raw(con, scope)
    for model in models():
        if per_order(model):
            _scope_model(con, model, scope, rebuild=False)


@cache
def sources(name: str) -> frozenset[str]:
    """The raw tables model `name` reads, itself or through the models it reads."""
    by_name = {m.name: m for m in models()}
    model = by_name[name]
    read = {t.name for t in sqlglot.parse_one(model.sql, read="duckdb").find_all(exp.Table) if t.db == "raw"}
    for other in references(model, set(by_name)):
        read |= sources(other)
    return frozenset(read)


@cache
def scoped_sql(name: str) -> str:
    """Model `name`'s SQL reading `scoped_<name>` in place of each per-order model and raw table with
    an order_id; a per-person model's, `scoped_<name>_of_people` in place of the staging it
    reads (`_PEOPLE_SQL`). Each under its own name as alias, so that its columns resolve as before."""
    model = next(m for m in models() if m.name == name)
    tree = sqlglot.parse_one(model.sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    order_models = {m.name for m in models() if per_order(m)}
    for table in list(tree.find_all(exp.Table)):
        if table.name in ctes and not table.db:
            continue
        if per_person(model) and table.db in ("", "main") and table.name in _PEOPLE_SQL:
            target = f"scoped_{table.name}_of_people"
        elif per_person(model):
            continue
        elif table.db == "raw" and table.name in ORDER_TABLES:
            target = f"scoped_raw_{table.name}"
        elif table.db in ("", "main") and table.name in order_models:
            target = f"scoped_{table.name}"
        else:
            continue
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
        table.set("this", exp.to_identifier(target))
        table.set("db", None)
    return tree.sql(dialect="duckdb", pretty=True)


def comment_models(con: duckdb.DuckDBPyConnection) -> None:
    """Store each model's description and its columns' in the warehouse (COMMENT ON), where
    duckdb_tables(), duckdb_views() and duckdb_columns() and the SQL clients that read them
    find them, in the warehouse and in each reader copy. Only models and declared columns that
    were built; tests/etl/test_model_tests.py keeps the declared and the built columns equal.
    (ClickHouse's tables carry none: docs/dbt.md.)"""
    con.execute("begin")  # one commit, not one per statement: four times faster
    try:
        for model in models():
            _comment(con, model)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _comment(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """Store `model`'s description and its built columns' (none: a model the file does not hold)."""
    kind = "view" if model.layer in VIEW_LAYERS else "table"
    built = {
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where schema_name = 'main' and table_name = ?", [model.name]
        ).fetchall()
    }
    if not built:  # a reader copy holds no staging or intermediate view (etl/readers.py)
        return
    if model.description:
        con.execute(f"comment on {kind} {model.name} is {sql_literal(model.description)}")
    for column in model.columns:
        if column.name in built and column.description:
            con.execute(f"comment on column {model.name}.{column.name} is {sql_literal(column.description)}")


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
def build_plan() -> BuildPlan:
    """What a run hands the engine to build (engines/base.py): the models in build order, the
    views the BI tools read, and the contracts to check."""
    names = {m.name for m in models()}
    built = tuple(
        PlannedModel(
            m.name,
            m.path.name,
            m.sql,
            m.layer in VIEW_LAYERS,
            tuple(m.clickhouse.get("order_by") or m.grain),
            m.clickhouse.get("partition_by"),
            m.python or None,
            sources(m.name),
            scoped_sql(m.name) if per_order(m) or per_person(m) else None,
            frozenset(references(m, names)),
            "order_id" if per_order(m) else "customer_unique_id" if per_person(m) else None,
            tuple((f"scoped_{name}_of_people", sql.format(people="touched_people")) for name, sql in _PEOPLE_SQL.items())
            if per_person(m)
            else (),
        )
        for m in models()
    )
    relations = {name: flat.flat_model(name) for name in flat.load().models}
    semantic = tuple(View(f"{flat.SCHEMA}.{r.view}", r.sql, name) for name, r in relations.items())
    rows = tuple(View(view, sql) for view, sql in warehouse_views().items())
    from olist_bi.etl import increment  # it reads the models of this module

    return BuildPlan(built, semantic + rows, _check_built, increment.fingerprint(), python_rows)


def _check_built(count: Callable[[str], int], table: Callable[[str], str], increment: Increment | None = None) -> list[str]:
    """An engine's check of what it built: every contract, or after an `increment` the rows it
    rebuilt (`check_contracts`)."""
    return check_contracts(count, table, increment and Scope("touched_orders", increment.changed, "touched_people"))


def model_line(name: str, rows: int, seconds: float) -> str:
    """The progress line of one model built (the same on every engine)."""
    return f"  {name:<36} {rows:>12,} rows {seconds:>7.2f} s"


def _python_rows(con: duckdb.DuckDBPyConnection, module: str, report: BuildReport) -> dict[str, object]:
    """The rows an etl module computes for its models, by model name, from the build on `con`
    (the backtest's fits of the build it started from reused, this run's kept)."""
    from olist_bi.etl import forecast

    fits = forecast.Fits.load(con)
    rows, notes = python_rows(module, forecast.on(con), fits)
    fits.save(con)
    report.notes.extend(notes)
    return rows


def python_rows(module: str, query, fits=None) -> tuple[dict[str, object], list[str]]:
    """The rows the etl module `module` computes for its models, by model name, and its notes,
    from the build `query` answers (etl/forecast.py's `Ask`)."""
    if module != "forecast":
        raise ValueError(f"unknown python builder {module!r}")
    from olist_bi.etl import forecast

    built = forecast.build(query, fits)
    rows = {"mart_revenue_forecast": built.forecast_rows, "mart_forecast_accuracy": built.accuracy_rows}
    return rows, [built.note] if built.note else []


def test_contracts(con: duckdb.DuckDBPyConnection, scope: Scope | None = None) -> list[str]:
    return check_contracts(lambda sql: con.execute(sql).fetchone()[0], scope=scope)


def check_contracts(count: Callable[[str], int], table: Callable[[str], str] = str, scope: Scope | None = None) -> list[str]:
    """Raise `ContractViolation` unless every model's grain is unique and not null, its row
    count equals its source's and every column test of models.yaml passes; return the
    warnings, the failing tests of severity warn (the run reports them as notes). `count`
    answers a `select count(*)` query; `table` gives the name a query should use for a model
    or source (the engine's qualified name).

    After an increment (`scope`) the tests read what it rebuilt: a per-order model's touched
    rows (every row of a grain that holds order_id is among them), every row of a model built
    whole, and of a model it kept only the relationships to a model it rebuilt. Tests of
    severity warn read every row, so that their counts are the same as a full build's, and
    so do the `unique` tests of the models they check (a touched row may repeat another's value)."""
    problems, warnings = [], []
    for model in models():
        checked = _checked(model.name, table, scope)
        if checked is not None:
            scoped = checked != table(model.name)  # the touched orders' rows, counted against their source's
            source = model.rows_equal and ((_checked(model.rows_equal, table, scope) if scoped else None) or table(model.rows_equal))
            problems += _grain_problems(model, checked, source, count)
        for column in model.columns:
            for test in column.tests:
                rows = table(model.name) if test.severity == "warn" or (test.kind == "unique" and checked) else checked
                if rows is None and test.to is not None and _checked(test.to, table, scope) is not None:
                    rows = table(model.name)  # a kept model's rows against a parent rebuilt
                if rows is None:
                    continue
                failing = count(test.failing_sql(rows, column.name, table))
                if failing:
                    (warnings if test.severity == "warn" else problems).append(test.message(model.name, column.name, failing))
    if problems:
        raise ContractViolation("model contracts failed:\n" + "\n".join(f"  - {p}" for p in problems))
    return [f"model test warning (severity warn, the run goes on): {w}" for w in warnings]


def _checked(name: str, table: Callable[[str], str], scope: Scope | None) -> str | None:
    """The relation whose rows the tests of model or raw table `name` read after the increment
    `scope`: all of it, the touched orders' (`scoped_<name>`), or none when it kept its rows."""
    if scope is None:
        return table(name)
    if name.startswith("raw."):
        return table(f"scoped_raw_{name[4:]}" if name[4:] in ORDER_TABLES else name)
    model = next(m for m in models() if m.name == name)
    if per_order(model):
        return table(f"scoped_{name}")
    if not sources(name) & scope.changed:
        return None
    return table(f"scoped_{name}" if per_person(model) and scope.people else name)


def _grain_problems(model: Model, name: str, source: str | None, count: Callable[[str], int]) -> list[str]:
    """The grain of `name` (the rows of `model` to check) unique and not null, and its row count
    equal to that of `source` (the rows of models.yaml's `rows_equal` to count)."""
    problems = []
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
        ours, theirs = count(f"select count(*) from {name}"), count(f"select count(*) from {source}")
        if ours != theirs:
            problems.append(f"{model.name}: {ours} rows, but {model.rows_equal} has {theirs}")
    return problems

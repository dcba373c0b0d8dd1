"""Reader copies: the warehouse files the BI tools open, cut from each built warehouse.

The file the ETL builds holds everything the next run needs: raw history, quarantined rows,
the staging views over them, the load ledger. None of that is for a dashboard reader or an
analyst in SQL Lab, and a row-level filter written into SQL text is only as strong as the
parser that checks it (bi/superset/scope.py). So every run also cuts, from the built file:

- the **reader copy** (`<served stem>.reader.duckdb`): the model tables (dims, facts, marts),
  the load ledger the freshness view reads, and the semantic and dashboard views, rebuilt
  over them. No raw, no quarantine, no staging. Superset, Metabase and the notebook open it.
- one **scoped copy per scoped role** of access.yaml (`<served stem>.<role>.duckdb`), holding
  only that scope's rows: each table cut as models.yaml's `scoped` says (its rows in the scope,
  whole reference data, or the mart rebuilt over the scoped tables). A user with that role has
  every query run on it (Superset's DB_CONNECTION_MUTATOR): no SQL, however it is built, can
  return a row the file does not hold.

After an increment, each copy starts from a copy of its served file and changes what the
warehouse's increment changed, as the warehouse itself does (etl/increment.py): the touched
orders' rows of the per-order tables (`meta.touched_orders`, replaced by the rows the increment
built, `touched.<table>`), the touched people's rows of `dim_customer` (`meta.touched_people`)
and the models the drop changed; after a full build it is cut whole.

Each copy is published like the warehouse itself (engines/duckdb/publish.py: one generation per publish,
the served path a link swapped in one rename), after the warehouse. A copy whose ledger of
loads is not the served warehouse's (after a rollback, or a run that died between the two
publishes) is cut again from the served warehouse (`reconcile`, at the start of every run and
after every rollback), so the copies always come from what is served.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from olist_bi import access
from olist_bi.engines.duckdb import warehouse
from olist_bi.engines.duckdb import publish
from olist_bi.etl import increment, transform
from olist_bi.settings import Settings

READER = warehouse.READER
LEDGER = "meta.loads"  # what the freshness view reads


class ScopeUndeclared(transform.ContractViolation):
    """A table cannot be cut to a scope: it has no column of the scope and models.yaml says
    nothing of it."""


@dataclass(frozen=True)
class Reader:
    """One copy: the unscoped reader copy (`scope` None) or a role's scoped copy."""

    name: str
    scope: tuple[str, str] | None = None  # (column, value), from access.yaml

    def served(self, warehouse_path: Path) -> Path:
        return warehouse.reader_path(warehouse_path, self.name)


def readers() -> list[Reader]:
    """The reader copy, then one copy per scoped role of access.yaml."""
    return [Reader(READER), *(Reader(role, scope) for role, scope in sorted(access.scopes().items()))]


def cut(settings: Settings, built: Path, reader: Reader, target: Path, scope: transform.Scope | None = None) -> dict[str, int]:
    """Write `reader`'s copy of the finished warehouse file `built` to `target`; return the rows
    of each table and view in it. With the `scope` of the increment that built it, start from
    the served copy and change only what the increment changed. Raises `transform.ContractViolation`."""
    target.unlink(missing_ok=True)
    served = reader.served(settings.warehouse_path)
    if scope is not None and not served.exists():
        scope = None  # nothing to start from
    if scope is not None:
        shutil.copyfile(publish.current(served), target)
    con = publish.open_build(target, settings, increment=scope is not None)
    try:
        literal = str(built).replace("'", "''")  # ATTACH takes no bound parameters
        con.execute(f"attach '{literal}' as built (read_only)")
        rows = {}
        for model in transform.models():
            if model.layer in transform.VIEW_LAYERS:
                continue
            select = _select(con, model, reader.scope)
            if scope is None:
                con.execute(f"create table main.{model.name} as {select}")
            elif transform.rebuilt_in_scope(model, scope):  # the rows the increment built, in place of those it replaced
                key, recorded = _replaced(model)
                con.execute(f"delete from main.{model.name} where {key} in (select {key} from built.{recorded})")
                con.execute(f"insert into main.{model.name} by name {_select(con, model, reader.scope, increment.ROWS)}")
            elif transform.sources(model.name) & scope.changed:
                con.execute(f"create or replace table main.{model.name} as {select}")
            rows[model.name] = con.execute(f"select count(*) from main.{model.name}").fetchone()[0]
        con.execute(f"create schema if not exists meta; create or replace table {LEDGER} as select * from built.{LEDGER}")
        con.execute("detach built")
        rows.update(transform.create_views(con))
        transform.comment_models(con)  # the descriptions, where the BI tools' SQL clients read them
        con.execute("checkpoint")
        return rows
    except BaseException as e:
        con.close()
        discard([target])
        if isinstance(e, duckdb.Error):
            raise transform.ContractViolation(f"the {reader.name} copy of the warehouse failed to build: {e}") from e
        raise
    finally:
        con.close()


def _replaced(model: transform.Model) -> tuple[str, str]:
    """The key of the rows an increment rebuilt in `model`, and the built file's table of them."""
    if transform.per_order(model):
        return "order_id", increment.RECORDED
    return "customer_unique_id", increment.RECORDED_PEOPLE


def _select(con: duckdb.DuckDBPyConnection, model: transform.Model, scope: tuple[str, str] | None, schema: str = "main") -> str:
    """The query that fills `model`'s table in a copy with `scope` (None: the whole table), from
    its table in `schema` of the built file."""
    whole = f"select * from built.{schema}.{model.name}"
    if scope is None or model.scoped == "whole":
        return whole
    if model.scoped == "rebuild":
        return model.sql  # over this copy's tables, built before it (transform.models() is in build order)
    dimension, value = scope
    column = model.scoped.get(dimension) if isinstance(model.scoped, dict) else dimension
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from duckdb_columns() where database_name = 'built' and schema_name = 'main' and table_name = ?",
            [model.name],
        ).fetchall()
    }
    if column not in columns:
        raise ScopeUndeclared(
            f"model {model.name} has no column {column!r} for the scope {dimension} = {value!r}, and models.yaml "
            "declares no `scoped` rule for it (whole, rebuild or {scope column: its column}): it cannot be copied into a scope"
        )
    return f"{whole} where {column} = '{value.replace(chr(39), chr(39) * 2)}'"


def cut_all(
    settings: Settings,
    built: Path,
    run_id: int | str,
    say=lambda message: None,
    which: list[Reader] | None = None,
    scope: transform.Scope | None = None,
) -> dict[Reader, Path]:
    """Every reader copy of `built` (or those of `which`), each written beside its served path
    (`publish.building_path`); none is left behind if one fails. `scope`: the increment that
    built it (`cut`). An increment's copies are cut side by side, each DuckDB with its share of
    the run's memory: each changes a few per cent of its rows, and much of that is one thread's
    work (its statements one after another, its checkpoint); cut whole, one after the other."""
    todo = readers() if which is None else which
    workers = max(len(todo), 1) if scope is not None else 1
    each = dataclasses.replace(settings, duckdb_memory_limit=_share(settings.duckdb_memory_limit, workers))
    done: dict[Reader, Path] = {}

    def one(reader: Reader) -> None:
        began = time.perf_counter()
        target = publish.building_path(reader.served(settings.warehouse_path), run_id)
        rows = cut(each, built, reader, target, scope)
        done[reader] = target
        facts = sum(n for name, n in rows.items() if name.startswith("fact_"))
        say(transform.model_line(f"{reader.name} copy", facts, time.perf_counter() - began).replace(" rows", " fact rows"))

    try:
        with ThreadPoolExecutor(workers) as pool:  # every copy finished or failed before the pool closes
            for future in [pool.submit(one, reader) for reader in todo]:
                future.result()
    except BaseException:
        discard(done.values())
        raise
    return {reader: done[reader] for reader in todo}


def _share(memory: str, parts: int) -> str:
    """A DuckDB memory limit (`3GB`) divided in `parts`."""
    number, unit = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(\w+)\s*", memory).groups()
    return f"{float(number) / parts:.3f}".rstrip("0").rstrip(".") + unit  # never 5e+06: DuckDB reads no exponent


def publish_all(settings: Settings, copies: dict[Reader, Path]) -> list[Path]:
    """Serve each copy (after the warehouse itself has been published); returns the generations.
    No earlier generation of a copy is kept (a rollback cuts the copies again from the
    warehouse it restores); a process still reading one keeps it open until its query ends."""
    return [publish.publish(built, reader.served(settings.warehouse_path), keep=0) for reader, built in copies.items()]


def stale(settings: Settings) -> list[Reader]:
    """The copies not cut from the served warehouse: missing, or holding another ledger of
    loads (a run that died between publishing the warehouse and its copies)."""
    served = settings.warehouse_path
    try:
        want = _ledger(served)
    except (warehouse.WarehouseMissing, duckdb.Error):
        return []  # nothing served (or damaged): nothing to cut from
    out = []
    for reader in readers():
        try:
            if _ledger(reader.served(served)) == want:
                continue
        except (warehouse.WarehouseMissing, duckdb.Error):
            pass
        out.append(reader)
    return out


def reconcile(settings: Settings, say=lambda message: None) -> list[Path]:
    """Cut again, from the served warehouse, every copy that `stale` finds, and serve it."""
    behind = stale(settings)
    if not behind:
        return []
    say(
        f"cutting the {', '.join(r.name for r in behind)} cop{'ies' if len(behind) > 1 else 'y'} "
        "from the served warehouse (missing, or cut from another)"
    )
    return publish_all(settings, cut_all(settings, publish.current(settings.warehouse_path), "reconcile", which=behind))


def _ledger(served: Path) -> list[tuple]:
    # Through the process's provider: a process that also serves holds the file open already,
    # and DuckDB refuses a second open of it with another configuration.
    with warehouse.connect(served) as con:
        return con.execute(f"select run_id, source_file, sha256 from {LEDGER} order by all").fetchall()


def discard(paths) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".wal").unlink(missing_ok=True)


def remove_abandoned_builds(settings: Settings) -> None:
    for reader in readers():
        publish.remove_abandoned_builds(reader.served(settings.warehouse_path))

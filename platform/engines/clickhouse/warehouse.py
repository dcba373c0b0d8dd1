"""The warehouse on ClickHouse: build from the ETL's raw tables, publish atomically, roll back,
answer the semantic layer's queries.

The ETL stays one pipeline. Extract, the source contract, the quality rules and their
quarantine, the merge of a drop and the row accounting run in DuckDB as on the DuckDB engine,
in a scratch file of the run that holds its drops and the rows of history their rules read
(`mirror`); nothing of it is published. ClickHouse:

1. keeps the raw history in `<db>_build_raw`: at the run's start (`start`) the served
   generation's raw tables cloned (`CREATE TABLE ... CLONE AS`: hard links to its parts, no
   copy), or empty tables for a full run; then each drop's accepted rows, as soon as the
   quality rules have passed them, merged in (`merge_drop`): written as Parquet and read by
   ClickHouse itself, the rows of the same unique key replaced, a snapshot replaced whole;
   after an increment the touched orders and people are found there (`_touch`); beside them the run
   records (`_keep_records`): the load ledger, the quarantine, the models' fingerprint;
2. builds every model from its own `.sql` (DuckDB SQL transpiled by `dialect`): staging and
   intermediate models as views in `<db>_staging`, dims, facts and marts as MergeTree tables
   in `<db>_build` (ordering keys and partitions from models.yaml); the forecast models
   fitted in Python from this build's facts (`_fitted`). After an increment a per-order table
   is the served one's untouched rows and its touched orders' rows built again from its
   scoped SQL (a per-person table, `dim_customer`, the same by touched person), and a table
   whose sources the drop left alone is cloned as it is;
3. checks every model's contract there and the semantic layer's flat views, so a broken
   build fails the run with the served tables untouched.

What to build comes in as a `BuildPlan` (the pipeline makes it from etl/transform.py's models, the
semantic layer's views and the dashboards' row datasets): this module imports neither the ETL
nor the semantic layer.

Publish exchanges each table of `<db>_build` with the served one in `<db>`, and each raw
table of `<db>_build_raw` with `<db>_raw`'s (`EXCHANGE TABLES`: atomic per table; ClickHouse
has no multi-table transaction, so the tables swap one after another within one statement),
then keeps the replaced generation as `<db>_previous_1` (and the one before as
`<db>_previous_2`), each with its raw history beside it, for rollback, which exchanges them
back. Readers are granted `<db>` and `<db>_semantic`, never the raw history. The semantic
layer's flat relations are views in `<db>_semantic` over `<db>`: they read the new tables
from the moment each is exchanged.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa

from olist_bi.contract import BY_TABLE, ORDER_TABLES
from olist_bi.engines.base import BuildFailed, BuildResult, BuildPlan, Increment, Ledger, NothingToRollBack, PlannedModel, Progress
from olist_bi.engines.clickhouse.connection import ClickHouse, ClickHouseError, Endpoint, Target
from olist_bi.engines.clickhouse.dialect import tables_read, to_clickhouse, to_clickhouse_query
from olist_bi.engines.duckdb import warehouse as served_warehouse
from olist_bi.runtime import faults
from olist_bi.settings import Settings

KEEP = 2
# A model's build joins and groups tens of millions of rows at scale 100: with ClickHouse's
# default in-memory hash joins, fact_deliveries alone took the 24 GB of the machine here
# (embedded chdb, the ETL's own process). Joins spill to disk (grace hash, where the join's
# kind allows it), as do large groupings and sorts, and a query that still outgrows
# max_memory_usage fails with ClickHouse's MEMORY_LIMIT_EXCEEDED rather than the machine.
SPILL = (
    "settings join_algorithm = 'grace_hash,hash', max_bytes_in_join = 1000000000, "
    "max_bytes_before_external_group_by = 2000000000, max_bytes_before_external_sort = 2000000000, "
    "max_memory_usage = 10000000000"
)
RAW_ENGINE = "ENGINE = MergeTree ORDER BY tuple()"


@dataclass(frozen=True)
class Databases:
    """The databases one served warehouse uses (all named after it)."""

    served: str

    @property
    def build(self) -> str:
        return f"{self.served}_build"

    @property
    def staging(self) -> str:
        return f"{self.served}_staging"

    @property
    def semantic(self) -> str:
        return f"{self.served}_semantic"

    def previous(self, n: int) -> str:
        return f"{self.served}_previous_{n}"

    @staticmethod
    def raw(generation: str) -> str:
        """The database beside a generation's (served, build or previous) holding the raw
        history it was built from: not granted to readers, exchanged and kept with it."""
        return f"{generation}_raw"


def databases(settings: Settings) -> Databases:
    return Databases(settings.clickhouse_database)


@cache
def _connect(url: str) -> ClickHouse:
    return ClickHouse(Target(url))


def connect(settings: Settings) -> ClickHouse:
    """The process's ClickHouse for these settings (one per URL)."""
    return _connect(settings.clickhouse_url)


def reader_endpoint(settings: Settings, tool: str, error: type[Exception] = ClickHouseError) -> Endpoint:
    """The server a BI tool connects to, as the read-only user: OLIST_CLICKHOUSE_READER_URL
    (else OLIST_CLICKHOUSE_URL). Embedded chdb serves no BI tool: `error`, naming `tool`."""
    end = Target(settings.clickhouse_reader_url or settings.clickhouse_url).endpoint
    if end is None:
        raise error(
            f"{tool} cannot read embedded ClickHouse (chdb serves one process and no network): set OLIST_CLICKHOUSE_READER_URL "
            "to a ClickHouse server with the read-only user (docs/clickhouse.md)"
        )
    return end


# Besides the models, the served database holds the ETL's record of the files it loaded
# (DuckDB's meta.loads), which the freshness dataset reads: published with the models.
LOADS = "meta_loads"


def served_tables(plan: BuildPlan) -> list[str]:
    """The tables a served warehouse holds: the table models and the ledger of loads."""
    return [m.name for m in plan.models if not m.view] + [LOADS]


# -- build ---------------------------------------------------------------------------------


def build(
    settings: Settings,
    plan: BuildPlan,
    source: duckdb.DuckDBPyConnection,
    progress: Progress = lambda *_: None,
    increment: Increment | None = None,
    raw: str | None = None,
) -> BuildResult:
    """Build every model of `plan` in ClickHouse; check the contracts and the views; return
    each model's row count and the build's notes; `progress` hears each model built. Raises
    `BuildFailed`; the served tables are not touched.

    `raw` says where the raw history stands (`start`): "extended" (the served generation's
    cloned, each of the run's drops merged in as it was validated: `merge_drop`), "replayed"
    (every drop of a full run merged into empty tables), or None (not started: every raw table
    of the DuckDB warehouse `source` loaded whole, as bench/queries.py copies one). The load
    ledger and the quarantine are the served generation's (when extended) and `source`'s.

    After an increment on extended raw history, the touched orders are found there (`_touch`);
    unless they are more than `increment.most` of all orders, each per-order table is the
    served one's untouched rows and its touched orders' rows built again from its scoped SQL (a
    per-person table the same by touched person, when its sources changed), a table whose
    sources the drop left alone is cloned as it is, and the others are built whole."""
    ch, db = connect(settings), databases(settings)
    built = BuildResult({}, [])
    try:
        if raw is None:
            _create_build(ch, db)
            _load_raw(ch, db, plan, source)
        if raw == "extended" and increment is not None:
            built.touched, built.orders = _touch(ch, db, plan, source, increment)
            if built.touched > increment.most * built.orders:
                built.rebuilt, built.touched = f"the drop touches {built.touched:,} of {built.orders:,} orders", None
                increment = None
            else:
                _scope_raw(ch, db, plan)
        else:
            increment = None
        fitted = _Fitted()
        for model in plan.models:
            began = time.perf_counter()
            kept = _build_in_increment(ch, db, plan, model, increment) if increment else None
            built.rows[model.name] = kept if kept is not None else _build_model(ch, db, plan, model, fitted)  # 0 rows is kept too
            progress(model.name, built.rows[model.name], time.perf_counter() - began)
        built.notes = fitted.notes
        _keep_records(ch, db, plan, source, raw == "extended")
        tables = _tables(db, plan)
        built.notes += plan.check(lambda sql: ch.scalar(sql), lambda name: tables[name], increment) or []
        _check_views(ch, db, plan)
        return built
    except ClickHouseError as e:
        raise BuildFailed(f"the ClickHouse build failed: {e}") from e
    finally:
        shutil.rmtree(handover_folder(settings), ignore_errors=True)


# Beside the raw tables, a generation's raw history database keeps the run records the DuckDB
# file used to: the rejected rows of every run that built it, and the models' fingerprint.
QUARANTINE = "quarantine_rejected_rows"
FINGERPRINT = "meta_build"
RECORDS = (LOADS, QUARANTINE, FINGERPRINT)


def _keep_records(ch: ClickHouse, db: Databases, plan: BuildPlan, source: duckdb.DuckDBPyConnection, extended: bool) -> None:
    """The build's load ledger (beside the models and beside the raw history) and quarantine:
    the served generation's, when the build extends it, and `source`'s (this run's); and the
    fingerprint of the models that built it."""
    raw = db.raw(db.build)
    for table, query in ((LOADS, "select * from meta.loads"), (QUARANTINE, "select * from quarantine.rejected_rows")):
        target = f"{raw}.{table}"
        if extended and table in _table_names(ch, db.raw(db.served)):
            ch.command(f"create table {target} clone as {db.raw(db.served)}.{table}")
            ch.insert(target, source.execute(query).fetch_record_batch(BATCH_ROWS))
        else:
            ch.load(target, source.execute(query).fetch_record_batch(BATCH_ROWS), RAW_ENGINE)
    ch.command(f"create table {db.build}.{LOADS} clone as {raw}.{LOADS}")
    ch.command(f"create table {raw}.{FINGERPRINT} (fingerprint String) {RAW_ENGINE}")
    ch.command(f"insert into {raw}.{FINGERPRINT} values ({{f:String}})", {"f": plan.fingerprint})


def _create_build(ch: ClickHouse, db: Databases) -> None:
    for name in (db.build, db.raw(db.build), db.staging):
        ch.command(f"drop database if exists {name} sync")
        ch.command(f"create database {name}")


def start(settings: Settings, plan: BuildPlan, source: duckdb.DuckDBPyConnection, incremental: bool) -> str:
    """At the start of a run, before its first drop is validated: the build's databases, and
    its raw history ready for `merge_drop`: an incremental run extends the served generation's
    (its raw tables cloned: hard links to their parts, no copy), "extended"; a full run starts
    from empty raw tables, typed as the DuckDB build `source` types them, "replayed"."""
    ch, db = connect(settings), databases(settings)
    try:
        _create_build(ch, db)
        if incremental:
            if not _extends(ch, db, plan):
                raise BuildFailed(f"ClickHouse's served {db.served} keeps no raw history to extend: run `olist-bi etl run --full`")
            for table in BY_TABLE:
                ch.command(f"create table {_tables(db, plan)[f'raw.{table}']} clone as {db.raw(db.served)}.{table}")
            return "extended"
        for table in BY_TABLE:
            empty = source.execute(f"select * from raw.{table} limit 0").fetch_arrow_table()
            ch.create_from_arrow(_tables(db, plan)[f"raw.{table}"], empty, RAW_ENGINE)
        return "replayed"
    except ClickHouseError as e:
        raise BuildFailed(f"the ClickHouse build failed: {e}") from e


BATCH_ROWS = 500_000  # rows per batch a table is sent in: never a whole table in one process's memory


def _extends(ch: ClickHouse, db: Databases, plan: BuildPlan) -> bool:
    """Whether the served generation can be extended: it holds every table and raw table, and
    its raw history is of the runs its models were built from (a generation published before
    raw history was kept, or swapped back with one, holds none)."""
    served_raw = db.raw(db.served)
    if not (set(served_tables(plan)) <= _table_names(ch, db.served) and set(BY_TABLE) <= _table_names(ch, served_raw)):
        return False
    runs = _runs(ch, served_raw)
    return bool(runs) and runs == _runs(ch, db.served)


def extendable(settings: Settings, plan: BuildPlan) -> bool:
    """Whether an incremental run can extend what ClickHouse serves (else it replays every drop)."""
    return _extends(connect(settings), databases(settings), plan)


def ledger(settings: Settings) -> Ledger | None:
    """The served generation's name and load ledger; None when ClickHouse serves none."""
    ch, db = connect(settings), databases(settings)
    if LOADS not in _table_names(ch, db.served):
        return None
    columns = ("run_id", "source_file", "path", "sha256", "rows_read", "rows_loaded", "rows_quarantined")
    rows = ch.rows(f"select {', '.join(columns)} from {db.served}.{LOADS} order by run_id, source_file")
    return Ledger(_generation(db, {row[0] for row in rows}), [dict(zip(columns, row)) for row in rows])


def generation(settings: Settings) -> str:
    """The served generation's name: the database and the last run it holds."""
    db = databases(settings)
    return _generation(db, _runs(connect(settings), db.served))


def _generation(db: Databases, runs: set[int]) -> str:
    return f"{db.served} run {max(runs)}" if runs else db.served


def fingerprint(settings: Settings) -> str | None:
    """The fingerprint of the models that built the served generation, if it recorded one."""
    ch, db = connect(settings), databases(settings)
    if FINGERPRINT not in _table_names(ch, db.raw(db.served)):
        return None
    return ch.scalar(f"select any(fingerprint) from {db.raw(db.served)}.{FINGERPRINT}")


def held(settings: Settings, plan: BuildPlan, table: str) -> int:
    """The rows the build's raw history holds of `table` now (before a drop's are merged)."""
    return int(connect(settings).scalar(f"select count() from {_tables(databases(settings), plan)[f'raw.{table}']}"))


def mirror(settings: Settings, plan: BuildPlan, source: duckdb.DuckDBPyConnection, table: str, column: str, keys: str, rows: bool) -> None:
    """Put in `raw.<table>` of the run's DuckDB scratch `source` what a drop's quality rules and
    notes read of the build's raw history, bounded by the drop: the values of `column` among
    `keys` (a query of `source`) that history holds, added where the scratch lacks them (a
    reference or a lookup reads nothing else), or with `rows` the whole rows of those values,
    in place of the scratch's own (a note reads their other columns)."""
    found = source.execute(f"select distinct k from ({keys}) as t(k) where k is not null").fetch_arrow_table()
    if not found.num_rows:
        return
    ch, db = connect(settings), databases(settings)
    staged, history = f"{db.staging}.mirror_keys", _tables(db, plan)[f"raw.{table}"]
    ch.command(f"drop table if exists {staged} sync")
    ch.create_from_arrow(staged, found, RAW_ENGINE)
    what = "*" if rows else f"distinct {column}"
    held = ch.arrow(f"select {what} from {history} where {column} in (select k from {staged})")
    ch.command(f"drop table {staged} sync")
    source.register("mirror_keys", found)
    source.register("mirrored", held)
    try:
        if rows:
            source.execute(f"delete from raw.{table} where {column} in (select k from mirror_keys)")
            source.execute(f"insert into raw.{table} by name select * from mirrored")
        else:
            source.execute(
                f"insert into raw.{table} ({column}) select {column} from mirrored "
                f"where {column} not in (select {column} from raw.{table} where {column} is not null)"
            )
    finally:
        source.unregister("mirror_keys")
        source.unregister("mirrored")


def columns(settings: Settings, relation: str) -> list[str]:
    """The columns of a served relation named as DuckDB SQL names it: `semantic.<view>` in
    `<db>_semantic`, `meta.loads` and a model in `<db>`; none when it does not exist."""
    db = databases(settings)
    schema, _, name = relation.rpartition(".")
    database = db.semantic if schema == VIEWS else db.served
    name = LOADS if relation == "meta.loads" else name
    return _columns(connect(settings), f"{database}.{name}")


def _load_raw(ch: ClickHouse, db: Databases, plan: BuildPlan, source: duckdb.DuckDBPyConnection) -> None:
    """Every raw table of the build `source`, whole, in batches."""
    for table in BY_TABLE:
        ch.load(_tables(db, plan)[f"raw.{table}"], source.execute(f"select * from raw.{table}").fetch_record_batch(BATCH_ROWS), RAW_ENGINE)


def handover_folder(settings: Settings) -> Path:
    """Where a run hands a drop's accepted rows over (`merge_drop`), one Parquet file per raw
    table, until ClickHouse has read them."""
    return settings.tmp_dir / "clickhouse-handover"


def merge_drop(settings: Settings, plan: BuildPlan, source: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...] | None) -> None:
    """Merge a drop's accepted rows of `table` (`incoming.<table>` of the DuckDB build
    `source`, just merged into its `raw`) into the build's raw history (`start`), as the
    DuckDB build merges them (etl/pipeline.py's `_merge`): the rows of the same unique `key`
    replaced, or a snapshot (`key` None) replaced whole. The rows are written as Parquet and
    read by ClickHouse itself (embedded: its `file()`; a server: the file streamed as the body
    of an INSERT), never held whole in this process."""
    ch, db = connect(settings), databases(settings)
    folder = handover_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(BY_TABLE[table].header)
    names = ", ".join(f"`{c}`" for c in columns)
    file = folder / f"{table}.parquet"
    source.execute(f"copy (select {', '.join(columns)} from incoming.{table} order by _row) to '{file}' (format parquet)")
    target, staged = _tables(db, plan)[f"raw.{table}"], f"{db.staging}.incoming_{table}"
    try:
        ch.command(f"drop table if exists {staged} sync")
        ch.command(f"create table {staged} as {target} {RAW_ENGINE}")
        ch.insert_file(staged, file, columns)
        if key is None:
            ch.command(f"truncate table {target}")
        elif ch.scalar(f"select count() from {target}"):
            ch.command(f"delete from {target} where ({', '.join(key)}) in (select {', '.join(key)} from {staged})")
        ch.command(f"insert into {target} ({names}) select {names} from {staged}")
        ch.command(f"drop table {staged} sync")
    except ClickHouseError as e:
        raise BuildFailed(f"the ClickHouse build failed: {e}") from e
    finally:
        file.unlink(missing_ok=True)


def _touch(ch: ClickHouse, db: Databases, plan: BuildPlan, source: duckdb.DuckDBPyConnection, increment: Increment) -> tuple[int, int]:
    """The touched orders (`touched_orders`) and people (`touched_people`), found in
    ClickHouse's raw history as the DuckDB build finds them (`increment.touched_sql`,
    `people_sql`), from the keys the drop brought, the served reporting window and the new one
    (its view, and the views it reads, made first); returns (touched orders, all orders)."""
    ch.create_from_arrow(f"{db.staging}.drop_keys", source.execute(increment.noted).fetch_arrow_table(), RAW_ENGINE)
    for model in _views_read_by(plan, tables_read(increment.touched_sql)):
        _build_model(ch, db, plan, model, _Fitted())
    tables = _tables(db, plan) | {"drop_keys": f"{db.staging}.drop_keys", "mart_reporting_window": f"{db.served}.mart_reporting_window"}
    ch.command(f"create table {db.staging}.touched_orders {RAW_ENGINE} as {to_clickhouse(increment.touched_sql, tables)}")
    ch.command(f"create table {tables['touched_people']} {RAW_ENGINE} as {to_clickhouse(increment.people_sql, tables)}")
    touched = int(ch.scalar(f"select count() from {db.staging}.touched_orders"))
    return touched, int(ch.scalar(f"select count() from {tables['raw.orders']}"))


def _views_read_by(plan: BuildPlan, names: set[str]) -> list[PlannedModel]:
    """The views among `names` and every view they read, in build order."""
    by_name = {m.name: m for m in plan.models}
    wanted, todo = set(), [n for n in names if n in by_name]
    while todo:
        model = by_name[todo.pop()]
        if model.view and model.name not in wanted:
            wanted.add(model.name)
            todo += model.reads
    return [m for m in plan.models if m.name in wanted]


def _scope_raw(ch: ClickHouse, db: Databases, plan: BuildPlan) -> None:
    """The touched orders' rows of each raw table with an order_id."""
    for table in ORDER_TABLES:
        ch.command(
            f"create table {db.staging}.scoped_raw_{table} {RAW_ENGINE} as select * from {_tables(db, plan)[f'raw.{table}']} "
            f"where order_id in (select order_id from {db.staging}.touched_orders)"
        )


def _build_in_increment(ch: ClickHouse, db: Databases, plan: BuildPlan, model: PlannedModel, increment: Increment) -> int | None:
    """A model's rows after an increment, the served table's reused: a per-order model's
    touched orders' rows built (`scoped_<name>`, which the later per-order models read), and a
    per-person model's touched people's when its sources changed, and for a table put in place
    of the served ones; a table whose sources the drop left alone cloned. None for a model to
    build whole (a view is one: it costs nothing)."""
    tables = _tables(db, plan)
    target = tables[model.name]
    key = model.scoped_by
    if key == "order_id" or (key is not None and model.sources & increment.changed):
        try:
            for name, sql in model.scoped_inputs:
                ch.command(f"create table {tables[name]} {RAW_ENGINE} as {to_clickhouse(sql, tables)} {SPILL}")
            scoped = tables[f"scoped_{model.name}"]
            ch.command(f"create table {scoped} {RAW_ENGINE} as {to_clickhouse(model.scoped_sql, tables)} {SPILL}")
        except ClickHouseError as e:
            raise BuildFailed(f"model {model.name} ({model.file}) failed to build on ClickHouse: {e}") from e
        if model.view:
            return None
        ch.command(f"create table {target} as {db.served}.{model.name}")
        columns = ", ".join(f"`{c}`" for c in _columns(ch, target))
        touched = f"(select {key} from {tables['touched_orders' if key == 'order_id' else 'touched_people']})"
        ch.command(f"insert into {target} ({columns}) select {columns} from {db.served}.{model.name} where {key} not in {touched}")
        ch.command(f"insert into {target} ({columns}) select {columns} from {scoped}")
        return int(ch.scalar(f"select count() from {target}"))
    if model.view or model.sources & increment.changed:
        return None
    ch.command(f"create table {target} clone as {db.served}.{model.name}")
    return int(ch.scalar(f"select count() from {target}"))


def _columns(ch: ClickHouse, table: str) -> list[str]:
    database, _, name = table.partition(".")
    sql = "select name from system.columns where database = {db:String} and table = {t:String} order by position"
    return [r[0] for r in ch.rows(sql, {"db": database, "t": name})]


@cache
def _tables(db: Databases, plan: BuildPlan) -> dict[str, str]:
    """Where each table a model's SQL names is built in ClickHouse: raw.x in the build's raw
    database, view models and an increment's scoped tables in the staging database, table
    models in the build database."""
    tables = {f"raw.{t}": f"{db.raw(db.build)}.{t}" for t in BY_TABLE}  # the source contract's tables
    tables |= {f"scoped_raw_{t}": f"{db.staging}.scoped_raw_{t}" for t in ORDER_TABLES}
    tables |= {name: f"{db.staging}.{name}" for name in ("touched_orders", "touched_people")}
    for model in plan.models:
        tables[model.name] = f"{db.staging if model.view else db.build}.{model.name}"
        tables[f"scoped_{model.name}"] = f"{db.staging}.scoped_{model.name}"
        tables |= {name: f"{db.staging}.{name}" for name, _ in model.scoped_inputs}
    tables["python_rows"] = f"{db.staging}.python_rows"
    tables["meta.loads"] = f"{db.build}.{LOADS}"
    return tables


def _check_views(ch: ClickHouse, db: Databases, plan: BuildPlan) -> None:
    """Every view over the build, before anything is published: each must compile, and each
    semantic view must have its model's rows (a join that fans out would multiply every metric)."""
    tables = _tables(db, plan)
    for view in plan.views:
        staged = f"{db.staging}.{view.name.replace('.', '_')}"
        ch.command(f"create view {staged} as {to_clickhouse(view.sql, tables)}")
        ours = ch.scalar(f"select count() from {staged}")
        if view.rows_of is not None and ours != (theirs := ch.scalar(f"select count() from {tables[view.rows_of]}")):
            raise BuildFailed(f"the semantic view of {view.rows_of} has {ours} rows on ClickHouse, its model {theirs}: a join fans out")


def _engine(model: PlannedModel) -> str:
    clause = f"ENGINE = MergeTree ORDER BY ({', '.join(model.order_by)})" if model.order_by else "ENGINE = MergeTree ORDER BY tuple()"
    if model.partition_by:
        clause += f" PARTITION BY {model.partition_by}"
    return clause + " SETTINGS allow_nullable_key = 1"


@dataclass
class _Fitted:
    """The rows fitted in Python so far in a build, by model, and the fits' notes."""

    rows: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _build_model(ch: ClickHouse, db: Databases, plan: BuildPlan, model: PlannedModel, fitted: _Fitted) -> int:
    """Build one model whole."""
    if model.python:
        ch.create_from_arrow(f"{db.staging}.python_rows", _fitted(ch, db, plan, model, fitted), RAW_ENGINE)
    sql = to_clickhouse(model.sql, _tables(db, plan))
    target = _tables(db, plan)[model.name]
    try:
        if model.view:
            ch.command(f"create or replace view {target} as {sql}")
        else:
            ch.command(f"create table {target} {_engine(model)} as {sql} {SPILL}")
    except ClickHouseError as e:
        raise BuildFailed(f"model {model.name} ({model.file}) failed to build on ClickHouse: {e}") from e
    finally:
        if model.python:
            ch.command(f"drop table if exists {db.staging}.python_rows sync")
    return int(ch.scalar(f"select count() from {target}"))


def _fitted(ch: ClickHouse, db: Databases, plan: BuildPlan, model: PlannedModel, fitted: _Fitted) -> pa.Table:
    """The rows a model built in Python selects (its `python_rows`): fitted by its etl module
    (`plan.python`) from this build's tables in ClickHouse, the module's queries transpiled,
    then typed by the model's own SQL in DuckDB (an empty frame has no types)."""
    if model.name not in fitted.rows:
        tables = _tables(db, plan)

        def query(sql: str, params: list):
            answer = ch.arrow(*to_clickhouse_query(sql, params, tables))
            frame = answer.to_pandas()
            for field_ in answer.schema:  # decimals as floats, as DuckDB hands a frame over: the nearest float
                if pa.types.is_decimal(field_.type):  # (Python's; pyarrow's cast misses it by one bit in eight)
                    frame[field_.name] = frame[field_.name].astype("float64")
            return frame

        rows, notes = plan.python(model.python, query)
        fitted.rows.update(rows)
        fitted.notes.extend(notes)
    with duckdb.connect() as con:
        con.register("python_rows", fitted.rows[model.name])
        return con.execute(model.sql).fetch_arrow_table()


# -- publish and roll back ------------------------------------------------------------------


def publish(settings: Settings, plan: BuildPlan) -> None:
    """Serve the build: exchange each table (and raw table) with the served one, keep the
    replaced ones for rollback, (re)create the semantic views, drop the staging database."""
    ch, db = connect(settings), databases(settings)
    for name in (db.served, db.raw(db.served)):
        ch.command(f"create database if not exists {name}")
    _exchange(ch, plan, db.build, db.served)
    faults.point("clickhouse_exchanged")
    _finish_publish(ch, db, plan)


def _finish_publish(ch: ClickHouse, db: Databases, plan: BuildPlan) -> None:
    """After the exchange, `<db>_build` holds the generation just replaced: it becomes
    previous_1; the semantic views are (re)created, the staging database dropped."""
    _drop_generation(ch, db.previous(KEEP))
    for n in range(KEEP - 1, 0, -1):
        if _exists(ch, db.previous(n)):
            _rename_generation(ch, db.previous(n), db.previous(n + 1))
    _rename_generation(ch, db.build, db.previous(1))
    _drop_empty_previous(ch, db, plan)
    create_views(ch, db, plan)
    ch.command(f"drop database if exists {db.staging} sync")


def _pairs(plan: BuildPlan, one: str, other: str) -> list[tuple[str, str]]:
    """The tables two generations exchange: the served tables, and the raw history beside them."""
    names = [(one, other, t) for t in served_tables(plan)] + [(Databases.raw(one), Databases.raw(other), t) for t in [*BY_TABLE, *RECORDS]]
    return [(f"{a}.{t}", f"{b}.{t}") for a, b, t in names]


def _exchange(ch: ClickHouse, plan: BuildPlan, one: str, other: str) -> None:
    """Exchange every served table and raw table of two generations, in one statement.
    ClickHouse swaps the pairs one after another and stops at the first that fails, keeping the
    swaps before it, so every table is made to exist on both sides first (empty where a
    generation lacks one)."""
    for name in (Databases.raw(one), Databases.raw(other)):
        ch.command(f"create database if not exists {name}")
    pairs = _pairs(plan, one, other)
    for a, b in pairs:
        ch.command(f"create table if not exists {b} as {a}")
        ch.command(f"create table if not exists {a} as {b}")
    ch.command("exchange tables " + ", ".join(f"{a} and {b}" for a, b in pairs))


def _drop_generation(ch: ClickHouse, name: str) -> None:
    for database in (name, Databases.raw(name)):
        ch.command(f"drop database if exists {database} sync")


def _rename_generation(ch: ClickHouse, name: str, to: str) -> None:
    """Rename a generation and its raw history (a stale raw history under the new name, left
    by a run killed between the two renames, is not its own: dropped)."""
    ch.command(f"rename database {name} to {to}")
    ch.command(f"drop database if exists {Databases.raw(to)} sync")
    if _exists(ch, Databases.raw(name)):
        ch.command(f"rename database {Databases.raw(name)} to {Databases.raw(to)}")


def _drop_empty_previous(ch: ClickHouse, db: Databases, plan: BuildPlan) -> None:
    """A first publish exchanged with the empty tables it created: that is no generation."""
    first = db.previous(1)
    if all(ch.scalar(f"select count() from {first}.{t}") == 0 for t in served_tables(plan)):
        _drop_kept(ch, db, first)


def _drop_kept(ch: ClickHouse, db: Databases, name: str) -> None:
    """Drop a kept generation (the newest there is); the older ones move up one."""
    _drop_generation(ch, name)
    for n in range(2, KEEP + 1):
        if _exists(ch, db.previous(n)):
            _rename_generation(ch, db.previous(n), db.previous(n - 1))


def serves(settings: Settings, plan: BuildPlan) -> bool:
    """Whether ClickHouse serves a warehouse (every table model of it) now."""
    ch, db = connect(settings), databases(settings)
    return set(served_tables(plan)) <= _table_names(ch, db.served)


def versions(settings: Settings) -> list[str]:
    """The kept generations before the served one, newest first (database names)."""
    ch, db = connect(settings), databases(settings)
    return [db.previous(n) for n in range(1, KEEP + 1) if _exists(ch, db.previous(n))]


def rollback(settings: Settings, plan: BuildPlan) -> str:
    """Serve the newest kept generation again; the one served until now is dropped (a
    rollback undoes the last publish). Returns the database it came from."""
    ch, db = connect(settings), databases(settings)
    kept = versions(settings)
    if not kept:
        raise NothingToRollBack(f"ClickHouse keeps no previous warehouse ({db.previous(1)} does not exist)")
    _exchange(ch, plan, kept[0], db.served)
    _drop_kept(ch, db, kept[0])
    return kept[0]


def reconcile(settings: Settings, plan: BuildPlan) -> list[str]:
    """At the start of a run: finish the publish of a run killed after its exchange (the
    served tables are its, `<db>_build` holds the generation it replaced, not yet kept as
    previous_1). A build killed before its exchange left nothing served; the next build
    replaces it. Returns what was done."""
    shutil.rmtree(handover_folder(settings), ignore_errors=True)  # a killed run's
    ch, db = connect(settings), databases(settings)
    if not _exists(ch, db.build) or not serves(settings, plan):
        return []
    replaced, served = _runs(ch, db.build), _runs(ch, db.served)
    if not replaced < served:  # a build never exchanged
        return []
    _finish_publish(ch, db, plan)
    return [
        f"ClickHouse serves run {max(served)}, whose process died before keeping the generation it replaced: kept now as {db.previous(1)}"
    ]


def _runs(ch: ClickHouse, database: str) -> set[int]:
    """The runs whose files a generation holds (its meta_loads)."""
    if LOADS not in _table_names(ch, database):  # also when the database does not exist
        return set()
    return {r for (r,) in ch.rows(f"select distinct run_id from {database}.{LOADS}")}


def _table_names(ch: ClickHouse, database: str) -> set[str]:
    return {r[0] for r in ch.rows("select name from system.tables where database = {db:String}", {"db": database})}


def _exists(ch: ClickHouse, database: str) -> bool:
    return bool(ch.scalar("select count() from system.databases where name = {name:String}", {"name": database}))


# -- the semantic layer ------------------------------------------------------------------------


def create_views(ch: ClickHouse, db: Databases, plan: BuildPlan) -> dict[str, int]:
    """`<db>_semantic.<view>` for every view of the plan (the semantic layer's, then the
    dashboards' row datasets), over the served tables."""
    ch.command(f"create database if not exists {db.semantic}")
    rows, names = {}, served_names(db)
    for view in plan.views:
        served = f"{db.semantic}.{view.name.split('.', 1)[1]}"
        ch.command(f"create or replace view {served} as {to_clickhouse(view.sql, names, db.served)}")
        rows[served] = int(ch.scalar(f"select count() from {served}"))
    return rows


def query(settings: Settings, sql: str, params: list | tuple = ()) -> list[tuple]:
    """Rows of a DuckDB query (a compiled metric query, `?` parameters) run on the served
    ClickHouse warehouse, within the readers' limits: ClickHouse stops it at
    OLIST_QUERY_TIMEOUT_SECONDS (max_execution_time) and refuses an answer over
    OLIST_QUERY_MAX_RESULT_MB (max_result_bytes)."""
    db = databases(settings)
    text, named = to_clickhouse_query(sql, list(params), served_names(db), db.served)
    limits = served_warehouse.limits(settings)
    text += (
        f"\nsettings max_execution_time = {max(1, round(limits.timeout_seconds))}, timeout_overflow_mode = 'throw', "
        f"max_result_bytes = {limits.max_result_bytes}, result_overflow_mode = 'throw'"
    )
    try:
        table = connect(settings).arrow(text, named)
    except ClickHouseError as e:
        if "TIMEOUT_EXCEEDED" in str(e):
            raise served_warehouse.timed_out(limits.timeout_seconds) from e
        if "TOO_MANY_ROWS_OR_BYTES" in str(e):
            raise served_warehouse.too_large(limits.max_result_bytes + 1, limits.max_result_bytes) from e
        raise
    served_warehouse.check_size(table.nbytes, limits.max_result_bytes)  # chdb does not always apply max_result_bytes
    columns = [c.to_pylist() for c in table.columns]
    return list(zip(*columns)) if columns else []


# The schema in which DuckDB names the views the BI tools read (the semantic layer's and the
# dashboards' row datasets: semantic/flat.py's SCHEMA); on ClickHouse they live in <db>_semantic.
VIEWS = "semantic"


def served_names(db: Databases) -> dict[str, str]:
    """Tables as DuckDB SQL names them outside the models: every view semantic.<view> -> the
    view in <db>_semantic, meta.loads -> <db>.meta_loads."""
    return {f"{VIEWS}.*": f"{db.semantic}.*", "meta.loads": f"{db.served}.{LOADS}"}

"""One ETL run: extract, validate, merge, transform, publish, recorded in the operations store.

On the DuckDB engine the run builds a new DuckDB file beside the served warehouse. An
incremental run starts from a copy of the served file (its `raw` tables hold everything loaded
so far, its models the last build), merges the drop's accepted rows into `raw` in place and
rebuilds what the drop touches (etl/increment.py); a full run (`--full`, or nothing served
yet) starts from an empty file, replays every drop and builds every model. Either tests the
contracts and only then swaps the file in. Any failure leaves the served file untouched and
the run marked failed with its reason.

On an engine that keeps raw history itself (ClickHouse: engines/base.py's `history_in_file`),
the DuckDB file is a scratch of the run: each drop is validated there against the rows of
history its rules read (`mirror`), its accepted rows go to the engine as they are merged
(`hand_over`), the engine builds every model, and nothing of the file is published.

Which tables are appended and which rebuilt:
- `raw.*`: orders, items, payments, reviews, customers, sellers and products are upserted by
  their keys (a later drop's row replaces an earlier one with the same key); geolocation and
  the category translation are snapshots, replaced whole when a new file arrives. A snapshot
  that would leave its table empty, or with under half the rows it has, fails the run unless
  the operator allows it (`allow_shrink`, `etl run --allow-shrink`): a truncated export must
  not wipe a dimension silently. An empty file of an appended table is a warning.
- `quarantine.rejected_rows`: appended, one row per rejected source row, per run.
- facts: the rows of the orders a drop touches, rebuilt in place; everything else rebuilt
  whole from `raw` on every run (etl/increment.py says when an increment rebuilds it all).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import psycopg

from olist_bi import contract
from olist_bi.runtime import faults
from olist_bi.contract import BY_TABLE, DUCKDB_TYPES
from olist_bi.etl import extract as extract_step
from olist_bi.engines.base import BuildFailed, Damaged, Engine, Increment, NothingToRollBack, engine
from olist_bi.engines.duckdb import publish as publish_step
from olist_bi.etl import increment, quality, readers, transform
from olist_bi.operations import audit, store
from olist_bi.operations.postgres import database_url
from olist_bi.settings import Settings

ETL_LOCK = 7_106_712  # PostgreSQL advisory lock: one ETL run at a time, across processes
LOAD_ORDER = (
    "category_translation",
    "geolocation",
    "sellers",
    "products",
    "customers",
    "orders",
    "order_items",
    "order_payments",
    "order_reviews",
)
SNAPSHOT_TABLES = {"geolocation", "category_translation"}
SHRINK_LIMIT = 0.5  # a snapshot with fewer rows than this share of the table's fails the run
BUSY = "another ETL run is in progress; this one did nothing"

Progress = Callable[[str], None]


class EtlError(RuntimeError):
    """A run failed; nothing was published. The message names file, rule, count and examples."""

    def __init__(self, message: str, run_id: int | None = None):
        super().__init__(message)
        self.run_id = run_id


@dataclass
class RunResult:
    run_id: int
    status: str  # succeeded, skipped
    message: str
    published: Path | None = None
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_loaded: dict[str, int] = field(default_factory=dict)
    rows_quarantined: dict[str, int] = field(default_factory=dict)
    results: list[quality.RuleResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shrunk: list[str] = field(default_factory=list)  # snapshots that would shrink their table, not allowed
    stage_seconds: dict[str, float] = field(default_factory=dict)
    model_rows: dict[str, int] = field(default_factory=dict)
    touched_orders: int | None = None  # an increment's: the orders whose fact rows it rebuilt (None: every model rebuilt)


def run(
    settings: Settings,
    source: Path | None,
    trigger: str = "manual",
    full: bool = False,
    progress: Progress | None = None,
    allow_shrink: bool = False,
) -> RunResult:
    """Run the ETL once over the drop `source` (or, with `full`, over every drop loaded so
    far plus `source`). Raises `EtlError` when the run fails. `allow_shrink` lets a snapshot
    file replace its table with far fewer rows (or none)."""
    say = progress or (lambda message: None)
    served = settings.warehouse_path
    served.parent.mkdir(parents=True, exist_ok=True)
    with store.connect(database_url(settings)) as ops, _folder_lock(served) as folder_free:
        # Two locks: the operations database's (runs of every machine on it) and the warehouse
        # folder's (runs on this folder whatever database they record in: they would delete
        # each other's build files).
        if not folder_free or not ops.execute("select pg_try_advisory_lock(%s) as ok", (ETL_LOCK,)).fetchone()["ok"]:
            log = store.RunLog(ops, trigger, str(source) if source else None, full)
            message = BUSY
            log.finish("skipped", error=message)
            audit.append(ops, "etl.run.skipped", f"run {log.run_id}", {"reason": message}, source="etl")
            return RunResult(log.run_id, "skipped", message)
        try:
            for run_id in _complete_published_runs(ops, _serving(settings)):
                say(f"completed the records of run {run_id}: its file is served, its process stopped after the publish")
            for run_id in store.close_abandoned_runs(ops):
                say(f"closed run {run_id}, left running by a process that died")
            readers.reconcile(settings, say)
            serving = _serving(settings)
            for message in serving.reconcile():
                say(message)
                audit.append(
                    ops, "warehouse.rolled_back", settings.clickhouse_database, {"engine": serving.name, "reason": message}, source="etl"
                )
            publish_step.remove_abandoned_builds(served)
            readers.remove_abandoned_builds(settings)
            quality.sync_rules(ops)
            return _run_locked(settings, ops, source, trigger, full, say, allow_shrink)
        finally:
            _checkpoint(settings, ops, say)
            ops.execute("select pg_advisory_unlock(%s)", (ETL_LOCK,))


def _checkpoint(settings: Settings, ops: psycopg.Connection, say: Progress) -> None:
    """Every run ends, succeeded or failed, with a signed checkpoint of the audit trail: a
    rewrite of anything older then fails `audit verify`, with no scheduler running. A
    checkpoint that cannot be written is said, not raised: the run's own outcome stands."""
    from olist_bi.operations import checkpoint

    try:
        written, _ = checkpoint.write(settings, ops)
    except (psycopg.Error, OSError) as e:
        say(f"audit checkpoint not written: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")
        return
    say(f"audit checkpoint: {written.rows} rows up to id {written.last_id}, signed")


@contextlib.contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """Hold both locks of an ETL run (the operations database's and the warehouse folder's)
    for something else that changes what is served, such as a rollback; raises EtlError
    (BUSY) when a run holds them."""
    served = settings.warehouse_path
    with store.connect(database_url(settings)) as ops, _folder_lock(served) as folder_free:
        if not folder_free or not ops.execute("select pg_try_advisory_lock(%s) as ok", (ETL_LOCK,)).fetchone()["ok"]:
            raise EtlError("an ETL run is in progress; try again when it has finished")
        try:
            yield
        finally:
            ops.execute("select pg_advisory_unlock(%s)", (ETL_LOCK,))


@dataclass
class RollbackResult:
    restored: str  # the generation served again (DuckDB: its file)
    older_left: int  # kept generations left to roll back to
    note: str | None = None  # what else the engine serves again (ClickHouse: its database)


def rollback(settings: Settings, say: Progress | None = None) -> RollbackResult:
    """Serve the previous warehouse again on every engine, and the reader copies cut from it;
    audit it. Undoes the last publish. Raises EtlError when a run holds the locks or an
    engine keeps nothing to roll back to (then nothing changes)."""
    say = say or (lambda message: None)
    with exclusive(settings):  # not while a run publishes
        try:
            restored = _serving(settings).rollback()
        except NothingToRollBack as e:
            raise EtlError(str(e)) from None
        if restored.note:
            say(restored.note)
        readers.reconcile(settings, say)
    with store.connect(database_url(settings)) as ops:
        audit.append(ops, "warehouse.rolled_back", str(settings.warehouse_path), {"restored": Path(restored.generation).name}, source="etl")
    return RollbackResult(restored.generation, restored.kept, restored.note)


@contextlib.contextmanager
def _folder_lock(served: Path) -> Iterator[bool]:
    """An exclusive lock on `<served>.lock` for the run's length; yields whether it was free.
    The kernel releases it when the process dies, so a killed run never leaves it held."""
    with open(served.with_name(served.name + ".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_locked(
    settings: Settings, ops: psycopg.Connection, source: Path | None, trigger: str, full: bool, say: Progress, allow_shrink: bool = False
) -> RunResult:
    served = settings.warehouse_path
    serving = _serving(settings)
    previous_loads = _served_loads(serving, ops, full, say)
    incremental = not full and serving.extendable()
    replay = full or (bool(previous_loads) and not incremental)  # every drop loaded so far, again
    drops = _drops_to_load(previous_loads, source, replay)
    log = store.RunLog(ops, trigger, ", ".join(str(d) for d in drops) or None, full)
    audit.append(
        ops, "etl.run.started", f"run {log.run_id}", {"trigger": trigger, "drops": [str(d) for d in drops], "full": full}, source="etl"
    )
    run = _Run(settings, ops, log, RunResult(log.run_id, "running", ""), say, serving)
    built = publish_step.building_path(served, log.run_id)
    copies: dict = {}  # the reader copies cut from it
    try:
        if not drops:
            raise EtlError("no drop to load: give --source DIR (a folder with the nine Olist files)")
        if incremental and serving.history_in_file:
            with _task(log, "copy", run.result, say) as detail:  # the served file, which the increment changes
                con = _open_build(settings, built, publish_step.current(served))
                detail["bytes"] = built.stat().st_size
        else:  # empty: a full build, or the scratch of an engine that keeps raw history itself
            con = _open_build(settings, built, None)
        try:
            serving.start(con, incremental)
            already = set() if replay else {(row["source_file"], row["sha256"]) for row in previous_loads}
            new = [item for drop in drops for item in run.load(con, drop, already, replay, source, allow_shrink, incremental)]
            if not new:
                con.close()
                built.unlink(missing_ok=True)
                return run.skip()
            run.gate(new)
            run.transform(con, new, incremental)
            con.execute("checkpoint")
        finally:
            con.close()
            readers.discard(extract_step.staging_paths(built))
        if serving.history_in_file:
            with _task(log, "readers", run.result, say) as detail:
                copies = readers.cut_all(settings, built, log.run_id, say, scope=run.scope)
                detail["copies"] = [reader.name for reader in copies]
        faults.point("before_rename")
        generation = run.publish(built, copies)
        return run.succeed(new, generation)
    except Exception as e:
        readers.discard([built, *extract_step.staging_paths(built), *copies.values()])
        message = _describe(e) + _memory_hint(e, settings)
        result = run.result
        rows = {"read": result.rows_read, "loaded": result.rows_loaded, "quarantined": result.rows_quarantined}
        log.finish("failed", rows=rows, error=message)
        audit.append(ops, "etl.run.failed", f"run {log.run_id}", {"error": message}, source="etl")
        raise EtlError(message, log.run_id) from e


def _serving(settings: Settings) -> Engine:
    """The engine that serves the warehouse, with what a run builds."""
    return engine(settings, transform.build_plan)  # made only if the engine needs it


@dataclass
class _Run:
    """The steps of one run, in order, and what they share: its log, its result, its say."""

    settings: Settings
    ops: psycopg.Connection
    log: store.RunLog
    result: RunResult
    say: Progress
    serving: Engine
    scope: transform.Scope | None = None  # what an increment rebuilt (None: every model)

    def _model_built(self, name: str, rows: int, seconds: float) -> None:
        self.say(transform.model_line(name, rows, seconds))

    def load(self, con, drop: Path, already: set, replay: bool, source: Path | None, allow_shrink: bool, incremental: bool) -> list:
        """Extract one drop's files and validate and merge the new ones; return them. An
        incremental run notes what each file brings before it is merged (etl/increment.py).
        When raw history is the engine's, the build holds the drop and, put there before each
        file is validated, the rows of history its rules and notes read (`mirror`); each file's
        accepted rows go to the engine as soon as they are merged (`hand_over`)."""
        log, result = self.log, self.result
        with _task(log, "extract", result, self.say) as detail:
            extracted = extract_step.extract(con, drop, log.run_id, already)
            fresh = [item for item in extracted if not item.skipped]
            detail.update(drop=str(drop), files=len(fresh))
        faults.point("after_extract")
        if not fresh:
            return []
        with _task(log, "validate", result, self.say) as detail:
            for table in LOAD_ORDER:
                item = next((i for i in fresh if i.source.table == table), None)
                if item is not None:
                    if incremental and not self.serving.history_in_file:  # else the build holds all history it reads
                        for read in quality.history_reads(table):
                            self.serving.mirror(con, *read, rows=False)
                        for read in increment.HISTORY_READS.get(table, []):
                            self.serving.mirror(con, *read, rows=True)
                    item.results += quality.validate_table(con, log.run_id, table)
                    # A full rebuild replays drops accepted before: only a new one is judged.
                    replayed = replay and (source is None or Path(source).resolve() != drop)
                    held = self.serving.held(con, table) if table in SNAPSHOT_TABLES else 0
                    _guard_size(item, held, allow_shrink or replayed, result)
                    if incremental:
                        increment.note(con, table)
                    _merge(con, table)
                    self.serving.hand_over(con, table, None if table in SNAPSHOT_TABLES else _unique_columns(table))
            _account(con, log.run_id, fresh, result)
            detail.update(drop=str(drop), rows_read=sum(i.rows_read for i in fresh))
        return fresh

    def skip(self) -> RunResult:
        """Every file was loaded before: record the run as skipped."""
        message = "every file of the drop was loaded before (same SHA-256): nothing to do"
        if missing := self.serving.not_serving():
            message += f"; but {missing}"
        self.log.finish("skipped", error=message)
        audit.append(self.ops, "etl.run.skipped", f"run {self.log.run_id}", {"reason": message}, source="etl")
        self.result.status, self.result.message = "skipped", message
        self.say(message)
        return self.result

    def gate(self, new: list) -> None:
        """Record the quality results and stop the run on an error-level failure."""
        ops, result, run_id = self.ops, self.result, self.log.run_id
        result.results = [r for item in new for r in item.results]
        reconciliation = _reconciliation(result)
        quality.record_checks(ops, run_id, result.results + [reconciliation])
        for failed in result.results + [reconciliation]:
            if not failed.passed and failed.severity in ("reject", "error"):
                details = {"severity": failed.severity, "rows_failing": failed.rows_failing, "examples": failed.example_keys}
                audit.append(ops, "quality.rule.failed", failed.rule, {"run_id": run_id, **details}, source="etl")
        quality.record_report(ops, run_id, result.results, sum(result.rows_read.values()), sum(result.rows_quarantined.values()))
        _fail_on_errors(self.settings, result, reconciliation)

    def transform(self, con, new: list, incremental: bool) -> None:
        """Build the models (an increment: those the drop touches) and the load ledger: in the
        DuckDB build when it is the warehouse, else in the engine, from its own raw history."""
        con.executemany(
            "insert into meta.loads values (?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [[self.log.run_id, i.source.filename, str(i.path), i.sha256, i.rows_read, i.rows_loaded, i.rows_quarantined] for i in new],
        )
        with _task(self.log, "transform", self.result, self.say) as detail:
            if self.serving.history_in_file:
                self._build_file(con, new, detail, incremental)
            else:
                self._build_in_engine(con, new, detail, incremental)
            if self.result.warnings:
                detail["notes"] = self.result.warnings
            faults.point("during_transform")

    def _build_file(self, con, new: list, detail: dict, incremental: bool) -> None:
        scope = self._scope(con, new, detail) if incremental else None
        extract_step.close_staging(con)
        report = transform.build(con, self.say, scope)
        increment.record(con, scope)
        self.scope = scope
        self.result.model_rows = report.rows
        self.result.warnings.extend(report.notes)
        detail["models"] = len(report.rows)

    def _build_in_engine(self, con, new: list, detail: dict, incremental: bool) -> None:
        """The engine builds every model from the raw history it keeps: after an increment,
        from what the drop changed (`Increment`), unless the models changed or the drop brings
        a snapshot every item carries (etl/increment.py's `rebuild_reason`)."""
        reason = increment.rebuild_reason(con, self.serving.fingerprint(con)) if incremental else None
        changed = frozenset(item.source.table for item in new)
        scope = Increment(
            changed,
            increment.noted_keys(con),
            increment.MOST,
            increment.touched_sql("drop_keys"),
            increment.people_sql("drop_keys", "touched_orders"),
        )
        try:
            built = self.serving.build(con, self._model_built, scope if incremental and reason is None else None)
        except BuildFailed as e:
            raise transform.ContractViolation(str(e)) from e
        reason = reason or built.rebuilt
        if built.touched is not None:
            self.result.touched_orders = built.touched
            detail.update(touched_orders=built.touched, orders=built.orders)
            self.say(f"increment: the rows of {built.touched:,} of {built.orders:,} orders, and every model not per order")
        elif incremental:
            detail["rebuilt"] = reason
            self.say(f"rebuilding every model: {reason}")
        self.result.model_rows = built.rows
        self.result.warnings.extend(built.notes)
        detail.update(models=len(built.rows), engine=self.serving.name)

    def _scope(self, con, new: list, detail: dict) -> transform.Scope | None:
        """What an increment rebuilds, or None to rebuild every model."""
        reason = increment.rebuild_reason(con, self.serving.fingerprint(con))
        if reason is None:
            touched, orders = increment.touch(con)
            detail.update(touched_orders=touched, orders=orders)
            if touched <= increment.MOST * orders:
                self.result.touched_orders = touched
                self.say(f"increment: the rows of {touched:,} of {orders:,} orders, and every model not per order")
                return transform.Scope(increment.TOUCHED, frozenset(item.source.table for item in new), increment.PEOPLE)
            reason = f"the drop touches {touched:,} of {orders:,} orders"
        detail["rebuilt"] = reason
        self.say(f"rebuilding every model: {reason}")
        return None

    def publish(self, built: Path, copies: dict) -> str:
        """Serve the built warehouse (on every engine) and its copies; any failure takes back
        what was served."""
        serving = self.serving
        with _task(self.log, "publish", self.result, self.say) as detail:
            generation = serving.publish(built)  # all or nothing
            try:
                faults.point("after_rename")
                readers.publish_all(self.settings, copies)
            except Exception:  # the run fails: nothing it built may stay served
                serving.take_back()
                readers.reconcile(self.settings, self.say)  # the copies, cut again from what is served
                readers.discard(copies.values())
                raise
            detail.update(generation=generation, engine=serving.name)
        return generation

    def succeed(self, new: list, generation: str) -> RunResult:
        """Record the loads, then the run as succeeded, and audit the publish."""
        log, result, served = self.log, self.result, self.settings.warehouse_path
        for item in new:
            log.record_load(
                item.source.filename, str(item.path), item.size_bytes, item.sha256, item.rows_read, item.rows_loaded, item.rows_quarantined
            )
        rows = {"read": result.rows_read, "loaded": result.rows_loaded, "quarantined": result.rows_quarantined}
        faults.point("before_bookkeeping")
        log.finish("succeeded", rows=rows, published=str(generation))
        files = [i.source.filename for i in new]
        audit.append(
            self.ops,
            "warehouse.published",
            str(served),
            {"run_id": log.run_id, "generation": Path(generation).name, "files": files},
            source="etl",
        )
        totals = {
            "rows_loaded": sum(result.rows_loaded.values()),
            "rows_quarantined": sum(result.rows_quarantined.values()),
            "warnings": result.warnings,
        }
        audit.append(self.ops, "etl.run.succeeded", f"run {log.run_id}", totals, source="etl")
        if self.serving.history_in_file:
            result.status, result.published, result.message = "succeeded", served, f"published {served}"
        else:
            result.status, result.message = "succeeded", f"published {generation} on {self.serving.name}"
        return result


def _memory_hint(error: Exception, settings: Settings) -> str:
    """For a run DuckDB stopped at its memory limit: the setting that sets it, and its value."""
    if "Out of Memory Error" not in str(error):
        return ""
    return (
        f"\nThe ETL's DuckDB may use OLIST_DUCKDB_MEMORY_LIMIT={settings.duckdb_memory_limit} (beyond it, it spills to "
        f"{settings.tmp_dir} where it can): raise it, or lower OLIST_DUCKDB_THREADS (docs/scaling.md)"
    )


def _describe(error: Exception) -> str:
    if isinstance(error, (EtlError, contract.ContractError, transform.ContractViolation)):
        return str(error)
    return f"{type(error).__name__}: {error}"


class _task:
    """Record one stage in task_executions and its duration in the result."""

    def __init__(self, log: store.RunLog, name: str, result: RunResult, say: Progress):
        self.log, self.name, self.result, self.say = log, name, result, say
        self.detail: dict = {}

    def __enter__(self) -> dict:
        self.say(f"{self.name} ...")
        self.began = time.perf_counter()
        self.task_id = self.log.task_started(self.name)
        return self.detail

    def __exit__(self, kind, error, tb) -> None:
        seconds = time.perf_counter() - self.began
        self.result.stage_seconds[self.name] = round(self.result.stage_seconds.get(self.name, 0) + seconds, 3)
        self.log.task_finished(self.task_id, error=_describe(error) if error else None, detail=self.detail)
        if error is None:
            self.say(f"{self.name} done in {seconds:.1f} s")


def _complete_published_runs(ops: psycopg.Connection, serving: Engine) -> list[int]:
    """Reconcile the run history with what is served and its own ledger (see store.complete_published_runs)."""
    try:
        served = serving.ledger()
    except Damaged:
        return []  # damaged: nothing to reconcile against
    if served is None:
        return []
    completed = store.complete_published_runs(ops, served.loads, served.generation)
    for run_id in completed:
        files = sorted({r["source_file"] for r in served.loads if r["run_id"] == run_id})
        audit.append(
            ops,
            "warehouse.published",
            str(serving.settings.warehouse_path) if serving.history_in_file else serving.name,
            {"run_id": run_id, "generation": served.generation, "files": files, "reconciled": True},
            source="etl",
        )
        audit.append(ops, "etl.run.succeeded", f"run {run_id}", {"reconciled": True}, source="etl")
    return completed


def _served_loads(serving: Engine, ops: psycopg.Connection, full: bool, say: Progress) -> list[dict]:
    """The files the served warehouse holds (its own `meta.loads`): what is served is what
    counts, so after a rollback the rolled-back drop loads again.

    A damaged served warehouse (a corrupt file, a link to a missing generation) stops an
    incremental run, which would otherwise build on nothing and lose every earlier drop; a
    full rebuild goes on from the operations store's record of the files succeeded runs loaded."""
    try:
        served = serving.ledger()
    except Damaged as e:
        if not full:
            raise EtlError(str(e)) from None
        say(f"the served warehouse cannot be read; rebuilding from the loads recorded in the operations store ({e.__class__.__name__})")
        return store.succeeded_loads(ops)
    return [] if served is None else [{k: row[k] for k in ("source_file", "path", "sha256")} for row in served.loads]


def _drops_to_load(previous_loads: list[dict], source: Path | None, full: bool) -> list[Path]:
    drops = []
    if full:
        for row in previous_loads:
            folder = Path(row["path"]).parent
            if folder not in drops:
                drops.append(folder)
        missing = [str(d) for d in drops if not d.is_dir()]
        if missing:
            raise EtlError(f"--full needs every drop loaded so far, and these folders are gone: {', '.join(missing)}")
    if source is not None:
        source = Path(source).resolve()
        if source not in drops:
            drops.append(source)
    return drops


def _open_build(settings: Settings, built: Path, start_from: Path | None) -> duckdb.DuckDBPyConnection:
    """The file the run builds: a copy of `start_from` (the served generation, which no one
    writes), or an empty warehouse."""
    built.unlink(missing_ok=True)
    if start_from is not None:
        shutil.copyfile(start_from, built)
    con = publish_step.open_build(built, settings, increment=start_from is not None)
    extract_step.open_staging(con, built)
    con.execute("create schema if not exists raw")
    for table in LOAD_ORDER:
        source = BY_TABLE[table]
        columns = ", ".join(f"{name} {DUCKDB_TYPES[kind]}" for name, kind in source.columns)
        con.execute(f"create table if not exists raw.{table} ({columns})")
    con.execute(quality.QUARANTINE_DDL)
    con.execute(
        """create schema if not exists meta;
           create table if not exists meta.loads (
               run_id bigint, source_file varchar, path varchar, sha256 varchar,
               rows_read bigint, rows_loaded bigint, rows_quarantined bigint, loaded_at timestamp)"""
    )
    return con


def _unique_columns(table: str) -> tuple[str, ...]:
    return next(r.columns for r in quality.rules() if r.table == table and r.kind == "unique")


def _guard_size(item, held: int, allow_shrink: bool, result: RunResult) -> None:
    """Before a file's rows are merged: a snapshot must not empty or halve its table (`held`
    rows now) unless allowed (recorded for the quality gates); an empty file of an appended
    table is worth a warning."""
    table, name = item.source.table, item.source.filename
    records = item.rows_read  # the file's records (a file of bad rows is the quarantine gate's to judge)
    if table not in SNAPSHOT_TABLES:
        if records == 0:
            result.warnings.append(f"{name} has no rows to load: nothing new for {table}")
        return
    if held and records < held * SHRINK_LIMIT:
        change = f"{name} would replace the {held:,} rows of {table} with {records:,}"
        if allow_shrink:
            result.warnings.append(f"{change} (allowed by --allow-shrink)")
        else:  # a quality gate, checked with the others before anything is published
            result.shrunk.append(
                f"{change} (a snapshot, replaced whole): a truncated or empty export? "
                "If the smaller file is right, run again with `olist-bi etl run --allow-shrink`"
            )


def _merge(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Merge the accepted rows of `incoming.<table>` into `raw.<table>`."""
    columns = ", ".join(BY_TABLE[table].header)
    if table in SNAPSHOT_TABLES:
        con.execute(f"delete from raw.{table}")
    else:
        keys = _unique_columns(table)
        match = " and ".join(f"r.{k} = i.{k}" for k in keys)
        con.execute(f"delete from raw.{table} as r where exists (select 1 from incoming.{table} as i where {match})")
    con.execute(f"insert into raw.{table} ({columns}) select {columns} from incoming.{table} order by _row")


def _account(con: duckdb.DuckDBPyConnection, run_id: int, fresh: list, result: RunResult) -> None:
    """Count each new file's loaded and quarantined rows (call after its drop is merged)."""
    for item in fresh:
        table = item.source.table
        item.rows_loaded = con.execute(f"select count(*) from incoming.{table}").fetchone()[0]
        quarantined_so_far = quality.quarantined(con, run_id, item.source.filename)
        item.rows_quarantined = quarantined_so_far - result.rows_quarantined.get(table, 0)
        result.rows_read[table] = result.rows_read.get(table, 0) + item.rows_read
        result.rows_loaded[table] = result.rows_loaded.get(table, 0) + item.rows_loaded
        result.rows_quarantined[table] = quarantined_so_far


def _reconciliation(result: RunResult) -> quality.RuleResult:
    broken = [
        f"{BY_TABLE[t].filename}: read {result.rows_read[t]:,}, loaded {result.rows_loaded[t]:,}, "
        f"quarantined {result.rows_quarantined[t]:,}"
        for t in result.rows_read
        if result.rows_loaded[t] + result.rows_quarantined[t] != result.rows_read[t]
    ]
    rule = quality.RECONCILIATION
    return quality.RuleResult(rule.rule, rule.table, rule.severity, sum(result.rows_read.values()), len(broken), broken[:5])


def _fail_on_errors(settings: Settings, result: RunResult, reconciliation: quality.RuleResult) -> None:
    problems = list(result.shrunk)
    if not reconciliation.passed:
        problems.append("rows do not reconcile (loaded + quarantined <> read): " + "; ".join(reconciliation.example_keys))
    for r in result.results:
        if r.severity == "error" and not r.passed:
            problems.append(
                f"{BY_TABLE[r.table].filename}: rule {r.rule} failed for {r.rows_failing:,} rows (e.g. {', '.join(r.example_keys)})"
            )
    for table, read in result.rows_read.items():
        rejects = [r for r in result.results if r.table == table and r.severity == "reject" and not r.passed]
        over = quality.quarantine_gate(
            BY_TABLE[table].filename, read, result.rows_quarantined[table], rejects, settings.max_quarantine_share
        )
        problems += [over] if over else []
    if problems:
        raise EtlError("the run failed its quality gates, nothing was published:\n" + "\n".join(f"  - {p}" for p in problems))

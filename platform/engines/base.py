"""The warehouse-engine seam: what the pipeline, the semantic layer and the readers ask of the
engine that serves the warehouse, and the one place that picks it (`engine`, from
OLIST_WAREHOUSE_ENGINE).

The pipeline extracts and validates each drop in DuckDB. Where raw history lives is the
engine's: in the DuckDB file itself (`history_in_file`: DuckDB, whose build of the models is the
warehouse), or in the engine (ClickHouse), which makes its raw history ready at the run's
`start`, is given each file's accepted rows as they are merged (`hand_over`), puts in the run's
DuckDB scratch the rows of history a file's rules read (`mirror`, `held`), and builds every
model itself (`build`, from the `BuildPlan` and, after an increment, the `Increment`).
`publish` serves it all or nothing, and `take_back`, `rollback`, `versions` and `reconcile` keep
what is served consistent through a failed run, a rollback and a run killed half-way;
`ledger` says what is served and the files it holds. `query` and `columns` answer the semantic
layer's compiled SQL from what is served; `bi_reader`, `publishes_in_place` and `native_sql`
are what the BI tools need to read it. The engines import neither the pipeline, the semantic
layer nor the BI tools: what to build comes in as a `BuildPlan`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb

from olist_bi.settings import Settings

# OLIST_WAREHOUSE_ENGINE -> the engine's class, imported only when chosen (ClickHouse's client is an extra).
ENGINES = {
    "duckdb": "olist_bi.engines.duckdb.engine:DuckDBEngine",
    "clickhouse": "olist_bi.engines.clickhouse.engine:ClickHouseEngine",
}

Progress = Callable[[str, int, float], None]  # model, rows, seconds


@dataclass(frozen=True)
class PlannedModel:
    """One model as an engine builds it."""

    name: str
    file: str  # its .sql, for messages
    sql: str  # DuckDB SQL (an engine of another dialect transpiles it)
    view: bool  # staging and intermediate models are views, the others tables
    order_by: tuple[str, ...] = ()  # ClickHouse's ordering key (the grain unless models.yaml says otherwise)
    partition_by: str | None = None  # ClickHouse's partitions
    python: str | None = None  # the etl module whose rows it selects (`python_rows`), fitted in Python: BuildPlan.python
    sources: frozenset[str] = frozenset()  # the raw tables it reads, itself or through the models it reads
    scoped_sql: str | None = None  # a model an increment rebuilds in part: its SQL over the touched rows' inputs
    reads: frozenset[str] = frozenset()  # the models its SQL reads
    # what scoped_sql rebuilds: "order_id" (a per-order model: the touched orders' rows) or
    # "customer_unique_id" (a per-person model: the touched people's, when its sources changed)
    scoped_by: str | None = None
    # for a per-person model, (name, DuckDB SQL) of the relations its scoped_sql reads in place of
    # staging, built first, over `touched_people`
    scoped_inputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Increment:
    """What an incremental run's drop changed (etl/increment.py), for an engine that keeps its
    own raw history (and merged the drop's accepted rows into it as they came: `hand_over`):
    it finds the touched orders there, rebuilds the per-order models' rows of those orders
    and keeps every model whose sources the drop left alone."""

    changed: frozenset[str]  # the raw tables the drop changed
    noted: str  # a query of the build: (kind, key) of what the drop brings, as etl/increment.py notes it
    most: float  # touching more than this share of the orders builds every model whole
    # DuckDB SQL of the touched orders' ids over `raw` (merged), the served `mart_reporting_window`,
    # the new `int_reporting_window` and `drop_keys` (the rows of `noted`)
    touched_sql: str
    # DuckDB SQL of the touched people's customer_unique_id, over `raw`, `drop_keys` and `touched_orders`
    people_sql: str


@dataclass(frozen=True)
class View:
    """A view the BI tools read, named as DuckDB SQL names it (`semantic.<view>`, `dashboards.<view>`)."""

    name: str
    sql: str
    rows_of: str | None = None  # the model whose rows it must have (a join that fans out would multiply them)


@dataclass(frozen=True)
class BuildPlan:
    """What a build makes, in build order, and how its contracts are checked: `check(scalar,
    qualified, increment=None)` raises when a model breaks its contract (after an increment,
    in the rows it rebuilt: `qualified` then also names `scoped_<model>` and `scoped_raw_<table>`,
    the touched orders' rows)."""

    models: tuple[PlannedModel, ...]
    views: tuple[View, ...]
    check: Callable[..., object]
    fingerprint: str = ""  # of the models (etl/increment.py): a served build of other models is not extended
    # python(module, query): the rows an etl module fits for its models, by model name, and its
    # notes, from the build `query(duckdb_sql, params) -> DataFrame` answers
    python: Callable[..., tuple[dict, list[str]]] | None = None


class NothingToRollBack(RuntimeError):
    """The engine keeps no earlier generation to serve again."""


@dataclass
class Restored:
    generation: str  # the generation served again (DuckDB: its file; ClickHouse: its database and last run)
    kept: int  # generations still kept behind it
    note: str | None = None  # what else the engine says of it (ClickHouse: the database it came from)


@dataclass(frozen=True)
class Ledger:
    """What an engine serves: its generation's name (DuckDB: the generation file; ClickHouse:
    the database and its last run) and the files it was built from (its `meta.loads`: dicts
    of run_id, source_file, path, sha256, rows_read, rows_loaded, rows_quarantined)."""

    generation: str
    loads: list[dict]


class Damaged(RuntimeError):
    """What is served cannot be read; an incremental run cannot build on it."""


@dataclass
class BuildResult:
    """What an engine that builds the models itself built: rows per model, the notes of the
    build (a forecast that could not be made), and after an increment the orders it touched
    (None: every model built whole) among all orders."""

    rows: dict[str, int]
    notes: list[str]
    touched: int | None = None
    orders: int | None = None
    rebuilt: str | None = None  # why an increment was built whole


@dataclass(frozen=True)
class ServerReader:
    """A warehouse server as a BI tool reads it: as the read-only user."""

    sqlalchemy_uri: str  # its password masked (XXXXXXXXXX), given apart
    password: str
    database: str  # the database the tool's datasets name
    metabase_engine: str  # Metabase's driver for the server
    metabase_details: dict  # and its connection properties


class Engine(ABC):
    """The engine that serves the warehouse. `plan` is what a run builds; readers that only
    query pass none."""

    name: str

    def __init__(self, settings: Settings, plan: BuildPlan | Callable[[], BuildPlan] | None = None):
        self.settings = settings
        self._plan = plan

    @property
    def plan(self) -> BuildPlan | None:
        """What a run builds; given as a function, made the first time an engine asks (the DuckDB
        engine never does: its build is the pipeline's)."""
        if callable(self._plan):
            self._plan = self._plan()
        return self._plan

    # Where raw history lives: in the DuckDB file the pipeline builds (True: the run starts from a
    # copy of the served file and builds the models there), or in the engine (False: the DuckDB
    # file is a scratch for one run's drops, which the engine takes with `hand_over`; the engine
    # builds every model, from `build`'s `Increment`, and nothing of the file is published).
    history_in_file = True

    @property
    def location(self) -> str:
        """Where the served warehouse is, for people: the DuckDB file's path, or the engine's database."""
        return str(self.settings.warehouse_path)

    @abstractmethod
    def serves(self) -> bool:
        """Whether a warehouse is served now."""

    @abstractmethod
    def ledger(self) -> Ledger | None:
        """What is served and the files it holds; None when nothing is. Raises `Damaged`."""

    def extendable(self) -> bool:
        """Whether an incremental run can start from what is served (else it replays every drop)."""
        return self.serves()

    def fingerprint(self, source: duckdb.DuckDBPyConnection) -> str | None:
        """The fingerprint of the models that built what is served (BuildPlan.fingerprint), if it
        recorded one; `source`: the run's DuckDB build."""
        return None

    def held(self, source: duckdb.DuckDBPyConnection, table: str) -> int:
        """The rows raw history holds of `table` before the drop's are merged."""
        return source.execute(f"select count(*) from raw.{table}").fetchone()[0]

    def mirror(self, source: duckdb.DuckDBPyConnection, table: str, column: str, keys: str, rows: bool) -> None:
        """Before a drop's file is validated in an incremental run's DuckDB build `source`, when
        raw history is not in the file: put in its `raw.<table>` what its rules and notes read
        of history: the values of `column` among `keys` (a query of `source`) that history
        holds, or with `rows` the whole rows of those values."""
        return None

    @abstractmethod
    def columns(self, relation: str) -> list[str]:
        """The columns of a served view or table, named as DuckDB SQL names it (`semantic.<view>`);
        none when it does not exist."""

    @abstractmethod
    def build(self, source: duckdb.DuckDBPyConnection, progress: Progress, increment: Increment | None = None) -> BuildResult | None:
        """Build what the engine serves beyond the DuckDB build `source`: None when the file is
        the warehouse (`history_in_file`), else every model, from the raw history it keeps and
        `source`'s load ledger and quarantine. `increment`: what the run's drop changed, None
        for a full build. Raises `BuildFailed`; nothing is served."""

    def start(self, source: duckdb.DuckDBPyConnection, incremental: bool) -> None:
        """At the start of a run, the DuckDB build `source` opened (a copy of the served file
        for an `incremental` run, else empty): make ready whatever raw history the engine keeps
        of its own."""
        return None

    def hand_over(self, source: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...] | None) -> None:
        """Right after a drop's accepted rows of `table` (`incoming.<table>` of the build
        `source`) are merged into the build's `raw` (the rows of the same unique `key` replaced,
        or a snapshot, `key` None, replaced whole): merge them likewise into the engine's own
        raw history, if it keeps one."""
        return None

    @abstractmethod
    def publish(self, built: Path) -> str:
        """Serve the build, all or nothing: the finished DuckDB file `built` (when it is the
        warehouse) or what `build` made; return the name of the generation now served."""

    @abstractmethod
    def take_back(self) -> None:
        """Undo this run's publish, after a later step of the run failed."""

    @abstractmethod
    def versions(self) -> list:
        """The generations kept before the served one, newest first."""

    @abstractmethod
    def rollback(self) -> Restored:
        """Serve the newest kept generation again (undo the last publish). Raises NothingToRollBack."""

    @abstractmethod
    def reconcile(self) -> list[str]:
        """At a run's start: undo what a run killed half-way through its publish left served;
        return what was done."""

    @abstractmethod
    def query(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        """The rows of a compiled (DuckDB) query on what is served, within the readers' limits."""

    @abstractmethod
    def reader_environment(self) -> dict[str, str]:
        """The settings a reader process (the notebook) needs to read what is served, as the
        reader: never the ETL's own credentials."""

    def health(self) -> tuple[bool, str, str] | None:
        """What `olist-bi doctor` checks of the engine beyond DuckDB: (ok, what was found, the
        remedy), or None when it needs nothing more."""
        return None

    def not_serving(self) -> str | None:
        """Why a run that loads nothing new still leaves nothing served, if it does."""
        return None

    def bi_reader(self, tool: str, error: type[Exception] = RuntimeError) -> ServerReader | None:
        """The server the BI tool `tool` reads the warehouse from, or None when it reads the
        DuckDB reader copy. Raises `error`, naming `tool`, when the engine serves no BI tool."""
        return None

    def publishes_in_place(self) -> str | None:
        """How a publish reaches the connections a BI tool holds without pointing them anywhere,
        if it does; None: each publish is a new DuckDB generation to point them at."""
        return None

    def native_sql(self, sql: str) -> str:
        """A BI tool's native question (DuckDB SQL with Metabase's `{{tag}}` variables and
        `[[and ...]]` clauses) in the engine's dialect, on what it serves, its variables and
        clauses kept."""
        return sql


class BuildFailed(RuntimeError):
    """A model, a contract or a view failed in the engine; nothing was published."""


def engine(settings: Settings, plan: BuildPlan | Callable[[], BuildPlan] | None = None) -> Engine:
    """The engine OLIST_WAREHOUSE_ENGINE names: the only place that reads it."""
    module, _, name = ENGINES[settings.warehouse_engine].partition(":")
    return getattr(importlib.import_module(module), name)(settings, plan)

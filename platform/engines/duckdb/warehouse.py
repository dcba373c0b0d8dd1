"""The served warehouse, read side: one open, locked-down DuckDB per published generation.

Every process that serves queries (Superset's workers through our SQLAlchemy dialect, the
semantic CLI, the Python API, the benchmark) reads the warehouse through `lease()`:

- The served path is a symbolic link naming the current generation, one file per publish
  (`engines/duckdb/publish.py`). A lease resolves the link, so each new query reads the newest
  generation; a query in flight finishes on the generation it started on.
- Each generation is opened once per process, read-only and locked down (no file or URL
  access, no extension loading, configuration locked, bounded memory and threads), and a
  lease is a cursor on it: no query pays for opening the file (27-65 ms here, against
  about 0.01 ms for a cursor).
- DuckDB hands back the already-open database when a path it holds is opened again in the
  same process, so a file renamed over a path another connection holds is never seen. The
  provider therefore opens each generation by its own, never reused, file name.
- A generation that is no longer current is closed as soon as its last lease ends, or by a
  sweep every `SWEEP_SECONDS` when no lease ends: its memory goes back, and its file, once
  publish retention unlinks it, leaves the disk.
- A reader's query stops at its limits (`Limits`, from OLIST_QUERY_TIMEOUT_SECONDS and
  OLIST_QUERY_MAX_RESULT_MB): a timer outside the query interrupts it at its deadline
  (DuckDB's `interrupt()`, which frees its threads at once), and an answer larger than the
  byte cap is refused, each with an error that names the limit. Readers never spill to disk:
  DuckDB lets a query write and read files in its temp folder even with external access off,
  which would be a scratch space shared by every user of the process.

Imported inside Superset's environment too (by `olist_bi.bi.superset.dialect`): it needs
DuckDB and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

# Refused to every reader, whatever a caller asks for (DESIGN.md: SQL Lab must not reach files).
LOCKDOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "temp_directory": "",  # no spill: COPY TO and read_csv may reach a temp folder whatever the above says
    "lock_configuration": True,
}
DEFAULT_LIMITS = {"memory_limit": "1GB", "threads": 2}
LIMIT_KEYS = ("memory_limit", "threads")
SWEEP_SECONDS = 15.0


class WarehouseMissing(FileNotFoundError):
    """No served warehouse yet."""


@dataclass(frozen=True)
class Limits:
    """What one reader's query may take: seconds until it is interrupted, bytes of its answer."""

    timeout_seconds: float | None = None
    max_result_bytes: int | None = None


def limits(settings) -> Limits:
    """What one reader's query may take, from OLIST_QUERY_TIMEOUT_SECONDS and OLIST_QUERY_MAX_RESULT_MB."""
    return Limits(settings.query_timeout_seconds, int(settings.query_max_result_mb * 1_000_000))


class LimitReached(Exception):
    """A reader's query stopped at one of its limits; the message names the setting."""


class QueryTimeout(duckdb.InterruptException, LimitReached):
    """A reader's query ran past its time limit and was interrupted (a DuckDB error, so that
    every client, SQLAlchemy's wrapping included, reports it as the query's failure)."""


class ResultTooLarge(duckdb.InvalidInputException, LimitReached):
    """A reader's answer is larger than its byte cap."""


def value_bytes(value) -> int:
    """About what one fetched value costs in memory (text and bytes by their length)."""
    if value is None:
        return 1
    if isinstance(value, (str, bytes, bytearray)):
        return 8 + len(value)
    if isinstance(value, (list, tuple, dict)):
        return 8 + sum(value_bytes(v) for v in (value.values() if isinstance(value, dict) else value))
    return 8


def estimated_bytes(rows: list) -> int:
    """The size of a batch of rows, estimated from about a hundred of them."""
    if not rows:
        return 0
    sample = rows[:: max(1, len(rows) // 100)]
    return int(sum(value_bytes(v) for row in sample for v in row) / len(sample) * len(rows))


def check_size(size: int, cap: int | None) -> None:
    """Refuse an answer of `size` bytes (so far) over the cap."""
    if cap is not None and size > cap:
        raise too_large(size, cap)


def fetch_capped(cursor, cap: int | None, batch: int = 10_000, fetched: int = 0) -> list:
    """Every remaining row of `cursor`'s result, refused with `ResultTooLarge` as soon as the
    answer (with the `fetched` bytes before) passes `cap` bytes: it never all reaches memory."""
    rows: list = []
    size = fetched
    while chunk := cursor.fetchmany(batch):
        size += estimated_bytes(chunk)
        check_size(size, cap)
        rows.extend(chunk)
    return rows


def timed_out(seconds: float) -> QueryTimeout:
    return QueryTimeout(
        f"the query was stopped at its time limit of {seconds:g} s (OLIST_QUERY_TIMEOUT_SECONDS): "
        "narrow it (a filter, a shorter period, an aggregate), or ask an administrator for a longer limit"
    )


def too_large(size: int, cap: int) -> ResultTooLarge:
    return ResultTooLarge(
        f"the answer holds more than {cap / 1e6:g} MB ({size / 1e6:,.1f} MB so far), the cap on one answer "
        "(OLIST_QUERY_MAX_RESULT_MB): filter it, aggregate it, or ask for fewer columns"
    )


class WarehouseDamaged(WarehouseMissing):
    """The served warehouse is there but cannot be read (a broken link, a corrupt file)."""

    def __init__(self, served: Path | str, path: Path | str, reason: str):
        super().__init__(
            f"the served warehouse {served} ({path}) cannot be read: {reason.strip().splitlines()[0] if reason.strip() else 'damaged'}. "
            "Rebuild it from the kept drops with `olist-bi etl run --full`, or serve the previous one with `olist-bi etl rollback`"
        )


READER = "reader"  # the name of the unscoped reader copy


def reader_path(served: Path | str, name: str = READER) -> Path:
    """The served path of one reader copy of the warehouse at `served` (etl/readers.py): the
    reader copy (`name` READER, what the BI tools and the notebook open) or a scoped role's."""
    served = Path(served)
    return served.with_name(f"{served.stem}.{name}{served.suffix}")


def sibling_copy(path: Path | str, name: str) -> Path:
    """The copy `name` beside the reader copy (or the warehouse itself) at `path`."""
    path = Path(path)
    reader_suffix = f".{READER}{path.suffix}"
    served = path.with_name(path.name.removesuffix(reader_suffix) + path.suffix) if path.name.endswith(reader_suffix) else path
    return reader_path(served, name)


def current(served: Path | str) -> Path:
    """The generation file the served path names now (the path itself when it is a plain file)."""
    served = Path(served)
    resolved = Path(os.path.realpath(served))
    if not resolved.is_file():
        if served.is_symlink():  # the link is there, its generation file is not
            raise WarehouseDamaged(served, resolved, "its generation file is missing")
        raise WarehouseMissing(f"no warehouse at {served}: load a drop first (`olist-bi etl run --source DIR` or `make up`)")
    return resolved


@dataclass(eq=False)
class _Generation:
    path: Path
    inode: int
    database: duckdb.DuckDBPyConnection
    leases: int = 0
    opened_at: float = field(default_factory=time.monotonic)


class Lease:
    """One query's connection: a cursor on its generation's open database. Release it (or use
    `connect()`) when the query is done; it never closes the database itself.

    With a time limit, `arm()` starts the statement's clock (`connect()` arms it for its block,
    the Superset dialect for each statement): at the deadline a timer thread interrupts the
    cursor, and inside `stopping()` the interrupt the query then raises becomes a
    `QueryTimeout` that names the limit."""

    def __init__(self, provider: Provider, served: str, generation: _Generation, limits: Limits | None = None):
        self._provider, self._served, self._generation = provider, served, generation
        self.limits = limits or Limits()
        self.connection: duckdb.DuckDBPyConnection = generation.database.cursor()
        self.released = False
        self.interrupted = False
        self._timer: threading.Timer | None = None

    @property
    def generation(self) -> Path:
        return self._generation.path

    def arm(self) -> None:
        """Start (or restart) the clock of the statement about to run."""
        self.disarm()
        if self.limits.timeout_seconds:
            self._timer = threading.Timer(self.limits.timeout_seconds, self._interrupt)
            self._timer.daemon = True
            self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _interrupt(self) -> None:
        self.interrupted = True
        self.connection.interrupt()

    @contextlib.contextmanager
    def stopping(self) -> Iterator[None]:
        """Raise the interrupt of this lease's timer as a QueryTimeout naming the limit (any
        other interrupt as it is)."""
        try:
            yield
        except duckdb.InterruptException as e:
            if self.interrupted and not isinstance(e, QueryTimeout):
                raise timed_out(self.limits.timeout_seconds) from e
            raise

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.disarm()
        try:
            self.connection.close()
        finally:
            self._provider._release(self._served, self._generation)


class Provider:
    """The process's open generations, by served path. Thread-safe; one per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._open: dict[str, list[_Generation]] = {}  # served path -> generations, newest last
        self._sweeper: threading.Thread | None = None

    def lease(self, served: Path | str, limits: dict | None = None, query_limits: Limits | None = None) -> Lease:
        key = os.path.abspath(served)
        while True:
            path = current(served)
            try:
                generation = self._generation(key, served, path, limits)
                break
            except (WarehouseDamaged, FileNotFoundError):
                # A publish swapped the link and removed the generation this query had resolved
                # (a copy keeps no earlier one) before it was opened: open the new one.
                if Path(os.path.realpath(served)) == path:
                    raise
        try:
            return Lease(self, key, generation, query_limits)
        except BaseException:
            self._release(key, generation)
            raise

    def _generation(self, key: str, served: Path | str, path: Path, limits: dict | None) -> _Generation:
        """The open generation `path` of `served`, opened now if it is not yet, with one more lease."""
        inode = path.stat().st_ino
        with self._lock:
            self._after_fork()
            generations = self._open.setdefault(key, [])
            generation = next((g for g in generations if g.path == path and g.inode == inode), None)
            if generation is None:
                try:
                    database = _open_locked_down(path, limits)
                except duckdb.Error as e:  # not a DuckDB file, truncated, or of a newer DuckDB
                    raise WarehouseDamaged(served, path, str(e)) from None
                generation = _Generation(path, inode, database)
                generations.append(generation)
            generation.leases += 1
            self._close_idle(key, now=path)
            self._start_sweeper()
        return generation

    def _release(self, key: str, generation: _Generation) -> None:
        with self._lock:
            generation.leases -= 1
            self._close_idle(key)

    def _close_idle(self, key: str, now: Path | None = None) -> None:
        """Close this served path's generations that are neither current (`now`, resolved
        here unless the caller just did) nor leased."""
        generations = self._open.get(key, [])
        if now is None:
            now = Path(os.path.realpath(key))
        for g in list(generations):
            if g.leases > 0 or g.path == now:
                continue
            generations.remove(g)
            g.database.close()

    def sweep(self) -> None:
        """Close every generation that is no longer current and has no query in flight."""
        with self._lock:
            for key in list(self._open):
                self._close_idle(key)

    def open_generations(self, served: Path | str | None = None) -> dict[str, list[tuple[Path, int]]]:
        """What is open, for diagnostics and tests: served path -> [(generation file, leases)]."""
        with self._lock:
            return {
                k: [(g.path, g.leases) for g in gens] for k, gens in self._open.items() if served is None or k == os.path.abspath(served)
            }

    def close_all(self) -> None:
        with self._lock:
            for generations in self._open.values():
                for g in generations:
                    g.database.close()
            self._open.clear()

    def _after_fork(self) -> None:
        # A forked worker must not share its parent's open databases: start afresh.
        if os.getpid() != self._pid:
            self._pid, self._open, self._sweeper = os.getpid(), {}, None

    def _start_sweeper(self) -> None:
        if self._sweeper is not None:
            return
        pid = os.getpid()

        def loop() -> None:
            while os.getpid() == pid:
                time.sleep(SWEEP_SECONDS)
                self.sweep()

        self._sweeper = threading.Thread(target=loop, name="olist-warehouse-sweeper", daemon=True)
        self._sweeper.start()


def _open_locked_down(path: Path, limits: dict | None) -> duckdb.DuckDBPyConnection:
    config = {**DEFAULT_LIMITS, **{k: v for k, v in (limits or {}).items() if k in LIMIT_KEYS}, **LOCKDOWN}
    return duckdb.connect(str(path), read_only=True, config=config)


PROVIDER = Provider()


def lease(served: Path | str, limits: dict | None = None, query_limits: Limits | None = None) -> Lease:
    """A connection on the current generation of `served`, from this process's provider;
    `limits` bound the database (memory, threads), `query_limits` each query on the lease."""
    return PROVIDER.lease(served, limits, query_limits)


@contextlib.contextmanager
def connect(served: Path | str, limits: dict | None = None, query_limits: Limits | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with connect(path) as con:` a read-only, locked-down connection on the current
    warehouse. With `query_limits`, the whole block runs under the time limit, and an
    interrupt at the deadline is raised as a `QueryTimeout`."""
    held = lease(served, limits, query_limits)
    held.arm()
    try:
        with held.stopping():
            yield held.connection
    finally:
        held.release()

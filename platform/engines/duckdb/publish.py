"""Publish: make a finished warehouse file the served one, atomically, one file per publish.

The ETL never writes a served file. It builds a new file beside the served path, checkpoints
and closes it, then moves it into `<served>.generations/` under a name no publish reuses and
points the served path, a relative symbolic link, at it. Replacing the link is one rename,
atomic on POSIX: a reader resolving the path gets the old generation or the new one, whole.

One file per publish is what keeps readers fresh: DuckDB returns the already-open database
when a process opens a path it holds, so a file renamed over a path in use would never be
seen. Readers (`olist_bi.engines.duckdb.warehouse`) open each generation by its own name; a query in flight
finishes on its generation, the next one reads the new file.

The generations before the current one, the newest `KEEP` of them, stay for
`olist-bi etl rollback`; older ones are unlinked (a process still reading one keeps it open
until its last query ends). A served path that is a plain file (warehouses published before
generations) is adopted as the first generation at the next publish.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb

from olist_bi.engines.duckdb.warehouse import current

KEEP = 2
# A build writes its WAL to disk and checkpoints once, when it is done (the builder's own
# `checkpoint`), not every 16 MB of WAL as DuckDB does by default: an increment's inserts are
# smaller than a row group, so each goes through the WAL, and the automatic checkpoints between
# them rewrote the touched tables again and again (an increment's 77,000 order items: 0.33 s to
# insert at the default, 0.17 s without the checkpoints between; bench/increment.py).
BUILD_CHECKPOINT_THRESHOLD = "64GB"
# An increment changes a copy of a served file: it deletes the touched orders' rows, a few in
# each row group, and appends their new rows. Its checkpoint leaves the deleted rows where they
# are: DuckDB's vacuum would merge the row groups that lost rows with their neighbours and rewrite
# every row group after them (the scale-10 increment's fact_reviews: 226 of 331 column segments
# rewritten, in the build and again in the reader copy; a checkpoint of 3,000 scattered deletes in
# it took 0.61 s with vacuum and 0.07 s without, bench/increment.py measures the run). A full build
# (`etl run --full`) writes every table afresh, deleted rows gone.
INCREMENT_VACUUM_TASKS = 0

__all__ = [
    "KEEP",
    "PublishError",
    "building_path",
    "open_build",
    "current",
    "generations_dir",
    "publish",
    "remove_abandoned_builds",
    "rollback",
    "versions",
]


class PublishError(RuntimeError):
    """Nothing to roll back to, or the served folder is not usable."""


def building_path(served: Path, run_id: int) -> Path:
    """Where a run builds its file: beside the served one, so the rename stays on one disk."""
    return served.with_name(f"{served.name}.building-{run_id}")


def open_build(path: Path, settings, increment: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the file a run builds (`building_path`), with the run's memory, threads
    and spill folder (`settings`), checkpointed only when the builder says so; an `increment`'s
    (a copy of a served file, changed in place) with no vacuum."""
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
    con.execute(f"set threads = {settings.duckdb_threads}")
    con.execute("set temp_directory = ?", [str(settings.tmp_dir)])
    con.execute(f"set checkpoint_threshold = '{BUILD_CHECKPOINT_THRESHOLD}'")
    if increment:
        con.execute(f"set max_vacuum_tasks = {INCREMENT_VACUUM_TASKS}")
    return con


def generations_dir(served: Path) -> Path:
    return served.with_name(f"{served.name}.generations")


def remove_abandoned_builds(served: Path) -> list[Path]:
    """Delete files left by runs that died while building (call while holding the ETL lock)."""
    removed = []
    for path in served.parent.glob(f"{served.name}.building-*"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def publish(built: Path, served: Path, keep: int = KEEP) -> Path:
    """Make `built` the served generation; keep the newest `keep` before it. Returns the
    generation file now served."""
    _fsync(built)
    folder = generations_dir(served)
    folder.mkdir(exist_ok=True)
    _adopt_plain_file(served)
    target = _new_generation_name(served)
    os.replace(built, target)
    _fsync_dir(folder)
    _point(served, target)
    for old in versions(served)[keep:]:
        old.unlink()
    return target


def versions(served: Path) -> list[Path]:
    """The kept generations before the current one, newest first."""
    folder = generations_dir(served)
    if not folder.is_dir():
        return []
    now = Path(os.path.realpath(served))
    return sorted((p for p in folder.glob(f"{served.stem}-*{served.suffix}") if p != now), reverse=True)


def rollback(served: Path) -> Path:
    """Serve the newest kept generation again (atomically); return it.

    The generation being replaced is unlinked: a rollback undoes the last publish.
    """
    kept = versions(served)
    if not kept:
        raise PublishError(f"no previous warehouse in {generations_dir(served)} to roll back to")
    undone = Path(os.path.realpath(served)) if served.is_symlink() else None
    _point(served, kept[0])
    if undone is not None and undone.parent == generations_dir(served):
        undone.unlink(missing_ok=True)
    return kept[0]


def _new_generation_name(served: Path) -> Path:
    # UTC time to the microsecond: sorts by age, and a name is never given twice, so no
    # reader can mistake a new file for a generation it still holds open under that name.
    folder = generations_dir(served)
    while True:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{served.stem}-{stamp}{served.suffix}"
        if not target.exists():
            return target


def _point(served: Path, target: Path) -> None:
    """Replace the served path by a relative link to `target`, in one rename."""
    link = served.with_name(f"{served.name}.link-{os.getpid()}")
    link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, served.parent), link)
    os.replace(link, served)
    _fsync_dir(served.parent)


def _adopt_plain_file(served: Path) -> None:
    """A served path that is a plain file, and the `.previous/` copies of that layout, become
    generations; the path becomes a link to the same file, so readers see no change."""
    legacy = served.with_name(f"{served.name}.previous")
    if legacy.is_dir():
        for old in sorted(legacy.glob(f"{served.stem}-*{served.suffix}")):
            os.replace(old, generations_dir(served) / old.name)
        legacy.rmdir()
    if served.is_file() and not served.is_symlink():
        stamp = dt.datetime.fromtimestamp(served.stat().st_mtime, dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        adopted = generations_dir(served) / f"{served.stem}-{stamp}{served.suffix}"
        os.link(served, adopted)
        _point(served, adopted)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Publish: swap a finished warehouse file in for the served one, atomically.

The ETL never writes the served file. It builds a new file beside it, checkpoints and closes
it, then renames it over the served path: a rename is atomic on POSIX, so a reader opening
the path gets the old file or the new one, whole, never a half-built table. The replaced
file is kept (a hard link, no copy) in `<served>.previous/`, the newest two of them, for
`olist-bi etl rollback`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

KEEP = 2


class PublishError(RuntimeError):
    """Nothing to roll back to, or the served folder is not usable."""


def building_path(served: Path, run_id: int) -> Path:
    """Where a run builds its file: beside the served one, so the rename stays on one disk."""
    return served.with_name(f"{served.name}.building-{run_id}")


def previous_dir(served: Path) -> Path:
    return served.with_name(f"{served.name}.previous")


def remove_abandoned_builds(served: Path) -> list[Path]:
    """Delete files left by runs that died while building (call while holding the ETL lock)."""
    removed = []
    for path in served.parent.glob(f"{served.name}.building-*"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def publish(built: Path, served: Path, keep: int = KEEP) -> Path:
    """Make `built` the served file; keep the replaced one among the newest `keep`."""
    _fsync(built)
    if served.exists():
        backups = previous_dir(served)
        backups.mkdir(exist_ok=True)
        stamp = dt.datetime.fromtimestamp(served.stat().st_mtime).strftime("%Y%m%dT%H%M%S%f")
        target = backups / f"{served.stem}-{stamp}{served.suffix}"
        if not target.exists():
            os.link(served, target)
    os.replace(built, served)
    _fsync_dir(served.parent)
    for old in versions(served)[keep:]:
        old.unlink()
    return served


def versions(served: Path) -> list[Path]:
    """The kept previous files, newest first."""
    backups = previous_dir(served)
    if not backups.is_dir():
        return []
    return sorted(backups.glob(f"{served.stem}-*{served.suffix}"), reverse=True)


def rollback(served: Path) -> Path:
    """Serve the newest previous file again (atomically); return the file restored.

    The file being replaced is discarded: a rollback undoes the last publish.
    """
    kept = versions(served)
    if not kept:
        raise PublishError(f"no previous warehouse file in {previous_dir(served)} to roll back to")
    os.replace(kept[0], served)
    _fsync_dir(served.parent)
    return kept[0]


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

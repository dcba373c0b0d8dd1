"""`olist-bi check`: a drop read as `etl run` reads it (the source contract, then each file's
records with their declared types) into an in-memory DuckDB, and judged by the run's own
quarantine gate (quality.quarantine_gate), without touching the warehouse or the run history.
The quality rules over the values (references, ranges, duplicates) run only in `etl run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from olist_bi.etl import extract, quality


@dataclass
class CheckedFile:
    file: str
    rows: int  # records read
    quarantined: int  # distinct records `etl run` would quarantine before its value rules
    zips_padded: int  # zip prefixes whose leading zeros were restored
    notes: str  # the two above in words, with the rules and first keys


@dataclass
class DropCheck:
    folder: Path
    files: list[CheckedFile] = field(default_factory=list)
    would_fail: list[str] = field(default_factory=list)  # what the quarantine gate of `etl run` would refuse


def check(folder: Path, max_quarantine_share: float) -> DropCheck:
    """Read `folder` as `etl run` does. Raises `ContractError` when it breaks the source contract."""
    found = DropCheck(folder)
    with duckdb.connect() as con:
        extract.open_staging(con, None)
        con.execute(quality.QUARANTINE_DDL)
        for item in extract.extract(con, folder, 0, set()):
            quarantined = quality.quarantined(con, 0, item.source.filename)
            failed = [r for r in item.results if r.rows_failing]
            over = quality.quarantine_gate(item.source.filename, item.rows_read, quarantined, failed, max_quarantine_share)
            found.would_fail += [over] if over else []
            found.files.append(
                CheckedFile(item.source.filename, item.rows_read, quarantined, item.zips_fixed, _notes(item, quarantined, failed))
            )
    return found


def _notes(item: extract.ExtractedFile, quarantined: int, failed: list[quality.RuleResult]) -> str:
    notes = [f"{item.zips_fixed:,} zip prefixes padded to five digits"] if item.zips_fixed else []
    if quarantined:
        where = "; ".join(f"{r.rule}: {r.rows_failing:,} (e.g. {', '.join(r.example_keys[:2])})" for r in failed)
        notes.append(f"{quarantined:,} record{'s' if quarantined != 1 else ''} `etl run` would quarantine: {where}")
    return "; ".join(notes)

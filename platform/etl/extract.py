"""Extract: read a drop's files into DuckDB through the source contract, typed explicitly.

Each file is read once with its declared types, the CSV reader keeping what it rejects
aside. When it rejects nothing (the usual case) that is all. When it rejects a record, the
file is read again as text, so that every row keeps its exact record number and a value
that does not cast is quarantined with the column and the value as written; records the
reader cannot parse are quarantined with its message and their text. A file whose SHA-256
the served warehouse already holds is skipped, its content not read through again (its header
is still checked).

The files are read into the run's staging area, `incoming` (and `incoming_text` for the text
read), each a database of its own attached to the build (`open_staging`): a scratch file
beside the file the run builds, detached once the drops are merged (`close_staging`) and
deleted when the run's connection closes (`staging_paths`), so
that a drop's rows, most of a full build's writes, never take space in the warehouse file that
is published, copied by the next increment and kept for rollback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from olist_bi import contract
from olist_bi.contract import DUCKDB_TYPES, TIMESTAMP_FORMAT, SourceFile
from olist_bi.etl.quality import RuleResult, automatic_rules, quarantine


STAGING = ("incoming", "incoming_text")


def staging_paths(beside: Path) -> list[Path]:
    """The staging area's files for the build `beside` (each with its WAL: `readers.discard`)."""
    return [beside.with_name(f"{beside.name}.{name}") for name in STAGING]


def open_staging(con: duckdb.DuckDBPyConnection, beside: Path | None) -> None:
    """Attach the staging area to `con`: in files beside the build `beside` (emptied first), or in
    memory (None)."""
    for name in STAGING:
        target = ":memory:"
        if beside is not None:
            path = beside.with_name(f"{beside.name}.{name}")
            path.unlink(missing_ok=True)
            target = str(path).replace("'", "''")  # ATTACH takes no bound parameters
        con.execute(f"attach '{target}' as {name}")


def close_staging(con: duckdb.DuckDBPyConnection) -> None:
    """Detach the staging area from `con`: the drops are merged."""
    for name in STAGING:
        con.execute(f"detach database if exists {name}")


@dataclass
class ExtractedFile:
    source: SourceFile
    path: Path
    size_bytes: int
    sha256: str
    skipped: bool = False
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    zips_fixed: int = 0
    results: list[RuleResult] = field(default_factory=list)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def extract(con: duckdb.DuckDBPyConnection, folder: Path, run_id: int, already_loaded: set[tuple[str, str]]) -> list[ExtractedFile]:
    """Check the folder against the contract, then read each new file into `incoming.<table>`.

    Raises `contract.ContractError` (nothing read) when the folder breaks the contract.
    """
    digests = {s.filename: sha256_of(folder / s.filename) for s in contract.SOURCE_FILES if (folder / s.filename).is_file()}
    checks = contract.check_folder(folder, loaded=lambda path: (path.name, digests.get(path.name)) in already_loaded)
    extracted = []
    for check in checks:
        source = check.source
        item = ExtractedFile(source, check.path, check.size_bytes, digests[source.filename])
        if (source.filename, item.sha256) in already_loaded:
            item.skipped = True
        else:
            _read(con, item, run_id)
        extracted.append(item)
    return extracted


def _read(con: duckdb.DuckDBPyConnection, item: ExtractedFile, run_id: int) -> None:
    source = item.source
    table = source.table
    format_rule, types_rule = automatic_rules(table)
    con.execute(
        f"""create or replace table incoming.{table} as
            select row_number() over () as _row, * from {_reader(item.path, source, typed=True)}"""
    )
    if con.execute(f"select count(*) from rejects_{table}").fetchone()[0] == 0:
        item.rows_read = con.execute(f"select count(*) from incoming.{table}").fetchone()[0]
        item.results += [RuleResult(r.rule, table, "reject", item.rows_read, 0) for r in (format_rule, types_rule)]
        item.zips_fixed = contract.fix_zip_prefixes(con, f"incoming.{table}", source)
        _drop_rejects(con, table)
        return
    _drop_rejects(con, table)
    _read_as_text(con, item, run_id)


def _reader(path: Path, source: SourceFile, typed: bool) -> str:
    table = source.table
    reader = contract.read_csv_sql(path, source, all_varchar=not typed).removesuffix(")")
    return (
        reader + f", ignore_errors = true, store_rejects = true, rejects_table = 'rejects_{table}', rejects_scan = 'rejects_scan_{table}')"
    )


def _drop_rejects(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f"drop table if exists rejects_{table}; drop table if exists rejects_scan_{table}")


def _read_as_text(con: duckdb.DuckDBPyConnection, item: ExtractedFile, run_id: int) -> None:
    """The careful path for a file with bad records: exact record numbers, original text."""
    source = item.source
    table = source.table
    format_rule, types_rule = automatic_rules(table)
    con.execute(f"create or replace table incoming_text.{table} as select * from {_reader(item.path, source, typed=False)}")
    parsed = con.execute(f"select count(*) from incoming_text.{table}").fetchone()[0]

    # Records the CSV reader could not parse: kept in quarantine with its message and text.
    # The reader may report several errors for one record: one quarantine row per record.
    con.execute(
        f"""create or replace temp table rejected_records as
            select line, string_agg(distinct error_message, '; ') as reason, any_value(csv_line) as csv_line
            from rejects_{table} group by line"""
    )
    rejects = con.execute("select count(*) from rejected_records").fetchone()[0]
    if rejects:
        con.execute(
            """insert into quarantine.rejected_rows (run_id, source_file, row_number, line_number, rule, reason, original)
               select ?, ?, null, line, ?, reason, to_json({'csv_line': csv_line}) from rejected_records""",
            [run_id, source.filename, format_rule.rule],
        )
    examples = [f"line {r[0]}" for r in con.execute("select line from rejected_records order by line limit 5").fetchall()]
    con.execute("drop table rejected_records")
    _drop_rejects(con, table)
    item.rows_read = parsed + rejects
    item.results.append(RuleResult(format_rule.rule, table, "reject", item.rows_read, rejects, examples))

    item.zips_fixed = contract.fix_zip_prefixes(con, f"incoming_text.{table}", source)
    casts = ", ".join(f"{_cast(name, kind)} as {name}" for name, kind in source.columns)
    typed = [(name, kind) for name, kind in source.columns if DUCKDB_TYPES[kind] != "VARCHAR"]
    con.execute(f"create or replace table incoming.{table} as select rowid + 1 as _row, {casts} from incoming_text.{table}")
    # A value fails its type when the text is there but the cast gives nothing.
    bad = " or ".join(f"(x.{name} is not null and t.{name} is null)" for name, _ in typed) or "false"
    condition = f"""t._row in (select t._row from incoming.{table} as t
        join (select rowid + 1 as _row, * from incoming_text.{table}) as x on x._row = t._row where {bad})"""
    failing, examples = con.execute(
        f"select count(*), list('row ' || _row order by _row)[1:5] from incoming.{table} as t where {condition}"
    ).fetchone()
    item.results.append(RuleResult(types_rule.rule, table, "reject", parsed, failing, examples or []))
    if failing:
        reasons = " || ".join(
            f"case when x.{name} is not null and t.{name} is null then '{name}=' || x.{name} || ' ' else '' end" for name, _ in typed
        )
        reason = f"""'not of the column''s type: ' || trim((select {reasons} from incoming_text.{table} as x
            where x.rowid + 1 = t._row))"""
        quarantine(con, run_id, table, condition, types_rule, reason_sql=reason, original_text=True)


def _cast(name: str, kind: str) -> str:
    if kind == "timestamp":
        return f"try_strptime({name}, '{TIMESTAMP_FORMAT}')"
    duck_type = DUCKDB_TYPES[kind]
    if duck_type == "VARCHAR":
        return name
    return f"try_cast(trim({name}) as {duck_type})"

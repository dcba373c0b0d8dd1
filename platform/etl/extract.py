"""Extract: read a drop's files into DuckDB through the source contract, typed explicitly.

Each file is read as text first (so a bad value never aborts the read), with the CSV
reader's rejects kept; values are then cast to their declared types, and a row whose value
does not cast is quarantined with the column and value named. A file already loaded by a
succeeded run (same SHA-256) is skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from olist_bi import contract
from olist_bi.contract import DUCKDB_TYPES, TIMESTAMP_FORMAT, SourceFile
from olist_bi.etl.quality import RuleResult, automatic_rules, quarantine


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


def extract(
    con: duckdb.DuckDBPyConnection, folder: Path, run_id: int, already_loaded: set[tuple[str, str]]
) -> list[ExtractedFile]:
    """Check the folder against the contract, then read each new file into `incoming.<table>`.

    Raises `contract.ContractError` (nothing read) when the folder breaks the contract.
    """
    checks = contract.check_folder(folder)
    con.execute("create schema if not exists incoming_text; create schema if not exists incoming")
    extracted = []
    for check in checks:
        source = check.source
        item = ExtractedFile(source, check.path, check.size_bytes, sha256_of(check.path))
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
    reader = contract.read_csv_sql(item.path, source, all_varchar=True).removesuffix(")")
    reader += f", ignore_errors = true, store_rejects = true, rejects_table = 'rejects_{table}', rejects_scan = 'rejects_scan_{table}')"
    con.execute(f"create or replace table incoming_text.{table} as select * from {reader}")
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
    else:
        examples = []
    con.execute(f"drop table rejected_records; drop table if exists rejects_{table}; drop table if exists rejects_scan_{table}")
    item.rows_read = parsed + rejects
    item.results.append(RuleResult(format_rule.rule, table, "reject", item.rows_read, rejects, examples))

    item.zips_fixed = contract.fix_zip_prefixes(con, f"incoming_text.{table}", source)

    casts = ", ".join(f"{_cast(name, kind)} as {name}" for name, kind in source.columns)
    bad = ", ".join(
        f"case when {name} is not null and {_cast(name, kind)} is null then '{name}=' || {name} end"
        for name, kind in source.columns
        if DUCKDB_TYPES[kind] != "VARCHAR"
    )
    con.execute(
        f"""create or replace table incoming.{table} as
            select rowid + 1 as _row, {casts}, list_filter([{bad}], x -> x is not null) as _type_errors
            from incoming_text.{table}"""
    )
    condition = "len(t._type_errors) > 0"
    failing, examples = con.execute(
        f"select count(*), list('row ' || _row order by _row)[1:5] from incoming.{table} as t where {condition}"
    ).fetchone()
    item.results.append(RuleResult(types_rule.rule, table, "reject", parsed, failing, examples or []))
    if failing:
        reason = "'not of the column''s type: ' || array_to_string(t._type_errors, ', ')"
        quarantine(con, run_id, table, condition, types_rule, reason_sql=reason)
    con.execute(f"alter table incoming.{table} drop column _type_errors")


def _cast(name: str, kind: str) -> str:
    if kind == "timestamp":
        return f"try_strptime({name}, '{TIMESTAMP_FORMAT}')"
    duck_type = DUCKDB_TYPES[kind]
    if duck_type == "VARCHAR":
        return name
    return f"try_cast(trim({name}) as {duck_type})"

"""Validate: the data-quality rules of `rules.yaml`, applied to each new file.

Rules run in file order (parents before children) and, within a file, in the order written.
A row rejected by one rule goes to quarantine once, with that rule and its reason, and is
not checked again; warn rules count their rows and keep them; error rules fail the run.
"""

from __future__ import annotations

import re
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb
import psycopg
import yaml

from olist_bi.contract import BY_TABLE

RULES_FILE = Path(__file__).parent / "rules.yaml"
EXAMPLES = 5
QUARANTINE_DDL = """
create schema if not exists quarantine;
create table if not exists quarantine.rejected_rows (
    run_id bigint not null,
    source_file varchar not null,
    row_number bigint,      -- data record number in the file, header excluded
    line_number bigint,     -- physical line, where the CSV reader knows it
    rule varchar not null,
    reason varchar not null,
    original json,          -- the row's values as read, before any cast
    quarantined_at timestamp not null default current_timestamp
);
"""


@dataclass(frozen=True)
class Rule:
    rule: str
    table: str
    severity: str
    description: str
    kind: str = "condition"
    fails_when: str | None = None
    columns: tuple[str, ...] = ()
    parent: str | None = None
    parent_columns: tuple[str, ...] = ()

    @property
    def definition(self) -> str:
        if self.kind == "unique":
            return f"unique ({', '.join(self.columns)})"
        if self.kind == "reference":
            return f"({', '.join(self.columns)}) references {self.parent} ({', '.join(self.parent_columns)})"
        return f"fails when {self.fails_when}"

    def failing_condition(self) -> str:
        """A SQL condition over `incoming.<table> as t` that is true for failing rows."""
        if self.kind == "unique":
            keys = ", ".join(self.columns)
            return (
                f"t._row in (select _row from (select _row, row_number() over (partition by {keys} order by _row) as n "
                f"from incoming.{self.table}) where n > 1)"
            )
        if self.kind == "reference":
            match = " and ".join(f"p.{pc} = t.{c}" for c, pc in zip(self.columns, self.parent_columns))
            present = " and ".join(f"t.{c} is not null" for c in self.columns)
            return f"not ({present} and exists (select 1 from raw.{self.parent} as p where {match}))"
        return f"coalesce(({self.fails_when}), false)"


# A condition that reads raw history: `<column> not in (select <parent column> from raw.<parent>)`.
_READS_RAW = re.compile(r"(\w+)\s+not\s+in\s+\(\s*select\s+(\w+)\s+from\s+raw\.(\w+)\s*\)", re.IGNORECASE)


def history_reads(table: str) -> list[tuple[str, str, str]]:
    """What the rules of `table` read of raw history, as (raw table, its column, a query of the
    drop's values of it): the parents of its references and the tables its conditions look up.
    An engine that keeps raw history outside the run's DuckDB build puts those rows there
    before the file is validated (engines/base.py's `mirror`). A condition that reads `raw`
    otherwise is refused: it could not be answered from them."""
    reads = []
    for rule in rules():
        if rule.table != table:
            continue
        if rule.kind == "reference":
            reads += [(rule.parent, pc, f"select {c} from incoming.{table}") for c, pc in zip(rule.columns, rule.parent_columns)]
        elif rule.fails_when and "raw." in rule.fails_when:
            found = _READS_RAW.findall(rule.fails_when)
            if not found or rule.fails_when.count("raw.") != len(found):
                raise ValueError(f"rule {rule.rule} reads raw history other than `x not in (select y from raw.t)`: {rule.fails_when}")
            reads += [(parent, column, f"select {own} from incoming.{table}") for own, column, parent in found]
    return reads


@dataclass
class RuleResult:
    rule: str
    table: str
    severity: str
    rows_checked: int
    rows_failing: int
    example_keys: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.rows_failing == 0


@cache
def rules_spec() -> dict:
    return yaml.load(RULES_FILE.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def rules() -> tuple[Rule, ...]:
    spec = rules_spec()
    found = []
    for item in spec["rules"]:
        item = dict(item)
        item["columns"] = tuple(item.get("columns", ()))
        item["parent_columns"] = tuple(item.get("parent_columns", ()))
        found.append(Rule(**item))
    return tuple(found)


def automatic_rules(table: str) -> list[Rule]:
    return [
        Rule(
            f"{table}.csv_format",
            table,
            "reject",
            "The CSV reader could not parse the record (stray quote, wrong number of fields, truncated line).",
            fails_when="(parse error)",
        ),
        Rule(
            f"{table}.types",
            table,
            "reject",
            "Every value has its column's type (number, money, timestamp YYYY-MM-DD HH:MM:SS).",
            fails_when="(value does not cast)",
        ),
    ]


def all_rules() -> list[Rule]:
    return [r for table in BY_TABLE for r in automatic_rules(table)] + list(rules()) + [RECONCILIATION]


RECONCILIATION = Rule(
    "reconciliation",
    "*",
    "error",
    "Every row read from a file is either loaded or quarantined: loaded + quarantined = read, per file.",
    fails_when="(loaded + quarantined <> read)",
)


def quarantined(con: duckdb.DuckDBPyConnection, run_id: int, source_file: str) -> int:
    """The distinct records of one source file that run `run_id` has put in the quarantine."""
    return con.execute(
        "select count(*) from quarantine.rejected_rows where run_id = ? and source_file = ?", [run_id, source_file]
    ).fetchone()[0]


def quarantine_gate(filename: str, read: int, quarantined: int, failed: list[RuleResult], limit: float) -> str | None:
    """The gate on one file's quarantine, the same for `etl run` and `olist-bi check`: the
    problem when more than `limit` (OLIST_MAX_QUARANTINE_SHARE) of its `read` rows were
    quarantined, naming the rules that rejected them; else None."""
    if not read or quarantined / read <= limit:
        return None
    why = "; ".join(f"{r.rule}: {r.rows_failing:,} (e.g. {', '.join(r.example_keys)})" for r in failed if r.rows_failing)
    return (
        f"{filename}: {quarantined:,} of {read:,} rows quarantined ({quarantined / read:.1%}), "
        f"over the limit of {limit:.1%} (OLIST_MAX_QUARANTINE_SHARE): {why}"
    )


def key_expression(table: str) -> str:
    return rules_spec()["keys"][table]


def sync_rules(conn: psycopg.Connection) -> None:
    """Write the rules of the repo into `quality_rules` (insert or update)."""
    for r in all_rules():
        conn.execute(
            """insert into quality_rules (rule, source_table, severity, description, definition)
               values (%s, %s, %s, %s, %s)
               on conflict (rule) do update set source_table = excluded.source_table, severity = excluded.severity,
                   description = excluded.description, definition = excluded.definition, updated_at = now()""",
            (r.rule, r.table, r.severity, r.description, r.definition),
        )


def quarantine(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    table: str,
    condition: str,
    rule: Rule,
    reason_sql: str | None = None,
    original_text: bool = False,
) -> None:
    """Move the rows of `incoming.<table>` matching `condition` into quarantine.

    `reason_sql` (over `t`) words the reason, else the rule's description. The original
    values are the row as loaded or, with `original_text`, as read (`incoming_text`), for
    rows whose values did not cast."""
    filename = BY_TABLE[table].filename
    con.execute(
        f"""create or replace temp table failing as
            select t._row, {reason_sql or "?"} as reason from incoming.{table} as t where {condition}""",
        [] if reason_sql else [rule.description],
    )
    source = f"(select rowid + 1 as _row, * from incoming_text.{table})" if original_text else f"incoming.{table}"
    con.execute(
        f"""insert into quarantine.rejected_rows (run_id, source_file, row_number, line_number, rule, reason, original)
            select ?, ?, f._row, null, ?, f.reason, to_json(x)
            from failing as f join {source} as x on x._row = f._row""",
        [run_id, filename, rule.rule],
    )
    con.execute(f"delete from incoming.{table} where _row in (select _row from failing)")
    con.execute("drop table failing")


def validate_table(con: duckdb.DuckDBPyConnection, run_id: int, table: str) -> list[RuleResult]:
    """Apply the table's rules to `incoming.<table>`: quarantine rejects, count warnings."""
    key = key_expression(table)
    results = []
    for rule in [r for r in rules() if r.table == table]:
        condition = rule.failing_condition()
        checked = con.execute(f"select count(*) from incoming.{table}").fetchone()[0]
        failing, examples = con.execute(
            f"select count(*), list({key} order by _row)[1:{EXAMPLES}] from incoming.{table} as t where {condition}"
        ).fetchone()
        results.append(RuleResult(rule.rule, table, rule.severity, checked, failing, [str(e) for e in examples or []]))
        if failing and rule.severity == "reject":
            quarantine(con, run_id, table, condition, rule)
    return results


def record_checks(conn: psycopg.Connection, run_id: int, results: list[RuleResult]) -> None:
    for r in results:
        conn.execute(
            """insert into quality_checks (run_id, rule, rows_checked, rows_failing, passed, example_keys)
               values (%s, %s, %s, %s, %s, %s)""",
            (run_id, r.rule, r.rows_checked, r.rows_failing, r.passed, json.dumps(r.example_keys)),
        )


def record_report(conn: psycopg.Connection, run_id: int, results: list[RuleResult], read: int, quarantined: int) -> None:
    failed = [r for r in results if not r.passed and r.severity in ("reject", "error")]
    warnings = [r for r in results if not r.passed and r.severity == "warn"]
    summary = {r.rule: r.rows_failing for r in results if not r.passed}
    conn.execute(
        """insert into quality_reports (run_id, rules_checked, rules_failed, warnings, rows_read, rows_quarantined,
             quarantined_share, summary)
           values (%s, %s, %s, %s, %s, %s, %s, %s)
           on conflict (run_id) do nothing""",
        (run_id, len(results), len(failed), len(warnings), read, quarantined, quarantined / read if read else 0.0, json.dumps(summary)),
    )

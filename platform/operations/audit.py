"""The audit trail in the operations store: append events, verify the hash chain, read it.

Rows are append-only (triggers refuse UPDATE, DELETE and TRUNCATE, even from a superuser's
plain statements; the `olist_app` role has only SELECT and INSERT). Each row's hash covers
the previous row's hash and its own fields (`audit_row_hash` in the migration), so editing a
row with triggers disabled breaks the chain, and `verify` reports the first broken link.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

GENESIS = "0" * 64
COLUMNS = ("id", "at", "actor", "source", "action", "target", "details", "prev_hash", "hash")


def system_actor() -> str:
    """Who runs the platform's own commands: the operating-system user."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


def append(conn: psycopg.Connection, action: str, target: str | None = None, details: dict | None = None,
           actor: str | None = None, source: str = "platform") -> int:
    """Append one event; the database assigns id, time and hashes. Returns the id."""
    row = conn.execute(
        """insert into audit_logs (actor, source, action, target, details, id, at, prev_hash, hash)
           values (%s, %s, %s, %s, %s, 0, now(), '', '') returning id""",
        (actor or system_actor(), source, action, target, json.dumps(details or {}, default=str)),
    ).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


@dataclass
class Verification:
    rows: int
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(conn: psycopg.Connection) -> Verification:
    """Walk the chain in id order; report the first row whose hash or link does not hold."""
    cursor = conn.cursor(row_factory=dict_row)
    rows = cursor.execute(
        """select id, prev_hash, hash,
                  audit_row_hash(prev_hash, at, actor, source, action, target, details) as recomputed,
                  lag(hash) over (order by id) as previous_hash
           from audit_logs order by id"""
    ).fetchall()
    for row in rows:
        expected_prev = row["previous_hash"] or GENESIS
        if row["prev_hash"] != expected_prev:
            return Verification(len(rows), row["id"], f"row {row['id']} does not link to the row before it (a row was removed or inserted)")
        if row["recomputed"] != row["hash"]:
            return Verification(len(rows), row["id"], f"row {row['id']} was altered after it was written (its hash does not match its fields)")
    return Verification(len(rows))


def tail(conn: psycopg.Connection, since: dt.datetime | None = None, actor: str | None = None,
         action: str | None = None, limit: int = 50) -> list[dict]:
    """The newest events, filtered; `action` matches a prefix (etl. matches etl.run.started)."""
    conditions, params = [], []
    if since:
        conditions.append("at >= %s")
        params.append(since)
    if actor:
        conditions.append("actor = %s")
        params.append(actor)
    if action:
        conditions.append("action like %s")
        params.append(action.replace("%", r"\%").replace("_", r"\_") + "%")
    where = ("where " + " and ".join(conditions)) if conditions else ""
    cursor = conn.cursor(row_factory=dict_row)
    rows = cursor.execute(f"select * from audit_logs {where} order by id desc limit %s", (*params, limit)).fetchall()
    return list(reversed(rows))


def export(conn: psycopg.Connection, fmt: str, out: io.TextIOBase) -> int:
    """Write the whole trail, oldest first, as JSON lines or CSV; return the row count.
    Rows stream through a server-side cursor: the trail is never held in memory whole."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    with conn.transaction():
        cursor = conn.cursor(name="audit_export", row_factory=dict_row)
        cursor.execute("select * from audit_logs order by id")
        for row in cursor:
            row = {**row, "at": row["at"].isoformat()}
            if writer:
                writer.writerow({**row, "details": json.dumps(row["details"], sort_keys=True)})
            else:
                out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            count += 1
        cursor.close()
    return count

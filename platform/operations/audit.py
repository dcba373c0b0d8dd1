"""The audit trail in the operations store: append events, verify the hash chain, read it.

Rows are append-only. The table belongs to `olist_audit_owner`, a role nobody logs in as;
the application role `olist_app` reads it and appends through the SECURITY DEFINER function
`audit_append`, nothing else; triggers refuse UPDATE, DELETE and TRUNCATE, even from a
superuser's plain statements (migrations 0002 and 0003).

Each row's hash covers the previous row's hash and its own fields, so an edited, inserted or
removed row breaks the chain. `verify` recomputes every hash here, in Python (never with the
database's own functions, which whoever owns the database could replace), and checks the
chain against the latest signed checkpoint (`olist_bi.operations.checkpoint`): the one thing
the database cannot forge, so a trail rewritten with recomputed hashes, cut at the end or
emptied is caught too.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import hashlib
import io
import json
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from olist_bi.operations.checkpoint import Checkpoint

GENESIS = "0" * 64
COLUMNS = ("id", "at", "actor", "source", "action", "target", "details", "prev_hash", "hash", "hash_version")


def system_actor() -> str:
    """Who runs the platform's own commands: the operating-system user."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


def append(
    conn: psycopg.Connection,
    action: str,
    target: str | None = None,
    details: dict | None = None,
    actor: str | None = None,
    source: str = "platform",
) -> int:
    """Append one event; the database assigns id, time and hashes. Returns the id."""
    row = conn.execute(
        "select audit_append(%s, %s, %s, %s, %s::jsonb) as id",
        (actor or system_actor(), source, action, target, json.dumps(details or {}, default=str)),
    ).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def _stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def row_hash(row: dict) -> str:
    """A row's hash as the insert trigger computed it, by its `hash_version`:
    1: the fields joined with '|' (ambiguous: rows written before migration 0003);
    2: each field a netstring, `<bytes>:<text>,`, a null `~`, after `v2;`."""
    fields = [row["prev_hash"], _stamp(row["at"]), row["actor"], row["source"], row["action"], row["target"], row["details_text"]]
    if row["hash_version"] == 1:
        text = "|".join("" if f is None else f for f in fields)
    else:
        text = "v2;" + "".join("~" if f is None else f"{len(f.encode())}:{f}," for f in fields)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Verification:
    rows: int
    broken_at: int | None = None
    reason: str = ""
    checkpoint: "Checkpoint | None" = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.reason


def verify(conn: psycopg.Connection, checkpoint: "Checkpoint | None" = None) -> Verification:
    """Walk the chain in id order, recomputing every hash; report the first row whose hash or
    link does not hold; then hold the chain against `checkpoint`, the signed head of an
    earlier verification (its row count up to its last id, and that row's hash)."""
    cursor = conn.cursor(name="audit_verify", row_factory=dict_row) if not conn.autocommit else conn.cursor(row_factory=dict_row)
    rows = cursor.execute(
        "select id, at, actor, source, action, target, details::text as details_text, prev_hash, hash, hash_version "
        "from audit_logs order by id"
    )
    count, previous, at_checkpoint = 0, GENESIS, None
    for row in rows:
        count += 1
        if row["prev_hash"] != previous:
            return Verification(
                count, row["id"], f"row {row['id']} does not link to the row before it (a row was removed or inserted)", checkpoint
            )
        if row_hash(row) != row["hash"]:
            return Verification(
                count, row["id"], f"row {row['id']} was altered after it was written (its hash does not match its fields)", checkpoint
            )
        previous = row["hash"]
        if checkpoint and row["id"] <= checkpoint.last_id:
            at_checkpoint = (count, row["id"], row["hash"])
    result = Verification(count, checkpoint=checkpoint)
    if checkpoint is None or checkpoint.rows == 0:
        return result
    when = f"the checkpoint of {checkpoint.at} ({checkpoint.rows} rows up to id {checkpoint.last_id})"
    if count == 0:
        return Verification(0, None, f"the trail is empty, but {when}: every row was deleted", checkpoint)
    seen, last_id, last_hash = at_checkpoint or (0, None, None)
    if seen < checkpoint.rows:
        return Verification(
            count,
            last_id,
            f"{checkpoint.rows - seen} rows up to id {checkpoint.last_id} are missing against {when}: rows were removed",
            checkpoint,
        )
    if seen > checkpoint.rows:
        return Verification(
            count, last_id, f"{seen - checkpoint.rows} more rows up to id {checkpoint.last_id} than {when}: rows were inserted", checkpoint
        )
    if last_id != checkpoint.last_id or last_hash != checkpoint.last_hash:
        return Verification(
            count,
            last_id,
            f"row {checkpoint.last_id}'s hash differs from {when}: the trail was rewritten and its hashes recomputed",
            checkpoint,
        )
    return result


def tail(
    conn: psycopg.Connection, since: dt.datetime | None = None, actor: str | None = None, action: str | None = None, limit: int = 50
) -> list[dict]:
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


def export(conn: psycopg.Connection, fmt: str, out: io.TextIOBase, checkpoint: Checkpoint | None = None) -> int:
    """Write the whole trail, oldest first, as JSON lines or CSV; return the row count. In JSON
    lines, `checkpoint` (the signed head written with the export) is the last line,
    `{"checkpoint": {...}}`. Rows stream through a server-side cursor: the trail is never
    held in memory whole."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    with conn.transaction():
        cursor = conn.cursor(name="audit_export", row_factory=dict_row)
        cursor.execute(f"select {', '.join(COLUMNS)} from audit_logs order by id")
        for row in cursor:
            row = {**row, "at": row["at"].isoformat()}
            if writer:
                writer.writerow({**row, "details": json.dumps(row["details"], sort_keys=True)})
            else:
                out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            count += 1
        cursor.close()
    if checkpoint and not writer:
        out.write(json.dumps({"checkpoint": checkpoint.as_dict()}, sort_keys=True) + "\n")
    return count

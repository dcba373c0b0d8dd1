"""The operations store in PostgreSQL: versioned migrations and the pipeline's run history.

Migrations are the numbered `.sql` files in `migrations/`, applied in order, each once, in a
transaction of its own; `schema_migrations` records which ran. They run as the store's owner:
`olist-bi migrate` (the compose init job), or any command whose login may (the local demo's
embedded server, a superuser). A least-privilege login (a member of `olist_app`, migration
0004) finds nothing pending and changes nothing; when a migration is pending it is told to
run `olist-bi migrate` as the owner instead of failing on a permission.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.rows import dict_row, tuple_row

from olist_bi.operations.postgres import PostgresError

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 7_106_711  # advisory lock key: one migrator at a time


class MigrationNeeded(PostgresError):
    """Migrations are pending and this login may not apply them."""


def pending(conn: psycopg.Connection) -> list[Path]:
    """The migrations not applied yet (all of them on a new store)."""
    cursor = conn.cursor(row_factory=tuple_row)
    if cursor.execute("select to_regclass('public.schema_migrations') is not null").fetchone()[0]:
        done = {name for (name,) in cursor.execute("select name from schema_migrations")}
    else:
        done = set()
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if p.name not in done]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not yet applied; return their names. Nothing pending: no DDL at all."""
    if not pending(conn):
        return []
    applied_now = []
    try:
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())"
            )
            for path in pending(conn):  # again, under the lock: another migrator may have run meanwhile
                conn.execute(path.read_text(encoding="utf-8"))
                conn.execute("insert into schema_migrations (name) values (%s)", (path.name,))
                applied_now.append(path.name)
    except psycopg.errors.InsufficientPrivilege as e:
        who = conn.info.user
        names = ", ".join(p.name for p in pending(conn))
        raise MigrationNeeded(
            f"the operations store needs migrations ({names}) that {who} may not apply ({str(e).strip()}): "
            "run `olist-bi migrate` as the store's owner (OLIST_MIGRATION_DATABASE_URL), then run this again"
        ) from None
    return applied_now


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the operations store, migrated (or checked to be)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        migrate(conn)
        yield conn


class RunLog:
    """Writes one pipeline run's history: the run, its tasks, loads and quality results."""

    def __init__(self, conn: psycopg.Connection, trigger: str, source: str | None, full: bool):
        self.conn = conn
        row = conn.execute(
            """insert into pipeline_runs (trigger, status, source, full_rebuild, host, pid)
               values (%s, 'running', %s, %s, %s, %s) returning run_id""",
            (trigger, source, full, socket.gethostname(), os.getpid()),
        ).fetchone()
        self.run_id: int = row["run_id"]

    def task_started(self, task: str) -> int:
        row = self.conn.execute(
            "insert into task_executions (run_id, task, status) values (%s, %s, 'running') returning task_id",
            (self.run_id, task),
        ).fetchone()
        return row["task_id"]

    def task_finished(self, task_id: int, error: str | None = None, detail: dict | None = None) -> None:
        self.conn.execute(
            """update task_executions set status = %s, finished_at = now(),
                   duration_s = extract(epoch from now() - started_at), error = %s, detail = %s
               where task_id = %s""",
            ("failed" if error else "succeeded", error, json.dumps(detail or {}), task_id),
        )

    def record_load(self, source_file: str, path: str, size: int, sha256: str, read: int, loaded: int, quarantined: int) -> None:
        self.conn.execute(
            """insert into data_loads (run_id, source_file, path, size_bytes, sha256, rows_read, rows_loaded, rows_quarantined)
               values (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (self.run_id, source_file, path, size, sha256, read, loaded, quarantined),
        )

    def finish(self, status: str, rows: dict | None = None, published: str | None = None, error: str | None = None) -> None:
        rows = rows or {}
        self.conn.execute(
            """update pipeline_runs set status = %s, finished_at = now(),
                   duration_s = extract(epoch from now() - started_at),
                   rows_read = %s, rows_loaded = %s, rows_quarantined = %s, published_file = %s, error = %s
               where run_id = %s""",
            (
                status,
                json.dumps(rows.get("read", {})),
                json.dumps(rows.get("loaded", {})),
                json.dumps(rows.get("quarantined", {})),
                published,
                error,
                self.run_id,
            ),
        )


def close_abandoned_runs(conn: psycopg.Connection) -> list[int]:
    """Mark failed the runs left 'running' by a process that died. Call it while holding the
    ETL lock: a live run holds that lock, so any other 'running' run is dead."""
    rows = conn.execute(
        """update pipeline_runs set status = 'failed', finished_at = now(),
               error = 'abandoned: the process running it stopped before it finished'
           where status = 'running' returning run_id"""
    ).fetchall()
    closed = [r["run_id"] for r in rows]
    if closed:
        conn.execute(
            "update task_executions set status = 'failed', finished_at = now(), error = 'abandoned' "
            "where run_id = any(%s) and status = 'running'",
            (closed,),
        )
    return closed


def complete_published_runs(conn: psycopg.Connection, ledger: list[dict], generation: str) -> list[int]:
    """Finish the bookkeeping of runs whose file is served but whose records stopped short
    (the process died between the publish and the records): `ledger` is the served file's
    own `meta.loads`. Marks each such run succeeded, with its loads; returns their ids."""
    by_run: dict[int, list[dict]] = {}
    for row in ledger:
        by_run.setdefault(row["run_id"], []).append(row)
    if not by_run:
        return []
    unfinished = [
        r["run_id"]
        for r in conn.execute(
            "select run_id from pipeline_runs where run_id = any(%s) and status <> 'succeeded' order by run_id", (list(by_run),)
        ).fetchall()
    ]
    for run_id in unfinished:
        loads = by_run[run_id]
        with conn.transaction():
            conn.execute("delete from data_loads where run_id = %s", (run_id,))
            for load in loads:
                size = os.path.getsize(load["path"]) if os.path.exists(load["path"]) else 0
                conn.execute(
                    """insert into data_loads (run_id, source_file, path, size_bytes, sha256, rows_read, rows_loaded, rows_quarantined)
                       values (%s, %s, %s, %s, %s, %s, %s, %s)""",
                    (
                        run_id,
                        load["source_file"],
                        load["path"],
                        size,
                        load["sha256"],
                        load["rows_read"],
                        load["rows_loaded"],
                        load["rows_quarantined"],
                    ),
                )
            conn.execute(
                """update pipeline_runs set status = 'succeeded', finished_at = coalesce(finished_at, now()),
                       duration_s = coalesce(duration_s, extract(epoch from now() - started_at)), published_file = %s,
                       error = 'published; its records were completed at the next start (the process stopped after the publish)'
                   where run_id = %s""",
                (generation, run_id),
            )
            conn.execute("update task_executions set status = 'succeeded', error = null where run_id = %s and task = 'publish'", (run_id,))
    return unfinished


def succeeded_loads(conn: psycopg.Connection) -> list[dict]:
    """Every file a succeeded run loaded, oldest first: what a full rebuild starts from when
    the served warehouse's own record cannot be read."""
    rows = conn.execute(
        """select l.source_file, l.path, l.sha256 from data_loads l join pipeline_runs r using (run_id)
           where r.status = 'succeeded' order by l.run_id, l.source_file"""
    ).fetchall()
    return [dict(r) for r in rows]


def recent_runs(conn: psycopg.Connection, limit: int = 10) -> list[dict]:
    return conn.execute(
        """select r.*, q.rules_checked, q.rules_failed, q.warnings, q.quarantined_share
           from pipeline_runs r left join quality_reports q using (run_id)
           order by run_id desc limit %s""",
        (limit,),
    ).fetchall()

"""Superset's event log (the `logs` table: recent activity, dashboard views, chart timings),
written off the request path. Runs inside Superset (superset_config.py names it).

Superset's own DBEventLogger inserts and commits on the request's database session, several
times per chart-data request: each commit costs a round trip and expires every object the
request has loaded, which are then read again. Measured on a chart-data request at scale 1:
30 to 50 ms of 150 to 220 (bench/profile_superset.py, docs/benchmarks.md). This logger
writes the same rows, in batches, from one thread per process on a connection of its own.
The price: events of the last moment before a crash may be lost (the queue is flushed on a
clean exit).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
from typing import Any

from superset.utils.log import DBEventLogger

BATCH = 200
log = logging.getLogger(__name__)


class QueuedEventLogger(DBEventLogger):
    def __init__(self) -> None:
        super().__init__()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine = None

    def log(
        self,
        user_id: int | None,
        action: str,
        dashboard_id: int | None,
        duration_ms: int | None,
        slice_id: int | None,
        referrer: str | None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        records = kwargs.get("records", [])
        if not records and kwargs.get("curated_payload"):
            records = [kwargs["curated_payload"]]
        for record in records:
            try:
                text = json.dumps(record)
            except (TypeError, ValueError):
                text = None
            self._queue.put(
                {
                    "action": action,
                    "json": text,
                    "dashboard_id": dashboard_id or record.get("dashboard_id"),
                    "slice_id": slice_id or record.get("slice_id"),
                    "duration_ms": duration_ms,
                    "referrer": referrer,
                    "user_id": user_id,
                }
            )
        self._start()

    def _start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            from flask import current_app
            from sqlalchemy import create_engine

            self._engine = create_engine(current_app.config["SQLALCHEMY_DATABASE_URI"], pool_size=1, max_overflow=0, pool_pre_ping=True)
            self._pid = os.getpid()
            threading.Thread(target=self._drain, name="olist-event-log", daemon=True).start()
            atexit.register(self._flush)

    def _drain(self) -> None:
        while True:
            rows = [self._queue.get()]
            self._write(rows)

    def _write(self, rows: list[dict]) -> None:
        from superset.models.core import Log

        while len(rows) < BATCH:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        try:
            with self._engine.begin() as conn:
                conn.execute(Log.__table__.insert(), rows)
        except Exception:  # noqa: BLE001 - a lost event must never fail a request
            log.exception("could not write %d event log rows", len(rows))

    def _flush(self) -> None:
        try:
            rows = [self._queue.get_nowait()]
        except queue.Empty:
            return
        self._write(rows)

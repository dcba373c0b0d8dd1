"""Crash consistency: a run killed for real (SIGKILL, at each named point of platform/runtime/faults.py)
leaves the served warehouse old or new and whole, and the next start brings the run history,
the loads and the audit trail in line with what is served; the next run succeeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from olist_bi.runtime import faults
from olist_bi.engines.duckdb import warehouse
from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline, readers
from olist_bi.operations import audit, store
from tests.conftest import copy_home, make_settings

CLI = [str(Path(sys.executable).parent / "olist-bi")]
SERVES_THE_NEW_FILE = {"after_rename", "before_bookkeeping"}


def killed_run(settings, drop: Path, point: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": settings.database_url, "OLIST_FAULT": point}
    return subprocess.run(CLI + ["etl", "run", "--source", str(drop)], env=env, capture_output=True, text=True, timeout=600)


def ledger_runs(settings) -> set[int]:
    with warehouse.connect(settings.warehouse_path) as con:
        return {r for (r,) in con.execute("select distinct run_id from meta.loads").fetchall()}


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_run_killed_at_any_point_leaves_a_consistent_platform(point, tmp_path, small_warehouse, drop_copy, ops_url):
    # A served warehouse first: a private copy of the session's load of the small drop, as
    # `pipeline.run(settings, small_drop)` on a fresh home leaves it; `first` is that run.
    source, first = small_warehouse
    settings = make_settings(copy_home(source, tmp_path / "home"), ops_url)
    before = publish.current(settings.warehouse_path)
    with psycopg.connect(ops_url) as conn:  # the runs of this test are the ones after it
        [(last_run,)] = conn.execute("select max(run_id) from pipeline_runs").fetchall()
    orders = drop_copy / "olist_orders_dataset.csv"
    orders.write_text(orders.read_text(encoding="utf-8").replace(",delivered,", ",shipped,", 5), encoding="utf-8")

    killed = killed_run(settings, drop_copy, point)
    assert killed.returncode == -9, (point, killed.stderr[-2000:])  # it died at the point, for real

    served = publish.current(settings.warehouse_path)
    assert (served != before) == (point in SERVES_THE_NEW_FILE), point
    with warehouse.connect(settings.warehouse_path) as con:  # old or new, it opens and answers
        assert con.execute("select count(*) from fact_deliveries").fetchone()[0] > 0

    messages = []
    again = pipeline.run(settings, drop_copy, progress=messages.append)  # the next start
    assert not list(settings.warehouse_path.parent.glob("*.building-*"))
    assert readers.stale(settings) == []  # the reader copies come from what is served
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        runs = {
            r["run_id"]: r
            for r in conn.execute("select run_id, status, error from pipeline_runs where run_id > %s", (last_run,)).fetchall()
        }
        loads = {r["run_id"] for r in conn.execute("select distinct run_id from data_loads").fetchall()}
    killed_id = min(runs)
    if point in SERVES_THE_NEW_FILE:
        # Served: the killed run's records are completed, and the drop is not loaded twice.
        assert runs[killed_id]["status"] == "succeeded" and "completed at the next start" in runs[killed_id]["error"]
        assert any(f"completed the records of run {killed_id}" in m for m in messages)
        assert again.status == "skipped" and "loaded before" in again.message
        with store.connect(ops_url) as conn:  # the reconciled publish names the killed run's files, not the first run's
            [files] = [
                e["details"]["files"]
                for e in conn.execute("select details from audit_logs where action = 'warehouse.published'").fetchall()
                if e["details"].get("reconciled") and e["details"]["run_id"] == killed_id
            ]
        assert files == ["olist_orders_dataset.csv"], files
    else:
        assert runs[killed_id]["status"] == "failed" and "abandoned" in runs[killed_id]["error"]
        assert again.status == "succeeded"
    # The history agrees with what is served: every run in the served file's ledger succeeded,
    # with its loads recorded, and was audited as published.
    served_runs = ledger_runs(settings)
    with store.connect(ops_url) as conn:
        published = {
            e["details"]["run_id"] for e in conn.execute("select details from audit_logs where action = 'warehouse.published'").fetchall()
        }
        assert audit.verify(conn).ok
    assert served_runs <= loads and served_runs <= published | {first.run_id}
    for run_id in served_runs - {first.run_id}:
        assert runs[run_id]["status"] == "succeeded"

"""The scheduler: jobs kept in PostgreSQL, new drops picked up, no overlapping runs, clean
shutdown on SIGTERM."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import psycopg
from psycopg.rows import dict_row

from olist_bi.etl import pipeline
from olist_bi.app.scheduler import FAILED, LOADED, READY, ready_drops, sqlalchemy_url
from tests.conftest import make_settings


def test_only_complete_ready_drops_are_picked_up(tmp_path, small_drop):
    inbox = tmp_path / "inbox"
    for name in ("a-ready", "b-not-ready", "c-loaded", "d-failed", "e-partial"):
        shutil.copytree(small_drop, inbox / name)
    for name in ("a-ready", "c-loaded", "d-failed", "e-partial"):
        (inbox / name / READY).touch()
    (inbox / "c-loaded" / LOADED).touch()
    (inbox / "d-failed" / FAILED).touch()
    (inbox / "e-partial" / "olist_orders_dataset.csv").unlink()
    assert ready_drops(inbox) == [inbox / "a-ready"]
    assert ready_drops(tmp_path / "nowhere") == []


def test_sqlalchemy_url():
    assert sqlalchemy_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert sqlalchemy_url("postgres://h/d") == "postgresql+psycopg://h/d"


def wait_for(condition, seconds, what):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start_scheduler(home, ops_url):
    env = {
        **os.environ,
        "OLIST_HOME": str(home),
        "OLIST_DATABASE_URL": ops_url,
        "OLIST_INBOX_POLL_SECONDS": "1",
        "OLIST_ETL_SCHEDULE": "0 3 * * *",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "olist_bi.cli", "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def stop(process):
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    assert "scheduler stopped" in out
    return out


def test_the_scheduler_loads_a_new_drop_and_stops_cleanly(tmp_path, small_drop, ops_url):
    home = tmp_path / "home"
    process = start_scheduler(home, ops_url)
    try:
        drop = home / "inbox" / "2018-09"
        wait_for(lambda: (home / "inbox").is_dir(), 30, "the inbox")
        shutil.copytree(small_drop, drop)
        (drop / READY).touch()
        wait_for(lambda: (drop / LOADED).exists() or (drop / FAILED).exists() or process.poll() is not None, 90, "the drop to load")
        assert (drop / LOADED).exists(), (drop / FAILED).read_text() if (drop / FAILED).exists() else process.stdout.read()
    finally:
        stop(process)
    assert (home / "warehouse.duckdb").exists()
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        run = conn.execute("select * from pipeline_runs where source = %s order by run_id desc limit 1", (str(drop.resolve()),)).fetchone()
        jobs = conn.execute("select id from apscheduler_jobs order by id").fetchall()
    assert run["trigger"] == "new_drop" and run["status"] == "succeeded"
    assert [j["id"] for j in jobs] == ["access_review", "audit_checkpoint", "etl_schedule", "inbox_watch"]

    # A restart finds its jobs in PostgreSQL and keeps one row per job.
    process = start_scheduler(home, ops_url)
    time.sleep(3)
    stop(process)
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        assert conn.execute("select count(*) as n from apscheduler_jobs").fetchone()["n"] == 4


def test_two_runs_at_once_never_overlap(tmp_path, drop, ops_url):
    settings = make_settings(tmp_path / "home", ops_url)
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        results.append(pipeline.run(settings, drop))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert statuses == ["skipped", "succeeded"]
    skipped = next(r for r in results if r.status == "skipped")
    assert "another ETL run" in skipped.message or "loaded before" in skipped.message


def test_one_scheduler_leads_and_a_standby_takes_over_when_it_dies(tmp_path, ops_url):
    logs = {}

    def started(name):
        out = open(tmp_path / f"{name}.log", "w")
        env = {**os.environ, "OLIST_HOME": str(tmp_path / name), "OLIST_DATABASE_URL": ops_url, "OLIST_INBOX_POLL_SECONDS": "1"}
        logs[name] = tmp_path / f"{name}.log"
        return subprocess.Popen(
            [sys.executable, "-m", "olist_bi.cli", "scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )

    first = started("first")
    wait_for(lambda: "leading" in logs["first"].read_text(), 60, "the first scheduler to lead")
    second = started("second")
    try:
        wait_for(lambda: "standby" in logs["second"].read_text(), 60, "the second to wait as a standby")
        time.sleep(2)
        assert "leading" not in logs["second"].read_text() and "Added job" not in logs["second"].read_text()  # it runs and records nothing
        first.kill()  # dies without a word: its session, and the lock, go with it
        first.wait()
        wait_for(lambda: "leading" in logs["second"].read_text(), 60, "the standby to take over")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        if first.poll() is None:
            first.kill()
    text = logs["second"].read_text()
    assert second.returncode == 0 and "scheduler stopped" in text
    assert "Traceback" not in text and " ERROR " not in text, text  # a clean shutdown

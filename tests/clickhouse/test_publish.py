"""Publishing on ClickHouse: a reader never errs and never sees the previous warehouse once the
run has returned; rollback serves the generation before; a failed build leaves the served
tables and the DuckDB file as they were."""

import datetime as dt
import os
import threading

import pytest

from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.etl import pipeline, transform
from olist_bi.generator import generate
from tests.conftest import clickhouse_env, clickhouse_settings

ORDERS = "select count(*) from fact_deliveries"

# What these check is the publish on ClickHouse, not the revenue forecast: the runs in this
# process reuse its fits by input (tests/conftest.py); those in processes of their own fit.
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")


@pytest.fixture(scope="module")
def increment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("increment")
    generate(folder, scale=0.01, seed=7, start_date=dt.date(2018, 9, 1), months=2)
    return folder


@pytest.fixture
def settings(tmp_path, ops_url, clickhouse_url):
    database = f"olist_pub_{os.getpid()}_{tmp_path.name[-12:].replace('-', '_').lower()}"
    return clickhouse_settings(tmp_path / "home", ops_url, clickhouse_url, "".join(c for c in database if c.isalnum() or c == "_"))


def orders(settings) -> int:
    return clickhouse.query(settings, ORDERS)[0][0]


def test_readers_never_fail_and_see_the_new_warehouse_once_the_run_returns(settings, small_drop, increment):
    pipeline.run(settings, small_drop)
    before = orders(settings)
    seen, errors, stop = [], [], threading.Event()

    def read():
        while not stop.is_set():
            try:
                seen.append(orders(settings))
            except Exception as e:  # any error is a failure of the publish
                errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        pipeline.run(settings, increment)
        returned = len(seen)
        after = orders(settings)
        while len(seen) < returned + 5 and reader.is_alive():  # the reader goes on after the run returned
            threading.Event().wait(0.01)
    finally:
        stop.set()
        reader.join()
    assert after > before
    assert errors == []
    assert set(seen) <= {before, after}
    assert before in seen and after in seen, "the reads did not overlap the publish: the test checks nothing"
    assert seen == sorted(seen, key=lambda n: n == after), "a read saw the previous warehouse after the new one"
    assert seen[returned:] == [after] * (len(seen) - returned)  # 0 answers from the previous warehouse once the run returned


def test_rollback_serves_the_generation_before(settings, small_drop, increment, tmp_path):
    from click.testing import CliRunner

    from olist_bi.cli import main

    pipeline.run(settings, small_drop)
    first = orders(settings)
    pipeline.run(settings, increment)
    assert orders(settings) > first
    assert clickhouse.versions(settings) == [f"{settings.clickhouse_database}_previous_1"]
    env = clickhouse_env(settings)
    outcome = CliRunner().invoke(main, ["etl", "rollback"], env=env)
    assert outcome.exit_code == 0, outcome.output
    assert "ClickHouse: serving" in outcome.output
    assert orders(settings) == first
    outcome = CliRunner().invoke(main, ["etl", "rollback"], env=env)
    assert outcome.exit_code != 0 and "ClickHouse keeps no previous warehouse" in outcome.output
    assert orders(settings) == first


def test_a_failed_clickhouse_build_publishes_nothing(settings, small_drop, increment, monkeypatch):
    pipeline.run(settings, small_drop)
    before = orders(settings)
    monkeypatch.setattr(clickhouse, "_engine", lambda model: "ENGINE = NoSuchEngine")
    with pytest.raises(pipeline.EtlError, match="failed to build on ClickHouse"):
        pipeline.run(settings, increment)
    assert orders(settings) == before
    assert clickhouse.versions(settings) == [] and not settings.warehouse_path.exists()


def test_switching_an_existing_warehouse_to_clickhouse_builds_it_there_from_the_drop(settings, small_drop):
    """ClickHouse keeps its own ledger of loads: the drops a DuckDB warehouse holds are new to it."""
    import dataclasses

    pipeline.run(dataclasses.replace(settings, warehouse_engine="duckdb"), small_drop)
    assert not clickhouse.serves(settings, transform.build_plan())
    result = pipeline.run(settings, small_drop)
    assert result.status == "succeeded", result.message
    assert clickhouse.serves(settings, transform.build_plan()) and orders(settings) > 0
    assert pipeline.run(settings, small_drop).status == "skipped"


def _olist(env: dict, *args, **extra):
    import subprocess
    import sys
    from pathlib import Path

    cli = [str(Path(sys.executable).parent / "olist-bi")]
    return subprocess.run(cli + list(args), env={**env, **extra}, capture_output=True, text=True, timeout=600)


def _orders_of(env: dict) -> int:
    import json

    done = _olist(env, "semantic", "query", "--metric", "orders", "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)[0]["orders"]


def _cli_env(root, ops_url) -> dict:
    env = {
        **os.environ,
        "OLIST_HOME": str(root / "home"),
        "OLIST_DATABASE_URL": ops_url,
        "OLIST_WAREHOUSE_ENGINE": "clickhouse",
        "OLIST_CLICKHOUSE_URL": f"chdb://{root / 'clickhouse'}",
    }
    env.pop("OLIST_FAULT", None)
    return env


@pytest.fixture(scope="module")
def served_once(tmp_path_factory, ops_url, small_drop):
    """A home and a chdb folder that served the small drop (built once, in a process of its own,
    for every kill point to start from a copy of), its orders, and a month of new orders."""
    root = tmp_path_factory.mktemp("served-once")
    env = _cli_env(root, ops_url)
    done = _olist(env, "etl", "run", "--source", str(small_drop))
    assert done.returncode == 0, done.stderr[-2000:]
    extra = root / "extra"
    generate(extra, scale=0.01, seed=11, start_date=dt.date(2018, 9, 1), months=1)
    return root, _orders_of(env), extra


@pytest.mark.parametrize("point", ["before_rename", "clickhouse_exchanged", "after_rename"])
def test_a_run_killed_in_its_publish_leaves_one_generation_served_and_the_next_start_in_line(point, tmp_path, ops_url, served_once):
    """A run killed (SIGKILL) before ClickHouse's exchange published nothing; killed after it,
    it published: what is served is its generation, and the next start finishes the publish
    (the replaced generation kept as previous_1) and the run's records. In processes of their
    own: chdb serves one process per folder, and this test process holds another."""
    import shutil

    from olist_bi.runtime import faults

    assert point in faults.POINTS + faults.CLICKHOUSE_POINTS
    template, before, extra = served_once
    for part in ("home", "clickhouse"):  # a copy of what served the small drop: no process holds it now
        shutil.copytree(template / part, tmp_path / part, symlinks=True)
    env = _cli_env(tmp_path, ops_url)

    def olist(*args, **extra_env):
        return _olist(env, *args, **extra_env)

    def orders():
        return _orders_of(env)

    assert orders() == before
    killed = olist("etl", "run", "--source", str(extra), OLIST_FAULT=point)
    assert killed.returncode == -9, killed.stderr[-2000:]
    published = point != "before_rename"
    assert (orders() > before) is published

    again = olist("etl", "run", "--source", str(extra))
    assert again.returncode == 0, again.stderr[-2000:]
    said = again.stdout + again.stderr
    assert ("kept now as" in said) is (point == "clickhouse_exchanged")
    assert ("completed the records of run" in said) is published
    assert ("every file of the drop was loaded before" in said) is published  # its files are served already
    assert orders() > before
    rolled = olist("etl", "rollback")  # and the generation before is the first run's
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert orders() == before

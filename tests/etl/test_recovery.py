"""A damaged served warehouse: a corrupt generation file, or a link whose file is gone. Every
command says so in one line naming the file and the remedy; `etl run --full` rebuilds from
the kept drops; `etl rollback` still serves the previous file. Run as real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from olist_bi.engines.duckdb import warehouse
from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline
from tests.conftest import copy_home, fresh_database, make_settings

CLI = [str(Path(sys.executable).parent / "olist-bi")]


def cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": settings.database_url}
    return subprocess.run(CLI + list(args), env=env, capture_output=True, text=True, timeout=600)


def corrupt(path: Path) -> None:
    with path.open("r+b") as f:
        f.seek(0)
        f.write(os.urandom(4096) * 4)  # the header and the first blocks overwritten


def remove(path: Path) -> None:
    path.unlink()


@pytest.fixture(scope="module")
def twice(tmp_path_factory, small_drop, ops_url):
    """Two publishes (two drops), so there is a previous generation to roll back to; a database
    of its own, as one warehouse's operations store is (its loads are this warehouse's). Made
    once for the module: each test damages a copy of it (`served_twice`)."""
    folder = tmp_path_factory.mktemp("recovery")
    second = folder / "drop"
    shutil.copytree(small_drop, second)
    orders = second / "olist_orders_dataset.csv"
    orders.write_text(orders.read_text(encoding="utf-8").replace(",delivered,", ",shipped,", 3), encoding="utf-8")  # another checksum
    with fresh_database(ops_url, "olist_test_recovery") as url:
        settings = make_settings(folder / "home", url)
        pipeline.run(settings, small_drop)
        pipeline.run(settings, second)
        yield settings


@pytest.fixture
def served_twice(twice, tmp_path, ops_url):
    """A private copy of `twice`: its OLIST_HOME (generations, reader copies, secrets) and its
    operations database (CREATE DATABASE ... TEMPLATE), as the two runs left them."""
    with fresh_database(ops_url, "olist_test_recovery", template=twice.database_url.rpartition("/")[2]) as url:
        yield make_settings(copy_home(twice, tmp_path / "home"), url)


@pytest.mark.parametrize("damage", [corrupt, remove], ids=["corrupt-file", "missing-file"])
def test_a_damaged_warehouse_is_named_and_rebuilt(served_twice, small_drop, damage):
    settings = served_twice
    generation = publish.current(settings.warehouse_path)
    damage(generation)
    for args in (["semantic", "query", "--metric", "revenue"], ["etl", "run", "--source", str(small_drop)]):
        result = cli(settings, *args)
        assert result.returncode == 1, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert "Traceback" not in result.stderr and str(settings.warehouse_path) in lines[-1], result.stderr
        assert "olist-bi etl run --full" in lines[-1] and "olist-bi etl rollback" in lines[-1]
    rebuilt = cli(settings, "etl", "run", "--full")
    assert rebuilt.returncode == 0, rebuilt.stderr
    with warehouse.connect(settings.warehouse_path) as con:
        assert con.execute("select count(distinct run_id) from meta.loads").fetchone()[0] == 1  # the rebuild's own run
        assert con.execute("select count(*) from dim_customer").fetchone()[0] > 0
    answer = cli(settings, "semantic", "query", "--metric", "revenue")
    assert answer.returncode == 0 and "revenue" in answer.stdout


def test_rollback_serves_the_previous_file_when_the_current_one_is_corrupt(served_twice):
    settings = served_twice
    corrupt(publish.current(settings.warehouse_path))
    result = cli(settings, "etl", "rollback")
    assert result.returncode == 0, result.stderr
    with warehouse.connect(settings.warehouse_path) as con:  # the previous generation, readable
        assert con.execute("select count(*) from meta.loads").fetchone()[0] > 0

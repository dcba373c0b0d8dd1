"""The command line's error boundary: one clear line and a documented exit code for every
mistake, a traceback only when asked for, quiet on a closed pipe. Run as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from olist_bi.cli.errors import cut
from olist_bi.etl import pipeline
from tests.conftest import make_settings

CLI = [str(Path(sys.executable).parent / "olist-bi")]


def run(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        (
            {"OLIST_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"},
            ["etl", "status"],
            "no PostgreSQL answers there",
        ),  # nothing listens
        ({"OLIST_DATABASE_URL": "host=127.0.0.1 port=9 password=s3cret-value"}, ["audit", "tail"], "connection"),
        ({"OLIST_DATABASE_URL": "mysql://root:s3cret-value@127.0.0.1/x"}, ["etl", "status"], "must be a PostgreSQL URL"),
        ({"OLIST_DUCKDB_THREADS": "lots"}, ["etl", "status"], "OLIST_DUCKDB_THREADS must be a whole number"),
    ],
)
def test_a_mistake_is_one_line_and_exit_1(tmp_path, env, args, says):
    result = run(args, {"OLIST_HOME": str(tmp_path), **env})
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "s3cret-value" not in result.stderr + result.stdout


def test_a_database_missing_on_the_server_says_what_to_do(tmp_path, ops_url):
    from olist_bi.operations.postgres import with_database

    result = run(["etl", "status"], {"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": with_database(ops_url, "olist_no_such_db")})
    assert result.returncode == 1, result
    assert result.stderr.strip().endswith(
        'database "olist_no_such_db" does not exist (create that database, or name one that exists in OLIST_DATABASE_URL)'
    ), result.stderr


def test_debug_shows_the_traceback(tmp_path):
    env = {"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    assert "Traceback" in run(["--debug", "etl", "status"], env).stderr
    assert "Traceback" in run(["etl", "status"], {**env, "OLIST_DEBUG": "1"}).stderr


def test_a_directory_named_like_an_olist_file_is_one_line(tmp_path, small_drop, ops_url):
    drop = tmp_path / "drop"
    drop.mkdir()
    for f in small_drop.iterdir():
        (drop / f.name).symlink_to(f)
    (drop / "olist_orders_dataset.csv").unlink()
    (drop / "olist_orders_dataset.csv").mkdir()
    result = run(["etl", "run", "--source", str(drop)], {"OLIST_HOME": str(tmp_path / "home"), "OLIST_DATABASE_URL": ops_url})
    assert result.returncode == 1 and "Traceback" not in result.stderr and "olist_orders_dataset.csv" in result.stderr, result.stderr


def test_a_closed_pipe_ends_quietly(tmp_path, ops_url):
    env = {**os.environ, "OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": ops_url}
    export = subprocess.Popen(
        CLI + ["generate", "--scale", "0.01", "--out", str(tmp_path / "g")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    export.stdout.close()  # the reader is gone before the first line
    _, stderr = export.communicate(timeout=120)
    assert export.returncode == 0 and b"BrokenPipe" not in stderr and b"Traceback" not in stderr, stderr


def test_a_run_that_finds_another_running_exits_75(tmp_path, small_drop, ops_url):
    settings = make_settings(tmp_path / "home", ops_url)
    with psycopg.connect(ops_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (pipeline.ETL_LOCK,))  # as a run in progress holds it
        result = run(["etl", "run", "--source", str(small_drop)], {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": ops_url})
    assert result.returncode == 75 and result.stderr.strip().startswith("Busy: run") and pipeline.BUSY in result.stderr


def test_an_overlong_name_is_cut():
    name = "x" * 120_000
    message = cut(f"unknown metric {name!r}; known: revenue, orders")
    assert len(message) < 200 and "(120,003 characters)" in message and message.endswith("revenue, orders")


def test_an_unknown_metric_of_120000_characters_is_not_echoed_whole(tmp_path):
    result = run(["semantic", "query", "--metric", "m" * 120_000], {"OLIST_HOME": str(tmp_path)})
    assert result.returncode == 1 and len(result.stderr) < 3000 and "characters" in result.stderr, result.stderr[:300]


def test_runs_on_one_warehouse_folder_with_different_databases_do_not_overlap(tmp_path, small_drop, ops_url):
    """The folder lock: a second run on the same OLIST_HOME, recording in another database,
    finds the folder busy instead of deleting the first run's build file."""
    import fcntl

    settings = make_settings(tmp_path / "home", ops_url)
    settings.warehouse_path.parent.mkdir(parents=True)
    with open(settings.warehouse_path.with_name("warehouse.duckdb.lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a run of another process holds it
        result = run(["etl", "run", "--source", str(small_drop)], {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": ops_url})
    assert result.returncode == 75 and pipeline.BUSY in result.stderr
    assert (
        run(["etl", "run", "--source", str(small_drop)], {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": ops_url}).returncode == 0
    )


def test_a_broken_dashboard_spec_is_one_line_naming_the_file(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from olist_bi.dashboards import specs as module
    from olist_bi.cli import main

    (tmp_path / "datasets.yaml").write_text((module.HERE / "datasets.yaml").read_text())
    (tmp_path / "bad.yaml").write_text(
        "slug: bad\ntitle: Bad\ndescription: d\ncharts:\n  - {key: a, title: A, comma, viz: kpi, metrics: [orders]}\n"
    )
    monkeypatch.setattr(module, "HERE", tmp_path)
    module.dashboards.cache_clear()
    try:
        result = CliRunner().invoke(main, ["metabase", "build", "--out", str(tmp_path / "out")], env={"OLIST_HOME": str(tmp_path)})
    finally:
        module.dashboards.cache_clear()
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: bad.yaml: "), result.output

"""Shared fixtures: small generated drops, built once per test session; and the PostgreSQL the
tests use: the server at OLIST_TEST_DATABASE_URL (default: the machine's on 127.0.0.1:5432), or,
when nothing answers there, the platform's embedded PostgreSQL, started for the session."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest

from olist_bi.contract import load_raw
from olist_bi.generator import generate

SERVER_VARIABLE = "OLIST_TEST_DATABASE_URL"
MACHINE_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
_embedded = None  # the EmbeddedPostgres this session started, if it started one


def _answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def settle_server(given: str | None, machine: str = MACHINE_SERVER):
    """The tests' PostgreSQL: (its maintenance URL, the EmbeddedPostgres started for it or None).
    A given URL must answer; with none, the machine's server if it answers, else an embedded
    PostgreSQL in a temporary folder on a free port."""
    if given:
        if not _answers(given):
            raise pytest.UsageError(f"{SERVER_VARIABLE} names a PostgreSQL that does not answer: {given}")
        return given, None
    if _answers(machine):
        return machine, None
    import socket

    from olist_bi.operations.postgres import EmbeddedPostgres

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import secrets

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="olist-test-pg-")) / "pgdata", port, secrets.token_urlsafe(24))
    server.start()
    return server.admin_url, server


def stop_embedded(server) -> None:
    server.stop()
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)


def pytest_configure(config) -> None:
    """Settle the test server before any test module is imported (some read it at import)."""
    global _embedded
    os.environ[SERVER_VARIABLE], _embedded = settle_server(os.environ.get(SERVER_VARIABLE))


def pytest_report_header(config) -> str:
    if _embedded is not None:
        return f"PostgreSQL for the tests: embedded, on 127.0.0.1:{_embedded.port} (nothing answered at {MACHINE_SERVER})"
    return f"PostgreSQL for the tests: {os.environ.get(SERVER_VARIABLE)}"


def pytest_unconfigure(config) -> None:
    if _embedded is not None:
        stop_embedded(_embedded)


def server_url() -> str:
    """The test PostgreSQL's maintenance database (postgres), as a superuser."""
    return os.environ[SERVER_VARIABLE]


@pytest.fixture(scope="session")
def small_drop(tmp_path_factory) -> Path:
    """A scale-0.01 drop: enough rows for format and contract tests, generated in well under a second."""
    folder = tmp_path_factory.mktemp("drop-0.01")
    generate(folder, scale=0.01, seed=7)
    return folder


@pytest.fixture(scope="session")
def drop(tmp_path_factory) -> Path:
    """A scale-0.2 drop (about 20,000 orders): enough rows for shares and distributions."""
    folder = tmp_path_factory.mktemp("drop-0.2")
    generate(folder, scale=0.2, seed=7)
    return folder


@pytest.fixture(scope="session")
def raw(drop) -> duckdb.DuckDBPyConnection:
    """The scale-0.2 drop loaded through the source contract into schema `raw`."""
    con = duckdb.connect()
    load_raw(con, drop)
    yield con
    con.close()


@pytest.fixture
def drop_copy(small_drop, tmp_path) -> Path:
    """A private copy of the small drop that a test may break."""
    target = tmp_path / "drop"
    shutil.copytree(small_drop, target)
    return target


@pytest.fixture(scope="session")
def ops_url():
    """A fresh database on the test PostgreSQL, dropped at the end of the session."""
    with fresh_database(server_url(), "olist_test") as url:
        yield url


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str, template: str | None = None):
    """A new database on the server of `server_url`, dropped afterwards; yields its URL. With
    `template` (a database's name), a copy of that database (CREATE DATABASE ... TEMPLATE)."""
    import uuid

    import psycopg

    admin = server_url.rpartition("/")[0] + "/postgres"
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        if template:  # PostgreSQL copies a database no session is connected to
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (template,))
            conn.execute(f"create database {name} template {template}")
        else:
            conn.execute(f"create database {name}")
    try:
        yield server_url.rpartition("/")[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


def make_settings(home: Path, ops_url: str, **extra):
    from olist_bi.settings import Settings

    env = {"OLIST_HOME": str(home), "OLIST_DATABASE_URL": ops_url, "OLIST_DUCKDB_MEMORY_LIMIT": "1GB"}
    env.update({k.upper(): str(v) for k, v in extra.items()})
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def warehouse(drop, ops_url, tmp_path_factory):
    """The scale-0.2 drop loaded once: (settings, run result). Read it, do not change it."""
    from olist_bi.etl import pipeline

    settings = make_settings(tmp_path_factory.mktemp("warehouse-home"), ops_url)
    result = pipeline.run(settings, drop)
    return settings, result


@pytest.fixture(scope="session")
def small_warehouse(small_drop, ops_url, tmp_path_factory):
    """The small drop loaded once on a fresh OLIST_HOME: (settings, run result). Read it, do not
    change it: a test that needs a served warehouse before the run it tests takes a private
    copy of this home (`copy_home`) instead of loading the small drop again."""
    from olist_bi.etl import pipeline

    settings = make_settings(tmp_path_factory.mktemp("small-warehouse-home"), ops_url)
    result = pipeline.run(settings, small_drop)
    assert result.status == "succeeded", result.message
    return settings, result


def copy_home(source, home: Path) -> Path:
    """A private copy of the OLIST_HOME of `source` (settings) at `home`: the served generation
    and its links, the reader copies, the secrets and the audit checkpoints, byte for byte, so
    that the warehouse there is what the runs on `source` left (the links are relative: they
    keep pointing inside the copy). The operations database is the shared one, as it is for
    every test home."""
    shutil.copytree(source.home, home, symlinks=True, dirs_exist_ok=True)
    return home


_FITS: dict = {}  # forecast.fit's answers of this session, by their input (reuse_forecast_fits)


def _fit_key(history, args, kwargs):
    import pandas as pd

    if not isinstance(history, pd.Series):
        return None
    try:
        values = history.astype("float64").to_numpy()
    except (TypeError, ValueError):
        return None
    index = tuple(str(i) for i in history.index)
    return (
        repr(args),
        repr(sorted(kwargs.items())),
        history.name,
        str(history.dtype),
        getattr(history.index, "freqstr", None),
        index,
        values.tobytes(),
    )


@pytest.fixture
def reuse_forecast_fits(monkeypatch):
    """For modules whose tests run the whole pipeline but check something else than the
    forecast (the quality rules, the bad-file corpus, publishing, the reader copies; each opts
    in with `pytestmark`): `forecast.fit` (statsmodels' ETS fit, about three quarters of a
    small drop's run) runs for real once per distinct input in the session, and a later call
    with the same series, months and arguments gets a copy of that answer. The fit is a pure
    function of those, so every mart is what a fresh fit builds; the platform keeps the same
    cache itself across runs (forecast.Fits). The forecast's own tests (tests/etl/test_forecast.py,
    test_increment.py, test_pipeline.py) do not use this: there every fit runs."""
    import copy

    from olist_bi.etl import forecast

    real = forecast.fit

    def fit(history, *args, **kwargs):
        key = _fit_key(history, args, kwargs)
        if key is None:
            return real(history, *args, **kwargs)
        if key not in _FITS:
            _FITS[key] = real(history, *args, **kwargs)
        return copy.deepcopy(_FITS[key])

    monkeypatch.setattr(forecast, "fit", fit)


def ts(value: str):
    """A source timestamp as a datetime (None for an empty field), parsed without the warehouse."""
    import datetime as dt

    return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S") if value else None


@pytest.fixture(scope="session")
def source_rows(drop):
    """The scale-0.2 drop's order files read with Python's csv module, sharing no code with
    the pipeline: the independent side of the correctness tests. Treat the rows as read-only."""
    import csv

    def read(name):
        with (drop / name).open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    return {
        "orders": read("olist_orders_dataset.csv"),
        "items": read("olist_order_items_dataset.csv"),
        "payments": read("olist_order_payments_dataset.csv"),
        "reviews": read("olist_order_reviews_dataset.csv"),
        "customers": read("olist_customers_dataset.csv"),
    }


@pytest.fixture(scope="session")
def reference(drop):
    """The scale-0.2 drop read by tests/reference.py: independent answers to dashboard questions."""
    from tests import reference

    return reference.load(drop)


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory) -> str:
    """The test session's embedded ClickHouse (chdb allows one folder per process): every
    ClickHouse test uses it, each with its own database (OLIST_CLICKHOUSE_DATABASE)."""
    pytest.importorskip("chdb", reason="the ClickHouse engine's tests need chdb: pip install -e '.[clickhouse]'")
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


def clickhouse_settings(home: Path, ops_url: str, clickhouse_url: str, database: str, **extra):
    return make_settings(
        home, ops_url, olist_warehouse_engine="clickhouse", olist_clickhouse_url=clickhouse_url, olist_clickhouse_database=database, **extra
    )


def clickhouse_env(settings) -> dict[str, str]:
    """The environment of a command (the CLI) on the ClickHouse warehouse of `settings`."""
    return {
        "OLIST_HOME": str(settings.home),
        "OLIST_DATABASE_URL": settings.database_url,
        "OLIST_WAREHOUSE_ENGINE": "clickhouse",
        "OLIST_CLICKHOUSE_URL": settings.clickhouse_url,
        "OLIST_CLICKHOUSE_DATABASE": settings.clickhouse_database,
    }


@pytest.fixture(scope="session")
def clickhouse_warehouse(drop, ops_url, clickhouse_url, tmp_path_factory):
    """The scale-0.2 drop loaded once with OLIST_WAREHOUSE_ENGINE=clickhouse: (settings, run
    result). Read it, do not change it."""
    from olist_bi.etl import pipeline

    settings = clickhouse_settings(tmp_path_factory.mktemp("clickhouse-home"), ops_url, clickhouse_url, "olist_wh")
    result = pipeline.run(settings, drop)
    return settings, result


class ClickHouseReader:
    """DuckDB's `execute(sql, params).fetchone()/fetchall()` over the served ClickHouse
    warehouse: the DuckDB SQL of a test runs there as the semantic layer's queries do."""

    def __init__(self, settings):
        self.settings = settings

    def execute(self, sql, params=()):
        from olist_bi.engines.clickhouse import warehouse as clickhouse

        return _Rows(clickhouse.query(self.settings, sql, list(params)))


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return self.rows


@pytest.fixture(scope="session", params=["duckdb", "clickhouse"])
def engine_warehouse(request):
    """(engine, settings, reader) for the scale-0.2 drop's warehouse on each engine; `reader`
    answers DuckDB SQL with `execute(sql, params)`."""
    if request.param == "duckdb":
        settings, _ = request.getfixturevalue("warehouse")
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        yield "duckdb", settings, con
        con.close()
    else:
        settings, _ = request.getfixturevalue("clickhouse_warehouse")
        yield "clickhouse", settings, ClickHouseReader(settings)

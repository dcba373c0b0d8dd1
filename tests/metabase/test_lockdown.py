"""Metabase's warehouse connection is locked down like Superset's: the nine SQL Lab escapes
are refused when an analyst runs them in Metabase's native editor.

No Metabase runs here: the queries go through the stand-in, whose DuckDB side is a model of
the pinned DuckDB driver (tests/metabase/driver.py, transcribed from its source) on real
DuckDB, in a process of its own. docs/metabase.md has the checklist for a real Metabase."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import duckdb
import pytest
import requests

from olist_bi.bi.metabase.assets import ASSETS_DIR
from olist_bi.bi.metabase import lockdown
from olist_bi.bi.metabase.provision import provision
from tests.conftest import make_settings
from tests.escapes import ESCAPE_FILE, ESCAPES, LOCKED
from tests.metabase import driver
from tests.metabase.standin import MetabaseStandIn

ASSETS = ASSETS_DIR


@pytest.fixture(scope="module")
def metabase(warehouse, ops_url, tmp_path_factory):
    served, _ = warehouse
    settings = make_settings(tmp_path_factory.mktemp("home"), ops_url, olist_warehouse_path=served.warehouse_path)
    server = MetabaseStandIn(initializing=0, sync_polls=0)  # up at once: test_provision tests the waiting
    server.start()
    report = provision(settings, server.url, ASSETS)
    answer = requests.post(
        f"{server.url}/api/session/",
        json={"username": "analyst@olist-bi.local", "password": report.users["analyst@olist-bi.local"]},
        timeout=5,
    )
    yield server, report.ids["database:warehouse"], {"X-Metabase-Session": answer.json()["id"]}
    server.stop()


def native(server: MetabaseStandIn, database: int, headers: dict, sql: str) -> dict:
    body = {"type": "native", "database": database, "native": {"query": sql}}
    return requests.post(f"{server.url}/api/dataset/", json=body, headers=headers, timeout=30).json()


@pytest.mark.parametrize("sql", ESCAPES + LOCKED)
def test_an_analyst_cannot_escape_the_warehouse_in_metabase(metabase, sql):
    server, database, analyst = metabase
    # Two queries first, so the pool's second connection (whose init_sql ends at "locked") runs them too.
    for _ in range(2):
        assert native(server, database, analyst, "select count(*) from dim_customer")["status"] == "completed"
    refused = native(server, database, analyst, sql)
    assert refused["status"] == "failed", refused
    assert any(word in refused["error"] for word in ("disabled", "locked", "read-only", "Cannot change", "does not exist")), refused[
        "error"
    ]
    after = native(server, database, analyst, "select count(*) from dim_customer")
    assert after["status"] == "completed" and after["data"]["rows"][0][0] > 0
    assert not os.path.exists(ESCAPE_FILE)
    assert server.violations == []


@pytest.mark.parametrize(
    "sql",
    [
        "select * from raw.customers",
        "select * from quarantine.rejected_rows",
        "select * from stg_orders",
        "select count(*) from duckdb_tables() where schema_name in ('raw', 'quarantine')",
    ],
)
def test_metabase_reads_the_reader_copy_with_no_raw_quarantine_or_staging(metabase, sql):
    """Metabase's warehouse is the reader copy (etl/readers.py): the tables an analyst could
    read raw customers from are not in it."""
    server, database, analyst = metabase
    answer = native(server, database, analyst, sql)
    if answer["status"] == "completed":
        assert answer["data"]["rows"] == [[0]], answer["data"]["rows"]
    else:
        assert "does not exist" in answer["error"], answer["error"]


def _connections(path: Path, details: dict, count: int = 2) -> list[str]:
    """Open `count` pooled connections as the driver does and run read_csv on each; their errors."""
    props = driver.properties(driver.effective_details(details, 1))
    config, zone = driver.duckdb_config(props)
    outcomes, held = [], []
    for _ in range(count):
        connection = duckdb.connect(str(path), config=config)
        held.append(connection)
        if zone and len(held) == 1:
            connection.execute(f"SET TimeZone = '{zone}'")
        try:
            if details.get("init_sql"):
                try:
                    connection.execute(details["init_sql"])
                except duckdb.Error as e:
                    if not driver.already_done(str(e)):
                        raise
            connection.execute("select * from read_csv('/etc/hostname')").fetchall()
            outcomes.append("read a file")
        except duckdb.Error as e:
            outcomes.append(str(e))
    for connection in held:
        connection.close()
    return outcomes


@pytest.fixture
def warehouse_file(tmp_path):
    """An empty catalog file and, in a generations folder beside it, a generation."""
    folder = tmp_path / "w.duckdb.generations"
    folder.mkdir()
    with duckdb.connect(str(folder / "w-1.duckdb")) as con:
        con.execute("create table t as select 1 as x")
    path = tmp_path / "w.metabase.duckdb"
    duckdb.connect(str(path)).close()
    return path


def _details(catalog: Path, detach=()) -> dict:
    folder = catalog.parent / "w.duckdb.generations"
    return lockdown.details(str(catalog), str(folder / "w-1.duckdb"), str(folder), detach)


def test_without_the_lockdown_the_driver_reads_any_file(warehouse_file):
    """What the driver gives a read-only connection by itself: files are open to native SQL."""
    plain = {"database_file": str(warehouse_file), "read_only": True}
    assert _connections(warehouse_file, plain) == ["read a file", "read a file"]
    assert "disabled" in _connections(warehouse_file, _details(warehouse_file))[1]


def test_later_connections_skip_the_settings_of_a_locked_instance(warehouse_file):
    details = _details(warehouse_file)
    first, second = _connections(warehouse_file, details)
    assert "disabled by configuration" in first and "disabled by configuration" in second
    unmarked = {**details, "init_sql": details["init_sql"].replace(lockdown.SKIP_WHEN_LOCKED + ";\n", "")}  # without the check
    first, second = _connections(warehouse_file, unmarked)
    assert "disabled by configuration" in first and "configuration has been locked" in second  # every later connection would fail


# What init_sql began with until December 2026: a marker secret, whose second creation fails
# with "... already exists" (taken by the driver as "already done").
OLD_MARKER = "CREATE SECRET olist_lockdown_attached (TYPE http)"


def _interleavings(a: int, b: int):
    """Every order of two lists' steps (a of one, b of the other) that keeps each list's own order."""
    for positions in itertools.combinations(range(a + b), a):
        chosen = set(positions)
        yield ["a" if i in chosen else "b" for i in range(a + b)]


def _race(statements: list[str]) -> tuple[int, list[str]]:
    """Two connections check out of a fresh instance at once and run `statements` (their
    init_sql) interleaved in every possible order, then each its query, as the driver does: a
    statement error the driver takes as "already done" ends the list and the query runs; any
    other fails the connection. (how many orders let a query run on an unlocked instance, the
    errors that failed a connection)"""
    unlocked, failures = 0, []
    for order in _interleavings(len(statements), len(statements)):
        first = duckdb.connect()
        connections = {"a": first, "b": first.cursor()}  # one DuckDB instance, two connections
        step = {"a": 0, "b": 0}
        done: dict[str, str] = {}  # connection -> "query" or its failure
        for name in order:
            if name in done:
                continue
            try:
                connections[name].execute(statements[step[name]])
                step[name] += 1
                if step[name] < len(statements):
                    continue
            except duckdb.Error as e:
                if not driver.already_done(str(e)):
                    done[name] = str(e)
                    failures.append(str(e))
                    continue
            done[name] = "query"  # its list ran, or ended as "already done": the query runs now
            if not connections[name].execute("select current_setting('lock_configuration')").fetchone()[0]:
                unlocked += 1
            if statements[0].startswith("ATTACH"):  # and it reads the generation attached
                assert connections[name].execute("select x from t").fetchall() == [(1,)], order
        assert "query" in done.values(), order  # one of the two always gets through
        first.close()
    return unlocked, failures


def test_no_interleaving_of_two_connections_lets_a_query_run_unlocked(warehouse_file):
    """On a fresh instance two checkouts may run their init_sql at the same time. In every
    interleaving of their statements, a connection that reaches its query finds the instance
    locked and reads the generation; the one that loses the race fails with the lock's own
    error, never silently. Steps of several statements: the attachments (they change no
    setting), and the refusals after `allowed_directories` (each fails alike after the other's lock)."""
    folder = warehouse_file.parent / "w.duckdb.generations"
    attach = ";\n".join(lockdown.attach_statements(str(folder / "w-1.duckdb"), ["g_w_0"]))
    check, allowed, *refusals, lock = lockdown.lock_statements(str(folder))
    assert check == lockdown.SKIP_WHEN_LOCKED and allowed.startswith("SET allowed_directories") and lock == "SET lock_configuration = true"
    locking = [check, allowed, ";\n".join(refusals), lock]
    unlocked, failures = _race([attach, *locking])
    assert unlocked == 0
    assert failures and all("configuration has been locked" in f or "Cannot change allowed_directories" in f for f in failures)
    # the marker it replaces let the second connection query before the first had locked
    old_unlocked, _ = _race([OLD_MARKER, *locking[1:]])
    assert old_unlocked > 0


def test_the_driver_gets_limits_a_writable_temp_directory_and_no_internal_keys(warehouse_file):
    props = driver.properties(driver.effective_details(_details(warehouse_file), 7))
    assert props["temp_directory"] == lockdown.TEMP_DIRECTORY  # not beside the file, in the read-only mount
    assert props["threads"] == "2" and props["memory_limit"] == "1GB" and props["duckdb.read_only"] == "true"
    assert not any("pool" in k or "/" in k for k in props)
    # The older driver 1.4.4.0 forwards Metabase 0.63's internal key, and DuckDB refuses to open.
    older = driver.properties(driver.effective_details(_details(warehouse_file), 7), older_driver=True)
    config, _ = driver.duckdb_config(older)
    with pytest.raises(duckdb.Error, match="not recognized: connection-pool-type"):
        duckdb.connect(str(warehouse_file), config=config)


def test_the_driver_model_runs_the_duckdb_release_of_the_pinned_jdbc_driver():
    """The stand-in's Metabase runs the DuckDB of duckdb_jdbc 1.5.5.0, not the project's 1.4.4:
    the lock-down and every question are tried on the engine Metabase would run."""
    import re

    dockerfile = Path(__file__).resolve().parents[2] / "docker/metabase/Dockerfile"
    pinned = re.search(r"^ARG DUCKDB_VERSION=(\S+)$", dockerfile.read_text(), re.M).group(1)
    server = driver.Server()
    try:
        assert server.version() == pinned != duckdb.__version__
    finally:
        server.stop()


@pytest.mark.parametrize(
    "made",
    [
        "create temp table fact_deliveries as select 1 as order_id",
        "create temp view fact_deliveries as select 1 as order_id",
        "create temp macro nullif(a, b) as 7",
        "create temp sequence s",
        "create temp type mood as enum ('a')",
    ],
)
def test_a_connection_holding_any_kind_of_temporary_object_refuses_its_query(warehouse_file, made):
    """Each kind of temporary object DuckDB makes trips the check of every checkout; a clean connection passes it."""
    with duckdb.connect(str(warehouse_file), config={"access_mode": "READ_ONLY"}) as connection:
        connection.execute(lockdown.REFUSE_TEMPORARY_OBJECTS).fetchall()
        connection.execute(made)
        with pytest.raises(duckdb.Error, match="holds temporary objects a query made"):
            connection.execute(lockdown.REFUSE_TEMPORARY_OBJECTS).fetchall()

"""The warehouse connection provider: one open, locked-down database per generation, fresh
after every publish, old generations closed after their last query."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from olist_bi.engines.duckdb import warehouse
from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline
from tests.conftest import copy_home, make_settings
from tests.escapes import ESCAPE_FILE, ESCAPES, LOCKED

# What these check is publishing under readers, not the revenue forecast: the runs in this
# process reuse its fits by input (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")


def generation(served, marker, base=None):
    """Publish a small warehouse whose table `marker` holds `marker`; return the generation."""
    built = publish.building_path(served, marker)
    with duckdb.connect(str(built)) as con:
        con.execute("create table marker as select ? as n, range as r from range(1000)", [marker])
    return publish.publish(built, served)


@pytest.fixture
def provider():
    p = warehouse.Provider()
    yield p
    p.close_all()


def test_a_lease_reads_the_current_generation_and_never_opens_it_twice(tmp_path, provider):
    served = tmp_path / "w.duckdb"
    first = generation(served, 1)
    a, b = provider.lease(served), provider.lease(served)
    assert a.generation == b.generation == first.resolve()
    assert provider.open_generations(served) == {str(served): [(first.resolve(), 2)]}
    a.release(), b.release()
    assert provider.open_generations(served) == {str(served): [(first.resolve(), 0)]}  # the current one stays open


def test_after_a_publish_the_next_query_reads_the_new_generation_and_the_old_closes_after_its_last(tmp_path, provider):
    served = tmp_path / "w.duckdb"
    old = generation(served, 1)
    in_flight = provider.lease(served)
    new = generation(served, 2)
    nxt = provider.lease(served)
    assert nxt.connection.execute("select max(n) from marker").fetchone() == (2,)
    assert in_flight.connection.execute("select max(n) from marker").fetchone() == (1,)  # finishes on its own
    assert [g for g, _ in provider.open_generations(served)[str(served)]] == [old.resolve(), new.resolve()]
    in_flight.release()
    assert [g for g, _ in provider.open_generations(served)[str(served)]] == [new.resolve()]
    nxt.release()


def test_an_idle_old_generation_is_closed_by_the_sweep(tmp_path, provider):
    served = tmp_path / "w.duckdb"
    generation(served, 1)
    provider.lease(served).release()
    new = generation(served, 2)
    provider.sweep()  # no query since the publish: the sweep alone closes the old one
    assert provider.open_generations(served) == {str(served): []}
    with warehouse.connect(served) as con:
        assert con.execute("select max(n) from marker").fetchone() == (2,)
    assert publish.current(served) == new.resolve()


@pytest.mark.parametrize("sql", ESCAPES + LOCKED)
def test_every_connection_is_locked_down(tmp_path, provider, sql):
    served = tmp_path / "w.duckdb"
    generation(served, 1)
    held = provider.lease(served)
    try:
        with pytest.raises(duckdb.Error):
            held.connection.execute(sql)
        assert held.connection.execute("select count(*) from marker").fetchone() == (1000,)
    finally:
        held.release()
    assert not os.path.exists(ESCAPE_FILE)


def test_a_missing_warehouse_is_a_clear_error(tmp_path, provider):
    with pytest.raises(warehouse.WarehouseMissing, match="load a drop first"):
        provider.lease(tmp_path / "none.duckdb")


# Four threads query without pause, so the process always has a query in flight: the case
# where "wait for connections to close" never happens. Each query records when it started
# and which run's data it read.
READERS = textwrap.dedent(
    """
    import json, sys, threading, time
    from olist_bi.engines.duckdb import warehouse
    warehouse.SWEEP_SECONDS = 0.5
    served, stop = sys.argv[1], sys.argv[2]
    seen, errors = [], []
    def loop():
        import os
        while not os.path.exists(stop):
            began = time.monotonic()
            try:
                with warehouse.connect(served) as con:
                    run = con.execute("select max(run_id) from meta.loads").fetchone()[0]
                    con.execute("select count(*) from fact_deliveries join dim_customer using (customer_unique_id)").fetchone()
                seen.append((began, run))
            except Exception as e:
                errors.append(repr(e))
    threads = [threading.Thread(target=loop) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    time.sleep(1.5)  # two sweeps
    still_open = [str(g) for gens in warehouse.PROVIDER.open_generations().values() for g, _ in gens]
    print(json.dumps({"seen": seen, "errors": errors[:5], "error_count": len(errors), "open": still_open}))
    """
)


def test_no_answer_from_the_previous_warehouse_once_a_publish_returns(ops_url, small_warehouse, drop, tmp_path):
    settings = make_settings(copy_home(small_warehouse[0], tmp_path / "home"), ops_url)  # served: the small drop, as a first run leaves it
    served = settings.warehouse_path
    stop = tmp_path / "stop"
    readers = subprocess.Popen([sys.executable, "-c", READERS, str(served), str(stop)], stdout=subprocess.PIPE, text=True)
    published = []  # (monotonic time the publish returned, run id it serves)
    try:
        time.sleep(0.5)
        result = pipeline.run(settings, drop)  # a real run, under the readers
        published.append((time.monotonic(), result.run_id))
        for i in range(8):  # and quick publishes: copies of the served file marked with a new run id
            built = publish.building_path(served, 1000 + i)
            shutil.copyfile(publish.current(served), built)
            with duckdb.connect(str(built)) as con:
                con.execute("insert into meta.loads (run_id) values (?)", [1000 + i])
            publish.publish(built, served)
            published.append((time.monotonic(), 1000 + i))
            time.sleep(0.2)
    finally:
        stop.touch()
        out, _ = readers.communicate(timeout=120)
    report = json.loads(out)
    assert report["error_count"] == 0, report["errors"]
    assert len(report["seen"]) > 100
    stale = [(began, run, expected) for began, run in report["seen"] for at, expected in published if began > at and run < expected]
    assert stale == [], f"{len(stale)} answers from an older warehouse after its publish returned"
    # every old generation was closed once its last query ended; only the served one is open
    assert report["open"] == [str(publish.current(served))]

"""Publishing is atomic: readers never see an error or a half-built table; a killed run
leaves the served file intact and is closed at the next start."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline
from tests.conftest import copy_home

# What these check is publishing under readers, not the revenue forecast: the runs in this
# process reuse its fits by input (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_keeps_the_two_previous_files(tmp_path):
    served = tmp_path / "w.duckdb"
    for i in range(4):
        built = publish.building_path(served, i)
        built.write_text(f"version {i}")
        os.utime(built, (time.time() + i, time.time() + i))
        publish.publish(built, served)
    assert served.read_text() == "version 3"
    assert [p.read_text() for p in publish.versions(served)] == ["version 2", "version 1"]
    assert publish.rollback(served).name.startswith("w-")
    assert served.read_text() == "version 2"
    publish.rollback(served)
    assert served.read_text() == "version 1"
    with pytest.raises(publish.PublishError, match="no previous warehouse in"):
        publish.rollback(served)


def test_each_publish_is_its_own_file_and_the_served_path_links_to_it(tmp_path):
    served = tmp_path / "w.duckdb"
    generations = []
    for i in range(3):
        built = publish.building_path(served, i)
        built.write_text(f"version {i}")
        generations.append(publish.publish(built, served))
    assert len(set(generations)) == 3
    assert served.is_symlink() and not os.path.isabs(os.readlink(served))  # relative: survives a mount elsewhere
    assert publish.current(served) == generations[-1].resolve()
    assert all(g.parent == publish.generations_dir(served) for g in generations)
    publish.rollback(served)
    assert not generations[-1].exists()  # a rollback undoes the publish: its file goes
    again = publish.building_path(served, 9)
    again.write_text("version 9")
    assert publish.publish(again, served) not in generations  # names are never given twice


def test_a_plain_served_file_and_its_previous_copies_are_adopted(tmp_path):
    served = tmp_path / "w.duckdb"
    served.write_text("plain")
    (tmp_path / "w.duckdb.previous").mkdir()
    (tmp_path / "w.duckdb.previous" / "w-20260101T000000000000.duckdb").write_text("older")
    built = publish.building_path(served, 1)
    built.write_text("new")
    publish.publish(built, served)
    assert served.read_text() == "new"
    assert [p.read_text() for p in publish.versions(served)] == ["plain", "older"]
    assert not (tmp_path / "w.duckdb.previous").exists()
    publish.rollback(served)
    assert served.read_text() == "plain"


def test_abandoned_builds_are_removed(tmp_path):
    served = tmp_path / "w.duckdb"
    publish.building_path(served, 7).write_text("half")
    assert publish.remove_abandoned_builds(served) == [publish.building_path(served, 7)]
    assert not publish.building_path(served, 7).exists()


READER = textwrap.dedent(
    """
    import sys, time, duckdb
    path, stop, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    queries = errors = 0
    deadline = time.time() + seconds
    import os
    while time.time() < deadline and not os.path.exists(stop):
        try:
            with duckdb.connect(path, read_only=True) as con:
                orders, deliveries, revenue = con.execute(
                    "select (select count(*) from stg_orders), (select count(*) from fact_deliveries),"
                    " (select count(*) from mart_monthly_revenue)").fetchone()
                if orders != deliveries or revenue == 0:
                    raise RuntimeError(f"half-built: {orders} orders, {deliveries} deliveries, {revenue} months")
            queries += 1
        except Exception as e:
            errors += 1
            print("ERROR", repr(e), flush=True)
    print("QUERIES", queries, "ERRORS", errors, flush=True)
    """
)


def test_a_reader_in_a_loop_never_fails_during_publishes(settings, small_warehouse, drop, tmp_path):
    copy_home(small_warehouse[0], settings.home)  # served: the small drop, as a first run leaves it
    served = settings.warehouse_path
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(served), str(stop), "60"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert pipeline.run(settings, drop).status == "succeeded"  # a real run, published under the reader
        for _ in range(10):  # and quick swaps back and forth
            publish.rollback(served)
            copy = publish.building_path(served, 999)
            shutil.copyfile(publish.versions(served)[0] if publish.versions(served) else served, copy)
            publish.publish(copy, served)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "QUERIES" and int(last[1]) > 5, out
    assert int(last[3]) == 0, out


def test_a_killed_run_leaves_the_served_file_and_is_closed_next_time(settings, small_warehouse, drop, ops_url):
    copy_home(small_warehouse[0], settings.home)  # served: the small drop, as a first run leaves it
    served = settings.warehouse_path
    before = digest(served)
    env = {**os.environ, "OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": ops_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "olist_bi.cli", "etl", "run", "--source", str(drop)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while not list(served.parent.glob("*.building-*")):
        assert process.poll() is None and time.time() < deadline, "the run ended before it started building"
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert digest(served) == before
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        running = conn.execute("select run_id from pipeline_runs where status = 'running'").fetchall()
    assert len(running) == 1
    messages = []
    result = pipeline.run(settings, drop, progress=messages.append)
    assert result.status == "succeeded"
    assert any(f"closed run {running[0]['run_id']}" in m for m in messages)
    with psycopg.connect(ops_url, row_factory=dict_row) as conn:
        closed = conn.execute("select status, error from pipeline_runs where run_id = %s", (running[0]["run_id"],)).fetchone()
    assert closed["status"] == "failed" and "abandoned" in closed["error"]
    assert not list(served.parent.glob("*.building-*"))


_WATCH: dict = {}


def _audit(event: str, args) -> None:
    """Before every file-system change the process makes while `_WATCH` is set, record whether
    the served path resolves to a whole generation (the old one or the new one)."""
    if _WATCH and event in ("os.rename", "os.remove", "os.symlink", "os.link", "os.rmdir", "os.truncate", "open"):
        if event == "open" and not (len(args) > 1 and isinstance(args[1], str) and any(m in args[1] for m in "wax+")):
            return
        served = _WATCH["served"]
        state = digest(served) if served.exists() else None
        _WATCH["seen"].append((event, str(args[0]), state))


sys.addaudithook(_audit)


@pytest.mark.parametrize("layout", ["link", "plain-file"])
def test_the_served_path_is_whole_before_every_file_system_change_of_a_publish(tmp_path, layout):
    """Deterministic: every step of a publish (and of a rollback) is watched, not raced."""
    served = tmp_path / "warehouse.duckdb"
    first = publish.building_path(served, 1)
    first.write_bytes(b"first generation " * 1000)
    if layout == "link":
        publish.publish(first, served)
    else:
        os.replace(first, served)  # the layout before generations: a plain file
    old = digest(served)
    built = publish.building_path(served, 2)
    built.write_bytes(b"second generation " * 2000)
    new = digest(built)
    _WATCH.update(served=served, seen=[])
    try:
        publish.publish(built, served)
        after_publish = list(_WATCH["seen"])
        _WATCH["seen"].clear()
        publish.rollback(served)
        after_rollback = list(_WATCH["seen"])
    finally:
        _WATCH.clear()
    assert after_publish and after_rollback  # the hook saw the steps
    assert all(state in (old, new) for _, _, state in after_publish), after_publish  # never missing, never partial
    assert all(state in (old, new) for _, _, state in after_rollback), after_rollback
    replaces_served = [(e, p) for e, p, _ in after_publish if e == "os.rename" and p.startswith(str(served) + ".link-")]
    assert replaces_served, "the served path is switched by renaming a new link over it"
    assert digest(served) == old  # rolled back

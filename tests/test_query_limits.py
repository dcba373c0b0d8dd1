"""Every reader's query stops at its limits (platform/engines/duckdb/warehouse.py): interrupted from outside
at its deadline, its core freed; an answer over the byte cap refused; nothing spilled where a
query could write. Superset's side: tests/superset/test_sqllab.py."""

from __future__ import annotations

import resource
import threading
import time

import duckdb
import pytest

from olist_bi import api
from olist_bi.engines.duckdb import warehouse as wh
from olist_bi.engines.duckdb import publish

ENDLESS = "select sum(hash(i)) from range(1000000000000) t(i)"  # hours of work on one core


@pytest.fixture
def served(tmp_path):
    built = publish.building_path(tmp_path / "w.duckdb", 1)
    with duckdb.connect(str(built)) as con:
        con.execute("create table t as select range as i, repeat('x', 100) as text from range(100000)")
    publish.publish(built, tmp_path / "w.duckdb")
    return tmp_path / "w.duckdb"


@pytest.fixture
def provider():
    p = wh.Provider()
    yield p
    p.close_all()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_a_query_past_its_limit_is_interrupted_and_its_core_freed(served, provider):
    held = provider.lease(served, query_limits=wh.Limits(timeout_seconds=1))
    held.arm()
    began = time.monotonic()
    with pytest.raises(wh.QueryTimeout, match=r"time limit of 1 s \(OLIST_QUERY_TIMEOUT_SECONDS\)"):
        with held.stopping():
            held.connection.execute(ENDLESS)
    assert time.monotonic() - began < 1 + 5
    before = cpu_seconds()
    time.sleep(1)
    assert cpu_seconds() - before < 0.3  # nothing keeps computing once the client was told
    held.release()


def test_connect_raises_the_timeout_and_a_quick_query_is_untouched(served, provider, monkeypatch):
    monkeypatch.setattr(wh, "PROVIDER", provider)
    limits = wh.Limits(timeout_seconds=1)
    with wh.connect(served, query_limits=limits) as con:
        assert con.execute("select count(*) from t").fetchone()[0] == 100_000
    with pytest.raises(wh.QueryTimeout):
        with wh.connect(served, query_limits=limits) as con:
            con.execute(ENDLESS)
    assert [leases for _, leases in provider.open_generations(served)[str(served)]] == [0]  # the lease ended


def test_a_lease_without_limits_is_never_interrupted(served, provider):
    held = provider.lease(served)
    timer = threading.Timer(2, held.connection.interrupt)  # only this test's own interrupt stops it
    timer.start()
    began = time.monotonic()
    with pytest.raises(duckdb.InterruptException) as caught:
        held.connection.execute(ENDLESS)
    assert time.monotonic() - began > 1.5 and not isinstance(caught.value, wh.QueryTimeout)
    held.release()


def test_an_answer_over_the_byte_cap_is_refused_before_it_is_all_fetched(served, provider):
    held = provider.lease(served)
    result = held.connection.execute("select * from t")
    with pytest.raises(wh.ResultTooLarge, match=r"more than 1 MB .*OLIST_QUERY_MAX_RESULT_MB"):
        wh.fetch_capped(result, 1_000_000, batch=1000)
    rows = wh.fetch_capped(held.connection.execute("select * from t limit 100"), 1_000_000)
    assert len(rows) == 100  # about 12 kB: under the cap
    held.release()


def test_the_byte_estimate_is_close_to_the_text_it_holds():
    rows = [(i, "x" * 100, None) for i in range(5000)]
    assert 100 * 5000 < wh.estimated_bytes(rows) < 2 * 130 * 5000


def test_a_reader_has_no_folder_to_write_to(served, provider):
    held = provider.lease(served)
    assert held.connection.execute("select current_setting('temp_directory')").fetchone()[0] == ""
    with pytest.raises(duckdb.Error):
        held.connection.execute(f"copy (select 1) to '{served.parent}/x.csv'")
    with pytest.raises(duckdb.Error):
        held.connection.execute("set temp_directory = '/tmp'")
    held.release()


def test_the_python_api_answers_within_the_cap_and_names_it_when_over(warehouse, monkeypatch):
    settings, _ = warehouse
    monkeypatch.setenv("OLIST_HOME", str(settings.home))
    frame = api.query(["orders"], by=["customer_state"], warehouse_path=settings.warehouse_path)
    assert len(frame) > 10
    monkeypatch.setenv("OLIST_QUERY_MAX_RESULT_MB", "0.0001")  # 100 bytes
    with pytest.raises(wh.ResultTooLarge, match="OLIST_QUERY_MAX_RESULT_MB"):
        api.query(["orders"], by=["customer_state"], warehouse_path=settings.warehouse_path)


def test_clickhouse_readers_stop_at_the_same_limits(clickhouse_warehouse):
    """On OLIST_WAREHOUSE_ENGINE=clickhouse, `semantic query` runs with max_execution_time and a
    byte cap held on the answer (chdb does not always apply max_result_bytes)."""
    import dataclasses

    from olist_bi.engines.clickhouse import warehouse as clickhouse
    from olist_bi.semantic.compiler import Query, compile_query, parse_by

    settings, _ = clickhouse_warehouse
    compiled = compile_query(Query(["orders"], [parse_by("purchase_date:day")]))
    assert len(clickhouse.query(settings, compiled.sql, compiled.params)) > 100
    tight = dataclasses.replace(settings, query_max_result_mb=0.001)  # 1 kB
    with pytest.raises(wh.ResultTooLarge, match="OLIST_QUERY_MAX_RESULT_MB"):
        clickhouse.query(tight, compiled.sql, compiled.params)
    endless = "select count(*) as n from semantic.olist_deliveries a, semantic.olist_deliveries b, semantic.olist_deliveries c"  # 8e12 rows
    began = time.monotonic()
    with pytest.raises(wh.QueryTimeout, match=r"time limit of 1 s \(OLIST_QUERY_TIMEOUT_SECONDS\)"):
        clickhouse.query(dataclasses.replace(settings, query_timeout_seconds=1), endless)
    assert time.monotonic() - began < 1 + 5
    assert len(clickhouse.query(settings, compiled.sql, compiled.params)) > 100  # the next reader is answered

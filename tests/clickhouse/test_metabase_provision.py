"""Metabase on ClickHouse, against the Metabase stand-in (no Metabase runs here): provisioning
connects the warehouse through Metabase's ClickHouse driver with the read-only user, its
questions carry ClickHouse SQL, and each saved question runs (the stand-in runs it on the
tests' embedded ClickHouse, where the warehouse was built from the test drop)."""

import dataclasses

import pytest
import requests

from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.dashboards import dashboards
from olist_bi.bi.metabase.provision import ProvisionError, admin_password, provision
from tests.metabase.standin import MetabaseStandIn
from tests.metabase.test_provision import ASSETS, CHARTS, SEMANTIC


@pytest.fixture
def on_clickhouse(clickhouse_warehouse, tmp_path):
    settings, _ = clickhouse_warehouse
    return dataclasses.replace(settings, home=tmp_path / "home", clickhouse_reader_url="https://olist_reader:r%40d@ch.example.com:8443")


@pytest.fixture
def standin(on_clickhouse):
    def run(details, sql):
        try:
            return clickhouse.connect(on_clickhouse).rows(sql)
        except Exception as e:  # noqa: BLE001 - the driver's error, as Metabase reports it
            return str(e)

    server = MetabaseStandIn(initializing=0, sync_polls=0, clickhouse=run)
    server.start()
    yield server
    server.stop()


def test_metabase_reads_clickhouse_through_its_driver_and_every_question_runs(standin, on_clickhouse):
    messages = []
    report = provision(on_clickhouse, standin.url, ASSETS, say=messages.append)
    assert standin.violations == []
    # no scoped copy on ClickHouse (docs/security.md): no SP database, group or dashboards
    assert report.created["card"] == sum(len(d.charts) for d in dashboards()) + SEMANTIC < CHARTS
    assert "no scoped copy on clickhouse: the regional groups of olist_regional_sp are not provisioned" in messages
    assert {d["name"] for d in standin.state.databases.values()} == {"Olist warehouse", "Olist operations"}
    assert "Olist Regional (SP)" not in {g["name"] for g in standin.state.groups.values()}
    [warehouse] = [d for d in standin.state.databases.values() if d["engine"] == "clickhouse"]
    db = on_clickhouse.clickhouse_database
    assert warehouse["details"] == {
        "host": "ch.example.com",
        "port": 8443,
        "user": "olist_reader",
        "password": "r@d",
        "dbname": f"{db} {db}_semantic",
        "ssl": True,
    }
    session = requests.post(
        f"{standin.url}/api/session/",
        json={"username": on_clickhouse.metabase_admin_email, "password": admin_password(on_clickhouse)},
        timeout=5,
    )
    headers = {"X-Metabase-Session": session.json()["id"]}
    ran = 0
    for card in standin.state.cards.values():
        if card["dataset_query"]["database"] != warehouse["id"] or card["type"] == "metric":
            continue  # a metric is MBQL, which Metabase's ClickHouse driver compiles: the stand-in models the DuckDB driver's only
        sql = card["dataset_query"]["native"]["query"]
        assert f"{db}." in sql or f"{db}_semantic." in sql  # ClickHouse SQL, tables in its databases
        answer = requests.post(f"{standin.url}/api/card/{card['id']}/query", headers=headers, timeout=30).json()
        assert answer["status"] == "completed", (card["name"], answer.get("error"))
        assert answer["row_count"] > 0 or "quality" in card["name"].lower(), card["name"]
        ran += 1
    assert ran >= len(dashboards()) * 4


def test_embedded_chdb_cannot_serve_metabase(standin, on_clickhouse):
    with pytest.raises(ProvisionError, match="Metabase cannot read embedded ClickHouse"):
        provision(dataclasses.replace(on_clickhouse, clickhouse_reader_url=None, clickhouse_url="chdb:///tmp/x"), standin.url, ASSETS)


def test_a_wrong_database_name_fails_the_connection_test(standin, on_clickhouse):
    with pytest.raises(Exception, match="does not exist"):
        provision(dataclasses.replace(on_clickhouse, clickhouse_database="no_such_db"), standin.url, ASSETS)

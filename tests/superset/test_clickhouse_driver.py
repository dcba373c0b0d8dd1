"""Superset's side of the ClickHouse engine, as far as it can be checked without a ClickHouse
server: the real Superset has the clickhouse-connect driver the provisioned URI names, and the
URI provisioning would give it. (Connecting needs a server: docs/clickhouse.md's checklist.)"""

import dataclasses

import pytest

from olist_bi.bi.superset import provision


def test_superset_offers_the_clickhouse_connect_driver(superset):
    _, client, _ = superset
    engines = client.get("/api/v1/database/available/")["databases"]
    clickhouse = [e for e in engines if e.get("engine") == "clickhousedb"]
    assert clickhouse, f"Superset lists no clickhousedb engine: {[e.get('engine') for e in engines]}"
    assert clickhouse[0]["available_drivers"] == ["connect"]


def test_provisioning_names_the_read_only_user_and_refuses_embedded_chdb(superset):
    settings, _, _ = superset
    on_clickhouse = dataclasses.replace(
        settings,
        warehouse_engine="clickhouse",
        clickhouse_database="olist",
        clickhouse_url="http://olist_etl:etl-secret@clickhouse:8123",
        clickhouse_reader_url="https://olist_reader:p%40ss@ch.example.com",
    )
    uri, password = provision.clickhouse_uri(on_clickhouse)
    assert uri == "clickhousedb://olist_reader:XXXXXXXXXX@ch.example.com:8443/olist?secure=true" and password == "p@ss"
    assert provision.warehouse_uri(on_clickhouse) == uri
    embedded = dataclasses.replace(on_clickhouse, clickhouse_url="chdb:///tmp/x", clickhouse_reader_url=None)
    with pytest.raises(RuntimeError, match="Superset cannot read embedded ClickHouse"):
        provision.clickhouse_uri(embedded)

"""Superset's side of the ClickHouse engine, as far as it can be checked without a ClickHouse
server: the real Superset has the clickhouse-connect driver the provisioned URI names (the URI
itself: tests/clickhouse/test_engine_seam.py). (Connecting needs a server: docs/clickhouse.md's
checklist.)"""


def test_superset_offers_the_clickhouse_connect_driver(superset):
    _, client, _ = superset
    engines = client.get("/api/v1/database/available/")["databases"]
    clickhouse = [e for e in engines if e.get("engine") == "clickhousedb"]
    assert clickhouse, f"Superset lists no clickhousedb engine: {[e.get('engine') for e in engines]}"
    assert clickhouse[0]["available_drivers"] == ["connect"]

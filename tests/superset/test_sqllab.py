"""SQL Lab as an analyst meets it: a LIMIT smaller than SQL Lab's own is kept (Superset 6.1
dropped it, apache/superset#40070; superset_config.py works around it)."""

from olist_bi.superset import bundle
from tests.superset.test_provision import database_id


def test_a_smaller_limit_in_the_query_is_kept(superset, login):
    _, admin, _ = superset
    analyst = login("analyst")
    warehouse = database_id(admin, bundle.WAREHOUSE)
    answer = analyst.post("/api/v1/sqllab/execute/", {"database_id": warehouse, "sql": "SELECT * FROM raw.orders LIMIT 5", "runAsync": False, "queryLimit": 1000})
    assert len(answer["data"]) == 5, answer["query"].get("executedSql")
    larger = analyst.post("/api/v1/sqllab/execute/", {"database_id": warehouse, "sql": "SELECT * FROM raw.orders LIMIT 5000", "runAsync": False, "queryLimit": 1000})
    assert len(larger["data"]) == 1000  # SQL Lab's own limit still holds over a larger one

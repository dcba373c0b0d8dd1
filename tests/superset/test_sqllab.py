"""SQL Lab as an analyst meets it: a LIMIT smaller than SQL Lab's own is kept (Superset 6.1
dropped it, apache/superset#40070; olist_bi/superset/app.py works around it), and the schema
list names the warehouse's schemas only."""

from olist_bi import warehouse as duckdb_warehouse_module
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


def test_the_schema_list_holds_the_warehouses_schemas_by_name(superset, login):
    """Not DuckDB's internal `system` and `temp` databases, nor the published generation's
    file name (it changes with every publish): the analyst picks `raw`, not
    `"warehouse-20261130T...".raw`, and the tables of each schema are listed."""
    settings, admin, _ = superset
    analyst = login("analyst")
    warehouse = database_id(admin, bundle.WAREHOUSE)
    schemas = analyst.get(f"/api/v1/database/{warehouse}/schemas/", q="(force:!t)")["result"]
    with duckdb_warehouse_module.connect(settings.warehouse_path) as con:
        own = {r[0] for r in con.execute("select schema_name from duckdb_schemas() where database_name = current_database()").fetchall()}
    assert set(schemas) == own - {"information_schema", "pg_catalog"} and {"main", "raw", "semantic"} <= set(schemas)
    tables = analyst.get(f"/api/v1/database/{warehouse}/tables/", q="(force:!t,schema_name:raw)")["result"]
    assert {"orders", "order_items", "customers"} <= {t["value"] for t in tables}

"""SQL Lab as an analyst meets it: a LIMIT smaller than SQL Lab's own is kept (Superset 6.1
dropped it, apache/superset#40070; olist_bi/superset/app.py works around it), the schema
list names the warehouse's schemas only, and a query stops at the platform's limits (the
session's Superset runs with OLIST_QUERY_TIMEOUT_SECONDS=10 and OLIST_QUERY_MAX_RESULT_MB=20)."""

import time
from pathlib import Path

import pytest

from olist_bi.engines.duckdb import warehouse as duckdb_warehouse_module
from olist_bi.bi.superset import bundle, server
from olist_bi.bi.superset.client import SupersetApiError
from tests.superset.test_provision import database_id


def test_a_smaller_limit_in_the_query_is_kept(superset, login):
    _, admin, _ = superset
    analyst = login("analyst")
    warehouse = database_id(admin, bundle.WAREHOUSE)
    answer = analyst.post(
        "/api/v1/sqllab/execute/",
        {"database_id": warehouse, "sql": "SELECT * FROM fact_deliveries LIMIT 5", "runAsync": False, "queryLimit": 1000},
    )
    assert len(answer["data"]) == 5, answer["query"].get("executedSql")
    larger = analyst.post(
        "/api/v1/sqllab/execute/",
        {"database_id": warehouse, "sql": "SELECT * FROM fact_deliveries LIMIT 5000", "runAsync": False, "queryLimit": 1000},
    )
    assert len(larger["data"]) == 1000  # SQL Lab's own limit still holds over a larger one


def test_the_schema_list_holds_the_reader_copys_schemas_by_name(superset, login):
    """Not DuckDB's internal `system` and `temp` databases, nor the published generation's
    file name (it changes with every publish): the analyst picks `semantic`, not
    `"warehouse.reader-20261130T...".semantic`, and the tables of each schema are listed. The
    reader copy holds no raw, quarantine or staging (etl/readers.py)."""
    settings, admin, _ = superset
    analyst = login("analyst")
    warehouse = database_id(admin, bundle.WAREHOUSE)
    schemas = analyst.get(f"/api/v1/database/{warehouse}/schemas/", q="(force:!t)")["result"]
    with duckdb_warehouse_module.connect(duckdb_warehouse_module.reader_path(settings.warehouse_path)) as con:
        own = {r[0] for r in con.execute("select schema_name from duckdb_schemas() where database_name = current_database()").fetchall()}
    assert set(schemas) == own - {"information_schema", "pg_catalog"} == {"main", "meta", "semantic"}
    tables = {t["value"] for t in analyst.get(f"/api/v1/database/{warehouse}/tables/", q="(force:!t,schema_name:main)")["result"]}
    assert {"fact_deliveries", "dim_customer", "mart_monthly_revenue"} <= tables and not {
        t for t in tables if t.startswith(("stg_", "int_"))
    }


@pytest.mark.parametrize(
    "sql",
    [
        "select * from raw.customers",
        "select * from quarantine.rejected_rows",
        "select * from stg_orders",
        "select * from duckdb_tables() where schema_name = 'raw'",
    ],
)
def test_sql_lab_reaches_no_raw_quarantine_or_staging_table(superset, login, sql):
    """The red team read raw.customers from SQL Lab; the analyst's warehouse now holds none."""
    _, admin, _ = superset
    try:
        answer = login("analyst").post(
            "/api/v1/sqllab/execute/", {"database_id": database_id(admin, bundle.WAREHOUSE), "sql": sql, "runAsync": False}
        )
    except SupersetApiError as e:
        assert "does not exist" in str(e), str(e)[:300]
    else:
        assert answer["data"] == [], answer["data"][:3]


def workers_cpu_seconds(settings) -> float:
    """CPU time used so far by Superset's gunicorn workers (the master's children)."""
    master = int(server.pid_file(settings).read_text().strip())
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / 100


def test_a_query_past_its_time_limit_is_stopped_and_says_why(superset, login):
    """The red team's analyst query ran 156.6 s under SQLLAB_TIMEOUT=60, and went on about 75 s
    after its client left: gunicorn's threads ignore Superset's signal-based timeout."""
    settings, admin, _ = superset
    analyst = login("analyst")
    began = time.monotonic()
    with pytest.raises(SupersetApiError) as refused:
        analyst.post(
            "/api/v1/sqllab/execute/",
            {
                "database_id": database_id(admin, bundle.WAREHOUSE),
                "sql": "select sum(hash(i)) from range(1000000000000) t(i)",
                "runAsync": False,
            },
        )
    assert time.monotonic() - began < settings.query_timeout_seconds + 5
    assert "time limit of 10 s (OLIST_QUERY_TIMEOUT_SECONDS)" in str(refused.value)
    before = workers_cpu_seconds(settings)
    time.sleep(2)
    assert workers_cpu_seconds(settings) - before < 1.0  # no core left busy on it


def test_an_answer_over_the_byte_cap_is_refused_by_name(superset, login):
    """A 500 MB result took a gunicorn worker from 422 MB to 1.8 GB: rows alone were capped."""
    _, admin, _ = superset
    analyst = login("analyst")
    with pytest.raises(SupersetApiError) as refused:
        analyst.post(
            "/api/v1/sqllab/execute/",
            {
                "database_id": database_id(admin, bundle.WAREHOUSE),
                "sql": "select repeat('x', 1000) as t from range(60000)",
                "runAsync": False,
            },
        )
    assert "more than 20 MB" in str(refused.value) and "OLIST_QUERY_MAX_RESULT_MB" in str(refused.value)
    small = analyst.post(
        "/api/v1/sqllab/execute/",
        {"database_id": database_id(admin, bundle.WAREHOUSE), "sql": "select repeat('x', 1000) as t from range(1000)", "runAsync": False},
    )
    assert len(small["data"]) == 1000


def test_the_logs_that_hold_query_text_are_readable_by_their_owner_only(superset):
    """superset.log holds the text of failed queries; it was 0644."""
    import stat

    settings, _, _ = superset
    for log in (server.log_file(settings), *settings.superset_dir.glob("celery-*.log")):
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log

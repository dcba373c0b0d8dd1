"""Row-level security that holds below the chart-data API's text (platform/bi/superset/scope.py).

The red team of 2026-12-06, as the regional manager (customers of SP only): a custom SQL
metric that appends UNION ALL read every state's orders, and any table (raw.customers),
through POST /api/v1/chart/data. Each attack here is refused on the real Superset; the
parser's rules are checked case by case first."""

from __future__ import annotations

import re

import pytest

from olist_bi.bi.superset import bundle, provision, scope
from olist_bi.bi.superset.client import SupersetApiError
from tests.superset.test_provision import database_id

SP = "customer_state = 'SP'"
DATASETS = {("semantic", "olist_deliveries"): [SP], ("semantic", "olist_freshness"): []}


def problems(sql: str) -> list[str]:
    return scope.unguarded(sql, lambda schema, name: DATASETS.get((schema, name)))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT customer_state AS customer_state, COUNT(*) AS n FROM semantic.olist_deliveries "
        "WHERE (customer_state = 'SP') GROUP BY customer_state LIMIT 100",
        "SELECT COUNT(*) AS n FROM semantic.olist_deliveries WHERE (customer_state = 'SP') AND (purchase_date >= '2017-01-01')",
        "SELECT max(loaded_at) FROM semantic.olist_freshness",  # no row filter applies to it
    ],
)
def test_what_superset_generates_for_a_scoped_user_passes(sql):
    assert problems(sql) == []


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        # the red team's payload: a branch of its own before Superset's FROM and WHERE
        (
            "SELECT customer_state AS customer_state, COUNT(*) AS n FROM semantic.olist_deliveries GROUP BY customer_state "
            "UNION ALL SELECT customer_state, COUNT(*) AS n FROM semantic.olist_deliveries "
            "WHERE (customer_state = 'SP') GROUP BY customer_state",
            "combines queries",
        ),
        ("SELECT customer_city FROM raw.customers", "raw.customers, which is not one of your datasets"),
        ("SELECT COUNT(*) FROM (SELECT * FROM semantic.olist_deliveries) AS x WHERE (customer_state = 'SP')", "without its row filter"),
        (
            "WITH x AS (SELECT * FROM semantic.olist_deliveries) SELECT COUNT(*) FROM x WHERE (customer_state = 'SP')",
            "without its row filter",
        ),
        ("SELECT COUNT(*) FROM semantic.olist_deliveries WHERE (customer_state = 'SP') OR 1 = 1", "without its row filter"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not a dataset"),
        ("SELECT COUNT(*) FROM olist_deliveries WHERE (customer_state = 'SP')", "not one of your datasets"),  # no schema: main's table
        ("SELECT * FROM semantic.olist_seller_scorecard", "not one of your datasets"),
        (
            "SELECT COUNT(*) FROM semantic.olist_deliveries WHERE (customer_state = 'SP') "
            "AND order_id IN (SELECT order_id FROM semantic.olist_deliveries)",
            "without its row filter",
        ),
        (
            "SELECT 1 FROM semantic.olist_deliveries WHERE (customer_state = 'SP') INTERSECT SELECT 1 FROM semantic.olist_freshness",
            "combines queries",
        ),
    ],
)
def test_what_could_read_past_the_scope_is_named(sql, says):
    found = problems(sql)
    assert found and any(says in p for p in found), found


def deliveries(admin) -> int:
    return next(d["id"] for d in admin.get("/api/v1/dataset/", q="(page_size:100)")["result"] if d["table_name"] == "olist_deliveries")


def chart_data(client, dataset: int, metric_sql: str, columns=("customer_state",)) -> list[dict]:
    body = {
        "datasource": {"id": dataset, "type": "table"},
        "result_format": "json",
        "result_type": "full",
        "queries": [
            {"columns": list(columns), "metrics": [{"expressionType": "SQL", "sqlExpression": metric_sql, "label": "n"}], "row_limit": 1000}
        ],
    }
    return client.post("/api/v1/chart/data", body)["result"][0]["data"]


@pytest.mark.parametrize(
    "payload",
    [
        "count(*) as n from semantic.olist_deliveries group by customer_state union all select customer_state, count(*)",
        "count(*) as n from semantic.olist_deliveries group by customer_state union all select customer_city, count(*) "
        "from raw.customers group by customer_city union all select customer_state, count(*)",
    ],
    ids=["other states", "raw.customers"],
)
def test_the_red_teams_custom_sql_metric_is_refused_for_the_regional_manager(superset, login, payload):
    _, admin, _ = superset
    regional = login("regional_sp")
    dataset = deliveries(admin)
    assert {r["customer_state"] for r in chart_data(regional, dataset, "count(*)")} == {"SP"}  # an honest question is answered
    with pytest.raises(SupersetApiError) as refused:
        chart_data(regional, dataset, payload)
    assert "could read rows outside your datasets or your scope" in str(refused.value) and "combines queries" in str(refused.value)
    # the same request as the admin, who may read the whole database anyway, runs: every state,
    # but no raw table, which the reader copy does not hold (etl/readers.py)
    if "raw.customers" in payload:
        with pytest.raises(SupersetApiError, match="Table with name customers does not exist"):
            chart_data(admin, dataset, payload)
    else:
        assert len({r["customer_state"] for r in chart_data(admin, dataset, payload)}) > 1


def test_a_viewer_cannot_read_a_raw_table_through_a_custom_sql_metric(superset, login):
    """The viewer may open the dashboards' datasets and run no SQL: raw.customers is not theirs."""
    _, admin, _ = superset
    viewer = login("viewer")
    dataset = deliveries(admin)
    assert len({r["customer_state"] for r in chart_data(viewer, dataset, "count(*)")}) > 1  # every state: no scope
    with pytest.raises(SupersetApiError) as refused:
        chart_data(
            viewer,
            dataset,
            "count(*) as n from semantic.olist_deliveries group by customer_state union all "
            "select customer_city, count(*) from raw.customers group by customer_city union all select customer_state, count(*)",
        )
    assert "raw.customers, which is not one of your datasets" in str(refused.value)
    analyst = login("analyst")  # SQL Lab on the warehouse: nothing to step around
    assert chart_data(
        analyst, dataset, "count(*) as n from semantic.olist_deliveries group by customer_state union all select customer_state, count(*)"
    )


@pytest.mark.parametrize("user", ["regional_sp", "viewer"])
def test_every_chart_a_reader_may_open_still_answers(superset, login, user):
    """Every chart the regional manager and the viewer may open still answers through the guard."""
    _, admin, _ = superset
    reader = login(user)
    answered = 0
    for key, chart in provision.chart_ids(admin).items():
        try:
            result = reader.get(f"/api/v1/chart/{chart}/data/", format="json", type="full", force="true")["result"]
        except SupersetApiError as e:
            assert e.status in (403, 404) and "so it was not run" not in str(e), (key, str(e)[:300])
            continue
        assert all(r.get("error") is None for r in result), key
        answered += 1
    assert answered >= 10


ATTACK = "count(*) as n from semantic.olist_deliveries group by customer_state union all select customer_state, count(*)"


def test_the_other_ways_in_keep_the_regional_manager_to_its_state(superset, login):
    """CSV and XLSX exports of the attack, the filter's list of values, the samples and drill-to-
    detail rows: SP only, or refused."""
    settings, admin, _ = superset
    regional = login("regional_sp")
    dataset = deliveries(admin)
    for fmt in ("csv", "xlsx"):
        body = {
            "datasource": {"id": dataset, "type": "table"},
            "result_format": fmt,
            "result_type": "full",
            "queries": [
                {
                    "columns": ["customer_state"],
                    "metrics": [{"expressionType": "SQL", "sqlExpression": ATTACK, "label": "n"}],
                    "row_limit": 1000,
                }
            ],
        }
        with pytest.raises(SupersetApiError) as refused:
            regional.post("/api/v1/chart/data", body)
        assert "so it was not run" in str(refused.value), fmt
    values = answered_or_refused(lambda: regional.get(f"/api/v1/datasource/table/{dataset}/column/customer_state/values/")["result"])
    assert values in (None, ["SP"]), values
    # the native filter's list, as the dashboard asks for it (a chart-data query of the column)
    listed = chart_data(regional, dataset, "count(*)", columns=("customer_state",))
    assert {r["customer_state"] for r in listed} == {"SP"}
    samples = answered_or_refused(
        lambda: regional.post(f"/datasource/samples?datasource_id={dataset}&datasource_type=table", {})["result"]["data"]
    )
    assert samples is None or (samples and {row["customer_state"] for row in samples} == {"SP"}), samples


def answered_or_refused(ask):
    """The answer, or None when the endpoint is not the reader's to ask (401/403)."""
    try:
        return ask()
    except SupersetApiError as e:
        assert e.status in (401, 403), str(e)[:300]
        return None


def test_sql_lab_stays_closed_to_the_readers(superset, login):
    _, admin, _ = superset
    warehouse = database_id(admin, bundle.WAREHOUSE)
    for user in ("regional_sp", "viewer"):
        with pytest.raises(SupersetApiError) as refused:
            login(user).post("/api/v1/sqllab/execute/", {"database_id": warehouse, "sql": "select * from raw.customers", "runAsync": False})
        assert refused.value.status in (401, 403), (user, str(refused.value)[:200])


# --- the data wall: a scoped user's connections open the scope's copy (etl/readers.py) -------


def test_the_bi_tools_database_is_the_reader_copy(superset):
    """What DuckDB itself says Superset's warehouse connection opened: a generation of the
    reader copy, not the ETL's warehouse with its raw and quarantine."""
    _, admin, _ = superset
    answer = admin.post(
        "/api/v1/sqllab/execute/",
        {
            "database_id": database_id(admin, bundle.WAREHOUSE),
            "runAsync": False,
            "sql": "select path from duckdb_databases() where not internal",
        },
    )
    [path] = [row["path"] for row in answer["data"]]
    assert re.search(r"/warehouse\.reader(\.duckdb|-\d{8}T\d+\.duckdb)$", path), path  # the served copy, or a generation of it


def rls_rules(admin) -> list[dict]:
    return admin.get("/api/v1/rowlevelsecurity/", q="(page_size:100)")["result"]


def test_with_row_level_security_gone_the_regional_manager_still_reads_sp_only(superset, login):
    """Superset's RLS is the first wall, not the only one: an admin who deletes the regional
    manager's rules (by mistake, or a hostile admin session) leaves it reading SP only, and
    every chart it may open answers with SP's figures."""
    settings, admin, _ = superset
    regional = login("regional_sp")
    dataset = deliveries(admin)
    before = {r["customer_state"]: r["n"] for r in chart_data(regional, dataset, "count(*)")}
    assert set(before) == {"SP"}
    removed = [rule for rule in rls_rules(admin) if rule["name"].startswith("olist_regional_sp")]
    assert removed
    try:
        for rule in removed:
            admin.delete(f"/api/v1/rowlevelsecurity/{rule['id']}")
        assert not [rule for rule in rls_rules(admin) if rule["name"].startswith("olist_regional_sp")]
        # With no rule, Superset adds no filter and the query guard requires none: on the reader
        # copy this query would list all 27 states. The SP copy has SP alone.
        after = {r["customer_state"]: r["n"] for r in chart_data(regional, dataset, "count(*)")}
        assert after == before
    finally:
        provision.provision(settings, say=lambda m: None)  # the rules back
    assert {rule["name"] for rule in rls_rules(admin)} >= {rule["name"] for rule in removed}

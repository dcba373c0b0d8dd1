"""Provisioning a real Superset: idempotent, every chart answers with rows, roles do what
they say, the analyst cannot leave the warehouse from SQL Lab, RLS narrows to one state."""

import datetime as dt
import os
import re
import threading
import time

import pytest

from olist_bi.engines.duckdb import warehouse
from olist_bi.dashboards import dashboards, datasets
from olist_bi.etl import pipeline
from olist_bi.bi.superset import bundle, provision, tool
from olist_bi.semantic.catalog import load
from olist_bi.bi.superset.client import SupersetApiError
from tests.escapes import ESCAPE_FILE, ESCAPES, LOCKED
from tests.reference import for_chart


def test_first_provisioning_created_everything(superset):
    _, _, report = superset
    assert report.counts["dashboards"] == 6 and report.counts["charts"] == sum(len(d.charts) for d in dashboards())
    assert report.counts["databases"] == 2 and report.counts["datasets"] == len(load().models) + len(
        datasets()
    )  # a semantic dataset per model, and the row datasets
    assert set(report.roles) == {"olist_viewer", "olist_analyst", "olist_admin", "olist_regional_sp"}
    assert set(report.users) == {"viewer", "analyst", "manager", "regional_sp"}


def test_provisioning_twice_keeps_counts_and_ids(superset):
    settings, client, first = superset
    ids_before = provision.ids_by_uuid(client)
    again = provision.provision(settings, say=lambda m: None)
    assert again.counts == first.counts
    assert again.changes == []
    assert provision.ids_by_uuid(client) == ids_before
    assert again.roles == first.roles


def test_every_chart_answers_with_rows(superset):
    _, client, _ = superset
    charts = provision.chart_ids(client)
    assert len(charts) == sum(len(d.charts) for d in dashboards())
    for key, chart_id in charts.items():
        result = client.get(f"/api/v1/chart/{chart_id}/data/", format="json", type="full", force="true")["result"]
        assert result and result[0]["rowcount"] > 0, key


def test_each_web_worker_froze_the_loaded_app_out_of_garbage_collection(superset):
    """A full collection walks every object a worker holds: with Superset loaded, about 200 ms
    on whichever request runs then, unless the loaded app is frozen (platform/bi/superset/gunicorn.py)."""
    from olist_bi.bi.superset import server

    settings, _, _ = superset
    frozen = [int(n) for n in re.findall(r"olist-bi: (\d+) objects of the loaded app frozen", server.log_file(settings).read_text())]
    assert len(frozen) >= settings.superset_workers, frozen  # more if gunicorn replaced a worker
    assert min(frozen) > 100_000, frozen


def test_the_warehouse_connection_is_locked_down(superset):
    _, client, _ = superset
    databases = {d["database_name"]: d for d in client.get("/api/v1/database/", q="(page_size:100)")["result"]}
    warehouse = client.get(f"/api/v1/database/{databases[bundle.WAREHOUSE]['id']}")["result"]
    assert warehouse["allow_dml"] is False and warehouse["expose_in_sqllab"] is True
    settings = run_sql(
        client,
        warehouse["id"],
        "select current_setting('enable_external_access') as external, current_setting('lock_configuration') as locked, "
        "current_setting('access_mode') as mode, current_setting('threads') as threads",
    )["data"][0]
    assert settings == {"external": False, "locked": True, "mode": "read_only", "threads": 2}


def database_id(client, name):
    return next(d["id"] for d in client.get("/api/v1/database/", q="(page_size:100)")["result"] if d["database_name"] == name)


def run_sql(client, database, sql):
    return client.post("/api/v1/sqllab/execute/", {"database_id": database, "sql": sql, "runAsync": False})


def test_the_viewer_sees_dashboards_but_has_no_sql_lab(superset, login):
    _, admin, _ = superset
    viewer = login("viewer")
    titles = {d["dashboard_title"] for d in viewer.get("/api/v1/dashboard/", q="(page_size:100)")["result"]}
    assert {d.title for d in dashboards() if d.audience == "business"} <= titles
    assert "Platform health" not in titles
    with pytest.raises(SupersetApiError) as info:
        run_sql(viewer, database_id(admin, bundle.WAREHOUSE), "select 1")
    assert info.value.status in (401, 403)
    with pytest.raises(SupersetApiError):
        viewer.post("/api/v1/chart/", {"slice_name": "mine", "viz_type": "table", "datasource_id": 1, "datasource_type": "table"})


def test_the_analyst_queries_marts_but_cannot_reach_server_files(superset, login):
    _, admin, _ = superset
    analyst = login("analyst")
    warehouse = database_id(admin, bundle.WAREHOUSE)
    result = run_sql(analyst, warehouse, "select count(*) as n from mart_monthly_revenue")
    assert result["status"] == "success" and result["data"][0]["n"] > 0
    for sql in ESCAPES + LOCKED:
        with pytest.raises(SupersetApiError) as info:
            run_sql(analyst, warehouse, sql)
        assert info.value.status >= 400, sql
    assert not os.path.exists(ESCAPE_FILE)
    with pytest.raises(SupersetApiError):
        run_sql(analyst, database_id(admin, bundle.OPERATIONS), "select count(*) from pipeline_runs")


def test_the_admin_reads_the_operations_store(superset):
    _, admin, _ = superset
    result = run_sql(admin, database_id(admin, bundle.OPERATIONS), "select count(*) as n from pipeline_runs")
    assert result["data"][0]["n"] > 0


def test_the_regional_role_sees_only_its_state(superset, login, reference):
    _, admin, _ = superset
    regional = login("regional_sp")
    chart = provision.chart_ids(admin)["executive-overview/revenue_by_state"]
    mine = regional.get(f"/api/v1/chart/{chart}/data/", format="json", type="full", force="true")["result"][0]["data"]
    everyone = admin.get(f"/api/v1/chart/{chart}/data/", format="json", type="full", force="true")["result"][0]["data"]
    assert {row["customer_state"] for row in mine} == {"SP"}
    assert len({row["customer_state"] for row in everyone}) == 10  # the top 10 states
    total = provision.chart_ids(admin)["executive-overview/orders"]
    sp_orders = regional.get(f"/api/v1/chart/{total}/data/", format="json", type="full", force="true")["result"][0]["data"][0]
    all_orders = admin.get(f"/api/v1/chart/{total}/data/", format="json", type="full", force="true")["result"][0]["data"][0]
    assert 0 < sp_orders["orders"] < all_orders["orders"]
    # Cohorts too: retention by months since the first order, of SP's customers only (the raw files' answer).
    curve = provision.chart_ids(admin)["customers-and-cohorts/retention_curve"]
    rows = regional.get(f"/api/v1/chart/{curve}/data/", format="json", type="full", force="true")["result"][0]["data"]
    spec = next(c for d in dashboards() if d.slug == "customers-and-cohorts" for c in d.charts if c.key == "retention_curve")
    want = for_chart(reference, spec, ["customer_state"])  # SP's customers, complete periods as the chart reads them
    got = {r["months_since_first"]: r["cohort_return_rate"] for r in rows}
    assert set(got) == {k[0] for k in want} and got[0] is None and want[0,][0] is None  # month 0 left empty
    assert all(got[k[0]] == pytest.approx(v[0], rel=1e-9) for k, v in want.items() if k[0] > 0)


def test_the_forecast_chart_draws_brazil_for_everyone_and_its_state_for_the_regional_role(superset, login):
    """The forecast band's rows are Brazil's for every reader (a Base row-level security
    filter), SP's for the regional manager; under Superset's forecast labels, so the line chart
    draws the band; each equal to the mart."""
    settings, admin, _ = superset
    chart = provision.chart_ids(admin)["executive-overview/revenue_forecast"]
    with warehouse.connect(settings.warehouse_path) as con:  # the process's read-only connection
        mart = {
            series: {
                m.strftime("%Y-%m-%d"): (f, lo, hi)
                for m, f, lo, hi in con.execute(
                    "select month_start, revenue_forecast, revenue_low_95, revenue_high_95 "
                    "from mart_revenue_forecast where series = ? and is_forecast",
                    [series],
                ).fetchall()
            }
            for series in ("All states", "SP")
        }
    for client, series in ((admin, "All states"), (login("viewer"), "All states"), (login("regional_sp"), "SP")):
        rows = client.get(f"/api/v1/chart/{chart}/data/", format="json", type="full", force="true")["result"][0]["data"]
        assert {
            "Revenue",
            "Forecast__yhat",
            "Forecast__yhat_lower",
            "Forecast__yhat_upper",
            "80% interval__yhat_lower",
            "80% interval__yhat_upper",
        } <= set(rows[0])
        ahead = {
            dt.datetime.fromtimestamp(r["month_start"] / 1000, dt.UTC).strftime("%Y-%m-%d"): (
                r["Forecast__yhat"],
                r["Forecast__yhat_lower"],
                r["Forecast__yhat_upper"],
            )
            for r in rows
            if r["Forecast__yhat"] is not None
        }
        assert set(ahead) == set(mart[series]), series
        for month, values in ahead.items():
            assert values == pytest.approx(tuple(float(v) for v in mart[series][month])), (series, month)
    accuracy = provision.chart_ids(admin)["executive-overview/forecast_accuracy"]
    regional_rows = login("regional_sp").get(f"/api/v1/chart/{accuracy}/data/", format="json", type="full", force="true")["result"][0][
        "data"
    ]
    admin_rows = admin.get(f"/api/v1/chart/{accuracy}/data/", format="json", type="full", force="true")["result"][0]["data"]
    assert len(regional_rows) == len(admin_rows) == 2 and regional_rows != admin_rows  # revenue and orders, of SP and of Brazil


def test_a_publish_during_dashboard_queries_causes_no_errors(superset, small_drop, tmp_path):
    import datetime as dt

    from olist_bi.generator import generate

    settings, client, _ = superset
    charts = list(provision.chart_ids(client).items())
    errors, done = [], threading.Event()
    answered = [0]

    def query_loop():
        while not done.is_set():
            for key, chart_id in charts[:12]:
                try:
                    result = client.get(f"/api/v1/chart/{chart_id}/data/", format="json", type="full", force="true")
                    assert result["result"][0]["rowcount"] > 0
                    answered[0] += 1
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    errors.append(f"{key}: {e}")

    thread = threading.Thread(target=query_loop)
    thread.start()
    try:
        time.sleep(1)
        increment = tmp_path / "increment"
        generate(increment, scale=0.2, seed=7, start_date=dt.date(2018, 11, 1), months=1)
        assert pipeline.run(settings, increment).status == "succeeded"
        time.sleep(1)
    finally:
        done.set()
        thread.join(timeout=120)
    assert answered[0] > 10
    assert errors == []
    # The next query reads the newly published generation (one file per publish: no
    # connection still open on the previous one can hold it back).
    items = dict(charts)[CARD]
    result = client.get(f"/api/v1/chart/{items}/data/", format="json", type="full", force="true")
    assert values(result["result"][0]) == published_answer(settings, CARD)


# A card (items sold per month, the latest against the one before), and what the published
# warehouse answers to it: the values month by month.
CARD = "sales-and-products/items"


def published_answer(settings, key: str) -> list[float]:
    from olist_bi.semantic import query
    from olist_bi.semantic.compiler import compile_query

    slug, chart_key = key.split("/")
    chart = next(c for d in dashboards() if d.slug == slug for c in d.charts if c.key == chart_key)
    return [float(row[-1]) for row in query.run(compile_query(chart.query()), settings.warehouse_path)]


def values(result: dict) -> list[float]:
    """A trend card's values in month order (the first column is the month)."""
    month, value = result["colnames"][:2]
    return [float(r[value]) for r in sorted(result["data"], key=lambda r: r[month])]


def test_after_a_publish_cached_charts_answer_from_the_new_warehouse_and_are_warm(superset, tmp_path):
    from olist_bi import bi
    from olist_bi.generator import generate

    settings, client, _ = superset
    items = provision.chart_ids(client)[CARD]
    path = f"/api/v1/chart/{items}/data/"
    client.get(path, format="json", type="full")
    cached = client.get(path, format="json", type="full")["result"][0]
    assert cached["is_cached"]

    # New orders in the last month the chart shows (the reporting window's), whatever an
    # earlier test published: the card's answer must change
    with warehouse.connect(settings.warehouse_path) as con:
        [(last_day,)] = con.execute("select last_day from mart_reporting_window").fetchall()
    increment = tmp_path / "increment"
    generate(increment, scale=0.2, seed=11, start_date=last_day.replace(day=1), months=1)
    assert pipeline.run(settings, increment).status == "succeeded"
    published = published_answer(settings, CARD)
    lagging = client.get(path, format="json", type="full")["result"][0]
    assert lagging["is_cached"] and values(lagging) != published  # what the step is for

    outcomes = {o.tool: o for o in bi.after_publish(settings, say=lambda m: None)}
    assert outcomes["superset"].status == "done", outcomes
    assert (
        re.search(r"\d+ charts and [1-9]\d* filter value lists warmed", outcomes["superset"].message)
        and "failed" not in outcomes["superset"].message
    )
    fresh = client.get(path, format="json", type="full")["result"][0]
    assert fresh["is_cached"]  # warmed by the step: the first viewer reads from the cache
    assert values(fresh) == published
    ids = provision.ids_by_uuid(client)
    for dashboard in dashboards():  # and the filters' lists of values, which the dashboards ask for too
        for native_filter in tool.value_filters(client, ids[dashboard.uuid()]):
            listed = client.post("/api/v1/chart/data", tool.filter_value_query(native_filter, ids[dashboard.uuid()]))["result"][0]
            assert listed["is_cached"], (dashboard.slug, native_filter["id"])

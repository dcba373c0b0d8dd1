"""The dashboard specs: six dashboards, every chart valid against the semantic catalog and
returning rows on a real warehouse and operations store."""

import dataclasses

import duckdb
import psycopg
import pytest

from olist_bi.dashboards import Chart, SpecError, check, dashboards, datasets, filter_targets, stable_uuid
from olist_bi.semantic import query
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import Filter, compile_query

SLUGS = {"executive-overview", "sales-and-products", "customers-and-cohorts", "sellers", "delivery-and-satisfaction", "platform-health"}
CHARTS = [(d, c) for d in dashboards() for c in d.charts]


def test_the_six_dashboards():
    assert {d.slug for d in dashboards()} == SLUGS
    for d in dashboards():
        assert d.title and d.description and d.charts


def test_uuids_are_stable_and_distinct():
    ids = [d.chart_uuid(c) for d, c in CHARTS] + [d.uuid() for d in dashboards()]
    assert len(set(ids)) == len(ids)
    # Pinned: provisioned Superset objects carry these ids, and a changed one would orphan them
    # (re-provisioning would create a second dashboard instead of updating the first).
    assert stable_uuid("chart", "sellers", "gmv") == "1e40d92c-d25b-5b3c-be35-6a30a493adaa"
    assert next(d for d in dashboards() if d.slug == "sellers").uuid() == "775d884c-4be4-5fe3-aa0d-36e0be27c6a6"
    assert stable_uuid("chart", "sellers", "gmv2") != stable_uuid("chart", "sellers", "gmv")


@pytest.mark.parametrize("dashboard, chart", [x for x in CHARTS if x[1].is_semantic], ids=lambda x: getattr(x, "key", getattr(x, "slug", "")))
def test_every_semantic_chart_returns_rows(warehouse, dashboard, chart):
    settings, _ = warehouse
    rows = query.run(compile_query(chart.query()), settings.warehouse_path)
    assert rows and any(value is not None for value in rows[0][len(chart.by):])


@pytest.mark.parametrize("dashboard", dashboards(), ids=lambda d: d.slug)
def test_every_filter_applies_to_its_charts(warehouse, dashboard):
    settings, _ = warehouse
    values = {"purchase_date": "2017-11-24", "customer_state": "SP", "order_status": "delivered", "product_category": "bed_bath_table", "seller_state": "SP"}
    for dimension in dashboard.filters:
        for chart in filter_targets(dashboard, dimension):
            everything = query.run(compile_query(chart.query()), settings.warehouse_path)
            q = chart.query()
            q.where.append(Filter(dimension, (values[dimension],)))
            compiled = compile_query(q)
            assert values[dimension] not in compiled.sql, (chart.key, dimension)  # bound, not spliced
            filtered = query.run(compiled, settings.warehouse_path)
            assert filtered != everything, f"{dashboard.slug}/{chart.key}: filtering on {dimension} changed nothing"


def test_dataset_charts_run_on_their_databases(warehouse, ops_url):
    settings, _ = warehouse
    for name, dataset in datasets().items():
        if dataset.database == "warehouse":
            with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
                rows = con.execute(f"select * from ({dataset.sql}) limit 5").fetchall()
        else:
            with psycopg.connect(ops_url) as conn:
                rows = conn.execute(f"select * from ({dataset.sql}) as d limit 5").fetchall()
        assert rows, name
    for d, c in CHARTS:
        if not c.is_semantic:
            sql = datasets()[c.dataset].sql
            target = duckdb.connect(str(settings.warehouse_path), read_only=True) if datasets()[c.dataset].database == "warehouse" else None
            if target:
                columns = [r[0] for r in target.execute(f"describe ({sql})").fetchall()]
                target.close()
            else:
                with psycopg.connect(ops_url) as conn:
                    columns = [col.name for col in conn.execute(f"select * from ({sql}) as d limit 0").description]
            assert set(c.columns) <= set(columns), (d.slug, c.key, set(c.columns) - set(columns))


def test_spec_mistakes_are_named():
    catalog = load()
    dashboard = dashboards()[0]
    broken = dataclasses.replace(dashboard, charts=(Chart("x", "X", "bar", metrics=("revenue",), by=()),) + dashboard.charts)
    assert any("needs `by`" in p for p in check(broken, catalog))
    from olist_bi.semantic.compiler import GroupBy

    broken = dataclasses.replace(dashboard, charts=(Chart("x", "X", "bar", metrics=("revenue",), by=(GroupBy("product_category"),)),))
    assert any("cannot be grouped by product_category" in p for p in check(broken, catalog))
    broken = dataclasses.replace(dashboard, charts=(Chart("x", "X", "kpi", metrics=("profit",)),))
    assert any("unknown metric profit" in p for p in check(broken, catalog))
    broken = dataclasses.replace(dashboard, filters=("payment_type",), charts=(Chart("x", "X", "kpi", metrics=("orders",)),))
    assert any("no chart of the dashboard can be filtered" in p for p in check(broken, catalog))


def test_a_broken_file_raises_naming_it(tmp_path, monkeypatch):
    from olist_bi import dashboards as module

    (tmp_path / "datasets.yaml").write_text((module.HERE / "datasets.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("slug: bad\ntitle: Bad\ndescription: d\ncharts:\n  - {key: a, title: A, viz: kpi, metrics: [nope]}\n")
    monkeypatch.setattr(module, "HERE", tmp_path)
    module.dashboards.cache_clear()
    module.datasets.cache_clear()
    try:
        with pytest.raises(SpecError, match="bad.yaml"):
            module.dashboards()
    finally:
        module.dashboards.cache_clear()
        module.datasets.cache_clear()

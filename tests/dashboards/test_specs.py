"""The dashboard specs: six dashboards, every chart valid against the semantic catalog; every
semantic chart, alone and with each of its dashboard's filters, gives the answer computed from
the raw CSVs (tests/reference.py); the row charts run on a real warehouse and operations store."""

import dataclasses

import duckdb
import psycopg
import pytest

from olist_bi.dashboards import Chart, SpecError, check, dashboards, datasets, filter_targets, stable_uuid
from olist_bi.semantic import query
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import Filter, compile_query
from tests.reference import FILTER_VALUES, assert_matches, for_chart

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


@pytest.mark.parametrize(
    "dashboard, chart", [x for x in CHARTS if x[1].is_semantic], ids=lambda x: getattr(x, "key", getattr(x, "slug", ""))
)
def test_every_semantic_chart_gives_the_raw_files_answer(engine_warehouse, reference, dashboard, chart):
    _, settings, _ = engine_warehouse  # on DuckDB and on ClickHouse
    rows = query.answer(compile_query(chart.query()), settings)
    want = for_chart(reference, chart)
    assert any(v is not None for values in want.values() for v in values), "an empty answer checks nothing"
    assert_matches(rows, want, len(chart.by), what=f"{dashboard.slug}/{chart.key}")


FILTERED = [(d, f, c) for d in dashboards() for f in d.filters for c in filter_targets(d, f) if c.is_semantic]


@pytest.mark.parametrize("dashboard, dimension, chart", FILTERED, ids=[f"{d.slug}/{f}/{c.key}" for d, f, c in FILTERED])
def test_every_filter_narrows_its_charts_as_the_raw_files_do(engine_warehouse, reference, dashboard, dimension, chart):
    _, settings, _ = engine_warehouse  # on DuckDB and on ClickHouse
    q = chart.query()
    if dimension == "purchase_date":
        q.start, q.end = FILTER_VALUES["purchase_date"]
    else:
        q.where.append(Filter(dimension, (FILTER_VALUES[dimension],)))
    compiled = compile_query(q)
    if dimension != "purchase_date":
        assert f"'{FILTER_VALUES[dimension]}'" not in compiled.sql.replace(f"then '{FILTER_VALUES[dimension]}'", "")  # bound, not spliced
        assert FILTER_VALUES[dimension] in compiled.params
    want = for_chart(reference, chart, [dimension])
    assert want != for_chart(reference, chart), "a filter value that changes nothing checks nothing"
    assert_matches(query.answer(compiled, settings), want, len(chart.by), what=f"{dashboard.slug}/{chart.key} with {dimension}")


def test_every_filter_reaches_a_chart():
    for d in dashboards():
        for f in d.filters:
            assert filter_targets(d, f), f"{d.slug}: filter {f} reaches no chart"
    assert len(FILTERED) > 40


def test_dataset_charts_run_on_their_databases(warehouse, ops_url):
    """Each row dataset is a view the tools read as a table (the ETL's in the warehouse, the
    migration's in the operations store), with the rows and columns its charts show."""
    settings, _ = warehouse
    columns = {}
    for name, dataset in datasets().items():
        if dataset.database == "warehouse":
            with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
                rows = con.execute(f"select * from {dataset.view} limit 5").fetchall()
                columns[name] = [r[0] for r in con.description]
                assert (
                    con.execute(f"select count(*) from {dataset.view}").fetchone()
                    == con.execute(f"select count(*) from ({dataset.sql})").fetchone()
                )
        else:
            with psycopg.connect(ops_url) as conn:
                cursor = conn.execute(f"select * from {dataset.view} limit 5")
                rows, columns[name] = cursor.fetchall(), [col.name for col in cursor.description]
        assert rows, name
    for d, c in CHARTS:
        if not c.is_semantic:
            assert set(c.columns) <= set(columns[c.dataset]), (d.slug, c.key, set(c.columns) - set(columns[c.dataset]))


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
    from olist_bi.dashboards import specs as module

    (tmp_path / "datasets.yaml").write_text((module.HERE / "datasets.yaml").read_text())
    (tmp_path / "bad.yaml").write_text(
        "slug: bad\ntitle: Bad\ndescription: d\ncharts:\n  - {key: a, title: A, viz: kpi, metrics: [nope]}\n"
    )
    monkeypatch.setattr(module, "HERE", tmp_path)
    module.dashboards.cache_clear()
    module.datasets.cache_clear()
    try:
        with pytest.raises(SpecError, match="bad.yaml"):
            module.dashboards()
    finally:
        module.dashboards.cache_clear()
        module.datasets.cache_clear()


def test_every_dashboard_says_how_fresh_its_data_is(warehouse, source_rows):
    settings, result = warehouse
    for d in dashboards():  # Platform health shows the runs themselves; a viewer-readable chart there would list it for viewers
        assert any(c.dataset == "freshness" for c in d.charts) == (d.audience == "business"), f"{d.slug}: how fresh its data is"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        [(published_at, run_id, last_order)] = con.execute(datasets()["freshness"].sql).fetchall()
    assert run_id == result.run_id
    assert last_order.isoformat() == max(o["order_purchase_timestamp"] for o in source_rows["orders"])[:10]
    assert published_at is not None

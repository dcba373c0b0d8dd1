"""On the real Superset: every semantic chart, alone and under each native filter of its
dashboard, answers as the raw CSVs do (tests/reference.py). The request is the chart's saved
query context with the filter added as Superset's dashboard adds a native filter's value
(`extra_form_data`: an IN filter on the column, the time range on the temporal filter),
without the viz's post-processing, so the rows are the dataset's grouped answer."""

from __future__ import annotations

import datetime as dt
import json

from olist_bi.dashboards import dashboards, filter_targets
from olist_bi.semantic.catalog import load
from olist_bi.bi.superset import provision
from tests.reference import FILTER_VALUES, assert_matches, for_chart


def _request(client, chart_id: int, dimension: str | None) -> dict:
    chart = client.get(f"/api/v1/chart/{chart_id}")["result"]
    context = json.loads(chart["query_context"])
    assert context["datasource"]["id"] == chart["datasource_id"], "the saved query context names another dataset"
    [query] = context["queries"]
    query["post_processing"] = []
    if dimension == "purchase_date":
        start, end = FILTER_VALUES["purchase_date"]
        span = f"{start.isoformat()} : {(end + dt.timedelta(days=1)).isoformat()}"  # Superset's end is exclusive
        query["time_range"] = span
        for f in query["filters"]:
            if f["op"] == "TEMPORAL_RANGE":
                f["val"] = span
    elif dimension:
        query["filters"].append({"col": dimension, "op": "IN", "val": [FILTER_VALUES[dimension]]})
    context.update(force=True, result_type="full", result_format="json")
    return context


def _rows(result: dict, chart) -> list[tuple]:
    catalog = load()

    def cell(row, name):
        value = row[name]
        if name in catalog.dimensions and catalog.dimensions[name].type == "time" and value is not None:
            return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).date()
        return value

    names = [g.dimension for g in chart.by] + list(chart.metrics)
    return [tuple(cell(row, n) for n in names) for row in result["data"]]


def test_native_filters_scope_the_charts_the_specs_target(superset):
    _, client, _ = superset
    ids = provision.ids_by_uuid(client)
    for spec in dashboards():
        metadata = json.loads(client.get(f"/api/v1/dashboard/{ids[spec.uuid()]}")["result"]["json_metadata"])
        scoped = {n["id"].removeprefix("NATIVE_FILTER-"): set(n["chartsInScope"]) for n in metadata.get("native_filter_configuration", [])}
        assert set(scoped) == set(spec.filters), spec.slug
        for name, charts in scoped.items():
            assert charts == {ids[spec.chart_uuid(c)] for c in filter_targets(spec, name)}, f"{spec.slug}: filter {name}"


def test_every_chart_under_each_filter_answers_as_the_raw_files(superset, reference):
    _, client, _ = superset
    ids = provision.ids_by_uuid(client)
    checked = 0
    for spec in dashboards():
        for chart in (c for c in spec.charts if c.is_semantic):
            chart_id = ids[spec.chart_uuid(chart)]
            for dimension in (None, *(f for f in spec.filters if chart in filter_targets(spec, f))):
                [result] = client.post("/api/v1/chart/data", _request(client, chart_id, dimension))["result"]
                want = for_chart(reference, chart, [dimension] if dimension else [])
                assert_matches(
                    _rows(result, chart), want, len(chart.by), chart.limit, f"{spec.slug}/{chart.key} with {dimension or 'no filter'}"
                )
                checked += 1
    assert checked == sum(
        1 + sum(1 for f in d.filters if c in filter_targets(d, f)) for d in dashboards() for c in d.charts if c.is_semantic
    )


def test_the_seller_scorecard_follows_the_seller_state_filter(superset, reference):
    from tests.metabase.test_assets import sp_top_sellers

    _, client, _ = superset
    ids = provision.ids_by_uuid(client)
    sellers = next(d for d in dashboards() if d.slug == "sellers")
    chart = next(c for c in sellers.charts if c.key == "scorecard")
    chart_id = ids[sellers.chart_uuid(chart)]
    assert client.get(f"/api/v1/chart/{chart_id}")["result"]["description"] == "Not narrowed by the dashboard's Purchase date filter."
    [result] = client.post("/api/v1/chart/data", _request(client, chart_id, "seller_state"))["result"]
    assert {row["seller_state"] for row in result["data"]} == {"SP"}
    assert [row["seller_id"] for row in result["data"]] == sp_top_sellers(reference)

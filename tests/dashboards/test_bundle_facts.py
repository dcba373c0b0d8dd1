"""Facts of the BI tools' configuration, asserted without a server: the native filters of
Superset's dashboards point at the columns the specs name, on a dataset that has them; no
Metabase question needs a filter value to run; no chart is left on a default number format,
and money is in reais (R$) wherever it shows."""

from __future__ import annotations

import re

import yaml

from olist_bi.dashboards import dashboards, datasets
from olist_bi.bi.metabase.assets import ASSETS_DIR
from olist_bi.semantic.catalog import load
from olist_bi.bi.superset import bundle


def built() -> bundle.Bundle:
    return bundle.build("duckdb+olist:///w.duckdb", "postgresql+psycopg2://r:XXXXXXXXXX@h/db", {name: ["x"] for name in datasets()})


def test_native_filters_target_the_columns_the_specs_name():
    files = built().files
    checked = 0
    for spec in dashboards():
        metadata = yaml.safe_load(files[f"dashboards/{spec.slug}.yaml"])["metadata"]
        filters = {f["id"]: f for f in metadata["native_filter_configuration"]}
        assert set(filters) == {f"NATIVE_FILTER-{name}" for name in spec.filters}, spec.slug
        for name in spec.filters:
            native = filters[f"NATIVE_FILTER-{name}"]
            if native["filterType"] == "filter_time":
                continue  # a time filter applies to each chart's own time column
            [target] = native["targets"]
            assert target["column"]["name"] == name, (spec.slug, name)
            dataset = next(
                yaml.safe_load(text)
                for path, text in files.items()
                if path.startswith("datasets/") and yaml.safe_load(text)["uuid"] == target["datasetUuid"]
            )
            assert name in {c["column_name"] for c in dataset["columns"]}, (
                f"{spec.slug}: filter {name} on {dataset['table_name']}, which has no such column"
            )
            checked += 1
    assert checked == sum(1 for d in dashboards() for f in d.filters if f != "purchase_date")  # every select filter


def test_no_metabase_question_requires_a_filter_value():
    tags = 0
    for path in sorted((ASSETS_DIR / "dashboards").glob("*.yaml")):
        for card in yaml.safe_load(path.read_text(encoding="utf-8"))["cards"]:
            for name, tag in card["template_tags"].items():
                tags += 1
                assert tag.get("required") is not True, f"{path.name}/{card['key']}: tag {name} is required"
                assert "[[" in card["sql"] and "{{" + name + "}}" in card["sql"], (
                    f"{path.name}/{card['key']}: tag {name} outside an optional clause"
                )
    assert tags > 0


# Money: metrics in reais (unit BRL) and row columns declared as currency in datasets.yaml.
MONEY = {m.name for m in load().metrics.values() if m.unit == "BRL"} | {
    c.name for d in datasets().values() for c in d.columns.values() if c.format == "currency"
}
NUMBER_KEY = {
    "big_number_total": "y_axis_format",
    "big_number": "y_axis_format",
    "echarts_timeseries_line": "y_axis_format",
    "echarts_timeseries_bar": "y_axis_format",
    "pie": "number_format",
    "heatmap_v2": "y_axis_format",
}


def _metric_names(params: dict) -> list[str]:
    """Saved metrics by name; a row column's value (`MAX(column)`) by its column, whatever its label."""
    metrics = params.get("metrics") or [params["metric"]]
    names = []
    for m in metrics:
        column = re.fullmatch(r"MAX\((\w+)\)", m.get("sqlExpression") or "") if isinstance(m, dict) else None
        names.append(m if isinstance(m, str) else column.group(1) if column else m["label"])
    return names


def test_no_superset_chart_is_left_on_a_default_format():
    files = built().files
    charts = [yaml.safe_load(text) for path, text in files.items() if path.startswith("charts/")]
    assert len(charts) == sum(len(d.charts) for d in dashboards())
    for chart in charts:
        params, name = chart["params"], chart["slice_name"]
        if params["viz_type"] == "table":
            config = params["column_config"]
            shown = params.get("all_columns") or _metric_names(params)
            assert set(shown) <= set(config), f"{name}: columns without a format: {set(shown) - set(config)}"
            for column in shown:
                entry = config[column]
                assert {"d3NumberFormat", "d3TimeFormat"} & set(entry) or entry.get("customColumnName"), f"{name}: {column} has no format"
                assert (entry.get("currencyFormat", {}).get("symbol") == "BRL") == (column in MONEY), f"{name}: {column}"
            if params["query_mode"] == "raw":
                assert all(config[c].get("customColumnName") for c in shown), f"{name}: a column without a header"
            continue
        assert params.get(NUMBER_KEY[params["viz_type"]]), f"{name}: left on Superset's default number format"
        money = [m for m in _metric_names(params) if m in MONEY]
        assert (params.get("currency_format") == {"symbol": "BRL", "symbolPosition": "prefix"}) == bool(money), (
            f"{name}: R$ on money, and only on money"
        )
    metrics = [m for path, text in files.items() if path.startswith("datasets/") for m in yaml.safe_load(text)["metrics"]]
    for metric in metrics:
        assert metric["d3format"], metric["metric_name"]
        assert (metric.get("currency") or {}).get("symbol") == ("BRL" if metric["metric_name"] in MONEY else None), metric["metric_name"]


def test_every_metabase_column_has_a_title_and_money_is_in_reais():
    for path in sorted((ASSETS_DIR / "dashboards").glob("*.yaml")):
        for card in yaml.safe_load(path.read_text(encoding="utf-8"))["cards"]:
            settings = card["visualization_settings"]["column_settings"]
            assert settings, f"{path.name}/{card['key']}: no column settings"
            for key, column in settings.items():
                assert column.get("column_title"), f"{path.name}/{card['key']}: {key} has no title"
                name = key.split('"')[3]
                if name in MONEY:
                    assert (column.get("number_style"), column.get("currency")) == ("currency", "BRL"), f"{path.name}/{card['key']}: {name}"


def test_buckets_keep_their_own_order_in_both_tools():
    """A chart grouped by a dimension with its own order (delivery_delay's buckets) lists them in
    that order: Superset's bar chart would sort the names alphabetically, so it is a table with
    cell bars sorted by the buckets' place; Metabase's question orders by the place."""
    from olist_bi.bi.metabase import assets
    from olist_bi.semantic.compiler import order_sql

    catalog = load()
    ordered = [(d, c) for d in dashboards() for c in d.charts if c.is_semantic and c.by and catalog.dimensions[c.by[0].dimension].order]
    assert ordered, "no chart reads a dimension with its own order"
    files = built().files
    for dashboard, chart in ordered:
        place = order_sql(catalog, catalog.dimensions[chart.by[0].dimension])
        (superset,) = [
            yaml.safe_load(t)
            for p, t in files.items()
            if p.startswith("charts/") and yaml.safe_load(t)["uuid"] == dashboard.chart_uuid(chart)
        ]
        params = superset["params"]
        assert params["viz_type"] == "table" and params["show_cell_bars"] and params["order_desc"] is False, chart.key
        assert params["timeseries_limit_metric"]["sqlExpression"] == f"MIN({place})", chart.key
        question = next(card for card in assets.dashboard_assets(dashboard, catalog)["cards"] if card["key"] == chart.key)
        assert f"order by {place}" in question["sql"], chart.key


def _charts() -> list[dict]:
    return [yaml.safe_load(text) for path, text in built().files.items() if path.startswith("charts/")]


def test_percent_axes_have_the_decimals_their_ticks_need():
    """A percent axis over 0.02%-0.2% said "0.2%, 0.1%, 0.1%, 0.1%" with `.1%`: axes keep up to
    three decimals and drop the zeros they do not need."""
    axes = [
        c["params"]["y_axis_format"]
        for c in _charts()
        if c["params"]["viz_type"].startswith("echarts_timeseries") and "%" in c["params"]["y_axis_format"]
    ]
    assert axes and set(axes) == {".3~%"}
    assert bundle.AXIS_FORMAT["percent"] == ".3~%"


def test_heatmaps_leave_room_for_their_axis_labels():
    """Without a bottom margin Superset's heatmap grid reaches the canvas's edge and its x labels are cut off."""
    heatmaps = [c["params"] for c in _charts() if c["params"]["viz_type"] == "heatmap_v2"]
    assert heatmaps and all(isinstance(p["bottom_margin"], int) and p["bottom_margin"] > 0 for p in heatmaps)


def test_vertical_bars_with_more_than_two_a_column_turn_their_labels():
    checked = 0
    for spec in dashboards():
        for chart in spec.charts:
            if chart.viz != "bar" or chart.orientation != "vertical" or any(g.grain for g in chart.by if chart.is_semantic):
                continue
            params = next(c["params"] for c in _charts() if c["uuid"] == spec.chart_uuid(chart))
            if params["viz_type"] != "echarts_timeseries_bar" or params.get("time_grain_sqla"):
                continue
            crowded = chart.limit is None or chart.limit > 2 * chart.width
            assert (params.get("xAxisLabelRotation") == 90) == crowded, (spec.slug, chart.key)
            checked += crowded
    assert checked >= 3  # late deliveries and sellers by state, returns by month since the first order, runs

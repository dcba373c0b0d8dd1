"""Superset's asset bundle, generated from the dashboard specs and the semantic layer.

One ZIP of YAML files, imported with POST /api/v1/assets/import/ (which overwrites by uuid):
the two databases, a virtual dataset per semantic model (its dimensions as columns, its
metrics as saved metrics) and per row dataset, a chart per spec chart, a dashboard per spec
with its native filters. Every uuid derives from a name, so importing again updates in place.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import yaml

from olist_bi.dashboards import Chart, Dashboard, chart_source, dashboards, datasets, filter_targets, not_narrowed, stable_uuid
from olist_bi.semantic.catalog import Catalog, load
from olist_bi.semantic.flat import SCHEMA as SEMANTIC_SCHEMA
from olist_bi.semantic.flat import WINDOW_COLUMN, FlatModel, flat_model
from olist_bi.semantic.compiler import order_sql

VERSION = "1.0.0"
ROOT = "olist_bi_assets"
WAREHOUSE = "olist_warehouse"
OPERATIONS = "olist_operations"
GRAINS = {"day": "P1D", "week": "P1W", "month": "P1M", "quarter": "P3M", "year": "P1Y"}
# Number formats by the specs' format names (metrics.yaml, datasets.yaml): values in full
# (KPIs, tables, tooltips of pies) and compact on chart axes. Money is Brazilian reais: the
# currency code on the metric and the chart makes Superset prefix "R$". A percent axis has as
# many decimals as its ticks need to differ, up to three ("0.05%, 0.1%, 0.15%": `~` trims zeros).
D3FORMAT = {"currency": ",.2f", "count": ",d", "percent": ".1%", "decimal": ",.2f", "id": "d"}
AXIS_FORMAT = {"currency": "SMART_NUMBER", "count": "SMART_NUMBER", "percent": ".3~%", "decimal": ",.1f", "id": "d"}
TIME_FORMAT = "%Y-%m-%d %H:%M"
CURRENCY = {"symbol": "BRL", "symbolPosition": "prefix"}


def _currency(fmt: str) -> dict:
    """The chart parameter that puts R$ on a money chart's numbers (nothing for others)."""
    return {"currency_format": CURRENCY} if fmt == "currency" else {}


def _column_config(columns: dict[str, tuple[str | None, str]]) -> dict:
    """A table chart's per-column header and format: name -> (header or None, format)."""
    config = {}
    for name, (label, fmt) in columns.items():
        entry = {"customColumnName": label} if label else {}
        if fmt in ("date", "datetime"):
            entry["d3TimeFormat"] = TIME_FORMAT if fmt == "datetime" else "%Y-%m-%d"
        elif fmt in D3FORMAT:
            entry["d3NumberFormat"] = D3FORMAT[fmt]
            if fmt == "currency":
                entry["currencyFormat"] = CURRENCY
        config[name] = entry
    return config


NO_FILTER = "No filter"

# The warehouse connection: read-only, no file access, no extension loading, configuration
# locked, bounded memory and threads (DESIGN.md: SQL Lab must not reach server files).
WAREHOUSE_CONNECT_ARGS = {
    "read_only": True,
    "config": {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "lock_configuration": True,
        "memory_limit": "1GB",
        "threads": 2,
    },
}


@dataclass(frozen=True)
class BundleDataset:
    key: str  # semantic model name or row dataset name
    uuid: str
    table_name: str
    database: str  # WAREHOUSE or OPERATIONS
    sql: str | None  # None: a physical table (schema.table_name)
    time_column: str | None
    columns: tuple[str, ...]
    metric_format: dict[str, str] = field(default_factory=dict)
    schema: str | None = None


def database_uuid(name: str) -> str:
    return stable_uuid("database", name)


def semantic_dataset(flat: FlatModel, catalog: Catalog) -> BundleDataset:
    name = flat.model.name
    return BundleDataset(
        key=name,
        uuid=stable_uuid("dataset", name),
        table_name=flat.view,
        schema=SEMANTIC_SCHEMA,
        database=WAREHOUSE,
        sql=None,  # the view the ETL publishes: no SQL for Superset to parse on every request
        time_column=flat.time_dimensions[0] if flat.time_dimensions else None,
        columns=flat.columns,
        metric_format={m: catalog.metrics[m].format for m in flat.metrics},
    )


def row_dataset(name: str, columns: list[str]) -> BundleDataset:
    spec = datasets()[name]
    schema, _, table = spec.view.rpartition(".")
    return BundleDataset(
        key=name,
        uuid=stable_uuid("dataset", name),
        table_name=table,
        schema=schema or None,
        database=WAREHOUSE if spec.database == "warehouse" else OPERATIONS,
        sql=None,  # its view (Dataset.view): no SQL for Superset to parse, and no connection, on every request
        time_column=None,
        columns=tuple(columns),
    )


@dataclass
class Bundle:
    """What was generated, with the lookups provisioning needs afterwards."""

    files: dict[str, str]
    datasets: dict[str, BundleDataset]
    dashboards: tuple[Dashboard, ...]

    def zip_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path, text in sorted(self.files.items()):
                z.writestr(f"{ROOT}/{path}", text)
        return buffer.getvalue()


def chart_dataset(chart: Chart, catalog: Catalog, bundle_datasets: dict[str, BundleDataset]) -> BundleDataset:
    return bundle_datasets[chart_source(chart, catalog)]


def build(
    warehouse_uri: str,
    operations_uri: str,
    row_columns: dict[str, list[str]],
    catalog: Catalog | None = None,
    clickhouse_database: str | None = None,
) -> Bundle:
    """Generate the bundle. `row_columns` gives the columns of each row dataset (read from
    its database by the caller); `operations_uri` carries no password (given at import).
    With `clickhouse_database`, the warehouse is that ClickHouse database (`on_clickhouse`)."""
    catalog = catalog or load()
    specs = dashboards()
    files: dict[str, str] = {
        "metadata.yaml": _yaml({"version": VERSION, "type": "assets", "timestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat()})
    }
    files[f"databases/{WAREHOUSE}.yaml"] = _yaml(
        _database(WAREHOUSE, warehouse_uri, {"engine_params": {"connect_args": WAREHOUSE_CONNECT_ARGS}}, sqllab=True)
    )
    files[f"databases/{OPERATIONS}.yaml"] = _yaml(_database(OPERATIONS, operations_uri, {"engine_params": {}}, sqllab=True))

    bundle_datasets: dict[str, BundleDataset] = {}
    for name in catalog.models:
        flat = flat_model(name, catalog)
        ds = semantic_dataset(flat, catalog)
        bundle_datasets[name] = ds
        files[f"datasets/{ds.database}/{ds.table_name}.yaml"] = _yaml(_semantic_dataset_yaml(ds, flat, catalog))
    for name in datasets():
        ds = row_dataset(name, row_columns[name])
        bundle_datasets[name] = ds
        files[f"datasets/{ds.database}/{ds.table_name}.yaml"] = _yaml(_row_dataset_yaml(ds))
    tables = [(ds.database, ds.table_name) for ds in bundle_datasets.values()]
    if len(set(tables)) != len(tables):  # Superset keeps one dataset per database and name: the import would drop one silently
        raise ValueError(f"two datasets share a name: {sorted(t for t in tables if tables.count(t) > 1)}")

    for dashboard in specs:
        for chart in dashboard.charts:
            ds = chart_dataset(chart, catalog, bundle_datasets)
            files[f"charts/{dashboard.slug}-{chart.key}.yaml"] = _yaml(_chart_yaml(dashboard, chart, ds, catalog))
        files[f"dashboards/{dashboard.slug}.yaml"] = _yaml(_dashboard_yaml(dashboard, catalog, bundle_datasets))
    if clickhouse_database:
        on_clickhouse(files, bundle_datasets, clickhouse_database)
    return Bundle(files, bundle_datasets, specs)


def on_clickhouse(files: dict[str, str], bundle_datasets: dict[str, BundleDataset], database: str) -> None:
    """The warehouse's side of the bundle for ClickHouse (OLIST_WAREHOUSE_ENGINE=clickhouse):
    no DuckDB connection arguments (the server's olist_reader profile sets the limits), the
    semantic datasets in `<database>_semantic`, and every SQL the specs write in DuckDB's
    dialect (row datasets' SQL, saved metrics, a chart's SQL metrics, filters and orderings)
    transpiled as the models are (olist_bi.engines.clickhouse.dialect)."""
    from olist_bi.engines.clickhouse.dialect import to_clickhouse
    from olist_bi.engines.clickhouse.warehouse import Databases, served_names

    transpile = partial(to_clickhouse, tables=served_names(Databases(database)), database=database)
    on_warehouse = {ds.uuid for ds in bundle_datasets.values() if ds.database == WAREHOUSE}
    for path, text in list(files.items()):
        data = yaml.safe_load(text)
        if path == f"databases/{WAREHOUSE}.yaml":
            data["extra"]["engine_params"] = {}
        elif path.startswith(f"datasets/{WAREHOUSE}/"):
            _dataset_on_clickhouse(data, database, transpile)
        elif path.startswith("charts/") and data["dataset_uuid"] in on_warehouse:
            _chart_on_clickhouse(data)
        else:
            continue
        files[path] = _yaml(data)


def _dataset_on_clickhouse(data: dict, database: str, transpile: Callable[[str], str]) -> None:
    """A warehouse dataset on ClickHouse: its schema `<database>_semantic`, its SQL and its saved metrics transpiled."""
    if data["schema"] == SEMANTIC_SCHEMA:
        data["schema"] = f"{database}_semantic"
    if data["sql"]:
        data["sql"] = transpile(data["sql"])
    for metric in data["metrics"]:
        metric["expression"] = _clickhouse_expression(metric["expression"])


def _chart_on_clickhouse(data: dict) -> None:
    """A chart on a warehouse dataset on ClickHouse: the SQL expressions of its params and query context transpiled."""
    data["params"] = _clickhouse_expressions(data["params"])
    data["query_context"] = json.dumps(_clickhouse_expressions(json.loads(data["query_context"])))


def _clickhouse_expression(sql: str) -> str:
    """A SQL expression in DuckDB's dialect, transpiled to ClickHouse's."""
    from olist_bi.engines.clickhouse.dialect import to_clickhouse

    return to_clickhouse(f"select {sql}").removeprefix("SELECT ")


def _clickhouse_expressions(node):
    """A chart's params or query context with every `sqlExpression` in it transpiled to ClickHouse's dialect."""
    if isinstance(node, dict):
        return {
            k: _clickhouse_expression(v) if k == "sqlExpression" and isinstance(v, str) else _clickhouse_expressions(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_clickhouse_expressions(v) for v in node]
    return node


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def _database(name: str, uri: str, extra: dict, sqllab: bool) -> dict:
    return {
        "database_name": name,
        "sqlalchemy_uri": uri,
        "uuid": database_uuid(name),
        "version": VERSION,
        "expose_in_sqllab": sqllab,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "cache_timeout": None,
        "extra": {"allows_virtual_table_explore": True, "metadata_params": {}, **extra},
    }


def _dataset_common(ds: BundleDataset, description: str) -> dict:
    return {
        "table_name": ds.table_name,
        "schema": ds.schema,
        "sql": ds.sql,
        "main_dttm_col": ds.time_column,
        "description": description,
        "uuid": ds.uuid,
        "database_uuid": database_uuid(ds.database),
        "version": VERSION,
        "filter_select_enabled": True,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "cache_timeout": None,
        "params": None,
        "template_params": None,
        "extra": None,
    }


def _semantic_dataset_yaml(ds: BundleDataset, flat: FlatModel, catalog: Catalog) -> dict:
    columns = []
    for name in flat.dimensions:
        d = catalog.dimensions[name]
        columns.append(
            {
                "column_name": name,
                "verbose_name": d.label,
                "description": d.description,
                "is_dttm": d.type == "time",
                "type": "DATE" if d.type == "time" else ("INTEGER" if d.type == "integer" else "VARCHAR"),
                "groupby": True,
                "filterable": True,
                "is_active": True,
            }
        )
    columns.append(
        {
            "column_name": WINDOW_COLUMN,
            "verbose_name": "In the reporting window",
            "type": "BOOLEAN",
            "is_dttm": False,
            "groupby": False,
            "filterable": True,
            "is_active": True,
            "description": "The row's period is complete (mart_reporting_window): time series show these rows only.",
        }
    )
    for name in flat.measure_columns:
        columns.append({"column_name": name, "is_dttm": False, "groupby": False, "filterable": True, "is_active": True})
    metrics = [
        {
            "metric_name": m,
            "verbose_name": catalog.metrics[m].label,
            "expression": expression,
            "description": catalog.metrics[m].description,
            "d3format": D3FORMAT[catalog.metrics[m].format],
            "currency": CURRENCY if catalog.metrics[m].format == "currency" else None,
            "warning_text": None,
            "extra": None,
        }
        for m, expression in flat.metrics.items()
    ]
    return {**_dataset_common(ds, flat.model.description), "columns": columns, "metrics": metrics}


def _row_dataset_yaml(ds: BundleDataset) -> dict:
    declared = datasets()[ds.key].columns
    columns = [
        {
            "column_name": c,
            "verbose_name": declared[c].label if c in declared else None,
            "groupby": True,
            "filterable": True,
            "is_active": True,
            "is_dttm": declared[c].format in ("date", "datetime") if c in declared else c.endswith("_at"),
        }
        for c in ds.columns
    ]
    count = {
        "metric_name": "count",
        "verbose_name": "Rows",
        "expression": "count(*)",
        "d3format": ",d",
        "description": None,
        "warning_text": None,
        "extra": None,
    }
    return {**_dataset_common(ds, datasets()[ds.key].description), "columns": columns, "metrics": [count]}


def _time_filter(ds: BundleDataset) -> list[dict]:
    if not ds.time_column:
        return []
    return [
        {"clause": "WHERE", "subject": ds.time_column, "operator": "TEMPORAL_RANGE", "comparator": NO_FILTER, "expressionType": "SIMPLE"}
    ]


def _axis(column: str, grain: str | None) -> dict:
    axis = {"columnType": "BASE_AXIS", "sqlExpression": column, "label": column, "expressionType": "SQL", "isColumnReference": True}
    if grain:
        axis["timeGrain"] = grain
    return axis


def _adhoc_value(column: str) -> dict:
    return {"expressionType": "SQL", "sqlExpression": f"MAX({column})", "label": column, "hasCustomLabel": True}


def _chart_yaml(dashboard: Dashboard, chart: Chart, ds: BundleDataset, catalog: Catalog) -> dict:
    params, query = _chart_params(chart, ds, catalog)
    params = {"datasource": "0__table", "viz_type": params["viz_type"], **params}
    query_context = {
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [as_the_frontend_builds(params, query)],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }
    return {
        "slice_name": chart.title,
        "description": not_narrowed(dashboard, chart, catalog),
        "viz_type": params["viz_type"],
        "params": params,
        "query_context": json.dumps(query_context),
        "cache_timeout": None,
        "uuid": dashboard.chart_uuid(chart),
        "dataset_uuid": ds.uuid,
        "version": VERSION,
    }


def _label(metric) -> str:
    return metric if isinstance(metric, str) else metric["label"]


def as_the_frontend_builds(params: dict, query: dict) -> dict:
    """The chart's query as Superset's own frontend builds it from the same form data (each
    viz plugin's buildQuery in Superset 6.1), so that the saved query context, which the
    after-publish warm-up runs, has the cache key of the request a dashboard sends. Checked
    chart by chart against what Chromium sends (tests/superset/test_browser.py)."""
    viz = params["viz_type"]
    q = {
        **query,
        "series_limit": 0,
        "group_others_when_limit_reached": False,
        "annotation_layers": [],
        "applied_time_extras": {},
        "custom_form_data": {},
        "custom_params": {},
        "url_params": {},
    }
    if viz == "big_number_total":
        _big_number_total_query(q)
    elif viz == "big_number":
        _big_number_query(params, q)
    elif viz in ("echarts_timeseries_line", "echarts_timeseries_bar"):
        _timeseries_query(params, q)
    elif viz == "heatmap_v2":
        _heatmap_query(params, q)
    elif viz == "pie":
        _pie_query(params, q)
    elif viz == "table":
        _table_query(params, q)
    return q


def _big_number_total_query(q: dict) -> None:
    """The big number's buildQuery: no row limit, ordering or post-processing."""
    for key in ("row_limit", "orderby", "post_processing"):
        q.pop(key, None)


def _big_number_query(params: dict, q: dict) -> None:
    """The big number with a trend line's buildQuery: no row limit or ordering, the metric pivoted over the x axis."""
    for key in ("row_limit", "orderby"):
        q.pop(key, None)
    metric = _label(params["metric"])
    q["post_processing"] = [
        {
            "operation": "pivot",
            "options": {
                "index": [params["x_axis"]],
                "columns": [],
                "aggregates": {metric: {"operator": "mean"}},
                "drop_missing_columns": True,
            },
        },
        {"operation": "flatten"},
    ]


def _timeseries_query(params: dict, q: dict) -> None:
    """The line and bar charts' buildQuery: the metrics pivoted over the x axis, sorted as the chart asks, then flattened."""
    metrics = [_label(m) for m in q["metrics"]]
    pipeline = [
        {
            "operation": "pivot",
            "options": {
                "index": [params["x_axis"]],
                "columns": list(params.get("groupby") or []),
                "aggregates": {m: {"operator": "mean"} for m in metrics},
                "drop_missing_columns": False,
            },
        }
    ]
    if params.get("x_axis_sort"):
        pipeline.append({"operation": "sort", "options": {"by": params["x_axis_sort"], "ascending": params["x_axis_sort_asc"]}})
    pipeline.append({"operation": "flatten"})
    q.update(
        orderby=[[q["metrics"][0], False]], series_columns=list(params.get("groupby") or []), time_offsets=[], post_processing=pipeline
    )


def _heatmap_query(params: dict, q: dict) -> None:
    """The heatmap's buildQuery: ordered by both axes, the metric ranked."""
    q.update(
        orderby=[[params["x_axis"], True], [params["groupby"], True]],
        post_processing=[{"operation": "rank", "options": {"metric": params["metric"]}}],
    )


def _pie_query(params: dict, q: dict) -> None:
    """The pie's buildQuery: each slice's contribution to the metric."""
    metric = params["metric"]
    q.update(
        post_processing=[{"operation": "contribution", "options": {"columns": [metric], "rename_columns": [f"{metric}__contribution"]}}]
    )


def _table_query(params: dict, q: dict) -> None:
    """The table's buildQuery: no post-processing; raw mode drops the metrics, aggregate mode limits series by its sort metric."""
    q.update(post_processing=[], time_offsets=[])
    if params.get("query_mode") == "raw":
        q.pop("metrics", None)
    else:
        q["series_limit_metric"] = params["timeseries_limit_metric"]


def _forecast_params(chart: Chart, columns: list[str], declared: dict, filters: list, base_query: dict, limit: int) -> tuple[dict, dict]:
    """A line of the actuals, then the forecast inside its 95% band, the 80% band darker within.
    Superset's line chart draws a band between series labelled `<name>__yhat_lower` and
    `<name>__yhat_upper`, and `<name>__yhat` as its forecast line (its ForecastSeriesEnum, for
    the output of its own Prophet analytics); rows' values reach it under those labels."""
    month, actual, forecast, low95, high95, low80, high80 = columns
    name = declared[forecast].label
    labelled = [
        (actual, declared[actual].label),
        (forecast, f"{name}__yhat"),
        (low95, f"{name}__yhat_lower"),
        (high95, f"{name}__yhat_upper"),
        (low80, "80% interval__yhat_lower"),
        (high80, "80% interval__yhat_upper"),
    ]
    metrics = [
        {"expressionType": "SQL", "sqlExpression": f"MAX({column})", "label": label, "hasCustomLabel": True} for column, label in labelled
    ]
    fmt = declared[actual].format
    params = {
        "viz_type": "echarts_timeseries_line",
        "x_axis": month,
        "time_grain_sqla": GRAINS["month"],
        "metrics": metrics,
        "groupby": [],
        "row_limit": limit,
        "adhoc_filters": filters,
        "y_axis_format": AXIS_FORMAT[fmt],
        **_currency(fmt),
        "show_legend": False,
        "rich_tooltip": True,
        "opacity": 0.25,
        "area": False,
        "stack": None,
        "markerEnabled": False,
    }
    query = {**base_query, "columns": [_axis(month, GRAINS["month"])], "metrics": metrics, "orderby": [[metrics[0], False]]}
    query["extras"] = {**query["extras"], "time_grain_sqla": GRAINS["month"]}
    return params, query


# A time series shows complete periods only: the semantic layer's reporting window, as a
# custom SQL filter over the flat view's boolean column (plain: Superset refuses subqueries there).
_COMPLETE_PERIODS = [
    {
        "expressionType": "SQL",
        "sqlExpression": WINDOW_COLUMN,
        "clause": "WHERE",
        "subject": None,
        "operator": None,
        "comparator": None,
        "isExtra": False,
        "isNew": False,
        "filterOptionName": "complete_periods",
    }
]


def _chart_params(chart: Chart, ds: BundleDataset, catalog: Catalog) -> tuple[dict, dict]:
    """Superset `params` (the chart's form data) and the query of its query_context."""
    filters = _time_filter(ds) + (_COMPLETE_PERIODS if chart.complete_periods else [])
    limit = chart.limit or 10_000
    grain = _time_grain(chart, catalog)
    fmt = catalog.metrics[chart.metrics[0]].format if chart.metrics else "count"  # a row chart formats its declared columns
    base_query = _base_query(chart, ds, limit, grain)
    if not chart.is_semantic:
        return _row_chart_params(chart, filters, base_query, limit)
    return _semantic_chart_params(chart, catalog, filters, base_query, limit, grain, fmt)


def _time_grain(chart: Chart, catalog: Catalog) -> str | None:
    """A semantic chart's Superset time grain: that of its first time dimension in `by` (its default grain unless given), or None."""
    if not chart.is_semantic:
        return None
    return next(
        (
            GRAINS[g.grain or catalog.dimensions[g.dimension].default_grain]
            for g in chart.by
            if catalog.dimensions[g.dimension].type == "time"
        ),
        None,
    )


def _base_query(chart: Chart, ds: BundleDataset, limit: int, grain: str | None) -> dict:
    """What every query of the chart's query context has: its filters, complete periods, row limit and time grain."""
    query_filters = [{"col": ds.time_column, "op": "TEMPORAL_RANGE", "val": NO_FILTER}] if ds.time_column else []
    where = f"({WINDOW_COLUMN})" if chart.complete_periods else ""
    base_query = {
        "filters": query_filters,
        "extras": {"having": "", "where": where},
        "row_limit": limit,
        "order_desc": True,
        "post_processing": [],
    }
    if grain:
        base_query["extras"]["time_grain_sqla"] = grain
    return base_query


def _row_chart_params(chart: Chart, filters: list, base_query: dict, limit: int) -> tuple[dict, dict]:
    """A row dataset's chart: a table of its rows, a forecast, or bars of its values over its first column."""
    columns = list(chart.columns)
    order = chart.order_by or columns[0]
    declared = datasets()[chart.dataset].columns
    if chart.viz == "table":
        return _row_table_params(chart, columns, order, declared, filters, base_query, limit)
    if chart.viz == "forecast":
        return _forecast_params(chart, columns, declared, filters, base_query, limit)
    return _row_bar_params(chart, columns, declared, filters, base_query, limit)


def _row_table_params(
    chart: Chart, columns: list[str], order: str, declared: dict, filters: list, base_query: dict, limit: int
) -> tuple[dict, dict]:
    """A table of a row dataset's rows, sorted by `order`, with the declared headers and formats."""
    params = {
        "viz_type": "table",
        "query_mode": "raw",
        "all_columns": columns,
        "order_by_cols": [json.dumps([order, chart.sort != "desc"])],
        "row_limit": limit,
        "adhoc_filters": filters,
        "server_pagination": False,
        "include_search": limit > 10,
        "show_cell_bars": limit > 10,  # no search box or bars over a few rows
        "column_config": _column_config({c: (declared[c].label, declared[c].format) for c in columns}),
    }
    return params, {**base_query, "columns": columns, "metrics": [], "orderby": [[order, chart.sort != "desc"]]}


def _row_bar_params(chart: Chart, columns: list[str], declared: dict, filters: list, base_query: dict, limit: int) -> tuple[dict, dict]:
    """Bars of a row dataset's values (every column after the first) over its first column."""
    values = [_adhoc_value(c) for c in columns[1:]]
    fmt = declared[columns[1]].format
    params = {
        "viz_type": "echarts_timeseries_bar",
        "x_axis": columns[0],
        "metrics": values,
        "groupby": [],
        "row_limit": limit,
        "adhoc_filters": filters,
        "orientation": "vertical",
        "x_axis_sort_asc": True,
        "show_legend": True,
        "y_axis_format": AXIS_FORMAT[fmt],
        **_currency(fmt),
    }
    if _crowded(chart):
        params["xAxisLabelRotation"] = 90
    return params, {**base_query, "columns": [_axis(columns[0], None)], "metrics": values, "orderby": [[values[0], False]]}


def _semantic_chart_params(
    chart: Chart, catalog: Catalog, filters: list, base_query: dict, limit: int, grain: str | None, fmt: str
) -> tuple[dict, dict]:
    """A semantic chart's form data and query, by its viz; a ValueError for a viz Superset has no mapping for."""
    by = [g.dimension for g in chart.by]
    if chart.viz == "kpi" and chart.by:
        return _kpi_trend_params(chart, filters, base_query, grain, fmt)
    if chart.viz == "kpi":
        return _kpi_total_params(chart, filters, base_query, fmt)
    if chart.viz == "bar" and catalog.dimensions[by[0]].order:
        return _bucket_bar_params(chart, catalog, filters, base_query, limit)
    if chart.viz in ("line", "bar"):
        return _series_params(chart, catalog, filters, base_query, limit, grain, fmt)
    if chart.viz == "pie":
        return _pie_params(chart, filters, base_query, limit, fmt)
    if chart.viz == "table":
        return _table_params(chart, catalog, filters, base_query, limit)
    if chart.viz == "heatmap":
        return _heatmap_params(chart, catalog, filters, base_query, limit, grain, fmt)
    raise ValueError(f"chart {chart.key}: no Superset mapping for viz {chart.viz}")


def _kpi_trend_params(chart: Chart, filters: list, base_query: dict, grain: str | None, fmt: str) -> tuple[dict, dict]:
    """A kpi over a date: the latest complete month, against the month before, over its trend line."""
    metrics = list(chart.metrics)
    x = chart.by[0].dimension
    params = {
        "viz_type": "big_number",
        "metric": metrics[0],
        "x_axis": x,
        "time_grain_sqla": grain,
        "adhoc_filters": filters,
        "show_trend_line": True,
        "start_y_axis_at_zero": True,
        "compare_lag": 1,
        "compare_suffix": "vs previous month",
        "aggregation": "LAST_VALUE",
        "y_axis_format": D3FORMAT[fmt],
        **_currency(fmt),
    }
    return params, {**base_query, "columns": [_axis(x, grain)], "metrics": metrics, "orderby": []}


def _kpi_total_params(chart: Chart, filters: list, base_query: dict, fmt: str) -> tuple[dict, dict]:
    """A kpi without a date: the metric's total."""
    metrics = list(chart.metrics)
    params = {
        "viz_type": "big_number_total",
        "metric": metrics[0],
        "adhoc_filters": filters,
        "y_axis_format": D3FORMAT[fmt],
        **_currency(fmt),
        "subheader": "",
    }
    return params, {**base_query, "columns": [], "metrics": metrics, "orderby": []}


def _bucket_bar_params(chart: Chart, catalog: Catalog, filters: list, base_query: dict, limit: int) -> tuple[dict, dict]:
    """Bars of buckets (a dimension with its own order) in that order: a table with bars in its cells."""
    # Superset's bar chart lists categories alphabetically or by a metric it draws, so it would
    # shuffle them; a table with bars in its cells keeps the order, sorting by the buckets' place
    # (a metric it does not show).
    by = [g.dimension for g in chart.by]
    metrics = list(chart.metrics)
    dimension = catalog.dimensions[by[0]]
    place = {"expressionType": "SQL", "sqlExpression": f"MIN({order_sql(catalog, dimension)})", "label": "place"}
    params = {
        "viz_type": "table",
        "query_mode": "aggregate",
        "groupby": by,
        "metrics": metrics,
        "timeseries_limit_metric": place,
        "order_desc": False,
        "row_limit": limit,
        "adhoc_filters": filters,
        "server_pagination": False,
        "include_search": False,
        "show_cell_bars": True,
        "column_config": _column_config(
            {dimension.name: (dimension.label, "text"), **{m: (None, catalog.metrics[m].format) for m in metrics}}
        ),
    }
    return params, {**base_query, "columns": by, "metrics": metrics, "orderby": [[place, True]], "order_desc": False}


def _series_params(
    chart: Chart, catalog: Catalog, filters: list, base_query: dict, limit: int, grain: str | None, fmt: str
) -> tuple[dict, dict]:
    """A line or bar chart: the metrics over the first dimension of `by`, a series per value of the others."""
    by = [g.dimension for g in chart.by]
    metrics = list(chart.metrics)
    x = by[0]
    params = {
        "viz_type": "echarts_timeseries_line" if chart.viz == "line" else "echarts_timeseries_bar",
        "x_axis": x,
        "metrics": metrics,
        "groupby": by[1:],
        "row_limit": limit,
        "adhoc_filters": filters,
        "y_axis_format": AXIS_FORMAT[fmt],
        **_currency(fmt),
        "show_legend": len(metrics) > 1,
        "rich_tooltip": True,
    }
    over_time = catalog.dimensions[x].type == "time"
    if grain and over_time:
        params["time_grain_sqla"] = grain
    if chart.viz == "bar":
        params.update(_bar_layout(chart, metrics, over_time))
    axis_grain = grain if over_time else None
    return params, {
        **base_query,
        "columns": [_axis(x, axis_grain), *by[1:]],
        "metrics": metrics,
        "orderby": [[metrics[0], chart.sort != "desc"]],
    }


def _bar_layout(chart: Chart, metrics: list[str], over_time: bool) -> dict:
    """A bar chart's orientation, its category labels (every one, upright if they do not fit) and its bars' order."""
    layout = {"orientation": chart.orientation}
    if not over_time:
        layout["xAxisLabelInterval"] = "0"  # every bar labelled (Superset's "All"), never one in three
        if chart.orientation == "vertical" and _crowded(chart):
            layout["xAxisLabelRotation"] = 90  # more bars than level labels (or slanted ones) fit across
    # Horizontal bars are drawn from the bottom up: reverse the order so the first (the
    # largest, or bucket 1) reads at the top.
    flip = chart.orientation == "horizontal"
    if chart.sort:
        layout["x_axis_sort"] = metrics[0]
        layout["x_axis_sort_asc"] = (chart.sort != "desc") != flip
    else:
        layout["x_axis_sort_asc"] = not flip
    return layout


def _crowded(chart: Chart) -> bool:
    """Whether a vertical bar chart's labels may not fit level: more than two bars a grid column
    (at 1280 px a column is about 80 px; "MG" and "10" take 20 px and want air around them), or
    as many bars as its categories have (no limit)."""
    return chart.limit is None or chart.limit > 2 * chart.width


def _pie_params(chart: Chart, filters: list, base_query: dict, limit: int, fmt: str) -> tuple[dict, dict]:
    """A pie of the first metric's shares, with the whole legend beside it."""
    by = [g.dimension for g in chart.by]
    metrics = list(chart.metrics)
    params = {
        "viz_type": "pie",
        "groupby": by,
        "metric": metrics[0],
        "adhoc_filters": filters,
        "row_limit": limit,
        "sort_by_metric": True,
        "label_type": "percent",
        "labels_outside": False,
        "number_format": D3FORMAT[fmt],
        **_currency(fmt),
        "show_legend": True,
        "legendType": "plain",
        "legendOrientation": "right",
    }  # the whole legend, one name a line beside the pie; never cut mid-word
    return params, {**base_query, "columns": by, "metrics": metrics, "orderby": [[metrics[0], False]]}


def _table_params(chart: Chart, catalog: Catalog, filters: list, base_query: dict, limit: int) -> tuple[dict, dict]:
    """A table of the metrics by the dimensions of `by`, sorted by the first metric."""
    by = [g.dimension for g in chart.by]
    metrics = list(chart.metrics)
    params = {
        "viz_type": "table",
        "query_mode": "aggregate",
        "groupby": by,
        "metrics": metrics,
        "timeseries_limit_metric": metrics[0],
        "order_desc": chart.sort != "asc",
        "row_limit": limit,
        "adhoc_filters": filters,
        "server_pagination": False,
        "include_search": True,
        "column_config": _column_config({m: (None, catalog.metrics[m].format) for m in metrics}),
    }
    return params, {**base_query, "columns": by, "metrics": metrics, "orderby": [[metrics[0], chart.sort == "asc"]]}


HEATMAP_MARGIN = 8  # px between a heatmap's axis labels and its card's edge


def _heatmap_params(
    chart: Chart, catalog: Catalog, filters: list, base_query: dict, limit: int, grain: str | None, fmt: str
) -> tuple[dict, dict]:
    """A heatmap of the first metric over the two dimensions of `by`."""
    x, y = [g.dimension for g in chart.by]
    metrics = list(chart.metrics)
    params = {
        "viz_type": "heatmap_v2",
        "x_axis": x,
        "groupby": y,
        "metric": metrics[0],
        "adhoc_filters": filters,
        "row_limit": limit,
        "sort_x_axis": "alpha_asc",
        "sort_y_axis": "alpha_asc",
        "normalize_across": "heatmap",
        "y_axis_format": D3FORMAT[fmt],
        **_currency(fmt),
        "show_values": False,
        "show_legend": True,
        # Superset hands these to ECharts' grid as they are: left out, the grid reaches the
        # canvas's bottom and the x axis's labels are drawn below it, cut off
        "bottom_margin": HEATMAP_MARGIN,
        "left_margin": HEATMAP_MARGIN,
    }
    if grain and catalog.dimensions[x].type == "time":
        params["time_grain_sqla"] = grain
    return params, {
        **base_query,
        "columns": [_axis(x, grain if catalog.dimensions[x].type == "time" else None), y],
        "metrics": metrics,
        "orderby": [],
    }


def _dashboard_yaml(dashboard: Dashboard, catalog: Catalog, bundle_datasets: dict[str, BundleDataset]) -> dict:
    position = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dashboard.title}},
    }
    rows: list[list[Chart]] = [[]]
    for chart in dashboard.charts:
        if sum(c.width for c in rows[-1]) + chart.width > 12:
            rows.append([])
        rows[-1].append(chart)
    for index, row in enumerate(rows):
        row_id = f"ROW-{index + 1}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for chart in row:
            chart_id = f"CHART-{chart.key}"
            position[row_id]["children"].append(chart_id)
            position[chart_id] = {
                "type": "CHART",
                "id": chart_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "chartId": 0,
                    "uuid": dashboard.chart_uuid(chart),
                    "width": chart.width,
                    "height": chart.height,
                    "sliceName": chart.title,
                },
            }
    filters = []
    for name in dashboard.filters:
        dimension = catalog.dimensions[name]
        filter_id = f"NATIVE_FILTER-{name}"
        common = {
            "id": filter_id,
            "type": "NATIVE_FILTER",
            "name": dimension.label,
            "description": dimension.description,
            "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
        }
        if dimension.type == "time":
            filters.append(
                {
                    **common,
                    "filterType": "filter_time",
                    "targets": [{}],
                    "controlValues": {"enableEmptyFilter": False},
                    "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
                }
            )
        else:
            target = chart_dataset(filter_targets(dashboard, name, catalog)[0], catalog, bundle_datasets)
            filters.append(
                {
                    **common,
                    "filterType": "filter_select",
                    "targets": [{"datasetUuid": target.uuid, "column": {"name": name}}],
                    "controlValues": {
                        "enableEmptyFilter": False,
                        "defaultToFirstItem": False,
                        "multiSelect": True,
                        "searchAllOptions": False,
                        "inverseSelection": False,
                    },
                    "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
                }
            )
    return {
        "dashboard_title": dashboard.title,
        "description": dashboard.description,
        "css": "",
        "slug": dashboard.slug,
        "uuid": dashboard.uuid(),
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "refresh_frequency": 0,
            "timed_refresh_immune_slices": [],
            "expanded_slices": {},
            "label_colors": {},
            "cross_filters_enabled": True,
            "native_filter_configuration": filters,
        },
        "published": True,
        "version": VERSION,
    }

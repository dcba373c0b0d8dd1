"""Dashboard specs: the six dashboards in a tool-neutral form (one YAML file each), checked
against the semantic catalog. Superset's asset bundle and Metabase's cards are generated
from these; see README.md beside this file for the format."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from olist_bi.semantic.catalog import FORMATS, Catalog, load
from olist_bi.semantic.compiler import GroupBy, Query, available, parse_by
from olist_bi.semantic.flat import SCHEMA as VIEW_SCHEMA

HERE = Path(__file__).parent
VIZ = {"kpi", "line", "bar", "table", "pie", "heatmap", "forecast"}
DATABASES = {"warehouse", "operations"}
# A forecast chart's columns, in this order: its band is the 95% interval around the forecast,
# and the 80% interval a second, darker band inside it.
FORECAST_ROLES = ("month", "actual", "forecast", "low 95%", "high 95%", "low 80%", "high 80%")
COLUMN_FORMATS = FORMATS | {"text", "date", "datetime", "id"}  # a row dataset's columns: a metric format or these
GRID_COLUMNS = 12
NAMESPACE = uuid.UUID("5b0d7a1e-0c1f-4c55-9a57-6f6c6973745f")  # the platform's uuid namespace


class SpecError(ValueError):
    """A dashboard spec names something that does not exist or cannot work; the message says which."""


def stable_uuid(*parts: str) -> str:
    """The same name always gives the same uuid, so re-provisioning updates in place."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    format: str


@dataclass(frozen=True)
class Dataset:
    name: str
    database: str
    description: str
    sql: str
    columns: dict[str, Column] = field(default_factory=dict, compare=False)
    scope: tuple[str, str] | None = None  # (column, default value): one scope's rows per reader

    @property
    def view(self) -> str:
        """The view the BI tools read as a table: in the warehouse, `semantic.olist_<name>`,
        which the ETL creates from the dataset's SQL (`warehouse_views`); in the operations
        store, `olist_<name>`, which a migration creates (0006_dataset_views.sql). Superset
        parses and wraps a virtual dataset's SQL, and connects to its database for the default
        schema, on every chart request, even one answered from its cache."""
        return view_of(self.name, self.database)


def view_of(dataset: str, database: str) -> str:
    return f"{VIEW_SCHEMA}.olist_{dataset}" if database == "warehouse" else f"olist_{dataset}"


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    viz: str
    metrics: tuple[str, ...] = ()
    by: tuple[GroupBy, ...] = ()
    dataset: str | None = None
    columns: tuple[str, ...] = ()
    order_by: str | None = None
    sort: str | None = None
    limit: int | None = None
    width: int = 6
    height: int = 50
    orientation: str = "vertical"  # a bar chart's: horizontal for long category names, so every bar is labelled
    # Complete periods only (the semantic layer's reporting window): by default, charts grouped
    # by a time dimension, so that the data's sparse first and last months are not drawn as
    # collapses; `complete_periods: false` in a spec shows every month.
    complete_periods: bool = False

    @property
    def is_semantic(self) -> bool:
        return self.dataset is None

    def query(self) -> Query:
        return Query(list(self.metrics), list(self.by), complete_periods=self.complete_periods)


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    filters: tuple[str, ...]
    charts: tuple[Chart, ...]
    audience: str = "business"
    path: Path = field(default=Path(), compare=False)

    def uuid(self) -> str:
        return stable_uuid("dashboard", self.slug)

    def chart_uuid(self, chart: Chart) -> str:
        return stable_uuid("chart", self.slug, chart.key)


@cache
def datasets() -> dict[str, Dataset]:
    spec = yaml.load((HERE / "datasets.yaml").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)["datasets"]
    found = {}
    for name, item in spec.items():
        if item["database"] not in DATABASES:
            raise SpecError(f"dataset {name}: database must be one of {', '.join(sorted(DATABASES))}")
        columns = {}
        for column, spec_column in (item.get("columns") or {}).items():
            if spec_column.get("format") not in COLUMN_FORMATS:
                raise SpecError(f"dataset {name}: column {column} needs a format, one of {', '.join(sorted(COLUMN_FORMATS))}")
            columns[column] = Column(column, spec_column.get("label") or column, spec_column["format"])
        scope = (item["scope"]["column"], str(item["scope"]["default"])) if item.get("scope") else None
        if item["database"] == "warehouse":
            sql = (HERE / item["sql"]).read_text(encoding="utf-8").strip()
        else:  # the view the migration creates
            sql = f"select * from {view_of(name, item['database'])}"
        found[name] = Dataset(name, item["database"], item["description"], sql, columns, scope)
    return found


def warehouse_views() -> dict[str, str]:
    """The warehouse's row datasets as views to create with each build: the view (schema.name) -> its SQL."""
    return {d.view: d.sql for d in datasets().values() if d.database == "warehouse"}


@cache
def dashboards() -> tuple[Dashboard, ...]:
    """Every dashboard spec, checked; raise `SpecError` naming the file and the problem."""
    catalog = load()
    found = [_load(path, catalog) for path in sorted(HERE.glob("*.yaml")) if path.name != "datasets.yaml"]
    slugs = [d.slug for d in found]
    if len(set(slugs)) != len(slugs):
        raise SpecError(f"dashboard slugs repeat: {slugs}")
    return tuple(found)


def _load(path: Path, catalog: Catalog) -> Dashboard:
    where = path.name
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except yaml.YAMLError as e:
        raise SpecError(f"{where}: not valid YAML: {e}") from None
    try:
        charts = tuple(_chart(item, catalog) for item in raw["charts"])
        dashboard = Dashboard(
            slug=raw["slug"],
            title=raw["title"],
            description=raw["description"],
            filters=tuple(raw.get("filters", ())),
            charts=charts,
            audience=raw.get("audience", "business"),
            path=path,
        )
    except (KeyError, TypeError) as e:
        raise SpecError(f"{where}: {e}") from None
    problems = check(dashboard, catalog)
    if problems:
        raise SpecError(f"{where}:\n" + "\n".join(f"  - {p}" for p in problems))
    return dashboard


def _chart(item: dict, catalog: Catalog) -> Chart:
    item = dict(item)
    item["metrics"] = tuple(item.get("metrics", ()))
    item["by"] = tuple(parse_by(b) for b in item.get("by", ()))
    item["columns"] = tuple(item.get("columns", ()))
    if "complete_periods" not in item:
        item["complete_periods"] = "dataset" not in item and bool(_time_groups(item["by"], catalog))
    return Chart(**item)


def _time_groups(by, catalog: Catalog) -> list:
    """The groups of `by` over a date."""
    return [g for g in by if g.dimension in catalog.dimensions and catalog.dimensions[g.dimension].type == "time"]


def chart_source(chart: Chart, catalog: Catalog) -> str:
    """What a chart reads: its metrics' semantic model, or its row dataset."""
    return catalog.metrics[chart.metrics[0]].model if chart.is_semantic else chart.dataset


def check(dashboard: Dashboard, catalog: Catalog) -> list[str]:
    """The problems of a dashboard spec, in order: repeated chart keys, each chart's, then its filters'."""
    problems = _repeated_keys(dashboard)
    for chart in dashboard.charts:
        problems += _chart_problems(chart, catalog)
    problems += _filter_problems(dashboard, catalog)
    return problems


def _repeated_keys(dashboard: Dashboard) -> list[str]:
    """A problem if two of the dashboard's charts share a key."""
    keys = [c.key for c in dashboard.charts]
    if len(set(keys)) != len(keys):
        return [f"chart keys repeat: {keys}"]
    return []


def _chart_problems(chart: Chart, catalog: Catalog) -> list[str]:
    """A chart's problems: its viz and width, then those of a semantic chart or of a dataset chart."""
    name = f"chart {chart.key}"
    problems = _layout_problems(chart, name)
    if chart.is_semantic:
        problems += _metric_problems(chart, name, catalog)
        problems += _semantic_viz_problems(chart, name, catalog)
    else:
        problems += _dataset_problems(chart, name)
    if chart.viz == "forecast" and chart.is_semantic:
        problems.append(f"{name}: a forecast chart reads a dataset's rows")
    return problems


def _layout_problems(chart: Chart, name: str) -> list[str]:
    """A chart's viz is a known one and its width fits the grid."""
    problems = []
    if chart.viz not in VIZ:
        problems.append(f"{name}: viz {chart.viz!r} is not one of {', '.join(sorted(VIZ))}")
    if not 1 <= chart.width <= GRID_COLUMNS:
        problems.append(f"{name}: width {chart.width} is not 1 to {GRID_COLUMNS}")
    return problems


def _metric_problems(chart: Chart, name: str, catalog: Catalog) -> list[str]:
    """A semantic chart names at least one metric, each known and each offering every dimension of `by`."""
    problems = [] if chart.metrics else [f"{name}: names no metric and no dataset"]
    for metric in chart.metrics:
        if metric not in catalog.metrics:
            problems.append(f"{name}: unknown metric {metric}")
            continue
        model = catalog.models[catalog.metrics[metric].model]
        for group in chart.by:
            if group.dimension not in catalog.dimensions:
                problems.append(f"{name}: unknown dimension {group.dimension}")
            elif not available(catalog, catalog.dimensions[group.dimension], model):
                problems.append(f"{name}: metric {metric} cannot be grouped by {group.dimension}")
    return problems


def _semantic_viz_problems(chart: Chart, name: str, catalog: Catalog) -> list[str]:
    """A semantic chart has the metrics, groups and orientation its viz needs."""
    problems = []
    if chart.viz in ("line", "bar", "pie") and not chart.by:
        problems.append(f"{name}: a {chart.viz} chart needs `by`")
    trend = _time_groups(chart.by, catalog)
    if chart.viz == "kpi" and (len(chart.metrics) != 1 or len(chart.by) > 1 or len(trend) != len(chart.by)):
        problems.append(f"{name}: a kpi shows one metric, in total or (with one date in `by`) its latest period against the one before")
    if chart.orientation not in ("vertical", "horizontal") or (chart.orientation == "horizontal" and chart.viz != "bar"):
        problems.append(f"{name}: orientation is vertical or horizontal, and only a bar chart has one")
    if chart.viz == "heatmap" and len(chart.by) != 2:
        problems.append(f"{name}: a heatmap needs two dimensions in `by`")
    return problems


def _dataset_problems(chart: Chart, name: str) -> list[str]:
    """A dataset chart reads a known dataset and lists its columns, each declared there (a forecast's in their roles' order)."""
    problems = []
    if chart.dataset not in datasets():
        problems.append(f"{name}: unknown dataset {chart.dataset}; datasets: {', '.join(datasets())}")
    if not chart.columns:
        problems.append(f"{name}: a dataset chart lists its columns")
    elif chart.dataset in datasets():
        undeclared = [c for c in chart.columns if c not in datasets()[chart.dataset].columns]
        if undeclared:
            problems.append(f"{name}: columns {', '.join(undeclared)} have no header and format in datasets.yaml")
    if chart.viz == "forecast" and len(chart.columns) != len(FORECAST_ROLES):
        problems.append(f"{name}: a forecast chart's columns are, in order, {', '.join(FORECAST_ROLES)}")
    return problems


def _filter_problems(dashboard: Dashboard, catalog: Catalog) -> list[str]:
    """Each of the dashboard's filters is a known dimension that some chart of it can be filtered by."""
    problems = []
    for dimension in dashboard.filters:
        if dimension not in catalog.dimensions:
            problems.append(f"filter {dimension}: unknown dimension")
        elif not filter_targets(dashboard, dimension, catalog):
            problems.append(f"filter {dimension}: no chart of the dashboard can be filtered by it")
    return problems


def filter_targets(dashboard: Dashboard, dimension: str, catalog: Catalog | None = None) -> list[Chart]:
    """The charts a filter on `dimension` applies to: semantic charts whose every metric offers
    it, and row charts that show a column of that name (a category filter, by value). A time
    filter applies to semantic charts only: a row dataset has no purchase date to narrow."""
    catalog = catalog or load()

    def applies(c: Chart) -> bool:
        if not c.is_semantic:
            return catalog.dimensions[dimension].type == "category" and dimension in c.columns
        return all(
            m in catalog.metrics and available(catalog, catalog.dimensions[dimension], catalog.models[catalog.metrics[m].model])
            for m in c.metrics
        )

    return [c for c in dashboard.charts if applies(c)]


def not_narrowed(dashboard: Dashboard, chart: Chart, catalog: Catalog | None = None) -> str | None:
    """The chart's note naming the dashboard's filters that do not apply to it, or None."""
    catalog = catalog or load()
    missed = [f for f in dashboard.filters if chart not in filter_targets(dashboard, f, catalog)]
    if not missed:
        return None
    return (
        "Not narrowed by the dashboard's "
        + ", ".join(catalog.dimensions[f].label for f in missed)
        + " filter"
        + ("s" if len(missed) > 1 else "")
        + "."
    )

"""Metabase's assets, generated from the dashboard specs and the semantic layer.

One YAML file per dashboard in `metabase/` at the project root (its collection, its native-SQL
questions and its dashboard with cards laid out and filters wired to template tags), and
`access.yaml` (the groups and what they may see). `olist-bi metabase build` writes them; a
test fails when they are stale; `olist-bi metabase provision` reads them.

A semantic chart becomes one native question over its model's flat relation
(`semantic/flat.py`): the dimensions grouped at the chart's grain, the metrics as their
expressions, and an optional clause per dashboard filter that applies to it, such as
`[[and customer_state = {{customer_state}}]]`. Metabase drops the clause when the filter is
empty and binds the value when it is set, so no value ever becomes SQL text. A date filter is
two date variables, from and to (inclusive), as the semantic layer's range is.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from olist_bi import access
from olist_bi.bi.metabase import semantic
from olist_bi.dashboards import Chart, Dashboard, dashboards, datasets, filter_targets, not_narrowed, stable_uuid
from olist_bi.semantic.catalog import Catalog, Dimension, load
from olist_bi.semantic.compiler import order_sql, render
from olist_bi.semantic.flat import WINDOW_COLUMN, FlatModel, flat_model

ASSETS_DIR = files("olist_bi.bi.metabase") / "built"  # the generated files, committed and shipped as package data
ROOT_COLLECTION = "olist"
SEMANTIC_FILE = "semantic.yaml"  # the semantic layer's models and metrics (bi/metabase/semantic.py)
GRID_COLUMNS = 24  # Metabase's dashboard grid; the specs use 12
DISPLAY = {"kpi": "scalar", "line": "line", "bar": "bar", "table": "table", "pie": "pie", "heatmap": "table", "forecast": "line"}
NUMBER_STYLE = {
    "currency": {"number_style": "currency", "currency": "BRL", "currency_style": "symbol"},
    "percent": {"number_style": "percent", "decimals": 1},
    "count": {"number_style": "decimal", "decimals": 0},
    "decimal": {"number_style": "decimal", "decimals": 2},
    "id": {"number_style": "decimal", "decimals": 0, "number_separators": "."},  # no thousands separator
}
FORECAST_COLOURS = {
    "actual": "#509EE3",
    "forecast": "#7172AD",
    "95": "#C7C8E8",
    "80": "#9FA0D4",
}  # Metabase's brand blue and a violet, lighter for wider intervals
DATE_STYLE = {"date_style": "YYYY/M/D", "date_separator": "-"}
DATETIME_STYLE = {"date_style": "YYYY/M/D", "date_separator": "-", "time_enabled": "minutes"}  # 2018-8-29 15:00
# Only what the open-source edition has: `view-data: blocked` needs the paid advanced-permissions
# feature (Metabase answers 402), so a group that must not query a database gets view data with
# no queries of its own; the questions it can run are the ones in collections it can read.
NO_QUERIES = {"view-data": "unrestricted", "create-queries": "no"}
GROUPS = {
    "Olist Viewers": {
        "description": "Business users: open the business dashboards and their questions; no native queries, no editing.",
        "collections": "read",
        "warehouse": NO_QUERIES,
        "operations": NO_QUERIES,
        "roles": ["olist_viewer"],
    },
    "Olist Analysts": {
        "description": "Analysts: the viewers' access plus native SQL on the warehouse and saving their own questions.",
        "collections": "write",
        "warehouse": {"view-data": "unrestricted", "create-queries": "query-builder-and-native"},
        "operations": NO_QUERIES,
        "roles": ["olist_analyst"],
    },
}


def _id(*parts: str) -> str:
    return stable_uuid("metabase", *parts)[:8]


@dataclass(frozen=True)
class TemplateTag:
    """A template tag and the dashboard parameter wired to it."""

    tag: str
    label: str
    tag_type: str  # text, date, number
    parameter_type: str  # string/=, date/single, number/=
    column: str
    operator: str


def variables(dimension: Dimension) -> list[TemplateTag]:
    if dimension.type == "time":
        return [
            TemplateTag(f"{dimension.name}_from", f"{dimension.label} from", "date", "date/single", dimension.name, ">="),
            TemplateTag(f"{dimension.name}_to", f"{dimension.label} to", "date", "date/single", dimension.name, "<="),
        ]
    if dimension.type == "integer":
        return [TemplateTag(dimension.name, dimension.label, "number", "number/=", dimension.name, "=")]
    return [TemplateTag(dimension.name, dimension.label, "text", "string/=", dimension.name, "=")]


def template_tag(variable: TemplateTag, dashboard: Dashboard) -> dict:
    return {
        "id": stable_uuid("metabase", "tag", dashboard.slug, variable.tag),
        "name": variable.tag,
        "display-name": variable.label,
        "type": variable.tag_type,
        "required": False,
    }


def _column_settings(columns: dict[str, str], catalog: Catalog) -> dict:
    """Titles and number formats of the result columns (name -> metric or dimension name)."""
    settings = {}
    for column, name in columns.items():
        if name in catalog.metrics:
            metric = catalog.metrics[name]
            settings[f'["name","{column}"]'] = {"column_title": metric.label, **NUMBER_STYLE[metric.format]}
        elif name in catalog.dimensions:
            settings[f'["name","{column}"]'] = {"column_title": catalog.dimensions[name].label}
    return settings


def _optional_clauses(applies: list[TemplateTag]) -> list[str]:
    """One `[[and column op {{tag}}]]` per filter variable: Metabase drops it when unset."""
    return [f"[[and {v.column} {v.operator} {{{{{v.tag}}}}}]]" for v in applies]


def semantic_sql(chart: Chart, dashboard: Dashboard, applies: list[TemplateTag], catalog: Catalog, flats: dict[str, FlatModel]) -> str:
    models = {catalog.metrics[m].model for m in chart.metrics}
    if len(models) != 1:
        raise ValueError(f"{dashboard.slug}/{chart.key}: a Metabase question reads one model, the metrics read {sorted(models)}")
    model = models.pop()
    if model not in flats:
        flats[model] = flat_model(model, catalog)
    flat = flats[model]
    selects = []
    for group in chart.by:
        dimension = catalog.dimensions[group.dimension]
        if dimension.type == "time":
            grain = group.grain or dimension.default_grain
            column = render(catalog, "{{ date_grain(column, grain) }}", {"column": dimension.name, "grain": grain}, dimension.name)
        else:
            column = dimension.name
        selects.append(f"{column} as {dimension.name}")
    selects += [f"{flat.metrics[m]} as {m}" for m in chart.metrics]
    body = "\n".join(f"    {line}" for line in flat.sql.splitlines())
    lines = ["select", ",\n".join(f"    {s}" for s in selects), f"from (\n{body}\n) as f", "where 1 = 1"]
    if chart.complete_periods:
        lines.append(f"  and {WINDOW_COLUMN}  -- complete periods only (the reporting window)")
    lines += _optional_clauses(applies)
    if chart.by:
        lines.append("group by " + ", ".join(str(i + 1) for i in range(len(chart.by))))
    if chart.sort:
        lines.append(f"order by {chart.metrics[0]} {chart.sort}")
    elif chart.by:  # each dimension in its own order (buckets), else by its value
        keys = [order_sql(catalog, catalog.dimensions[g.dimension]) or str(i) for i, g in enumerate(chart.by, start=1)]
        lines.append("order by " + ", ".join(keys))
    if chart.limit:
        lines.append(f"limit {chart.limit}")
    return "\n".join(lines)


def rows_sql(chart: Chart, applies: list[TemplateTag] = ()) -> str:
    dataset = datasets()[chart.dataset]
    body = "\n".join(f"    {line}" for line in dataset.sql.splitlines())
    lines = ["select " + ", ".join(chart.columns), f"from (\n{body}\n) as d"]
    if applies or dataset.scope:
        lines.append("where 1 = 1")
        if dataset.scope:  # one scope's rows: the default (Metabase's open-source edition has no row-level security)
            column, default = dataset.scope
            lines.append(f"  and {column} = '{default.replace(chr(39), chr(39) * 2)}'")
        lines += _optional_clauses(applies)
    if chart.order_by:
        lines.append(f"order by {chart.order_by} {chart.sort or 'asc'}")
    if chart.limit:
        lines.append(f"limit {chart.limit}")
    return "\n".join(lines)


def _row_column_settings(chart: Chart) -> dict:
    """Headers and formats of a row question's columns, as datasets.yaml declares them."""
    declared = datasets()[chart.dataset].columns
    settings = {}
    for column in chart.columns:
        spec = declared[column]
        style = NUMBER_STYLE.get(spec.format) or {"datetime": DATETIME_STYLE, "date": DATE_STYLE}.get(spec.format, {})
        settings[f'["name","{column}"]'] = {"column_title": spec.label, **style}
    return settings


def visualization(chart: Chart, catalog: Catalog) -> dict:
    if not chart.is_semantic:
        columns = list(chart.columns)
        settings = {"column_settings": _row_column_settings(chart)}
        if chart.viz == "bar":
            return settings | {
                "graph.dimensions": columns[:1],
                "graph.metrics": columns[1:],
                "graph.x_axis.title_text": datasets()[chart.dataset].columns[columns[0]].label,
            }
        if chart.viz == "forecast":
            return settings | _forecast_settings(columns)
        return settings | {"table.pivot": False}
    by = [g.dimension for g in chart.by]
    metrics = list(chart.metrics)
    settings: dict = {"column_settings": _column_settings({c: c for c in by + metrics}, catalog)}
    if chart.viz == "kpi":
        settings["scalar.field"] = metrics[0]
    elif chart.viz in ("line", "bar"):
        settings |= {"graph.dimensions": by, "graph.metrics": metrics, "graph.show_values": False}
        if chart.viz == "bar" and chart.sort:
            settings["graph.x_axis.scale"] = "ordinal"
    elif chart.viz == "pie":
        settings |= {"pie.dimension": by[0], "pie.metric": metrics[0]}
    elif chart.viz == "heatmap":
        settings |= {"table.pivot": True, "table.pivot_column": by[1], "table.cell_column": metrics[0]}
    else:
        settings["table.pivot"] = False
    return settings


def _forecast_settings(columns: list[str]) -> dict:
    """Metabase has no band between two series (its areas stack from zero): the actuals as a
    solid line, the forecast dashed, and each interval's bounds as thin dotted lines of one
    colour (series_settings' line.style, line.size, color: Metabase's series settings)."""
    month, actual, forecast, low95, high95, low80, high80 = columns
    bound = {"line.style": "dotted", "line.size": "S", "line.marker_enabled": False, "line.missing": "none"}
    series = {
        actual: {"line.style": "solid", "color": FORECAST_COLOURS["actual"]},
        forecast: {"line.style": "dashed", "line.marker_enabled": True, "line.missing": "none", "color": FORECAST_COLOURS["forecast"]},
        low95: {**bound, "color": FORECAST_COLOURS["95"]},
        high95: {**bound, "color": FORECAST_COLOURS["95"]},
        low80: {**bound, "color": FORECAST_COLOURS["80"]},
        high80: {**bound, "color": FORECAST_COLOURS["80"]},
    }
    return {
        "graph.dimensions": [month],
        "graph.metrics": [actual, forecast, low95, high95, low80, high80],
        "graph.show_values": False,
        "graph.x_axis.title_text": "Month",
        "series_settings": series,
    }


def _display(chart: Chart) -> str:
    if chart.orientation == "horizontal":
        return "row"  # Metabase's horizontal bars
    if chart.viz == "kpi" and chart.by:
        return "smartscalar"  # Metabase's Trend: the latest period against the one before
    return DISPLAY[chart.viz]


def _layout(dashboard: Dashboard) -> dict[str, dict]:
    """Each chart's place on Metabase's 24-column grid, filling rows left to right as Superset does."""
    places, row, col, row_height = {}, 0, 0, 0
    for chart in dashboard.charts:
        width = chart.width * GRID_COLUMNS // 12
        height = max(2, round(chart.height * 6 / 50))
        if col + width > GRID_COLUMNS:
            row, col, row_height = row + row_height, 0, 0
        places[chart.key] = {"row": row, "col": col, "size_x": width, "size_y": height}
        col += width
        row_height = max(row_height, height)
    return places


def dashboard_assets(dashboard: Dashboard, catalog: Catalog, flats: dict[str, FlatModel] | None = None) -> dict:
    """The collection, questions and dashboard of one spec (`flats`: flat models already made)."""
    slug = dashboard.slug
    flats = {} if flats is None else flats
    targets = {name: filter_targets(dashboard, name, catalog) for name in dashboard.filters}
    parameters, by_filter = [], {}
    for name in dashboard.filters:
        by_filter[name] = variables(catalog.dimensions[name])
        for variable in by_filter[name]:
            parameters.append(
                {"id": _id("parameter", slug, variable.tag), "name": variable.label, "slug": variable.tag, "type": variable.parameter_type}
            )
    titles = [c.title for c in dashboard.charts]
    if len(set(titles)) != len(titles):
        raise ValueError(f"{slug}: chart titles repeat; Metabase questions are found by name in their collection")
    cards, dashcards = [], []
    places = _layout(dashboard)
    for chart in dashboard.charts:
        if chart.is_semantic:
            applies = [v for name, vs in by_filter.items() if chart in targets[name] for v in vs]
            sql = semantic_sql(chart, dashboard, applies, catalog, flats)
            database = "warehouse"
            description = "; ".join(f"{catalog.metrics[m].label}: {catalog.metrics[m].description}" for m in chart.metrics)
        else:
            applies = [v for name, vs in by_filter.items() if chart in targets[name] for v in vs]
            sql = rows_sql(chart, applies)
            database = datasets()[chart.dataset].database
            description = datasets()[chart.dataset].description
        note = not_narrowed(dashboard, chart, catalog)
        if note:
            description += " " + note
        cards.append(
            {
                "key": chart.key,
                "name": chart.title,
                "description": description,
                "database": database,
                "display": _display(chart),
                "sql": sql,
                "template_tags": {v.tag: template_tag(v, dashboard) for v in applies},
                "visualization_settings": visualization(chart, catalog),
            }
        )
        dashcards.append(
            {
                "card": chart.key,
                **places[chart.key],
                "parameter_mappings": [{"parameter_id": _id("parameter", slug, v.tag), "tag": v.tag} for v in applies],
            }
        )
    return {
        "collection": {
            "key": slug,
            "name": dashboard.title,
            "description": dashboard.description,
            "audience": dashboard.audience,
        },
        "cards": cards,
        "dashboard": {
            "name": dashboard.title,
            "description": dashboard.description,
            "parameters": parameters,
            "dashcards": dashcards,
        },
    }


def _scoped_groups() -> dict[str, dict]:
    """One group per scoped role of access.yaml: its dashboards (a copy of each business
    dashboard, on its scope's database) and the query builder and SQL on that database only.
    Metabase's open-source edition has no row-level security (sandboxing is paid), so the scope
    is data: the database is the role's scoped copy (etl/readers.py), which holds no other rows."""
    groups = {}
    for role, (column, value) in sorted(access.scopes().items()):
        groups[f"Olist Regional ({value})"] = {
            "description": (
                f"Regional managers: the business dashboards on the rows where {column} is {value} only, read from a database "
                f"that holds no other rows; the query builder and native SQL on that database only."
            ),
            "roles": [role],
            "collections": {role: "read"},
            "databases": {role: {"view-data": "unrestricted", "create-queries": "query-builder-and-native"}},
        }
    return groups


def access_assets() -> dict:
    """The root collection, the databases (the warehouse, the operations store, one scoped copy
    per scoped role) and the groups with their data and collection permissions. A group has no
    queries of its own on a database it does not name, and no access to a collection it does
    not name."""
    scoped = {
        role: {
            "name": f"Olist warehouse ({value})",
            "engine": "duckdb",
            "description": f"The warehouse's rows where {column} is {value} only (the scoped copy of role {role}), read-only.",
            "scope": {"role": role, "column": column, "value": value},
        }
        for role, (column, value) in sorted(access.scopes().items())
    }
    groups = {
        name: {
            "description": group["description"],
            "roles": group["roles"],
            "collections": {"business": group["collections"]},
            "databases": {"warehouse": dict(group["warehouse"]), "operations": dict(group["operations"])},
        }
        for name, group in GROUPS.items()
    } | _scoped_groups()
    databases = ["warehouse", "operations", *scoped]
    for group in groups.values():
        group["collections"] = {audience: group["collections"].get(audience, "none") for audience in ["business", "admin", *scoped]}
        group["databases"] = {key: dict(group["databases"].get(key, NO_QUERIES)) for key in databases}
    return {
        "root_collection": {
            "key": ROOT_COLLECTION,
            "name": "Olist BI",
            "description": (
                "Dashboards and questions provisioned by the Olist BI platform from its dashboard specs; edit the specs, not these."
            ),
        },
        "databases": {
            "warehouse": {"name": "Olist warehouse", "engine": "duckdb", "description": "The DuckDB star schema and marts, read-only."},
            "operations": {"name": "Olist operations", "engine": "postgres", "description": "Pipeline runs and data quality; admins only."},
            **scoped,
        },
        "groups": groups,
        # Metabase puts every user in All Users; it gets nothing of ours, so access comes from the groups.
        "all_users": {"collections": "none", "databases": {key: dict(NO_QUERIES) for key in databases}},
    }


def scoped_dashboards(access_spec: dict, found: list[dict]) -> list[dict]:
    """For each scoped database of `access_spec`, a copy of every business collection of `found`
    (each dashboard's, the semantic layer's) whose warehouse cards read that database: the same SQL, run on a copy that holds the
    scope's rows only. Its collection's audience is the role, so only its group (and admins)
    read it."""
    copies = []
    for role, database in access_spec["databases"].items():
        scope = database.get("scope")
        if not scope:
            continue
        suffix = f" ({scope['value']})"
        for item in found:
            if item["collection"]["audience"] != "business":
                continue
            note = f" Rows where {scope['column']} is {scope['value']} only."
            copies.append(
                {
                    "collection": {
                        **item["collection"],
                        "key": f"{item['collection']['key']}--{role}",
                        "name": item["collection"]["name"] + suffix,
                        "description": item["collection"]["description"] + note,
                        "audience": role,
                    },
                    "cards": [{**card, "database": role} if card["database"] == "warehouse" else card for card in item["cards"]],
                    "dashboard": item["dashboard"]
                    and {
                        **item["dashboard"],
                        "name": item["dashboard"]["name"] + suffix,
                        "description": item["dashboard"]["description"] + note,
                    },
                }
            )
    return copies


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)

HEADER = "# Generated by `olist-bi metabase build` from platform/dashboards/ and platform/semantic/; do not edit.\n"


def generate(catalog: Catalog | None = None) -> dict[str, str]:
    """Every asset file: name -> text."""
    catalog = catalog or load()
    files = {"access.yaml": HEADER + yaml.dump(access_assets(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)}
    flats: dict[str, FlatModel] = {}
    for dashboard in dashboards():
        text = yaml.dump(dashboard_assets(dashboard, catalog, flats), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
        files[f"dashboards/{dashboard.slug}.yaml"] = HEADER + text
    flats = {name: flats.get(name) or flat_model(name, catalog) for name in catalog.models}
    item = semantic.semantic_assets(catalog, flats)
    files[SEMANTIC_FILE] = HEADER + yaml.dump(item, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    return files


def write(directory: Path) -> list[Path]:
    """Write the assets under `directory`, removing dashboard files no spec makes any more."""
    files = generate()
    (directory / "dashboards").mkdir(parents=True, exist_ok=True)
    for stale in (directory / "dashboards").glob("*.yaml"):
        if f"dashboards/{stale.name}" not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True)
class Assets:
    access: dict
    dashboards: list[dict]


def read(directory: Path) -> Assets:
    """The asset files as provisioning uses them."""
    try:
        access = yaml.safe_load((directory / "access.yaml").read_text(encoding="utf-8"))
        found = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((directory / "dashboards").glob("*.yaml"))]
        found.append(yaml.safe_load((directory / SEMANTIC_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError as e:
        raise FileNotFoundError(f"Metabase assets missing: {e.filename}; run `olist-bi metabase build`") from None
    if not found:
        raise FileNotFoundError(f"no dashboard files in {directory / 'dashboards'}; run `olist-bi metabase build`")
    return Assets(access, found + scoped_dashboards(access, found))

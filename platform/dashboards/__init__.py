"""Tool-neutral dashboard specs (one YAML file per dashboard, the datasets of datasets.yaml),
read and checked by specs.py; Superset's bundle and Metabase's cards are generated from them."""

from olist_bi.dashboards.specs import (
    DATABASES,
    Chart,
    Dashboard,
    SpecError,
    chart_source,
    check,
    dashboards,
    datasets,
    filter_targets,
    not_narrowed,
    stable_uuid,
    warehouse_views,
)

__all__ = [
    "DATABASES",
    "Chart",
    "Dashboard",
    "SpecError",
    "chart_source",
    "check",
    "dashboards",
    "datasets",
    "filter_targets",
    "not_narrowed",
    "stable_uuid",
    "warehouse_views",
]

"""Superset as a BI tool of the platform (`olist_bi.bi.BITool`).

After a publish, Superset's own reads are already fresh (each query leases the current
generation, superset/dialect.py); what lags is its chart-data cache. Superset's
`/api/v1/cachekey/invalidate` cannot help here: it finds keys only when they are stored in
the metadata database and deletes them from the wrong cache region. A chart's cache key
does include its dataset's `changed_on`, so the step writes the new generation's name into
each warehouse dataset's `extra` (one PUT per dataset): every cached answer on those
datasets, under any filter, stops matching. It then warms the six dashboards' charts
(`PUT /api/v1/chart/warm_up_cache`, four at a time) and the lists of values of their
filters (the chart-data request Superset's filter_select plugin sends, `filter_value_query`),
so the first viewer after a publish reads from the cache.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from olist_bi.bi import BITool, Provisioned, Service
from olist_bi.dashboards import dashboards
from olist_bi.bi.superset import provision, server
from olist_bi.bi.superset.client import SupersetClient

WARM_THREADS = 4
FILTER_ROW_LIMIT = 1000  # the filter_select plugin's default row limit (our filters set none)


class Superset(BITool):
    name = "superset"
    label = "Superset"

    @property
    def url(self) -> str:
        return self.settings.superset_base_url

    def reachable(self) -> bool:
        return server.healthy(self.url)

    def client(self) -> SupersetClient:
        return SupersetClient(self.url, server.ADMIN_USER, server.admin_password(self.settings))

    def build_assets(self, out: Path) -> list[Path]:
        """The asset bundle provisioning imports, as a ZIP (the warehouse must exist: the row
        datasets' columns are read from it)."""
        reader_uri = "postgresql+psycopg2://olist_ops_reader@operations/olist_ops"  # no password in a file
        built, _ = provision.build_bundle(self.settings, reader_uri)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "superset-assets.zip"
        path.write_bytes(built.zip_bytes())
        return [path]

    def start(self, say=print) -> None:
        server.serve(self.settings, say=say)

    def provision(self, say=print) -> Provisioned:
        report = provision.provision(self.settings, say)
        admin = {server.ADMIN_USER: server.admin_password(self.settings)} if self.settings.is_demo else {}
        return Provisioned(report.summary(), admin | report.users, dict(report.counts))

    def services(self, provisioned: Provisioned | None) -> list[Service]:
        if provisioned is None:
            return super().services(None)
        reports = (
            f"{provisioned.counts['reports_and_alerts']} scheduled reports and alerts, run by Superset's Celery worker and beat "
            "(`olist-bi superset reports`; platform/notify/reports.yaml)"
        )
        if not server.CHROMIUM.exists():
            reports += f"; waiting: {server.CHROMIUM_MISSING}"
        return [
            Service(self.label, self.url, f"{provisioned.counts['dashboards']} dashboards; SQL Lab for analysts"),
            Service("reports", self.url, reports),
        ]

    def after_publish(self, generation: str, say=print) -> str:
        client = self.client()
        ids = provision.ids_by_uuid(client)
        datasets = [ids[uuid] for uuid in warehouse_dataset_uuids() if uuid in ids]
        marker = json.dumps({"olist_warehouse_generation": generation})
        for dataset_id in datasets:
            client.put(f"/api/v1/dataset/{dataset_id}", {"extra": marker})
        charts = [
            (ids[d.chart_uuid(c)], ids[d.uuid()]) for d in dashboards() for c in d.charts if d.chart_uuid(c) in ids and d.uuid() in ids
        ]

        def warm(chart: tuple[int, int]) -> bool:
            chart_id, dashboard_id = chart
            result = client.put("/api/v1/chart/warm_up_cache", {"chart_id": chart_id, "dashboard_id": dashboard_id})
            return all(not r.get("viz_error") for r in result["result"])

        def warm_list(query: dict) -> bool:
            return all(not r.get("error") for r in client.post("/api/v1/chart/data", query)["result"])

        lists = [
            filter_value_query(f, ids[d.uuid()]) for d in dashboards() if d.uuid() in ids for f in value_filters(client, ids[d.uuid()])
        ]
        with ThreadPoolExecutor(WARM_THREADS) as pool:
            warmed = list(pool.map(warm, charts))
            listed = list(pool.map(warm_list, lists))
        failed = warmed.count(False) + listed.count(False)
        message = (
            f"{len(datasets)} warehouse datasets invalidated, "
            f"{warmed.count(True)} charts and {listed.count(True)} filter value lists warmed"
        )
        return message + (f", {failed} failed to warm" if failed else "")

    def review_access(self) -> list[str]:
        from olist_bi.bi.superset import access_review

        return access_review.run(self.settings, self.client())


def warehouse_dataset_uuids() -> list[str]:
    """The uuids of the datasets that read the warehouse (semantic models and warehouse row datasets)."""
    from olist_bi.dashboards import datasets, stable_uuid
    from olist_bi.semantic.catalog import load

    names = list(load().models) + [name for name, spec in datasets().items() if spec.database == "warehouse"]
    return [stable_uuid("dataset", name) for name in names]


def value_filters(client: SupersetClient, dashboard_id: int) -> list[dict]:
    """The dashboard's native filters that list values to pick from (filter_select), as
    Superset holds them (their targets name dataset ids)."""
    metadata = json.loads(client.get(f"/api/v1/dashboard/{dashboard_id}")["result"]["json_metadata"] or "{}")
    return [f for f in metadata.get("native_filter_configuration", []) if f.get("filterType") == "filter_select"]


def filter_value_query(native_filter: dict, dashboard_id: int) -> dict:
    """The chart-data request with which Superset's frontend fills a filter's list of values
    (its filter_select plugin, as Chromium sends it for our filters: the column's distinct
    values, ascending, at most 1,000, no metric). The answer's cache key depends on the query
    object, not on the form data, so this request fills the entry the dashboard reads; the
    browser test compares the keys."""
    [target] = native_filter["targets"]
    column, dataset_id = target["column"]["name"], target["datasetId"]
    query = {
        "filters": [],
        "extras": {"having": "", "where": ""},
        "applied_time_extras": {},
        "columns": [column],
        "metrics": [],
        "orderby": [[column, True]],
        "annotation_layers": [],
        "row_limit": FILTER_ROW_LIMIT,
        "series_limit": 0,
        "group_others_when_limit_reached": False,
        "order_desc": True,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    form_data = {
        **native_filter.get("controlValues", {}),
        "datasource": f"{dataset_id}__table",
        "groupby": [column],
        "adhoc_filters": [],
        "extra_filters": [],
        "extra_form_data": {},
        "metrics": ["count"],
        "row_limit": FILTER_ROW_LIMIT,
        "viz_type": "filter_select",
        "type": "NATIVE_FILTER",
        "dashboardId": dashboard_id,
        "native_filter_id": native_filter["id"],
        "force": False,
        "result_format": "json",
        "result_type": "full",
    }
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": form_data,
        "result_format": "json",
        "result_type": "full",
    }

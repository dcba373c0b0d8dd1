"""Superset as a BI tool of the platform (`olist_bi.bi.BITool`).

After a publish, Superset's own reads are already fresh (each query leases the current
generation, superset/dialect.py); what lags is its chart-data cache. Superset's
`/api/v1/cachekey/invalidate` cannot help here: it finds keys only when they are stored in
the metadata database and deletes them from the wrong cache region. A chart's cache key
does include its dataset's `changed_on`, so the step writes the new generation's name into
each warehouse dataset's `extra` (one PUT per dataset): every cached answer on those
datasets, under any filter, stops matching. It then warms the six dashboards' charts
(`PUT /api/v1/chart/warm_up_cache`, four at a time) so the first viewer after a publish
reads from the cache.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from olist_bi.bi import BITool, Provisioned
from olist_bi.dashboards import dashboards
from olist_bi.superset import bundle, provision, server
from olist_bi.superset.client import SupersetClient

WARM_THREADS = 4


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
        clickhouse = self.settings.clickhouse_database if self.settings.warehouse_engine == "clickhouse" else None
        built = bundle.build(provision.warehouse_uri(self.settings), reader_uri, provision.row_columns(self.settings), clickhouse_database=clickhouse)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "superset-assets.zip"
        path.write_bytes(built.zip_bytes())
        return [path]

    def provision(self, say=print) -> Provisioned:
        report = provision.provision(self.settings, say)
        counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
        changed = "; ".join(report.changes) if report.changes else "nothing (already up to date)"
        return Provisioned(f"{counts}; changed: {changed}", report.users, dict(report.counts))

    def after_publish(self, generation: Path, say=print) -> str:
        client = self.client()
        ids = provision.ids_by_uuid(client)
        datasets = [ids[uuid] for uuid in warehouse_dataset_uuids() if uuid in ids]
        marker = json.dumps({"olist_warehouse_generation": generation.name})
        for dataset_id in datasets:
            client.put(f"/api/v1/dataset/{dataset_id}", {"extra": marker})
        charts = [
            (ids[d.chart_uuid(c)], ids[d.uuid()])
            for d in dashboards()
            for c in d.charts
            if d.chart_uuid(c) in ids and d.uuid() in ids
        ]

        def warm(chart: tuple[int, int]) -> bool:
            chart_id, dashboard_id = chart
            result = client.put("/api/v1/chart/warm_up_cache", {"chart_id": chart_id, "dashboard_id": dashboard_id})
            return all(not r.get("viz_error") for r in result["result"])

        with ThreadPoolExecutor(WARM_THREADS) as pool:
            warmed = list(pool.map(warm, charts))
        failed = warmed.count(False)
        message = f"{len(datasets)} warehouse datasets invalidated, {warmed.count(True)} charts warmed"
        return message + (f", {failed} failed to warm" if failed else "")

    def review_access(self) -> list[str]:
        from olist_bi.superset import access_review

        return access_review.run(self.settings, self.client())


def warehouse_dataset_uuids() -> list[str]:
    """The uuids of the datasets that read the warehouse (semantic models and warehouse row datasets)."""
    from olist_bi.dashboards import datasets, stable_uuid
    from olist_bi.semantic.catalog import load

    names = list(load().models) + [name for name, spec in datasets().items() if spec.database == "warehouse"]
    return [stable_uuid("dataset", name) for name in names]

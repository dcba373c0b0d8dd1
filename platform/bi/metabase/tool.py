"""Metabase as a BI tool of the platform (`olist_bi.bi.BITool`).

After a publish Metabase is pointed at the new generation file: changed connection details
are what make Metabase close its pool of DuckDB connections (an update with unchanged
details keeps the pool, and with it the previous file). Checked here against the contract
stand-in only; docs/metabase.md says what to check on a real Metabase.
"""

from __future__ import annotations

from pathlib import Path

from olist_bi.bi import BITool, Provisioned
from olist_bi.bi.metabase import access_review, assets, provision
from olist_bi.bi.metabase.client import MetabaseClient
from olist_bi.engines.base import engine


class Metabase(BITool):
    name = "metabase"
    label = "Metabase"
    assets_dir: Path = assets.ASSETS_DIR

    @property
    def url(self) -> str:
        return self.settings.metabase_url.rstrip("/")

    def reachable(self) -> bool:
        return MetabaseClient(self.url).healthy()

    def build_assets(self, out: Path) -> list[Path]:
        return assets.write(out)

    def provision(self, say=print) -> Provisioned:
        report = provision.provision(self.settings, self.url, self.assets_dir, say=say)
        return Provisioned(report.summary(), report.users, dict(report.created + report.updated))

    def client(self) -> MetabaseClient:
        """A client signed in as the provisioning admin (or with the API key)."""
        client = MetabaseClient(self.url)
        provision.sign_in(self.settings, client)
        return client

    def after_publish(self, generation: str, say=print) -> str:
        client = self.client()
        in_place = engine(self.settings).publishes_in_place()
        if in_place:  # the pool reads the new tables
            return f"nothing to repoint: {in_place}"
        paths = provision.point_warehouse(self.settings, client, assets.read(self.assets_dir))
        return f"warehouse connections pointed at {', '.join(paths)}"

    def review_access(self) -> list[str]:
        return access_review.run(self.settings, self.client())

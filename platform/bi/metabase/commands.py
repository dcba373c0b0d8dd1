"""`olist-bi metabase`: build Metabase's assets and provision a Metabase (the command group this
tool brings to the CLI through bi/interface.py's registry)."""

from __future__ import annotations

from pathlib import Path

import click

from olist_bi.bi.metabase.assets import ASSETS_DIR as DEFAULT_METABASE_ASSETS
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


@click.group()
def metabase() -> None:
    """Metabase: build its assets from the dashboard specs, and provision a Metabase over REST."""


@metabase.command(name="build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_METABASE_ASSETS,
    show_default=True,
    help="Folder to write the assets into.",
)
@output.option
def metabase_build(out: Path, fmt: str) -> None:
    """Write Metabase's assets (one file per dashboard, and access.yaml) from the dashboard
    specs and the semantic layer. Run it after changing either; a test fails when they are stale."""
    from olist_bi.bi.metabase import assets

    output.wrote(fmt, assets.write(out))


@metabase.command(name="provision")
@click.option("--url", default=None, help="The Metabase to provision. Default: OLIST_METABASE_URL.")
@click.option(
    "--assets",
    "assets_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=DEFAULT_METABASE_ASSETS,
    show_default=True,
    help="The asset files.",
)
@click.option("--wait", type=click.IntRange(0, 3600), default=600, show_default=True, help="Seconds to wait for a starting Metabase (503).")
@output.option
def metabase_provision(url: str | None, assets_dir: Path, wait: int, fmt: str) -> None:
    """Provision a Metabase over its REST API: first-run setup (or sign in), the warehouse
    (DuckDB, read-only) and operations connections, then collections, questions, dashboards,
    the groups Olist Viewers and Olist Analysts, and their data and collection permissions
    (and, in the local demo, the demo users). Idempotent: a second run creates nothing."""
    from olist_bi.bi.metabase import provision

    settings = _settings()
    url = (url or settings.metabase_url).rstrip("/")
    report = provision.provision(settings, url, assets_dir, say=lambda m: click.echo(m, err=True), wait=wait)
    kinds = sorted(set(report.created) | set(report.updated) | set(report.archived))
    rows = [{"asset": k, "created": report.created[k], "updated": report.updated[k], "archived": report.archived[k]} for k in kinds]

    def table() -> None:
        if report.setup:
            click.echo(f"set up Metabase: admin {settings.metabase_admin_email} (password: OLIST_METABASE_ADMIN_PASSWORD)")
        click.echo(f"provisioned {url}: {report.summary()}")
        output.logins(settings, report.users)

    emit(fmt, rows, table, {"url": url, "set_up": bool(report.setup), "assets": rows, "demo_users": sorted(report.users)})

"""`olist-bi postgres`: the embedded PostgreSQL of the local demo (start, stop, status)."""

from __future__ import annotations

import sys

import click

from olist_bi.cli.base import load_settings
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.operations.postgres import EmbeddedPostgres, database_url, embedded
from olist_bi.settings import mask_url


@click.group()
def postgres() -> None:
    """Manage the embedded PostgreSQL (used when OLIST_DATABASE_URL is unset)."""


def _embedded() -> EmbeddedPostgres:
    settings = load_settings()
    if not settings.uses_embedded_postgres:
        raise click.ClickException("OLIST_DATABASE_URL is set: the platform uses that server, not the embedded one")
    return embedded(settings)


@postgres.command(name="start")
@output.option
def postgres_start(fmt: str) -> None:
    """Start the embedded PostgreSQL (initialising it on first use, every role with a
    generated password) and print the URL the platform runs as, its password masked. The
    local demo's only: refused when OLIST_ENV=production."""
    server = _embedded()
    url = mask_url(database_url(load_settings()))
    emit(fmt, [{"url": url}], lambda: click.echo(url), {"running": True, "url": url, "data_dir": str(server.data_dir)})


@postgres.command(name="stop")
@output.option
def postgres_stop(fmt: str) -> None:
    """Stop the embedded PostgreSQL cleanly."""
    output.stopped(fmt, _embedded().stop())


@postgres.command(name="status")
@output.option
def postgres_status(fmt: str) -> None:
    """Say whether the embedded PostgreSQL runs; exit 1 when it does not."""
    server = _embedded()
    running = server.is_running()
    url = mask_url(database_url(load_settings(), start=False))
    state = {"running": running, "url": url if running else None, "data_dir": str(server.data_dir)}
    emit(
        fmt,
        [state],
        lambda: click.echo(f"running: {url} (data in {server.data_dir})" if running else f"not running (data in {server.data_dir})"),
        state,
    )
    if not running:
        sys.exit(1)

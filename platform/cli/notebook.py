"""`olist-bi notebook`: serve and stop the analysts' marimo notebook."""

from __future__ import annotations


import click

from olist_bi.cli.base import load_settings
from olist_bi.runtime import output


@click.group(invoke_without_command=True)
@click.option("--foreground", is_flag=True, help="Serve in this process until stopped (as docker-compose's notebook service does).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (with --foreground; 0.0.0.0 in a container).")
@output.option
@click.pass_context
def notebook(ctx: click.Context, foreground: bool, host: str, fmt: str) -> None:
    """Serve the analysts' marimo notebook (platform/notebook/explore.py: metrics by a dimension and
    filters as a chart and a table, and a cohort explorer) as a read-only app on
    127.0.0.1:OLIST_NOTEBOOK_PORT (2718), detached; prints the address with its access token.
    `olist-bi notebook stop` stops it."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi.notebook import server

    settings = load_settings()
    if foreground:
        ctx.exit(server.run_foreground(settings, host))
    url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    output.serving(fmt, "The notebook", url)


@notebook.command(name="stop")
@output.option
def notebook_stop(fmt: str) -> None:
    """Stop the notebook that `olist-bi notebook` started."""
    from olist_bi.notebook import server

    output.stopped(fmt, server.stop(load_settings()))

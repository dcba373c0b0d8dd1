"""`olist-bi bi`: the BI tools behind one interface: which answer, and their after-publish step."""

from __future__ import annotations

import dataclasses

import click

from olist_bi.cli.base import load_settings
from olist_bi import bi
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.operations.postgres import PostgresError


def run_after_publish(settings) -> list:
    """Each reachable BI tool's after-publish step (olist_bi.bi), its outcomes; a failure is
    reported, the publish stands."""

    try:
        return bi.after_publish(settings, say=lambda m: click.echo(f"  {m}", err=True))
    except PostgresError as e:
        click.echo(f"  after publish: not recorded: {e}", err=True)
        return []


def outcome_rows(outcomes) -> list[dict]:
    """The BI tools' outcomes (olist_bi.bi.Outcome) as the JSON and CSV rows print them."""
    return [dataclasses.asdict(o) for o in outcomes]


def print_outcomes(outcomes) -> None:
    for o in outcomes:
        click.echo(f"  {o.tool}: {o.status}: {o.message}", err=o.status != "done")


@click.group(name="bi")
def bi_group() -> None:
    """The BI tools behind one interface (platform/bi/): which are reachable, and their
    after-publish step."""


@bi_group.command(name="list")
@output.option
def bi_list(fmt: str) -> None:
    """List the registered BI tools, where each is expected and whether it answers."""

    rows = [{"tool": each.name, "url": each.url, "answers": each.reachable()} for each in bi.tools(load_settings())]
    emit(
        fmt, rows, lambda: [click.echo(f"{r['tool']:<10} {r['url']:<32} {'answers' if r['answers'] else 'does not answer'}") for r in rows]
    )


@bi_group.command(name="after-publish")
@output.option
def bi_after_publish(fmt: str) -> None:
    """Run each reachable tool's after-publish step for the warehouse served now (what
    `etl run` and `etl rollback` do): Superset drops its cached chart data and warms the
    dashboards; Metabase is pointed at the current generation. Use it after a tool was down
    during a publish."""
    from olist_bi.engines.base import engine

    settings = load_settings()
    serving = engine(settings)
    if serving.ledger() is None:
        raise click.ClickException(f"no warehouse is served at {serving.location}: load a drop first (`olist-bi etl run --source DIR`)")
    outcomes = outcome_rows(run_after_publish(settings))
    emit(fmt, outcomes, lambda: [click.echo(f"{o['tool']}: {o['status']}: {o['message']}", err=o["status"] != "done") for o in outcomes])

"""`olist-bi superset`: serve Superset, provision it, and its scheduled reports (the command group
this tool brings to the CLI through bi/interface.py's registry)."""

from __future__ import annotations

import click

from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


@click.group()
def superset() -> None:
    """Superset: serve it, and provision connections, datasets, dashboards, roles and RLS."""


@superset.command(name="serve")
@output.option
def superset_serve(fmt: str) -> None:
    """Prepare Superset's metadata database and start Superset detached on
    127.0.0.1:OLIST_SUPERSET_PORT (8088); `olist-bi superset stop` stops it."""
    from olist_bi.bi.superset import server

    settings = _settings()
    url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    output.serving(fmt, "Superset", url)


@superset.command(name="stop")
@output.option
def superset_stop(fmt: str) -> None:
    """Stop the Superset that `olist-bi superset serve` started."""
    from olist_bi.bi.superset import server

    output.stopped(fmt, server.stop(_settings()))


@superset.command(name="provision")
@output.option
def superset_provision(fmt: str) -> None:
    """Provision the Superset at OLIST_SUPERSET_URL over its REST API: the warehouse and
    operations connections, the datasets and saved metrics of the semantic layer, the
    dashboards of platform/dashboards/, the roles olist_viewer, olist_analyst, olist_admin and
    the regional RLS role (and, in the local demo, one user per role). Idempotent."""
    from olist_bi.bi.superset import provision

    settings = _settings()
    report = provision.provision(settings, say=lambda m: click.echo(m, err=True))

    def table() -> None:
        click.echo(f"provisioned {settings.superset_base_url}: {report.summary()}")
        output.logins(settings, report.users)

    emit(
        fmt,
        [{"asset": k, "count": v} for k, v in report.counts.items()],
        table,
        {"url": settings.superset_base_url, "counts": report.counts, "changes": report.changes, "demo_users": sorted(report.users)},
    )


@superset.group(name="reports", invoke_without_command=True)
@output.option
@click.pass_context
def superset_reports(ctx: click.Context, fmt: str) -> None:
    """The scheduled reports and alerts in Superset (platform/notify/reports.yaml): name,
    type, crontab, recipients, last state and, for alerts, the last value."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi.bi.superset.tool import Superset

    client = Superset(_settings()).client()
    columns = ["id", "name", "type", "crontab_humanized", "timezone", "last_state", "last_eval_dttm", "active"]
    rows = [{c: r.get(c) for c in columns} for r in client.list_all("/api/v1/report/", columns, order="name")]

    def table() -> None:
        if not rows:
            click.echo("no report or alert in Superset: run `olist-bi superset provision`")
        for r in rows:
            last = f"{r['last_state']} at {r['last_eval_dttm'][:19]} UTC" if r["last_eval_dttm"] else "never run"
            click.echo(
                f"{r['name']}  [{r['type']}{'' if r['active'] else ', inactive'}]\n"
                f"  {r['crontab_humanized']} ({r['timezone']}); last: {last}"
            )

    emit(fmt, rows, table)


@superset_reports.command(name="run")
@click.argument("name")
@click.option("--timeout", type=click.IntRange(10, 3600), default=300, show_default=True, help="Seconds to wait for the outcome.")
@output.option
def superset_reports_run(name: str, timeout: int, fmt: str) -> None:
    """Run the report or alert NAME now (as its schedule would), wait, and print the outcome.
    A report mails its dashboard; an alert mails only when its value is above its threshold."""
    from olist_bi.bi.superset import reports
    from olist_bi.bi.superset.tool import Superset

    settings = _settings()
    entry = reports.run(settings, Superset(settings).client(), name, timeout)
    value = "" if entry["value"] is None else f" (value {entry['value']:g})"
    outcome = {"name": name, "state": entry["state"], "value": entry["value"], "error_message": entry["error_message"]}
    emit(
        fmt,
        [outcome],
        lambda: click.echo(f"{name}: {entry['state']}{value}" + (f": {entry['error_message']}" if entry["error_message"] else "")),
        outcome,
    )
    if entry["state"] == "Error":
        raise SystemExit(1)

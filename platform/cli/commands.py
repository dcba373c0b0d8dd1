"""The `olist-bi` command line. Each command's docstring is its help; commands call library
functions that the tests call directly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from pathlib import Path

import click

from olist_bi import bi, contract
from olist_bi.app import doctor
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.cli.errors import Boundary
from olist_bi.cli import audit, dbt, etl, notebook, outbox, postgres, semantic
from olist_bi.cli import bi as bi_commands
from olist_bi.cli.base import load_settings, progress


@click.group(cls=Boundary, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="olist-bi")
@click.option("-v", "--verbose", is_flag=True, help="Print an error's details on the lines after its one-line summary.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error (or set OLIST_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Olist BI platform: a DuckDB warehouse, a semantic layer and ready BI dashboards over
    the Olist e-commerce data. Configuration comes from OLIST_* environment variables
    (see `olist-bi doctor` and docs/configuration.md).

    Commands that print results take --format table|json|csv (docs/cli.md gives each JSON
    shape); results go to standard output, progress and errors to standard error. NO_COLOR
    turns colour off.

    Exit codes: 0 done, 1 failed (one line says why; --verbose adds the details), 2 wrong
    usage, 75 busy (another run holds the lock; try again later), 130 interrupted."""
    if output.no_color():
        ctx.color = False


@main.command()
@click.option("--scale", type=float, default=1.0, show_default=True, help="Scale factor: 1 is the real data set's size.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: same scale and seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write the nine files into.")
@click.option("--start-date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Write an increment: new orders from this date on.")
@click.option("--months", type=click.IntRange(1, 120), default=1, show_default=True, help="Length of the increment in months.")
@output.option
def generate(scale: float, seed: int, out: Path, start_date: dt.datetime | None, months: int, fmt: str) -> None:
    """Generate the nine Olist CSV files in the original format.

    Scale 1 reproduces the real files' row counts, distributions and quirks. With
    --start-date, writes a later increment (new orders, their items, payments, reviews and
    customers) over the same products and sellers as the base drop of that scale and seed.
    """
    from olist_bi.generator import generate as run

    if not 0 < scale <= 100:
        raise click.BadParameter("must be above 0 and at most 100", param_hint="--scale")
    began = time.perf_counter()
    result = run(out, scale, seed, start_date.date() if start_date else None, months, progress=progress)
    seconds = time.perf_counter() - began
    files = [{"file": contract.BY_TABLE[table].filename, "rows": rows} for table, rows in result.rows.items()]

    def table() -> None:
        click.echo(f"wrote {len(files)} files to {out} in {seconds:.1f} s:")
        for f in files:
            click.echo(f"  {f['file']:<42} {f['rows']:>12,} rows")

    emit(fmt, files, table, {"folder": str(out), "seconds": round(seconds, 2), "files": files})


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@output.option
def check(folder: Path, fmt: str) -> None:
    """Check a drop folder as `etl run` reads it: the source contract, then each file's
    records, counted.

    Fails, as `etl run` does, on what the contract refuses (a missing file or column, a wrong
    header order, an empty file, bad encoding) and on a file whose unreadable records (stray
    quotes, wrong field counts, a truncated last line) or values of the wrong type are over
    OLIST_MAX_QUARANTINE_SHARE. Below it, says how many records `etl run` would quarantine,
    and how many zip prefixes lost their leading zeros and were restored. The quality rules
    over the values (references, ranges, duplicates) run only in `etl run`.
    """
    from olist_bi.etl.check import check as check_drop

    found = check_drop(folder, load_settings().max_quarantine_share)
    files = [dataclasses.asdict(f) for f in found.files]

    def table() -> None:
        click.echo(f"{folder}: all nine files match the contract")
        for f in files:
            click.echo(f"  {f['file']:<42} {f['rows']:>12,} rows" + (f"  ({f['notes']})" if f["notes"] else ""))

    emit(fmt, files, table, {"folder": str(folder), "contract": "ok", "etl_run_would_fail": found.would_fail, "files": files})
    if found.would_fail:
        raise click.ClickException("`etl run` would fail on this drop: " + "; ".join(found.would_fail))


@main.command()
@output.option
def migrate(fmt: str) -> None:
    """Apply the operations store's migrations and make its read-only role, as the store's
    owner (OLIST_MIGRATION_DATABASE_URL, default OLIST_DATABASE_URL). Every other command can
    then run as a least-privilege login, a member of olist_app (docs/operations.md)."""
    from olist_bi.operations import postgres

    applied, reader = postgres.migrate(load_settings())

    def table() -> None:
        click.echo(f"applied {', '.join(applied)}" if applied else "no migration pending")
        click.echo(f"read-only role {reader.user} ready")

    emit(fmt, [{"migration": m} for m in applied], table, {"applied": applied, "reader_role": reader.user})


@main.command(name="doctor")
@output.option
def doctor_command(fmt: str) -> None:
    """Print the resolved configuration (secrets masked) and check each dependency:
    PostgreSQL reachable and its version, DuckDB, the data folder, free disk. Exits 1 when
    a check fails, with a remedy for each failure."""
    config, checks = doctor.run_checks()
    rows = [
        {"check": c.name, "status": "ok" if c.ok else "fail" if c.required else "warn", "detail": c.detail, "remedy": c.remedy}
        for c in checks
    ]

    def table() -> None:
        click.echo("configuration:")
        for name, value in config.items():
            click.echo(f"  {name:<24} {value}")
        click.echo("checks:")
        for row in rows:
            mark = {"ok": click.style("ok  ", fg="green"), "fail": click.style("FAIL", fg="red"), "warn": click.style("warn", fg="yellow")}
            click.echo(f"  {mark[row['status']]} {row['check']:<14} {row['detail']}")
            if row["status"] != "ok":
                click.echo(f"       remedy: {row['remedy']}")

    emit(fmt, rows, table, {"configuration": config, "checks": rows})
    if any(row["status"] == "fail" for row in rows):
        sys.exit(1)


@main.command(name="scheduler")
def scheduler_command() -> None:
    """Run the scheduler in the foreground: the ETL on OLIST_ETL_SCHEDULE (default nightly)
    and on each new drop in OLIST_INBOX (a sub-folder with the nine files and a READY file).
    Jobs are stored in PostgreSQL; SIGTERM or Ctrl-C stops it after the running job."""
    import logging

    from olist_bi.app.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    scheduler = Scheduler(settings)
    click.echo(f"scheduler: ETL at '{settings.etl_schedule}' (UTC) and on new drops in {settings.inbox}", err=True)
    scheduler.run_until_stopped()
    click.echo("scheduler stopped", err=True)


@main.command()
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Your own drop of the nine files; default: a generated sample.",
)
@output.option
def up(source: Path | None, fmt: str) -> None:
    """Bring the platform up: PostgreSQL (embedded unless OLIST_DATABASE_URL names one), a
    checked drop loaded into the warehouse, Superset serving the provisioned dashboards, and
    a Metabase provisioned if one answers at OLIST_METABASE_URL. This is what `make up` runs;
    it ends with what runs where and how to log in (progress goes to standard error)."""
    from olist_bi.app.up import up as bring_up
    from olist_bi.etl import pipeline

    settings = load_settings()
    try:
        running = bring_up(settings, source, output.say, progress=progress)
    except pipeline.EtlError as e:
        raise click.ClickException(f"run {e.run_id} failed: {e}") from None
    services = [dataclasses.asdict(s) for s in running.services]
    logins = {user: password for users in running.logins.values() for user, password in users.items()}

    def table() -> None:
        click.echo("\nRunning now:")
        for s in running.services:
            click.echo(f"  {s.service:<12} {s.url}  {s.note}")
        click.echo("  scheduler    not started by `up`: `olist-bi scheduler` rebuilds the warehouse on its schedule and on new drops")
        for label, users in running.logins.items():
            click.echo(f"\nLog in to {label} (local demo only; passwords kept in {settings.secrets_dir}):")
            for user, password in users.items():
                click.echo(f"  {user:<12} {password}")
        click.echo(
            "\nStop it with `make down` (Superset and its Celery worker and beat, the notebook, the mail sink and the embedded "
            "PostgreSQL; the data stay in OLIST_HOME)."
        )

    emit(fmt, services, table, {"services": services, "run_id": running.run_id, "demo_logins": logins})


for _group in (
    postgres.postgres,
    etl.etl,
    semantic.semantic,
    dbt.dbt,
    bi_commands.bi_group,
    notebook.notebook,
    outbox.outbox,
    audit.audit_group,
):
    main.add_command(_group)
for _group in bi.command_groups():  # each BI tool's own group (bi/<tool>/commands.py)
    main.add_command(_group)

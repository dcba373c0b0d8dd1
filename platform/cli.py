"""The `olist-bi` command line. Each command's docstring is its help; commands call library
functions that the tests call directly."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import click

from olist_bi import contract, doctor
from olist_bi.errors import Boundary, Busy
from olist_bi.operations.postgres import EmbeddedPostgres, PostgresError, database_url
from olist_bi.settings import Settings, mask_url


def _settings() -> Settings:
    return Settings.from_env()


def _progress(stage: str, done: int, total: int) -> None:
    line = f"  {stage:<22} {done:>12,} / {total:,}"
    if sys.stderr.isatty():  # one line per stage, rewritten in place
        click.echo(f"\r{line}", nl=done >= total, err=True)
    else:
        click.echo(line, err=True)


@click.group(cls=Boundary, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="olist-bi")
@click.option("--debug", is_flag=True, help="Show the traceback of an error (or set OLIST_DEBUG=1).")
def main(debug: bool) -> None:
    """Olist BI platform: a DuckDB warehouse, a semantic layer and ready BI dashboards over
    the Olist e-commerce data. Configuration comes from OLIST_* environment variables
    (see `olist-bi doctor` and docs/configuration.md).

    Exit codes: 0 done, 1 failed (one line says why), 2 wrong usage, 75 busy (another run
    holds the lock; try again later), 130 interrupted."""


@main.command()
@click.option("--scale", type=float, default=1.0, show_default=True, help="Scale factor: 1 is the real data set's size.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: same scale and seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write the nine files into.")
@click.option("--start-date", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Write an increment: new orders from this date on.")
@click.option("--months", type=click.IntRange(1, 120), default=1, show_default=True, help="Length of the increment in months.")
def generate(scale: float, seed: int, out: Path, start_date: dt.datetime | None, months: int) -> None:
    """Generate the nine Olist CSV files in the original format.

    Scale 1 reproduces the real files' row counts, distributions and quirks. With
    --start-date, writes a later increment (new orders, their items, payments, reviews and
    customers) over the same products and sellers as the base drop of that scale and seed.
    """
    from olist_bi.generator import generate as run

    if not 0 < scale <= 100:
        raise click.BadParameter("must be above 0 and at most 100", param_hint="--scale")
    began = time.perf_counter()
    result = run(out, scale, seed, start_date.date() if start_date else None, months, progress=_progress)
    click.echo(f"wrote {len(result.rows)} files to {out} in {time.perf_counter() - began:.1f} s:")
    for table, rows in result.rows.items():
        click.echo(f"  {contract.BY_TABLE[table].filename:<42} {rows:>12,} rows")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def check(folder: Path) -> None:
    """Check a drop folder as `etl run` reads it: the source contract, then each file's
    records, counted.

    Fails, as `etl run` does, on what the contract refuses (a missing file or column, a wrong
    header order, an empty file, bad encoding) and on a file whose unreadable records (stray
    quotes, wrong field counts, a truncated last line) or values of the wrong type are over
    OLIST_MAX_QUARANTINE_SHARE. Below it, says how many records `etl run` would quarantine,
    and how many zip prefixes lost their leading zeros and were restored. The quality rules
    over the values (references, ranges, duplicates) run only in `etl run`.
    """
    import duckdb

    from olist_bi.etl import extract, quality

    settings = _settings()
    with duckdb.connect() as con:
        con.execute(quality.QUARANTINE_DDL)
        read = extract.extract(con, folder, 0, set())
    click.echo(f"{folder}: all nine files match the contract")
    over = []
    for item in read:
        failing = sum(r.rows_failing for r in item.results)
        notes = [f"{item.zips_fixed:,} zip prefixes padded to five digits"] if item.zips_fixed else []
        if failing:
            where = "; ".join(f"{r.rule}: {r.rows_failing:,} (e.g. {', '.join(r.example_keys[:2])})" for r in item.results if r.rows_failing)
            notes.append(f"{failing:,} record{'s' if failing != 1 else ''} `etl run` would quarantine: {where}")
            if item.rows_read and failing / item.rows_read > settings.max_quarantine_share:
                over.append(f"{item.source.filename}: {failing:,} of {item.rows_read:,} records unreadable or mistyped, over OLIST_MAX_QUARANTINE_SHARE ({settings.max_quarantine_share:.1%})")
        click.echo(f"  {item.source.filename:<42} {item.rows_read:>12,} rows" + (f"  ({'; '.join(notes)})" if notes else ""))
    if over:
        raise click.ClickException("`etl run` would fail on this drop: " + "; ".join(over))


@main.command()
def migrate() -> None:
    """Apply the operations store's migrations and make its read-only role, as the store's
    owner (OLIST_MIGRATION_DATABASE_URL, default OLIST_DATABASE_URL). Every other command can
    then run as a least-privilege login, a member of olist_app (docs/operations.md)."""
    import psycopg

    from olist_bi.operations import store
    from olist_bi.operations.postgres import ensure_ops_reader

    settings = _settings()
    url = settings.migration_database_url or database_url(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        applied = store.migrate(conn)
    reader = ensure_ops_reader(settings, url)
    click.echo(f"applied {', '.join(applied)}" if applied else "no migration pending")
    click.echo(f"read-only role {reader.user} ready")


@main.command(name="doctor")
def doctor_command() -> None:
    """Print the resolved configuration (secrets masked) and check each dependency:
    PostgreSQL reachable and its version, DuckDB, the data folder, free disk. Exits 1 when
    a check fails, with a remedy for each failure."""
    config, checks = doctor.run_checks()
    click.echo("configuration:")
    for name, value in config.items():
        click.echo(f"  {name:<24} {value}")
    click.echo("checks:")
    for item in checks:
        mark = click.style("ok  ", fg="green") if item.ok else click.style("FAIL", fg="red") if item.required else click.style("warn", fg="yellow")
        click.echo(f"  {mark} {item.name:<14} {item.detail}")
        if not item.ok:
            click.echo(f"       remedy: {item.remedy}")
    if not all(c.ok for c in checks if c.required):
        sys.exit(1)


@main.group()
def postgres() -> None:
    """Manage the embedded PostgreSQL (used when OLIST_DATABASE_URL is unset)."""


def _embedded() -> EmbeddedPostgres:
    settings = _settings()
    if not settings.uses_embedded_postgres:
        raise click.ClickException("OLIST_DATABASE_URL is set: the platform uses that server, not the embedded one")
    return EmbeddedPostgres.from_settings(settings)


@postgres.command(name="start")
def postgres_start() -> None:
    """Start the embedded PostgreSQL (initialising it on first use) and print its URL. The
    local demo's only: refused when OLIST_ENV=production."""
    server = _embedded()
    if not _settings().is_demo:
        raise PostgresError("the embedded PostgreSQL (trust authentication, superuser) is for the local demo only: OLIST_ENV=production needs OLIST_DATABASE_URL")
    click.echo(server.start())


@postgres.command(name="stop")
def postgres_stop() -> None:
    """Stop the embedded PostgreSQL cleanly."""
    stopped = _embedded().stop()
    click.echo("stopped" if stopped else "not running")


@postgres.command(name="status")
def postgres_status() -> None:
    """Say whether the embedded PostgreSQL runs; exit 1 when it does not."""
    server = _embedded()
    if server.is_running():
        click.echo(f"running: {server.url} (data in {server.data_dir})")
    else:
        click.echo(f"not running (data in {server.data_dir})")
        sys.exit(1)


@main.group()
def etl() -> None:
    """The warehouse pipeline: load drops into the DuckDB star schema and marts."""


@etl.command(name="run")
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="Folder with the nine Olist files to load.")
@click.option("--full", is_flag=True, help="Rebuild from every drop loaded so far (and --source), ignoring what the served warehouse holds.")
@click.option("--allow-shrink", is_flag=True, help="Let a geolocation or category-translation file replace its table with under half its rows (or none).")
def etl_run(source: Path | None, full: bool, allow_shrink: bool) -> None:
    """Load a drop: extract, validate (bad rows to quarantine), transform, and publish a new
    warehouse file atomically. Files loaded before (same SHA-256) are skipped; a rerun of
    the same drop changes nothing. Exits 1, publishing nothing, when the run fails."""
    from olist_bi.etl import pipeline

    settings = _settings()
    if source is None and not full:
        raise click.UsageError("give --source DIR (a drop folder), or --full to rebuild from the drops loaded so far")
    try:
        result = pipeline.run(settings, source, full=full, progress=lambda m: click.echo(f"  {m}", err=True), allow_shrink=allow_shrink)
    except pipeline.EtlError as e:
        raise click.ClickException(f"run {e.run_id} failed: {e}") from None
    if result.status == "skipped" and pipeline.BUSY in result.message:
        raise Busy(f"run {result.run_id} skipped: {result.message}")
    click.echo(f"run {result.run_id} {result.status}: {result.message}")
    if result.status == "succeeded":
        _after_publish(settings)
    if result.rows_read:
        click.echo(f"  {'file':<42} {'read':>12} {'loaded':>12} {'quarantined':>12}")
        for table, read in result.rows_read.items():
            click.echo(
                f"  {contract.BY_TABLE[table].filename:<42} {read:>12,} {result.rows_loaded[table]:>12,} "
                f"{result.rows_quarantined[table]:>12,}"
            )
        warnings = [r for r in result.results if r.severity == "warn" and not r.passed]
        for r in warnings:
            click.echo(f"  warning: {r.rule}: {r.rows_failing:,} rows (kept), e.g. {', '.join(r.example_keys[:2])}")
        for line in result.warnings:
            click.echo(f"  warning: {line}")
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items())
        click.echo(f"  stages: {seconds}")


@etl.command(name="status")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many recent runs to show.")
def etl_status(limit: int) -> None:
    """Show recent runs: trigger, status, duration, rows, quality summary, and the error of
    failed runs."""
    from olist_bi.operations import store

    settings = _settings()
    with store.connect(database_url(settings)) as ops:
        runs = store.recent_runs(ops, limit)
    if not runs:
        click.echo("no runs yet: load a drop with `olist-bi etl run --source DIR`")
        return
    click.echo(f"{'run':>5}  {'started':<19}  {'trigger':<8}  {'status':<9}  {'seconds':>8}  {'loaded':>10}  {'quarantined':>11}  quality")
    for r in runs:
        loaded = sum((r["rows_loaded"] or {}).values())
        quarantined = sum((r["rows_quarantined"] or {}).values())
        quality_summary = (
            f"{r['rules_failed']} rules rejected rows, {r['warnings']} warnings" if r["rules_checked"] is not None else "-"
        )
        seconds = f"{r['duration_s']:.1f}" if r["duration_s"] is not None else "-"
        click.echo(
            f"{r['run_id']:>5}  {r['started_at']:%Y-%m-%d %H:%M:%S}  {r['trigger']:<8}  {r['status']:<9}  {seconds:>8}  "
            f"{loaded:>10,}  {quarantined:>11,}  {quality_summary}"
        )
        if r["error"] and r["status"] in ("failed", "skipped"):
            first, *rest = r["error"].splitlines()
            click.echo(f"       {first}" + (f" (+{len(rest)} lines)" if rest else ""))
    from olist_bi import warehouse

    try:
        click.echo(f"served warehouse: {settings.warehouse_path} (generation {warehouse.current(settings.warehouse_path).name})")
    except warehouse.WarehouseMissing:
        click.echo(f"served warehouse: none yet at {settings.warehouse_path}")


@etl.command(name="rollback")
def etl_rollback() -> None:
    """Serve the previous warehouse file again (the newest of the two kept), atomically.
    Undoes the last publish; run it twice to go back two."""
    from olist_bi.etl import pipeline, publish
    from olist_bi.operations import audit, store

    settings = _settings()
    with pipeline.exclusive(settings):  # not while a run publishes
        if settings.warehouse_engine == "clickhouse":
            from olist_bi.clickhouse import warehouse as clickhouse

            if not clickhouse.versions(settings):
                raise click.ClickException(f"ClickHouse keeps no previous warehouse of {settings.clickhouse_database} to roll back to")
            if not publish.versions(settings.warehouse_path):
                raise click.ClickException(f"no previous warehouse in {publish.generations_dir(settings.warehouse_path)} to roll back to")
            click.echo(f"ClickHouse: serving {clickhouse.rollback(settings)} again as {settings.clickhouse_database}")
        restored = publish.rollback(settings.warehouse_path)
    with store.connect(database_url(settings)) as ops:
        audit.append(ops, "warehouse.rolled_back", str(settings.warehouse_path), {"restored": restored.name}, source="etl")
    click.echo(f"serving {restored.name} again as {settings.warehouse_path}")
    click.echo(f"{len(publish.versions(settings.warehouse_path))} older file(s) left to roll back to")
    _after_publish(settings)


def _after_publish(settings) -> None:
    """Each reachable BI tool's after-publish step (olist_bi.bi); a failure is reported, the
    publish stands."""
    from olist_bi import bi

    try:
        outcomes = bi.after_publish(settings, say=lambda m: click.echo(f"  {m}", err=True))
    except PostgresError as e:
        click.echo(f"  after publish: not recorded: {e}", err=True)
        return
    for o in outcomes:
        click.echo(f"  {o.tool}: {o.status}: {o.message}", err=o.status != "done")


@main.group()
def semantic() -> None:
    """The semantic layer: every metric and dimension defined once (platform/semantic/)."""


def _query_options(command):
    options = [
        click.option("--metric", "metrics", multiple=True, required=True, help="A metric; repeat for several."),
        click.option("--by", "by", multiple=True, help="A dimension to group by, with a grain for dates: purchase_date:month. Repeatable."),
        click.option("--where", "where", multiple=True, help="A filter DIMENSION=VALUE[,VALUE...]; values are bound, never spliced. Repeatable."),
        click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First purchase date (inclusive), YYYY-MM-DD."),
        click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last purchase date (inclusive), YYYY-MM-DD."),
        click.option("--complete-periods", "complete_periods", is_flag=True,
                     help="Only the complete months of the data (mart_reporting_window), as the dashboards' time series show them."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _compile(metrics, by, where, start, end, complete_periods=False):
    from olist_bi.semantic.compiler import Query, compile_query, parse_by, parse_where

    query = Query(
        list(metrics),
        [parse_by(b) for b in by],
        [parse_where(w) for w in where],
        start.date() if start else None,
        end.date() if end else None,
        complete_periods,
    )
    return compile_query(query)


@semantic.command(name="list")
def semantic_list() -> None:
    """List the metrics and dimensions, with the model each metric reads."""
    from olist_bi.semantic.catalog import load
    from olist_bi.semantic.compiler import available

    catalog = load()
    click.echo("metrics:")
    for m in catalog.metrics.values():
        click.echo(f"  {m.name:<22} {m.label:<24} {m.format:<9} {m.model}")
    click.echo("dimensions:")
    for d in catalog.dimensions.values():
        grains = f" (grains: {', '.join(d.grains)})" if d.grains else ""
        models = ", ".join(name for name, model in catalog.models.items() if available(catalog, d, model))
        click.echo(f"  {d.name:<22} {d.label:<24} on {models}{grains}")


@semantic.command(name="show")
@click.argument("name")
def semantic_show(name: str) -> None:
    """Show one metric or dimension: its definition, what it counts, its SQL."""
    from olist_bi.semantic.catalog import load
    from olist_bi.semantic.compiler import available, metric_sql

    catalog = load()
    if name in catalog.metrics:
        m = catalog.metrics[name]
        click.echo(f"{m.name}: {m.label}\n\n{m.description}\n\ncounts: {m.counts}")
        click.echo(f"unit: {m.unit}   format: {m.format}   additive: {'yes' if m.additive else 'no'}   model: {m.model}")
        if m.requires:
            click.echo(f"requires --by: {', '.join(m.requires)}")
        click.echo(f"\nsql: {metric_sql(catalog, m)}")
        return
    if name in catalog.dimensions:
        d = catalog.dimensions[name]
        click.echo(f"{d.name}: {d.label}\n\n{d.description}")
        if d.grains:
            click.echo(f"grains: {', '.join(d.grains)} (default {d.default_grain})")
        models = [m for m in catalog.models.values() if available(catalog, d, m)]
        metrics = [m.name for m in catalog.metrics.values() if catalog.models[m.model] in models]
        click.echo(f"\nmetrics it applies to: {', '.join(metrics)}")
        return
    raise click.ClickException(
        f"unknown metric or dimension {name!r}; metrics: {', '.join(sorted(catalog.metrics))}; "
        f"dimensions: {', '.join(sorted(catalog.dimensions))}"
    )


@semantic.command(name="compile")
@_query_options
def semantic_compile(metrics, by, where, start, end, complete_periods) -> None:
    """Print the DuckDB SQL a metric query compiles to, and its bound parameters."""
    compiled = _compile(metrics, by, where, start, end, complete_periods)
    click.echo(compiled.sql)
    click.echo(f"-- parameters: {[str(p) for p in compiled.params]}")


@semantic.command(name="query")
@_query_options
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True, help="Output format.")
def semantic_query(metrics, by, where, start, end, complete_periods, fmt) -> None:
    """Answer metrics by dimensions from the served warehouse, for example
    `--metric revenue --by purchase_date:month --where customer_state=SP`."""
    from olist_bi.semantic import query

    compiled = _compile(metrics, by, where, start, end, complete_periods)
    settings = _settings()
    rows = query.answer(compiled, settings)
    click.echo(query.render(compiled, rows, fmt))


@semantic.command(name="docs")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/metrics.md"), show_default=True, help="Where to write the catalog.")
def semantic_docs(out: Path) -> None:
    """Write the metric catalog (docs/metrics.md) from the definitions, with example values
    from the served warehouse."""
    from olist_bi.semantic import docs

    settings = _settings()
    out.write_text(docs.render_catalog(settings.warehouse_path), encoding="utf-8")
    click.echo(f"wrote {out}")


@main.group(name="bi")
def bi_group() -> None:
    """The BI tools behind one interface (platform/bi/): which are reachable, and their
    after-publish step."""


@bi_group.command(name="list")
def bi_list() -> None:
    """List the registered BI tools, where each is expected and whether it answers."""
    from olist_bi import bi

    for each in bi.tools(_settings()):
        click.echo(f"{each.name:<10} {each.url:<32} {'answers' if each.reachable() else 'does not answer'}")


@bi_group.command(name="after-publish")
def bi_after_publish() -> None:
    """Run each reachable tool's after-publish step for the warehouse served now (what
    `etl run` and `etl rollback` do): Superset drops its cached chart data and warms the
    dashboards; Metabase is pointed at the current generation. Use it after a tool was down
    during a publish."""
    from olist_bi import warehouse

    settings = _settings()
    warehouse.current(settings.warehouse_path)
    _after_publish(settings)


@main.group()
def superset() -> None:
    """Superset: serve it, and provision connections, datasets, dashboards, roles and RLS."""


@superset.command(name="serve")
def superset_serve() -> None:
    """Prepare Superset's metadata database and start Superset detached on
    127.0.0.1:OLIST_SUPERSET_PORT (8088); `olist-bi superset stop` stops it."""
    from olist_bi.superset import server

    settings = _settings()
    url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    click.echo(f"Superset is up at {url}")


@superset.command(name="stop")
def superset_stop() -> None:
    """Stop the Superset that `olist-bi superset serve` started."""
    from olist_bi.superset import server

    click.echo("stopped" if server.stop(_settings()) else "not running")


@superset.command(name="provision")
def superset_provision() -> None:
    """Provision the Superset at OLIST_SUPERSET_URL over its REST API: the warehouse and
    operations connections, the datasets and saved metrics of the semantic layer, the
    dashboards of platform/dashboards/, the roles olist_viewer, olist_analyst, olist_admin and
    the regional RLS role (and, in the local demo, one user per role). Idempotent."""
    from olist_bi.superset import provision

    settings = _settings()
    report = provision.provision(settings, say=lambda m: click.echo(m, err=True))
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    click.echo(f"provisioned {settings.superset_base_url}: {counts}")
    click.echo("changed: " + ("; ".join(report.changes) if report.changes else "nothing (already up to date)"))
    _print_logins(settings, report.users)


@superset.group(name="reports", invoke_without_command=True)
@click.pass_context
def superset_reports(ctx: click.Context) -> None:
    """The scheduled reports and alerts in Superset (platform/reports/reports.yaml): name,
    type, crontab, recipients, last state and, for alerts, the last value."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi.superset.tool import Superset

    client = Superset(_settings()).client()
    columns = ["id", "name", "type", "crontab_humanized", "timezone", "last_state", "last_eval_dttm", "active"]
    rows = client.list_all("/api/v1/report/", columns, order="name")
    if not rows:
        click.echo("no report or alert in Superset: run `olist-bi superset provision`")
    for r in rows:
        last = f"{r['last_state']} at {r['last_eval_dttm'][:19]} UTC" if r["last_eval_dttm"] else "never run"
        click.echo(f"{r['name']}  [{r['type']}{'' if r['active'] else ', inactive'}]\n  {r['crontab_humanized']} ({r['timezone']}); last: {last}")


@superset_reports.command(name="run")
@click.argument("name")
@click.option("--timeout", type=click.IntRange(10, 3600), default=300, show_default=True, help="Seconds to wait for the outcome.")
def superset_reports_run(name: str, timeout: int) -> None:
    """Run the report or alert NAME now (as its schedule would), wait, and print the outcome.
    A report mails its dashboard; an alert mails only when its value is above its threshold."""
    from olist_bi.superset import reports
    from olist_bi.superset.tool import Superset

    settings = _settings()
    entry = reports.run(settings, Superset(settings).client(), name, timeout)
    value = "" if entry["value"] is None else f" (value {entry['value']:g})"
    click.echo(f"{name}: {entry['state']}{value}" + (f": {entry['error_message']}" if entry["error_message"] else ""))
    if entry["state"] == "Error":
        raise SystemExit(1)


@main.group(invoke_without_command=True)
@click.option("--foreground", is_flag=True, help="Serve in this process until stopped (as docker-compose's notebook service does).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (with --foreground; 0.0.0.0 in a container).")
@click.pass_context
def notebook(ctx: click.Context, foreground: bool, host: str) -> None:
    """Serve the analysts' marimo notebook (notebooks/explore.py: metrics by a dimension and
    filters as a chart and a table, and a cohort explorer) as a read-only app on
    127.0.0.1:OLIST_NOTEBOOK_PORT (2718), detached; prints the address with its access token.
    `olist-bi notebook stop` stops it."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi import notebook as server

    settings = _settings()
    if foreground:
        ctx.exit(server.run_foreground(settings, host))
    click.echo(f"The notebook is up at {server.serve(settings, say=lambda m: click.echo(m, err=True))}")


@notebook.command(name="stop")
def notebook_stop() -> None:
    """Stop the notebook that `olist-bi notebook` started."""
    from olist_bi import notebook as server

    click.echo("stopped" if server.stop(_settings()) else "not running")


@main.group(invoke_without_command=True)
@click.pass_context
def outbox(ctx: click.Context) -> None:
    """The local demo's mail: list the messages the demo's mail sink kept in $OLIST_HOME/outbox/
    (oldest first: when, to, subject, attachments, file). `olist-bi outbox serve` runs the sink."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi import outbox as sink

    settings = _settings()
    kept = sink.messages(settings)
    if not kept:
        click.echo(f"no message in {settings.outbox_dir}")
        return
    for m in kept:
        attached = "; ".join(f"{name} ({kind}, {size:,} bytes)" for name, kind, size in m.attachments) or "no attachment"
        click.echo(f"{m.received:%Y-%m-%d %H:%M:%S} UTC  to {m.to}\n  {m.subject}\n  {attached}\n  {m.path}")


@outbox.command(name="serve")
@click.option("--foreground", is_flag=True, help="Run the sink in this process until stopped (what the detached one runs).")
def outbox_serve(foreground: bool) -> None:
    """Run the demo's mail sink on 127.0.0.1:OLIST_SMTP_PORT (8025), detached: an SMTP server
    that sends nothing on and keeps each message as an .eml file in $OLIST_HOME/outbox/."""
    from olist_bi import outbox as sink

    settings = _settings()
    if not foreground:
        click.echo(f"The mail sink listens on {sink.serve(settings, say=lambda m: click.echo(m, err=True))}; messages in {settings.outbox_dir}")
        return
    import signal
    import threading

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    server = sink.controller(settings, say=lambda m: click.echo(m, err=True))
    server.start()
    click.echo(f"mail sink on 127.0.0.1:{settings.smtp_port}; messages in {settings.outbox_dir}", err=True)
    stopped.wait()
    server.stop()


@outbox.command(name="stop")
def outbox_stop() -> None:
    """Stop the mail sink that `olist-bi outbox serve` (or `up`) started."""
    from olist_bi import outbox as sink

    click.echo("stopped" if sink.stop(_settings()) else "not running")


def _print_logins(settings, users: dict[str, str]) -> None:
    if not users:
        return
    click.echo("demo logins (local demo only; passwords kept in " + str(settings.secrets_dir) + "):")
    for username, password in users.items():
        click.echo(f"  {username:<12} {password}")


@main.group()
def metabase() -> None:
    """Metabase: build its assets from the dashboard specs, and provision a Metabase over REST."""


from olist_bi.metabase.assets import ASSETS_DIR as DEFAULT_METABASE_ASSETS  # noqa: E402


@metabase.command(name="build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_METABASE_ASSETS, show_default=True, help="Folder to write the assets into.")
def metabase_build(out: Path) -> None:
    """Write Metabase's assets (one file per dashboard, and access.yaml) from the dashboard
    specs and the semantic layer. Run it after changing either; a test fails when they are stale."""
    from olist_bi.metabase import assets

    for path in assets.write(out):
        click.echo(f"wrote {path}")


@metabase.command(name="provision")
@click.option("--url", default=None, help="The Metabase to provision. Default: OLIST_METABASE_URL.")
@click.option("--assets", "assets_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=DEFAULT_METABASE_ASSETS, show_default=True, help="The asset files.")
@click.option("--wait", type=click.IntRange(0, 3600), default=600, show_default=True, help="Seconds to wait for a starting Metabase (503).")
def metabase_provision(url: str | None, assets_dir: Path, wait: int) -> None:
    """Provision a Metabase over its REST API: first-run setup (or sign in), the warehouse
    (DuckDB, read-only) and operations connections, then collections, questions, dashboards,
    the groups Olist Viewers and Olist Analysts, and their data and collection permissions
    (and, in the local demo, the demo users). Idempotent: a second run creates nothing."""
    from olist_bi.metabase import provision

    settings = _settings()
    url = (url or settings.metabase_url).rstrip("/")
    report = provision.provision(settings, url, assets_dir, say=lambda m: click.echo(m, err=True), wait=wait)
    if report.setup:
        click.echo(f"set up Metabase: admin {settings.metabase_admin_email} (password: OLIST_METABASE_ADMIN_PASSWORD)")
    click.echo(f"provisioned {url}: {report.summary()}")
    _print_logins(settings, report.users)


@main.group(name="audit")
def audit_group() -> None:
    """The audit trail: an append-only, hash-chained log in the operations store."""


def _ops():
    from olist_bi.operations import store

    return store.connect(database_url(_settings()))


@audit_group.command(name="tail")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]), default=None, help="Only events at or after this time (UTC).")
@click.option("--actor", default=None, help="Only this actor (e.g. os:root, superset:admin).")
@click.option("--action", default=None, help="Only actions starting with this (etl., access.role.granted, ...).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="How many of the newest events.")
def audit_tail(since, actor, action, limit) -> None:
    """Print the newest audit events, oldest first: time, actor, source, action, target, details."""
    import datetime as dt

    from olist_bi.operations import audit

    with _ops() as ops:
        rows = audit.tail(ops, since.replace(tzinfo=dt.UTC) if since else None, actor, action, limit)
    for r in rows:
        details = json.dumps(r["details"], sort_keys=True, default=str)
        click.echo(f"{r['id']:>7}  {r['at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<22} {r['source']:<13} {r['action']:<30} {r['target'] or '-'}  {details[:200]}")
    if not rows:
        click.echo("no audit events match")


@audit_group.command(name="verify")
def audit_verify() -> None:
    """Recompute the hash chain and hold it against the newest signed checkpoint; exit 1
    naming the first row altered, removed or inserted, or a trail rewritten, cut or emptied."""
    from olist_bi.operations import audit, checkpoint

    settings = _settings()
    try:
        newest = checkpoint.latest(settings)
    except checkpoint.CheckpointInvalid as e:
        click.echo(f"audit trail NOT VERIFIED: {e}", err=True)
        sys.exit(1)
    with _ops() as ops:
        result = audit.verify(ops, newest[0] if newest else None)
    if not result.ok:
        click.echo(f"audit trail BROKEN after checking {result.rows} rows: {result.reason}", err=True)
        sys.exit(1)
    click.echo(f"audit trail intact: {result.rows} rows, every hash chains to the one before")
    if newest:
        click.echo(f"  and holds against the checkpoint of {newest[0].at}: {newest[0].rows} rows up to id {newest[0].last_id} ({newest[1]})")
    else:
        click.echo("  no signed checkpoint yet: rows rewritten with recomputed hashes, or deleted from the end, would not show; run `olist-bi audit checkpoint`")


@audit_group.command(name="checkpoint")
def audit_checkpoint() -> None:
    """Sign the trail's head (rows, last id, its hash) with OLIST_AUDIT_KEY into a file under
    $OLIST_HOME/audit/checkpoints; `audit verify` holds the trail against the newest one."""
    from olist_bi.operations import checkpoint

    settings = _settings()
    with _ops() as ops:
        written, path = checkpoint.write(settings, ops)
    click.echo(f"checkpoint: {written.rows} rows up to id {written.last_id}, signed, in {path}")


@audit_group.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True, help="Output format.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: standard output).")
def audit_export(fmt, out) -> None:
    """Export the whole trail, oldest first, with each row's hashes, as JSON lines or CSV;
    a new signed checkpoint goes with it (the last JSON line; beside a CSV file as
    <file>.checkpoint.json, or on standard error)."""
    from olist_bi.operations import audit, checkpoint

    settings = _settings()
    with _ops() as ops:
        written, _ = checkpoint.write(settings, ops)
        if out is None:
            count = audit.export(ops, fmt, sys.stdout, written)
        else:
            with out.open("w", encoding="utf-8", newline="") as f:
                count = audit.export(ops, fmt, f, written)
    if fmt == "csv":
        carried = json.dumps(written.as_dict(), sort_keys=True)
        if out is None:
            click.echo(carried, err=True)
        else:
            out.with_name(out.name + ".checkpoint.json").write_text(carried + "\n", encoding="utf-8")
    click.echo(f"exported {count} events, with the checkpoint of {written.at} ({written.rows} rows up to id {written.last_id})", err=True)


@audit_group.command(name="review")
def audit_review() -> None:
    """Run the access review now (the scheduler runs it every OLIST_ACCESS_REVIEW_MINUTES): record
    each BI tool's user, role (group) and permission changes, and Superset's SQL Lab history."""
    from olist_bi import bi

    outcomes = bi.review_access(_settings())
    for outcome in outcomes:
        click.echo(f"access review of {outcome.tool}: {outcome.status}: {outcome.message}")
    if any(o.status == "failed" for o in outcomes) or all(o.status == "skipped" for o in outcomes):
        raise SystemExit(1)


@main.group(name="bench")
def bench_group() -> None:
    """Benchmarks: the DuckDB warehouse against a PostgreSQL-only warehouse (BENCHMARKS.md)."""


@bench_group.command(name="queries")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Scale of the generated drop (seed 42).")
@click.option("--repeat", type=click.IntRange(1, 1000), default=5, show_default=True, help="Warm repetitions per query and engine.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (geomean_speedup and one entry per query).")
@click.option("--engines", default="duckdb,postgres", show_default=True, callback=lambda ctx, param, value: _engines(value),
              help="duckdb,postgres, or duckdb,postgres,clickhouse to time embedded ClickHouse beside them.")
def bench_queries(scale: float, repeat: int, as_json: bool, engines: tuple[str, ...]) -> None:
    """Run every dashboard chart query of the semantic layer on DuckDB and on the same star
    schema and marts loaded into PostgreSQL (indexes, ANALYZE); report p50 and p95 per query,
    the speed-up and its geometric mean, and check both engines return the same rows. The
    drop, warehouse and PostgreSQL copy are built under $OLIST_HOME/bench/ once per scale."""
    from olist_bi import benchmark

    settings = _settings()
    say = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    report = benchmark.queries_at_scale(settings, scale, repeat, say, engines)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(
            f"scale {scale:g}: {len(report['queries'])} queries, geometric mean speed-up {report['geomean_speedup']}x "
            f"(as the BI tools connect; {report['geomean_file_open_speedup']}x opening the file per query), "
            f"connection p50 {report['connection_cost']['provider']['p50_ms']} ms (file open {report['connection_cost']['file_open']['p50_ms']} ms), "
            f"DuckDB worst p95 {report['duckdb_worst_p95_ms']} ms, all rows equal: {report['all_rows_equal']}"
        )
        if "clickhouse" in engines:
            click.echo(
                f"ClickHouse (embedded): geometric mean speed-up {report['clickhouse_geomean_speedup']}x over PostgreSQL, "
                f"{report['duckdb_vs_clickhouse_geomean']}x DuckDB's p50, worst p95 {report['clickhouse_worst_p95_ms']} ms, "
                f"same rows as DuckDB: {report['clickhouse_rows_equal']}"
            )


def _engines(value: str) -> tuple[str, ...]:
    engines = tuple(e.strip() for e in value.split(",") if e.strip())
    if set(engines) not in ({"duckdb", "postgres"}, {"duckdb", "postgres", "clickhouse"}):
        raise click.BadParameter("give duckdb,postgres or duckdb,postgres,clickhouse (DuckDB and PostgreSQL are always compared)")
    return engines


@bench_group.command(name="report")
@click.option("--scales", default="0.1,1,10", show_default=True, help="Comma-separated scales to run.")
@click.option("--repeat", type=click.IntRange(1, 1000), default=5, show_default=True, help="Warm repetitions per query and engine.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("BENCHMARKS.md"), show_default=True, help="The report to write; the plot goes beside it.")
@click.option("--engines", default="duckdb,postgres", show_default=True, callback=lambda ctx, param, value: _engines(value),
              help="duckdb,postgres, or duckdb,postgres,clickhouse to add embedded ClickHouse.")
def bench_report(scales: str, repeat: int, out: Path, engines: tuple[str, ...]) -> None:
    """Run `bench queries` at each scale and write BENCHMARKS.md: machine facts, the command,
    a table per scale and a PNG plot of latency by scale for both engines."""
    from olist_bi import benchmark

    settings = _settings()
    reports = []
    for scale in [float(s) for s in scales.split(",")]:
        click.echo(f"scale {scale:g} ...", err=True)
        reports.append(benchmark.queries_at_scale(settings, scale, repeat, lambda m: click.echo(m, err=True), engines))
    plot = out.with_name("benchmarks-latency.png")
    benchmark.plot(reports, plot)
    out.write_text(benchmark.render_report(reports, plot.name, f"olist-bi bench report --scales {scales} --repeat {repeat}" + (f" --engines {','.join(engines)}" if "clickhouse" in engines else "")), encoding="utf-8")
    for r in reports:
        click.echo(f"scale {r['scale']:g}: geometric mean speed-up {r['geomean_speedup']}x, DuckDB worst p95 {r['duckdb_worst_p95_ms']} ms")
    click.echo(f"wrote {out} and {plot}")


@main.command(name="scheduler")
def scheduler_command() -> None:
    """Run the scheduler in the foreground: the ETL on OLIST_ETL_SCHEDULE (default nightly)
    and on each new drop in OLIST_INBOX (a sub-folder with the nine files and a READY file).
    Jobs are stored in PostgreSQL; SIGTERM or Ctrl-C stops it after the running job."""
    import logging

    from olist_bi.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    scheduler = Scheduler(settings)
    click.echo(f"scheduler: ETL at '{settings.etl_schedule}' (UTC) and on new drops in {settings.inbox}", err=True)
    scheduler.run_until_stopped()
    click.echo("scheduler stopped", err=True)


@main.command()
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="Your own drop of the nine files; default: a generated sample.")
def up(source: Path | None) -> None:
    """Bring the platform up: PostgreSQL (embedded unless OLIST_DATABASE_URL names one), a
    checked drop loaded into the warehouse, Superset serving the provisioned dashboards, and
    a Metabase provisioned if one answers at OLIST_METABASE_URL. This is what `make up` runs;
    it ends with what runs where and how to log in."""
    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    click.echo(f"OLIST_HOME: {settings.home}")
    url = database_url(settings)
    where = "embedded" if settings.uses_embedded_postgres else "external"
    click.echo(f"PostgreSQL ({where}): {mask_url(url)}")

    if source is None:
        from olist_bi.generator import generate as run

        source = settings.drops_dir / f"sample-scale{settings.sample_scale:g}-seed42"
        if not (source / contract.SOURCE_FILES[0].filename).exists():
            click.echo(f"generating a sample drop at scale {settings.sample_scale:g} into {source}")
            run(source, settings.sample_scale, 42, progress=_progress)
    from olist_bi.etl import pipeline

    click.echo(f"loading {source} into the warehouse")
    try:
        result = pipeline.run(settings, source, progress=lambda m: click.echo(f"  {m}", err=True))
    except pipeline.EtlError as e:
        raise click.ClickException(f"run {e.run_id} failed: {e}") from None
    click.echo(f"warehouse: {settings.warehouse_path} (run {result.run_id} {result.status})")

    from olist_bi import bi
    from olist_bi import notebook as notebook_server
    from olist_bi.superset import server

    superset_url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    notebook_url = notebook_server.serve(settings, say=lambda m: click.echo(m, err=True))
    mail_sink = None
    if settings.is_demo and not settings.smtp_host:
        from olist_bi import outbox as sink

        mail_sink = sink.serve(settings, say=lambda m: click.echo(m, err=True))
    report = bi.tool("superset", settings).provision(say=lambda m: click.echo(m, err=True))
    metabase = bi.tool("metabase", settings)
    metabase_report = metabase.provision(say=lambda m: click.echo(m, err=True)) if metabase.reachable() else None

    click.echo("\nRunning now:")
    click.echo(f"  PostgreSQL   {mask_url(url)} ({where}; BI metadata, run history, quality results, audit trail)")
    click.echo(f"  warehouse    {settings.warehouse_path} (DuckDB, run {result.run_id})")
    click.echo(f"  Superset     {superset_url}  {report.counts['dashboards']} dashboards; SQL Lab for analysts")
    click.echo(f"  reports      {report.counts['reports_and_alerts']} scheduled reports and alerts, run by Superset's Celery worker and beat "
               "(`olist-bi superset reports`; platform/reports/reports.yaml)")
    if not server.CHROMIUM.exists():
        click.echo(f"               waiting: {server.CHROMIUM_MISSING}")
    if metabase_report:
        click.echo(f"  Metabase     {metabase.url}  {metabase_report.summary}")
    else:
        click.echo(f"  Metabase     none answers at {metabase.url}; start one (docs/metabase.md), then `olist-bi metabase provision`")
    click.echo(f"  notebook     {notebook_url}  marimo, for analysts (olist_bi.api)")
    if mail_sink:
        click.echo(f"  mail sink    {mail_sink}  the demo's mail, kept in {settings.outbox_dir} (`olist-bi outbox` lists it)")
    click.echo("  scheduler    not started by `up`: `olist-bi scheduler` rebuilds the warehouse on its schedule and on new drops")
    click.echo("\nLog in to Superset:")
    if settings.is_demo:
        click.echo(f"  {server.ADMIN_USER:<12} {server.admin_password(settings)}")
    _print_logins(settings, report.users)
    if metabase_report:
        _print_logins(settings, metabase_report.users)
    click.echo("\nStop it with `make down` (Superset and its Celery worker and beat, the notebook, the mail sink and the embedded PostgreSQL; the data stay in OLIST_HOME).")


if __name__ == "__main__":
    main()

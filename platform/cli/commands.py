"""The `olist-bi` command line. Each command's docstring is its help; commands call library
functions that the tests call directly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import time
from pathlib import Path

import click

from olist_bi import bi, contract
from olist_bi.app import doctor
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.cli.errors import Boundary, Busy
from olist_bi.operations.postgres import EmbeddedPostgres, PostgresError, database_url, embedded, migration_url
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
    result = run(out, scale, seed, start_date.date() if start_date else None, months, progress=_progress)
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

    found = check_drop(folder, _settings().max_quarantine_share)
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
    import psycopg

    from olist_bi.operations import store
    from olist_bi.operations.postgres import ensure_ops_reader

    settings = _settings()
    url = migration_url(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        applied = store.migrate(conn)
    reader = ensure_ops_reader(settings, url)

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


@main.group()
def postgres() -> None:
    """Manage the embedded PostgreSQL (used when OLIST_DATABASE_URL is unset)."""


def _embedded() -> EmbeddedPostgres:
    settings = _settings()
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
    url = mask_url(database_url(_settings()))
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
    url = mask_url(database_url(_settings(), start=False))
    state = {"running": running, "url": url if running else None, "data_dir": str(server.data_dir)}
    emit(
        fmt,
        [state],
        lambda: click.echo(f"running: {url} (data in {server.data_dir})" if running else f"not running (data in {server.data_dir})"),
        state,
    )
    if not running:
        sys.exit(1)


# etl run and etl rollback: whether the BI tools follow what is served now, or later.
AFTER_PUBLISH = click.option(
    "--no-after-publish",
    "after_publish",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Do not run the BI tools' after-publish step (cache warm-up, connection switch); `olist-bi bi after-publish` runs it later.",
)


@main.group()
def etl() -> None:
    """The warehouse pipeline: load drops into the DuckDB star schema and marts."""


@etl.command(name="run")
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder with the nine Olist files to load.",
)
@click.option(
    "--full", is_flag=True, help="Rebuild from every drop loaded so far (and --source), ignoring what the served warehouse holds."
)
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Let a geolocation or category-translation file replace its table with under half its rows (or none).",
)
@AFTER_PUBLISH
@output.option
def etl_run(source: Path | None, full: bool, allow_shrink: bool, after_publish: bool, fmt: str) -> None:
    """Load a drop: extract, validate (bad rows to quarantine), transform (a line per model),
    and publish a new warehouse file atomically; then each reachable BI tool's after-publish
    step. Files loaded before (same SHA-256) are skipped; a rerun of the same drop changes
    nothing. Exits 1, publishing nothing, when the run fails."""
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
    outcomes = _after_publish(settings) if result.status == "succeeded" and after_publish else []
    files = [
        {"file": contract.BY_TABLE[t].filename, "read": read, "loaded": result.rows_loaded[t], "quarantined": result.rows_quarantined[t]}
        for t, read in result.rows_read.items()
    ]
    warnings = [
        f"{r.rule}: {r.rows_failing:,} rows (kept), e.g. {', '.join(r.example_keys[:2])}"
        for r in result.results
        if r.severity == "warn" and not r.passed
    ] + list(result.warnings)

    def table() -> None:
        click.echo(f"run {result.run_id} {result.status}: {result.message}")
        _print_outcomes(outcomes)
        if files:
            click.echo(f"  {'file':<42} {'read':>12} {'loaded':>12} {'quarantined':>12}")
            for f in files:
                click.echo(f"  {f['file']:<42} {f['read']:>12,} {f['loaded']:>12,} {f['quarantined']:>12,}")
            for line in warnings:
                click.echo(f"  warning: {line}")
            click.echo(f"  stages: {', '.join(f'{k} {v:.1f} s' for k, v in result.stage_seconds.items())}")

    emit(
        fmt,
        files,
        table,
        {
            "run_id": result.run_id,
            "status": result.status,
            "message": result.message,
            "files": files,
            "warnings": warnings,
            "stage_seconds": {k: round(v, 2) for k, v in result.stage_seconds.items()},
            "after_publish": _outcome_rows(outcomes),
        },
    )


@etl.command(name="status")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many recent runs to show.")
@output.option
def etl_status(limit: int, fmt: str) -> None:
    """Show recent runs: trigger, status, duration, rows, quality summary, and the error of
    failed runs."""
    from olist_bi.engines.duckdb import warehouse
    from olist_bi.operations import store

    settings = _settings()
    with store.connect(database_url(settings)) as ops:
        runs = store.recent_runs(ops, limit)
    rows = [
        {
            "run_id": r["run_id"],
            "started_at": r["started_at"],
            "trigger": r["trigger"],
            "status": r["status"],
            "seconds": round(r["duration_s"], 2) if r["duration_s"] is not None else None,
            "rows_loaded": sum((r["rows_loaded"] or {}).values()),
            "rows_quarantined": sum((r["rows_quarantined"] or {}).values()),
            "rules_checked": r["rules_checked"],
            "rules_failed": r["rules_failed"],
            "warnings": r["warnings"],
            "error": r["error"] if r["status"] in ("failed", "skipped") else None,
        }
        for r in runs
    ]
    try:
        served = warehouse.current(settings.warehouse_path).name
    except warehouse.WarehouseMissing:
        served = None

    def table() -> None:
        if not rows:
            click.echo("no runs yet: load a drop with `olist-bi etl run --source DIR`")
            return
        click.echo(
            f"{'run':>5}  {'started':<19}  {'trigger':<8}  {'status':<9}  {'seconds':>8}  {'loaded':>10}  {'quarantined':>11}  quality"
        )
        for r in rows:
            quality_summary = (
                f"{r['rules_failed']} rules rejected rows, {r['warnings']} warnings" if r["rules_checked"] is not None else "-"
            )
            seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
            click.echo(
                f"{r['run_id']:>5}  {r['started_at']:%Y-%m-%d %H:%M:%S}  {r['trigger']:<8}  {r['status']:<9}  {seconds:>8}  "
                f"{r['rows_loaded']:>10,}  {r['rows_quarantined']:>11,}  {quality_summary}"
            )
            if r["error"]:
                first, *rest = r["error"].splitlines()
                click.echo(f"       {first}" + (f" (+{len(rest)} lines)" if rest else ""))
        if served:
            click.echo(f"served warehouse: {settings.warehouse_path} (generation {served})")
        else:
            click.echo(f"served warehouse: none yet at {settings.warehouse_path}")

    emit(fmt, rows, table, {"runs": rows, "served_warehouse": {"path": str(settings.warehouse_path), "generation": served}})


@etl.command(name="rollback")
@AFTER_PUBLISH
@output.option
def etl_rollback(after_publish: bool, fmt: str) -> None:
    """Serve the previous warehouse file again (the newest of the two kept), atomically.
    Undoes the last publish; run it twice to go back two."""
    from olist_bi.etl import pipeline

    settings = _settings()
    done = pipeline.rollback(settings, lambda message: click.echo(message, err=True))
    restored, left = done.restored, done.older_left
    outcomes = _after_publish(settings) if after_publish else []

    def table() -> None:
        click.echo(f"serving {restored.name} again as {settings.warehouse_path}")
        click.echo(f"{left} older file(s) left to roll back to")
        _print_outcomes(outcomes)

    emit(
        fmt,
        [{"restored": restored.name, "older_left": left}],
        table,
        {
            "restored": restored.name,
            "served_path": str(settings.warehouse_path),
            "older_left": left,
            "after_publish": _outcome_rows(outcomes),
        },
    )


@etl.command(name="copies")
@output.option
def etl_copies(fmt: str) -> None:
    """Cut the reader copies again from the served warehouse where they were not cut from it
    (after restoring the warehouse from a backup, or adding a scoped role to access.yaml).
    Every run and every rollback does it first anyway."""
    from olist_bi.etl import pipeline, readers

    settings = _settings()
    with pipeline.exclusive(settings):
        served = readers.reconcile(settings, lambda message: click.echo(message, err=True))
    rows = [{"copy": path.name} for path in served]

    def table() -> None:
        click.echo("\n".join(f"serving {path.name}" for path in served) or "every copy was cut from the served warehouse: nothing to do")

    emit(fmt, rows, table, {"cut": [row["copy"] for row in rows]})


def _after_publish(settings) -> list:
    """Each reachable BI tool's after-publish step (olist_bi.bi), its outcomes; a failure is
    reported, the publish stands."""
    from olist_bi import bi

    try:
        return bi.after_publish(settings, say=lambda m: click.echo(f"  {m}", err=True))
    except PostgresError as e:
        click.echo(f"  after publish: not recorded: {e}", err=True)
        return []


def _outcome_rows(outcomes) -> list[dict]:
    """The BI tools' outcomes (olist_bi.bi.Outcome) as the JSON and CSV rows print them."""
    return [dataclasses.asdict(o) for o in outcomes]


def _print_outcomes(outcomes) -> None:
    for o in outcomes:
        click.echo(f"  {o.tool}: {o.status}: {o.message}", err=o.status != "done")


@main.group()
def semantic() -> None:
    """The semantic layer: every metric and dimension defined once (platform/semantic/)."""


def _query_options(command):
    options = [
        click.option("--metric", "metrics", multiple=True, required=True, help="A metric; repeat for several."),
        click.option("--by", "by", multiple=True, help="A dimension to group by, with a grain for dates: purchase_date:month. Repeatable."),
        click.option(
            "--where", "where", multiple=True, help="A filter DIMENSION=VALUE[,VALUE...]; values are bound, never spliced. Repeatable."
        ),
        click.option(
            "--from", "start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First purchase date (inclusive), YYYY-MM-DD."
        ),
        click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last purchase date (inclusive), YYYY-MM-DD."),
        click.option(
            "--complete-periods",
            "complete_periods",
            is_flag=True,
            help="Only the complete months of the data (mart_reporting_window), as the dashboards' time series show them.",
        ),
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
@output.option
def semantic_list(fmt: str) -> None:
    """List the metrics and dimensions, with the model each metric reads."""
    from olist_bi.semantic.catalog import load
    from olist_bi.semantic.compiler import available

    catalog = load()
    metrics = [
        {"kind": "metric", "name": m.name, "label": m.label, "format": m.format, "models": [m.model], "grains": []}
        for m in catalog.metrics.values()
    ]
    dimensions = [
        {
            "kind": "dimension",
            "name": d.name,
            "label": d.label,
            "format": None,
            "models": [name for name, model in catalog.models.items() if available(catalog, d, model)],
            "grains": list(d.grains),
        }
        for d in catalog.dimensions.values()
    ]

    def table() -> None:
        click.echo("metrics:")
        for m in metrics:
            click.echo(f"  {m['name']:<22} {m['label']:<24} {m['format']:<9} {m['models'][0]}")
        click.echo("dimensions:")
        for d in dimensions:
            grains = f" (grains: {', '.join(d['grains'])})" if d["grains"] else ""
            click.echo(f"  {d['name']:<22} {d['label']:<24} on {', '.join(d['models'])}{grains}")

    emit(fmt, metrics + dimensions, table, {"metrics": metrics, "dimensions": dimensions})


@semantic.command(name="show")
@click.argument("name")
@output.option
def semantic_show(name: str, fmt: str) -> None:
    """Show one metric or dimension: its definition, what it counts, its SQL."""
    from olist_bi.semantic.catalog import load
    from olist_bi.semantic.compiler import available, metric_sql

    catalog = load()
    if name in catalog.metrics:
        m = catalog.metrics[name]
        shown = {
            "kind": "metric",
            "name": m.name,
            "label": m.label,
            "description": m.description,
            "counts": m.counts,
            "unit": m.unit,
            "format": m.format,
            "additive": m.additive,
            "model": m.model,
            "requires": list(m.requires),
            "sql": metric_sql(catalog, m),
        }

        def table() -> None:
            click.echo(f"{m.name}: {m.label}\n\n{m.description}\n\ncounts: {m.counts}")
            click.echo(f"unit: {m.unit}   format: {m.format}   additive: {'yes' if m.additive else 'no'}   model: {m.model}")
            if m.requires:
                click.echo(f"requires --by: {', '.join(m.requires)}")
            click.echo(f"\nsql: {shown['sql']}")

        emit(fmt, [shown], table, shown)
        return
    if name in catalog.dimensions:
        d = catalog.dimensions[name]
        models = [m for m in catalog.models.values() if available(catalog, d, m)]
        shown = {
            "kind": "dimension",
            "name": d.name,
            "label": d.label,
            "description": d.description,
            "grains": list(d.grains),
            "default_grain": d.default_grain if d.grains else None,
            "metrics": [m.name for m in catalog.metrics.values() if catalog.models[m.model] in models],
        }

        def table() -> None:
            click.echo(f"{d.name}: {d.label}\n\n{d.description}")
            if d.grains:
                click.echo(f"grains: {', '.join(d.grains)} (default {d.default_grain})")
            click.echo(f"\nmetrics it applies to: {', '.join(shown['metrics'])}")

        emit(fmt, [shown], table, shown)
        return
    raise click.ClickException(
        f"unknown metric or dimension {name!r}; metrics: {', '.join(sorted(catalog.metrics))}; "
        f"dimensions: {', '.join(sorted(catalog.dimensions))}"
    )


@semantic.command(name="compile")
@_query_options
@output.option
def semantic_compile(metrics, by, where, start, end, complete_periods, fmt) -> None:
    """Print the DuckDB SQL a metric query compiles to, and its bound parameters."""
    compiled = _compile(metrics, by, where, start, end, complete_periods)
    params = [str(p) for p in compiled.params]

    def table() -> None:
        click.echo(compiled.sql)
        click.echo(f"-- parameters: {params}")

    emit(
        fmt,
        [{"sql": compiled.sql, "parameters": params}],
        table,
        {"sql": compiled.sql, "parameters": params, "columns": list(compiled.columns)},
    )


@semantic.command(name="query")
@_query_options
@output.option
def semantic_query(metrics, by, where, start, end, complete_periods, fmt) -> None:
    """Answer metrics by dimensions from the served warehouse, for example
    `--metric revenue --by purchase_date:month --where customer_state=SP`."""
    from olist_bi.semantic import query

    compiled = _compile(metrics, by, where, start, end, complete_periods)
    settings = _settings()
    rows = query.answer(compiled, settings)
    click.echo(query.render(compiled, rows, fmt))


@semantic.command(name="docs")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("docs/metrics.md"),
    show_default=True,
    help="Where to write the catalog.",
)
@output.option
def semantic_docs(out: Path, fmt: str) -> None:
    """Write the metric catalog (docs/metrics.md) from the definitions, with example values
    from the served warehouse."""
    from olist_bi.semantic import docs

    settings = _settings()
    out.write_text(docs.render_catalog(settings.warehouse_path), encoding="utf-8")
    output.wrote(fmt, [out])


@main.group(name="bi")
def bi_group() -> None:
    """The BI tools behind one interface (platform/bi/): which are reachable, and their
    after-publish step."""


@bi_group.command(name="list")
@output.option
def bi_list(fmt: str) -> None:
    """List the registered BI tools, where each is expected and whether it answers."""
    from olist_bi import bi

    rows = [{"tool": each.name, "url": each.url, "answers": each.reachable()} for each in bi.tools(_settings())]
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
    from olist_bi.engines.duckdb import warehouse

    settings = _settings()
    warehouse.current(settings.warehouse_path)
    outcomes = _outcome_rows(_after_publish(settings))
    emit(fmt, outcomes, lambda: [click.echo(f"{o['tool']}: {o['status']}: {o['message']}", err=o["status"] != "done") for o in outcomes])


@main.group(invoke_without_command=True)
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

    settings = _settings()
    if foreground:
        ctx.exit(server.run_foreground(settings, host))
    url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    output.serving(fmt, "The notebook", url)


@notebook.command(name="stop")
@output.option
def notebook_stop(fmt: str) -> None:
    """Stop the notebook that `olist-bi notebook` started."""
    from olist_bi.notebook import server

    output.stopped(fmt, server.stop(_settings()))


@main.group(invoke_without_command=True)
@output.option
@click.pass_context
def outbox(ctx: click.Context, fmt: str) -> None:
    """The local demo's mail: list the messages the demo's mail sink kept in $OLIST_HOME/outbox/
    (oldest first: when, to, subject, attachments, file). `olist-bi outbox serve` runs the sink."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi.notify import outbox as sink

    settings = _settings()
    kept = sink.messages(settings)
    rows = [
        {
            "received": m.received,
            "to": m.to,
            "subject": m.subject,
            "path": str(m.path),
            "attachments": [{"name": name, "type": kind, "bytes": size} for name, kind, size in m.attachments],
        }
        for m in kept
    ]

    def table() -> None:
        if not rows:
            click.echo(f"no message in {settings.outbox_dir}")
        for m in rows:
            attached = "; ".join(f"{a['name']} ({a['type']}, {a['bytes']:,} bytes)" for a in m["attachments"]) or "no attachment"
            click.echo(f"{m['received']:%Y-%m-%d %H:%M:%S} UTC  to {m['to']}\n  {m['subject']}\n  {attached}\n  {m['path']}")

    emit(fmt, rows, table)


@outbox.command(name="serve")
@click.option("--foreground", is_flag=True, help="Run the sink in this process until stopped (what the detached one runs).")
@output.option
def outbox_serve(foreground: bool, fmt: str) -> None:
    """Run the demo's mail sink on 127.0.0.1:OLIST_SMTP_PORT (8025), detached: an SMTP server
    that sends nothing on and keeps each message as an .eml file in $OLIST_HOME/outbox/."""
    from olist_bi.notify import outbox as sink

    settings = _settings()
    if not foreground:
        address = sink.serve(settings, say=lambda m: click.echo(m, err=True))
        emit(
            fmt,
            [{"address": address, "outbox": str(settings.outbox_dir)}],
            lambda: click.echo(f"The mail sink listens on {address}; messages in {settings.outbox_dir}"),
            {"address": address, "outbox": str(settings.outbox_dir)},
        )
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
@output.option
def outbox_stop(fmt: str) -> None:
    """Stop the mail sink that `olist-bi outbox serve` (or `up`) started."""
    from olist_bi.notify import outbox as sink

    output.stopped(fmt, sink.stop(_settings()))


@main.group(name="audit")
def audit_group() -> None:
    """The audit trail: an append-only, hash-chained log in the operations store."""


def _ops():
    from olist_bi.operations import store

    return store.connect(database_url(_settings()))


@audit_group.command(name="tail")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="Only events at or after this time (UTC).",
)
@click.option("--actor", default=None, help="Only this actor (e.g. os:root, superset:admin).")
@click.option("--action", default=None, help="Only actions starting with this (etl., access.role.granted, ...).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="How many of the newest events.")
@output.option
def audit_tail(since, actor, action, limit, fmt) -> None:
    """Print the newest audit events, oldest first: time, actor, source, action, target, details."""
    import datetime as dt

    from olist_bi.operations import audit

    with _ops() as ops:
        rows = [dict(r) for r in audit.tail(ops, since.replace(tzinfo=dt.UTC) if since else None, actor, action, limit)]

    def table() -> None:
        for r in rows:
            details = json.dumps(r["details"], sort_keys=True, default=str)
            click.echo(
                f"{r['id']:>7}  {r['at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<22} "
                f"{r['source']:<13} {r['action']:<30} {r['target'] or '-'}  {details[:200]}"
            )
        if not rows:
            click.echo("no audit events match")

    emit(fmt, rows, table)


@audit_group.command(name="verify")
@output.option
def audit_verify(fmt: str) -> None:
    """Recompute the hash chain and hold it against the newest signed checkpoint; exit 1
    naming the first row altered, removed or inserted, or a trail rewritten, cut or emptied."""
    from olist_bi.operations import audit, checkpoint

    settings = _settings()
    try:
        newest = checkpoint.latest(settings)
    except checkpoint.CheckpointInvalid as e:
        _verified(fmt, {"intact": False, "rows": None, "reason": f"NOT VERIFIED: {e}", "checkpoint": None})
        click.echo(f"audit trail NOT VERIFIED: {e}", err=True)
        sys.exit(1)
    with _ops() as ops:
        result = audit.verify(ops, newest[0] if newest else None)
    age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(newest[0].at)).total_seconds() if newest else None
    held = (
        {"at": newest[0].at, "age_seconds": round(age), "rows": newest[0].rows, "last_id": newest[0].last_id, "file": str(newest[1])}
        if newest
        else None
    )
    if not result.ok:
        _verified(fmt, {"intact": False, "rows": result.rows, "reason": result.reason, "checkpoint": held})
        click.echo(f"audit trail BROKEN after checking {result.rows} rows: {result.reason}", err=True)
        sys.exit(1)

    def table() -> None:
        click.echo(f"audit trail intact: {result.rows} rows, every hash chains to the one before")
        if newest:
            click.echo(
                f"  and holds against the checkpoint of {newest[0].at} ({_ago(age)}): "
                f"{newest[0].rows} rows up to id {newest[0].last_id} ({newest[1]})"
            )
            if result.rows > newest[0].rows:
                click.echo(
                    f"  {result.rows - newest[0].rows} row(s) appended after it are chained but not yet signed: "
                    "the next run, `up` or `audit checkpoint` signs them"
                )
        else:
            click.echo(
                "  no signed checkpoint yet: rows rewritten with recomputed hashes, or deleted from the end, would not show; "
                "run `olist-bi audit checkpoint`"
            )

    _verified(fmt, {"intact": True, "rows": result.rows, "reason": None, "checkpoint": held}, table)


def _ago(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _verified(fmt: str, outcome: dict, table=lambda: None) -> None:
    """`audit verify`'s outcome: for scripts on standard output whether it holds (a broken
    trail also says so on standard error, in every format)."""
    emit(fmt, [{k: v for k, v in outcome.items() if k != "checkpoint"}], table, outcome)


@audit_group.command(name="checkpoint")
@output.option
def audit_checkpoint(fmt: str) -> None:
    """Sign the trail's head (rows, last id, its hash) with OLIST_AUDIT_KEY into a file under
    $OLIST_HOME/audit/checkpoints; `audit verify` holds the trail against the newest one."""
    from olist_bi.operations import checkpoint

    settings = _settings()
    with _ops() as ops:
        written, path = checkpoint.write(settings, ops)
    signed = {"rows": written.rows, "last_id": written.last_id, "at": written.at, "file": str(path)}
    emit(fmt, [signed], lambda: click.echo(f"checkpoint: {written.rows} rows up to id {written.last_id}, signed, in {path}"), signed)


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
@output.option
def audit_review(fmt: str) -> None:
    """Run the access review now (the scheduler runs it every OLIST_ACCESS_REVIEW_MINUTES): record
    each BI tool's user, role (group) and permission changes, and Superset's SQL Lab history."""
    from olist_bi import bi

    outcomes = bi.review_access(_settings())
    rows = _outcome_rows(outcomes)
    emit(fmt, rows, lambda: [click.echo(f"access review of {r['tool']}: {r['status']}: {r['message']}") for r in rows])
    if any(o.status == "failed" for o in outcomes) or all(o.status == "skipped" for o in outcomes):
        raise SystemExit(1)


@main.command(name="scheduler")
def scheduler_command() -> None:
    """Run the scheduler in the foreground: the ETL on OLIST_ETL_SCHEDULE (default nightly)
    and on each new drop in OLIST_INBOX (a sub-folder with the nine files and a READY file).
    Jobs are stored in PostgreSQL; SIGTERM or Ctrl-C stops it after the running job."""
    import logging

    from olist_bi.app.scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
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

    settings = _settings()
    try:
        running = bring_up(settings, source, output.say, progress=_progress)
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


for _group in bi.command_groups():  # each BI tool's own group (bi/<tool>/commands.py)
    main.add_command(_group)

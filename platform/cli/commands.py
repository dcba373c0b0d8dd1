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

from olist_bi import contract, doctor
from olist_bi.cli import output
from olist_bi.cli.output import emit
from olist_bi.errors import Boundary, Busy
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
    import duckdb

    from olist_bi.etl import extract, quality

    settings = _settings()
    with duckdb.connect() as con:
        con.execute(quality.QUARANTINE_DDL)
        read = extract.extract(con, folder, 0, set())
    over, files = [], []
    for item in read:
        failing = sum(r.rows_failing for r in item.results)
        notes = [f"{item.zips_fixed:,} zip prefixes padded to five digits"] if item.zips_fixed else []
        if failing:
            where = "; ".join(
                f"{r.rule}: {r.rows_failing:,} (e.g. {', '.join(r.example_keys[:2])})" for r in item.results if r.rows_failing
            )
            notes.append(f"{failing:,} record{'s' if failing != 1 else ''} `etl run` would quarantine: {where}")
            if item.rows_read and failing / item.rows_read > settings.max_quarantine_share:
                over.append(
                    f"{item.source.filename}: {failing:,} of {item.rows_read:,} records unreadable or mistyped, "
                    f"over OLIST_MAX_QUARANTINE_SHARE ({settings.max_quarantine_share:.1%})"
                )
        files.append(
            {
                "file": item.source.filename,
                "rows": item.rows_read,
                "quarantined": failing,
                "zips_padded": item.zips_fixed,
                "notes": "; ".join(notes),
            }
        )

    def table() -> None:
        click.echo(f"{folder}: all nine files match the contract")
        for f in files:
            click.echo(f"  {f['file']:<42} {f['rows']:>12,} rows" + (f"  ({f['notes']})" if f["notes"] else ""))

    emit(fmt, files, table, {"folder": str(folder), "contract": "ok", "etl_run_would_fail": over, "files": files})
    if over:
        raise click.ClickException("`etl run` would fail on this drop: " + "; ".join(over))


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
    _stopped(fmt, _embedded().stop())


def _stopped(fmt: str, was_running: bool) -> None:
    """What a `stop` command prints: whether there was something to stop."""
    emit(fmt, [{"stopped": was_running}], lambda: click.echo("stopped" if was_running else "not running"), {"stopped": was_running})


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
    from olist_bi import warehouse
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
    _wrote(fmt, [out])


def _wrote(fmt: str, paths) -> None:
    """What a command that writes files prints: their paths."""
    written = [str(p) for p in paths]
    emit(fmt, [{"wrote": p} for p in written], lambda: [click.echo(f"wrote {p}") for p in written], {"wrote": written})


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
    from olist_bi import warehouse

    settings = _settings()
    warehouse.current(settings.warehouse_path)
    outcomes = _outcome_rows(_after_publish(settings))
    emit(fmt, outcomes, lambda: [click.echo(f"{o['tool']}: {o['status']}: {o['message']}", err=o["status"] != "done") for o in outcomes])


@main.group()
def superset() -> None:
    """Superset: serve it, and provision connections, datasets, dashboards, roles and RLS."""


@superset.command(name="serve")
@output.option
def superset_serve(fmt: str) -> None:
    """Prepare Superset's metadata database and start Superset detached on
    127.0.0.1:OLIST_SUPERSET_PORT (8088); `olist-bi superset stop` stops it."""
    from olist_bi.superset import server

    settings = _settings()
    url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    _serving(fmt, "Superset", url)


def _serving(fmt: str, what: str, url: str) -> None:
    """What a `serve` command prints: where it serves."""
    emit(fmt, [{"url": url}], lambda: click.echo(f"{what} is up at {url}"), {"url": url})


@superset.command(name="stop")
@output.option
def superset_stop(fmt: str) -> None:
    """Stop the Superset that `olist-bi superset serve` started."""
    from olist_bi.superset import server

    _stopped(fmt, server.stop(_settings()))


@superset.command(name="provision")
@output.option
def superset_provision(fmt: str) -> None:
    """Provision the Superset at OLIST_SUPERSET_URL over its REST API: the warehouse and
    operations connections, the datasets and saved metrics of the semantic layer, the
    dashboards of platform/dashboards/, the roles olist_viewer, olist_analyst, olist_admin and
    the regional RLS role (and, in the local demo, one user per role). Idempotent."""
    from olist_bi.superset import provision

    settings = _settings()
    report = provision.provision(settings, say=lambda m: click.echo(m, err=True))

    def table() -> None:
        counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
        click.echo(f"provisioned {settings.superset_base_url}: {counts}")
        click.echo("changed: " + ("; ".join(report.changes) if report.changes else "nothing (already up to date)"))
        _print_logins(settings, report.users)

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
    """The scheduled reports and alerts in Superset (platform/reports/reports.yaml): name,
    type, crontab, recipients, last state and, for alerts, the last value."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi.superset.tool import Superset

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
    from olist_bi.superset import reports
    from olist_bi.superset.tool import Superset

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


@main.group(invoke_without_command=True)
@click.option("--foreground", is_flag=True, help="Serve in this process until stopped (as docker-compose's notebook service does).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (with --foreground; 0.0.0.0 in a container).")
@output.option
@click.pass_context
def notebook(ctx: click.Context, foreground: bool, host: str, fmt: str) -> None:
    """Serve the analysts' marimo notebook (platform/notebooks/explore.py: metrics by a dimension and
    filters as a chart and a table, and a cohort explorer) as a read-only app on
    127.0.0.1:OLIST_NOTEBOOK_PORT (2718), detached; prints the address with its access token.
    `olist-bi notebook stop` stops it."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi import notebook as server

    settings = _settings()
    if foreground:
        ctx.exit(server.run_foreground(settings, host))
    url = server.serve(settings, say=lambda m: click.echo(m, err=True))
    _serving(fmt, "The notebook", url)


@notebook.command(name="stop")
@output.option
def notebook_stop(fmt: str) -> None:
    """Stop the notebook that `olist-bi notebook` started."""
    from olist_bi import notebook as server

    _stopped(fmt, server.stop(_settings()))


@main.group(invoke_without_command=True)
@output.option
@click.pass_context
def outbox(ctx: click.Context, fmt: str) -> None:
    """The local demo's mail: list the messages the demo's mail sink kept in $OLIST_HOME/outbox/
    (oldest first: when, to, subject, attachments, file). `olist-bi outbox serve` runs the sink."""
    if ctx.invoked_subcommand is not None:
        return
    from olist_bi import outbox as sink

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
    from olist_bi import outbox as sink

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
    from olist_bi import outbox as sink

    _stopped(fmt, sink.stop(_settings()))


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
    from olist_bi.metabase import assets

    _wrote(fmt, assets.write(out))


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
    from olist_bi.metabase import provision

    settings = _settings()
    url = (url or settings.metabase_url).rstrip("/")
    report = provision.provision(settings, url, assets_dir, say=lambda m: click.echo(m, err=True), wait=wait)
    kinds = sorted(set(report.created) | set(report.updated) | set(report.archived))
    rows = [{"asset": k, "created": report.created[k], "updated": report.updated[k], "archived": report.archived[k]} for k in kinds]

    def table() -> None:
        if report.setup:
            click.echo(f"set up Metabase: admin {settings.metabase_admin_email} (password: OLIST_METABASE_ADMIN_PASSWORD)")
        click.echo(f"provisioned {url}: {report.summary()}")
        _print_logins(settings, report.users)

    emit(fmt, rows, table, {"url": url, "set_up": bool(report.setup), "assets": rows, "demo_users": sorted(report.users)})


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


@main.group(name="bench")
def bench_group() -> None:
    """Benchmarks: the DuckDB warehouse against a PostgreSQL-only warehouse (BENCHMARKS.md)."""


@bench_group.command(name="queries")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Scale of the generated drop (seed 42).")
@click.option("--repeat", type=click.IntRange(1, 1000), default=5, show_default=True, help="Warm repetitions per query and engine.")
@click.option(
    "--engines",
    default="duckdb,postgres",
    show_default=True,
    callback=lambda ctx, param, value: _engines(value),
    help="duckdb,postgres, or duckdb,postgres,clickhouse to time embedded ClickHouse beside them.",
)
@output.option
def bench_queries(scale: float, repeat: int, engines: tuple[str, ...], fmt: str) -> None:
    """Run every dashboard chart query of the semantic layer on DuckDB and on the same star
    schema and marts loaded into PostgreSQL (indexes, ANALYZE); report p50 and p95 per query,
    the speed-up and its geometric mean, and check both engines return the same rows. The
    drop, warehouse and PostgreSQL copy are built under $OLIST_HOME/bench/ once per scale."""
    from olist_bi import benchmark

    settings = _settings()
    report = benchmark.queries_at_scale(settings, scale, repeat, lambda m: click.echo(m, err=True), engines)

    def table() -> None:
        click.echo(
            f"scale {scale:g}: {len(report['queries'])} queries, geometric mean speed-up {report['geomean_speedup']}x "
            f"(as the BI tools connect; {report['geomean_file_open_speedup']}x opening the file per query), "
            f"connection p50 {report['connection_cost']['provider']['p50_ms']} ms "
            f"(file open {report['connection_cost']['file_open']['p50_ms']} ms), "
            f"DuckDB worst p95 {report['duckdb_worst_p95_ms']} ms, all rows equal: {report['all_rows_equal']}"
        )
        if "clickhouse" in engines:
            click.echo(
                f"ClickHouse (embedded): geometric mean speed-up {report['clickhouse_geomean_speedup']}x over PostgreSQL, "
                f"{report['duckdb_vs_clickhouse_geomean']}x DuckDB's p50, worst p95 {report['clickhouse_worst_p95_ms']} ms, "
                f"same rows as DuckDB: {report['clickhouse_rows_equal']}"
            )

    emit(fmt, report["queries"], table, report)


def _engines(value: str) -> tuple[str, ...]:
    engines = tuple(e.strip() for e in value.split(",") if e.strip())
    if set(engines) not in ({"duckdb", "postgres"}, {"duckdb", "postgres", "clickhouse"}):
        raise click.BadParameter("give duckdb,postgres or duckdb,postgres,clickhouse (DuckDB and PostgreSQL are always compared)")
    return engines


@bench_group.command(name="report")
@click.option("--scales", default="0.1,1,10", show_default=True, help="Comma-separated scales to run.")
@click.option("--repeat", type=click.IntRange(1, 1000), default=5, show_default=True, help="Warm repetitions per query and engine.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("BENCHMARKS.md"),
    show_default=True,
    help="The report to write; the plot goes beside it.",
)
@click.option(
    "--engines",
    default="duckdb,postgres",
    show_default=True,
    callback=lambda ctx, param, value: _engines(value),
    help="duckdb,postgres, or duckdb,postgres,clickhouse to add embedded ClickHouse.",
)
@output.option
def bench_report(scales: str, repeat: int, out: Path, engines: tuple[str, ...], fmt: str) -> None:
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
    out.write_text(
        benchmark.render_report(
            reports,
            plot.name,
            f"olist-bi bench report --scales {scales} --repeat {repeat}"
            + (f" --engines {','.join(engines)}" if "clickhouse" in engines else ""),
        ),
        encoding="utf-8",
    )
    rows = [
        {"scale": r["scale"], "geomean_speedup": r["geomean_speedup"], "duckdb_worst_p95_ms": r["duckdb_worst_p95_ms"]} for r in reports
    ]

    def table() -> None:
        for r in rows:
            click.echo(
                f"scale {r['scale']:g}: geometric mean speed-up {r['geomean_speedup']}x, DuckDB worst p95 {r['duckdb_worst_p95_ms']} ms"
            )
        click.echo(f"wrote {out} and {plot}")

    emit(fmt, rows, table, {"scales": rows, "wrote": [str(out), str(plot)]})


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


def _sample_drop(settings, say) -> Path:
    """The sample drop `up` loads when given none: generated once into OLIST_HOME's drops."""
    from olist_bi.generator import generate as run

    source = settings.drops_dir / f"sample-scale{settings.sample_scale:g}-seed42"
    if not (source / contract.SOURCE_FILES[0].filename).exists():
        say(f"generating a sample drop at scale {settings.sample_scale:g} into {source}")
        run(source, settings.sample_scale, 42, progress=_progress)
    return source


def _print_running(
    settings, url, where, result, superset_url, report, chromium, metabase, metabase_report, notebook_url, mail_sink
) -> None:
    """`up`'s closing table: what runs where, and how to log in."""
    from olist_bi.superset import server

    click.echo("\nRunning now:")
    click.echo(f"  PostgreSQL   {mask_url(url)} ({where}; BI metadata, run history, quality results, audit trail)")
    click.echo(f"  warehouse    {settings.warehouse_path} (DuckDB, run {result.run_id})")
    click.echo(f"  Superset     {superset_url}  {report.counts['dashboards']} dashboards; SQL Lab for analysts")
    click.echo(
        f"  reports      {report.counts['reports_and_alerts']} scheduled reports and alerts, run by Superset's Celery worker and beat "
        "(`olist-bi superset reports`; platform/reports/reports.yaml)"
    )
    if not chromium:
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
    click.echo(
        "\nStop it with `make down` (Superset and its Celery worker and beat, the notebook, the mail sink and the embedded PostgreSQL; "
        "the data stay in OLIST_HOME)."
    )


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
    say = output.say
    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    say(f"OLIST_HOME: {settings.home}")
    url = database_url(settings)
    where = "embedded" if settings.uses_embedded_postgres else "external"
    say(f"PostgreSQL ({where}): {mask_url(url)}")

    source = source or _sample_drop(settings, say)
    from olist_bi.etl import pipeline

    say(f"loading {source} into the warehouse")
    try:
        result = pipeline.run(settings, source, progress=lambda m: say(f"  {m}"))
    except pipeline.EtlError as e:
        raise click.ClickException(f"run {e.run_id} failed: {e}") from None
    say(f"warehouse: {settings.warehouse_path} (run {result.run_id} {result.status})")

    from olist_bi import bi
    from olist_bi import notebook as notebook_server
    from olist_bi.superset import server

    superset_url = server.serve(settings, say=say)
    notebook_url = notebook_server.serve(settings, say=say)
    mail_sink = None
    if settings.is_demo and not settings.smtp_host:
        from olist_bi import outbox as sink

        mail_sink = sink.serve(settings, say=say)
    report = bi.tool("superset", settings).provision(say=say)
    metabase = bi.tool("metabase", settings)
    metabase_report = metabase.provision(say=say) if metabase.reachable() else None
    from olist_bi.operations import checkpoint, store

    with store.connect(url) as ops:  # `up` ends, as every ETL run does, with a signed checkpoint of the audit trail
        signed, _ = checkpoint.write(settings, ops)
    say(f"audit checkpoint: {signed.rows} rows up to id {signed.last_id}, signed")
    chromium = server.CHROMIUM.exists()
    logins = {server.ADMIN_USER: server.admin_password(settings)} if settings.is_demo else {}
    logins.update(report.users)
    if metabase_report:
        logins.update(metabase_report.users)

    def table() -> None:
        _print_running(settings, url, where, result, superset_url, report, chromium, metabase, metabase_report, notebook_url, mail_sink)

    services = [
        {"service": "postgresql", "url": mask_url(url), "note": where},
        {"service": "warehouse", "url": str(settings.warehouse_path), "note": f"run {result.run_id}"},
        {"service": "superset", "url": superset_url, "note": f"{report.counts['dashboards']} dashboards"},
        {"service": "reports", "url": superset_url, "note": "ready" if chromium else server.CHROMIUM_MISSING},
        {"service": "metabase", "url": metabase.url, "note": metabase_report.summary if metabase_report else "not answering"},
        {"service": "notebook", "url": notebook_url, "note": "marimo"},
        *([{"service": "mail sink", "url": mail_sink, "note": str(settings.outbox_dir)}] if mail_sink else []),
    ]
    emit(fmt, services, table, {"services": services, "run_id": result.run_id, "demo_logins": logins})

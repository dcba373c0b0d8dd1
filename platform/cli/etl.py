"""`olist-bi etl`: run the pipeline, its history, rollback, and the reader copies."""

from __future__ import annotations

from pathlib import Path

import click

from olist_bi.cli.base import load_settings
from olist_bi import contract
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.cli.errors import Busy
from olist_bi.operations.postgres import database_url
from olist_bi.cli.bi import outcome_rows, print_outcomes, run_after_publish


# etl run and etl rollback: whether the BI tools follow what is served now, or later.
AFTER_PUBLISH = click.option(
    "--no-after-publish",
    "after_publish",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Do not run the BI tools' after-publish step (cache warm-up, connection switch); `olist-bi bi after-publish` runs it later.",
)


@click.group()
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

    settings = load_settings()
    if source is None and not full:
        raise click.UsageError("give --source DIR (a drop folder), or --full to rebuild from the drops loaded so far")
    try:
        result = pipeline.run(settings, source, full=full, progress=lambda m: click.echo(f"  {m}", err=True), allow_shrink=allow_shrink)
    except pipeline.EtlError as e:
        raise click.ClickException(f"run {e.run_id} failed: {e}") from None
    if result.status == "skipped" and pipeline.BUSY in result.message:
        raise Busy(f"run {result.run_id} skipped: {result.message}")
    outcomes = run_after_publish(settings) if result.status == "succeeded" and after_publish else []
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
        print_outcomes(outcomes)
        if files:
            click.echo(f"  {'file':<42} {'read':>12} {'loaded':>12} {'quarantined':>12}")
            for f in files:
                click.echo(f"  {f['file']:<42} {f['read']:>12,} {f['loaded']:>12,} {f['quarantined']:>12,}")
            for line in warnings:
                click.echo(f"  warning: {line}")
            click.echo(f"  stages: {', '.join(f'{k} {v:.1f} s' for k, v in result.stage_seconds.items())}")
            if result.touched_orders is not None:
                click.echo(f"  increment: the fact rows of {result.touched_orders:,} orders rebuilt")

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
            "touched_orders": result.touched_orders,
            "after_publish": outcome_rows(outcomes),
        },
    )


@etl.command(name="status")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many recent runs to show.")
@output.option
def etl_status(limit: int, fmt: str) -> None:
    """Show recent runs: trigger, status, duration, rows, quality summary, and the error of
    failed runs."""
    from olist_bi.engines.base import Damaged, engine
    from olist_bi.operations import store

    settings = load_settings()
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
    serving = engine(settings)
    try:
        served = (ledger := serving.ledger()) and ledger.generation
    except Damaged:
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
            click.echo(f"served warehouse: {serving.location} (generation {served})")
        else:
            click.echo(f"served warehouse: none yet at {serving.location}")

    emit(fmt, rows, table, {"runs": rows, "served_warehouse": {"path": serving.location, "generation": served}})


@etl.command(name="rollback")
@AFTER_PUBLISH
@output.option
def etl_rollback(after_publish: bool, fmt: str) -> None:
    """Serve the previous warehouse file again (the newest of the two kept), atomically.
    Undoes the last publish; run it twice to go back two."""
    from olist_bi.engines.base import engine
    from olist_bi.etl import pipeline

    settings = load_settings()
    done = pipeline.rollback(settings, lambda message: click.echo(message, err=True))
    restored, left = Path(done.restored).name, done.older_left
    outcomes = run_after_publish(settings) if after_publish else []

    def table() -> None:
        click.echo(f"serving {restored} again as {engine(settings).location}")
        click.echo(f"{left} older file(s) left to roll back to")
        print_outcomes(outcomes)

    emit(
        fmt,
        [{"restored": restored, "older_left": left}],
        table,
        {
            "restored": restored,
            "served_path": engine(settings).location,
            "older_left": left,
            "after_publish": outcome_rows(outcomes),
        },
    )


@etl.command(name="copies")
@output.option
def etl_copies(fmt: str) -> None:
    """Cut the reader copies again from the served warehouse where they were not cut from it
    (after restoring the warehouse from a backup, or adding a scoped role to access.yaml).
    Every run and every rollback does it first anyway."""
    from olist_bi.etl import pipeline, readers

    settings = load_settings()
    with pipeline.exclusive(settings):
        served = readers.reconcile(settings, lambda message: click.echo(message, err=True))
    rows = [{"copy": path.name} for path in served]

    def table() -> None:
        click.echo("\n".join(f"serving {path.name}" for path in served) or "every copy was cut from the served warehouse: nothing to do")

    emit(fmt, rows, table, {"cut": [row["copy"] for row in rows]})


@etl.command(name="cluster-ddl")
@click.option("--database", default="olist", show_default=True, help="The database the cluster serves.")
@click.option("--cluster", default="olist", show_default=True, help="The cluster's name in its remote_servers.")
def etl_cluster_ddl(database: str, cluster: str) -> None:
    """Print the DDL of the warehouse on a replicated, sharded ClickHouse cluster (docs/scaling.md),
    its column types read from the warehouse ClickHouse serves (OLIST_CLICKHOUSE_URL)."""
    from olist_bi.engines.clickhouse import cluster as on_cluster
    from olist_bi.engines.clickhouse import warehouse
    from olist_bi.etl import transform

    settings = load_settings()
    plan = transform.build_plan()
    try:
        found = on_cluster.columns(warehouse.connect(settings), settings.clickhouse_database, plan)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(on_cluster.script(on_cluster.ddl(plan, found, database, cluster)), nl=False)

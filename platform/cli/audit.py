"""`olist-bi audit`: the append-only, hash-chained audit trail: tail, verify, checkpoint, export, review."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from olist_bi.cli.base import load_settings
from olist_bi.cli.bi import outcome_rows
from olist_bi import bi
from olist_bi.runtime import output
from olist_bi.runtime.output import emit
from olist_bi.operations.postgres import database_url


@click.group(name="audit")
def audit_group() -> None:
    """The audit trail: an append-only, hash-chained log in the operations store."""


def _ops():
    from olist_bi.operations import store

    return store.connect(database_url(load_settings()))


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

    settings = load_settings()
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

    settings = load_settings()
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

    settings = load_settings()
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

    outcomes = bi.review_access(load_settings())
    rows = outcome_rows(outcomes)
    emit(fmt, rows, lambda: [click.echo(f"access review of {r['tool']}: {r['status']}: {r['message']}") for r in rows])
    if any(o.status == "failed" for o in outcomes) or all(o.status == "skipped" for o in outcomes):
        raise SystemExit(1)

"""How every command prints: one convention for people and for scripts.

Each command that prints results takes `--format table|json|csv` (default `table`):
- `table`: aligned text for people (colour only on a terminal, never with NO_COLOR set);
- `json`: one JSON document on standard output, its shape documented per command in
  docs/cli.md: an object for a command with one result, an array of objects for a listing;
- `csv`: the command's rows with a header line (the listing, or the one result's rows).
Progress and notes go to standard error in every format, so standard output holds only the
result; errors are one line on standard error (`--verbose` prints their details).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

import click

FORMATS = ("table", "json", "csv")


def option(command):
    """The `--format` option of a command that prints results."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json (shape in docs/cli.md) or csv for scripts.",
    )(command)


def no_color() -> bool:
    """NO_COLOR (https://no-color.org): set to anything but empty, no colour anywhere."""
    return bool(os.environ.get("NO_COLOR"))


def say(message: str) -> None:
    """A progress line or a note: standard error, whatever the format."""
    click.echo(message, err=True)


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def emit(fmt: str, rows: Iterable[dict], table: Callable[[], None], document: Any = None) -> None:
    """Print a result: `table()` for people; for scripts `document` as JSON (default: the
    rows as an array) or the rows as CSV (nested values as JSON text)."""
    rows = list(rows)
    if fmt == "table":
        table()
    elif fmt == "json":
        click.echo(json.dumps(rows if document is None else document, indent=2, default=_plain, ensure_ascii=False))
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        writer = csv.DictWriter(sys.stdout, columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v, default=_plain) if isinstance(v, (dict, list)) else v for k, v in row.items()})


def serving(fmt: str, what: str, url: str) -> None:
    """What a `serve` command prints: where it serves."""
    emit(fmt, [{"url": url}], lambda: click.echo(f"{what} is up at {url}"), {"url": url})


def stopped(fmt: str, was_running: bool) -> None:
    """What a `stop` command prints: whether there was something to stop."""
    emit(fmt, [{"stopped": was_running}], lambda: click.echo("stopped" if was_running else "not running"), {"stopped": was_running})


def wrote(fmt: str, paths) -> None:
    """What a command that writes files prints: their paths."""
    written = [str(p) for p in paths]
    emit(fmt, [{"wrote": p} for p in written], lambda: [click.echo(f"wrote {p}") for p in written], {"wrote": written})


def logins(settings, users: dict[str, str]) -> None:
    """The logins of the local demo a command made (none in production)."""
    if not users:
        return
    click.echo("demo logins (local demo only; passwords kept in " + str(settings.secrets_dir) + "):")
    for username, password in users.items():
        click.echo(f"  {username:<12} {password}")

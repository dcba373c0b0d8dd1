"""The command line's one error boundary: a mistake gets one clear line and an exit code.

Commands let the platform's own errors rise; `Boundary` (the `olist-bi` group) turns each
into one line on standard error, `Error: <what went wrong and what to do>` (as click's own), and a documented
exit code (docs/cli.md), passwords in connection strings masked. An error with details (a
drop that breaks the contract in nine places) says its first and how many more; `--verbose`
prints them all, one per line after the summary. A traceback is printed only with `--debug`
or `OLIST_DEBUG=1`, and for what is not a user's mistake (a bug: please report it). Output cut
by a closed pipe (`olist-bi audit export | head`) ends quietly.
"""

from __future__ import annotations

import os
import sys

import click

from olist_bi.settings import mask_url

OK, FAILED, USAGE, BUSY, INTERRUPTED = 0, 1, 2, 75, 130
LONGEST = 500  # characters of one value in a message; the rest is counted, not printed


class Busy(RuntimeError):
    """Another run holds the lock this command needs; try again later (exit 75)."""


def cut(text: str, longest: int = LONGEST) -> str:
    """`text` with each overlong word shortened: a 120,000-character name is not echoed whole."""
    if len(text) <= longest:
        return text
    parts = []
    for word in text.split(" "):
        parts.append(word if len(word) <= longest else f"{word[:60]}... ({len(word):,} characters)")
    joined = " ".join(parts)
    return joined if len(joined) <= 4 * longest else joined[: 4 * longest] + f"... ({len(text):,} characters in all)"


def user_errors() -> tuple[type[BaseException], ...]:
    """The errors a user's input, configuration or environment causes (imported late: the
    command line starts fast)."""
    import duckdb
    import psycopg

    from olist_bi.contract import ContractError
    from olist_bi.dashboards import SpecError
    from olist_bi.etl.pipeline import EtlError
    from olist_bi.engines.duckdb.publish import PublishError
    from olist_bi.bi.metabase.client import MetabaseApiError
    from olist_bi.operations.checkpoint import CheckpointInvalid
    from olist_bi.operations.postgres import PostgresError
    from olist_bi.notify.reports import ReportSpecError
    from olist_bi.semantic.catalog import CatalogError, UnknownName
    from olist_bi.semantic.compiler import CompileError
    from olist_bi.settings import SettingsError
    from olist_bi.bi.superset.client import SupersetApiError
    from olist_bi.engines.duckdb.warehouse import WarehouseMissing

    # RuntimeError covers the platform's other errors (Superset's start, provisioning, the
    # browser); a bug (KeyError, TypeError, AssertionError, ...) keeps its traceback.
    return (
        SettingsError,
        PostgresError,
        psycopg.Error,
        WarehouseMissing,
        ContractError,
        EtlError,
        PublishError,
        CheckpointInvalid,
        CatalogError,
        SpecError,
        ReportSpecError,
        UnknownName,
        CompileError,
        SupersetApiError,
        MetabaseApiError,
        duckdb.Error,
        OSError,
        RuntimeError,
    )


def remedy(error: BaseException) -> str:
    """What to do, for the errors whose own message does not say it (PostgreSQL's refusals)."""
    import psycopg

    if isinstance(error, psycopg.OperationalError):
        text = str(error)
        if "database" in text and "does not exist" in text:
            return " (create that database, or name one that exists in OLIST_DATABASE_URL)"
        if "Connection refused" in text:
            return " (no PostgreSQL answers there: start it, or fix OLIST_DATABASE_URL; unset, the local demo runs its own)"
    return ""


def summary(message: str) -> str:
    """A message of several lines as one line. Its list items ("- ..." lines: the files a drop
    breaks the contract in, say) are cut to the first, with how many more there are; its
    other lines (a cause, a remedy) are all kept."""
    kept, items = [], 0
    for line in (line.strip() for line in message.strip().splitlines()):
        if line.startswith("- "):
            items += 1
            if items > 1:
                continue
            line = line[2:]
        if line:
            kept.append(line)
    more = f" (and {items - 1} more: --verbose lists them)" if items > 1 else ""
    return " ".join(kept) + more


def details(message: str) -> str:
    """The whole message, for --verbose: its lines as they are."""
    return message.strip()


def debugging(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("OLIST_DEBUG", "").lower() in ("1", "true", "yes")


class Boundary(click.Group):
    """A click group whose commands' errors end as one line and an exit code."""

    def invoke(self, ctx: click.Context):
        verbose = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except click.UsageError:
            raise
        except click.ClickException as e:
            if "\n" in e.message:
                e.message = details(e.message) if verbose else summary(e.message)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): say nothing more, and keep Python from
            # complaining when it flushes standard output at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(OK)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except Busy as e:
            click.echo(f"Busy: {cut(mask_url(str(e)))}", err=True)
            ctx.exit(BUSY)
        except Exception as e:
            if debugging(ctx) or not isinstance(e, user_errors()):
                raise
            said = (details(str(e)) if verbose else summary(str(e))) + remedy(e)  # one line, unless --verbose
            click.echo(f"Error: {mask_url(said) if verbose else cut(mask_url(said)) or type(e).__name__}", err=True)
            ctx.exit(FAILED)

"""What every command group shares: the settings from the environment, and the progress line
of long work (generate, up)."""

from __future__ import annotations

import sys

import click

from olist_bi.settings import Settings


def load_settings() -> Settings:
    return Settings.from_env()


def progress(stage: str, done: int, total: int) -> None:
    line = f"  {stage:<22} {done:>12,} / {total:,}"
    if sys.stderr.isatty():  # one line per stage, rewritten in place
        click.echo(f"\r{line}", nl=done >= total, err=True)
    else:
        click.echo(line, err=True)

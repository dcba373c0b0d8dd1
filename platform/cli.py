"""The `olist-bi` command line. Each command's docstring is its help; commands call library
functions that the tests call directly."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from olist_bi import contract, doctor
from olist_bi.postgres import EmbeddedPostgres, PostgresError, database_url
from olist_bi.settings import Settings, SettingsError, mask_url


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as e:
        raise click.ClickException(str(e)) from None


def _progress(stage: str, done: int, total: int) -> None:
    line = f"  {stage:<22} {done:>12,} / {total:,}"
    if sys.stderr.isatty():  # one line per stage, rewritten in place
        click.echo(f"\r{line}", nl=done >= total, err=True)
    else:
        click.echo(line, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="olist-bi")
def main() -> None:
    """Olist BI platform: a DuckDB warehouse, a semantic layer and ready BI dashboards over
    the Olist e-commerce data. Configuration comes from OLIST_* environment variables
    (see `olist-bi doctor` and docs/configuration.md)."""


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
    """Check a drop folder against the source contract and count its rows.

    Reports each problem by file (missing file or column, wrong header order, empty file,
    bad encoding) and how many zip prefixes lost their leading zeros and were restored.
    """
    import duckdb

    try:
        with duckdb.connect() as con:
            loaded = contract.load_raw(con, folder)
    except contract.ContractError as e:
        raise click.ClickException(str(e)) from None
    except duckdb.Error as e:
        raise click.ClickException(f"{folder}: the files pass the header checks but cannot be read: {e}") from None
    click.echo(f"{folder}: all nine files match the contract")
    for item in loaded:
        fixed = f"  ({item.zips_fixed:,} zip prefixes padded to five digits)" if item.zips_fixed else ""
        click.echo(f"  {item.source.filename:<42} {item.rows:>12,} rows{fixed}")


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
        mark = click.style("ok  ", fg="green") if item.ok else click.style("FAIL", fg="red")
        click.echo(f"  {mark} {item.name:<14} {item.detail}")
        if not item.ok:
            click.echo(f"       remedy: {item.remedy}")
    if not all(c.ok for c in checks):
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
    """Start the embedded PostgreSQL (initialising it on first use) and print its URL."""
    try:
        click.echo(_embedded().start())
    except PostgresError as e:
        raise click.ClickException(str(e)) from None


@postgres.command(name="stop")
def postgres_stop() -> None:
    """Stop the embedded PostgreSQL cleanly."""
    try:
        stopped = _embedded().stop()
    except PostgresError as e:
        raise click.ClickException(str(e)) from None
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


@main.command()
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="Your own drop of the nine files; default: a generated sample.")
def up(source: Path | None) -> None:
    """Bring the platform up: the database, a checked drop, and (as later parts land) the
    warehouse and the BI tools. This is what `make up` runs."""
    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    click.echo(f"OLIST_HOME: {settings.home}")
    try:
        url = database_url(settings)
    except PostgresError as e:
        raise click.ClickException(str(e)) from None
    where = "embedded" if settings.uses_embedded_postgres else "external"
    click.echo(f"PostgreSQL ({where}): {mask_url(url)}")

    if source is None:
        from olist_bi.generator import generate as run

        source = settings.drops_dir / f"sample-scale{settings.sample_scale:g}-seed42"
        if not (source / contract.SOURCE_FILES[0].filename).exists():
            click.echo(f"generating a sample drop at scale {settings.sample_scale:g} into {source}")
            run(source, settings.sample_scale, 42, progress=_progress)
    try:
        contract.check_folder(source)
    except contract.ContractError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"drop ready and matching the source contract: {source}")
    click.echo(
        "next: the warehouse ETL, semantic layer and dashboards are not built yet in this version;\n"
        "      `olist-bi check` loads the drop, `olist-bi doctor` checks the set-up."
    )


if __name__ == "__main__":
    main()

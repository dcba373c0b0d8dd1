"""`olist-bi dbt`: the warehouse in dbt's terms, for the tools that read dbt projects."""

from __future__ import annotations

from pathlib import Path

import click

from olist_bi.runtime import output


@click.group()
def dbt() -> None:
    """The warehouse as a dbt project: its models, descriptions and tests, and the semantic
    layer's metrics as MetricFlow semantic models (docs/dbt.md)."""


@dbt.command(name="export")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write the dbt project into.")
@output.option
def dbt_export(out: Path, fmt: str) -> None:
    """Write the dbt project (dbt_project.yml, profiles.yml on OLIST_WAREHOUSE_PATH, the models'
    SQL with ref() and source(), sources.yml, schema.yml with every test, the metrics as
    MetricFlow) into OUT; `dbt parse` accepts it. The ETL, not dbt, builds the warehouse."""
    from olist_bi.etl import dbt_project

    output.wrote(fmt, dbt_project.export(out))

"""`olist-bi semantic`: the metric catalog: list, show, compile, query, docs."""

from __future__ import annotations

from pathlib import Path

import click

from olist_bi.cli.base import load_settings
from olist_bi.runtime import output
from olist_bi.runtime.output import emit


@click.group()
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
    settings = load_settings()
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

    settings = load_settings()
    out.write_text(docs.render_catalog(settings.warehouse_path), encoding="utf-8")
    output.wrote(fmt, [out])

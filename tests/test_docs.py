"""The docs keep up with the code: a variable, command or option left undocumented fails."""

from pathlib import Path

import click
import pytest

from olist_bi.cli import main
from olist_bi.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]


def commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} ")
        else:
            yield path, command


def test_the_configuration_table_is_the_declarations():
    from olist_bi.settings import markdown_table

    page = (ROOT / "docs" / "configuration.md").read_text()
    assert markdown_table() in page, "docs/configuration.md's table differs from SETTINGS: paste `python -m olist_bi.settings` over it"


@pytest.mark.parametrize("variable", SETTINGS, ids=lambda v: v.name)
def test_every_variable_is_documented(variable):
    assert f"`{variable.name}`" in (ROOT / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize("path, command", list(commands(main)), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_and_option_is_documented(path, command):
    text = (ROOT / "docs" / "cli.md").read_text()
    assert f"olist-bi {path.split(' ')[0]}" in text, path
    assert path.split(" ")[-1] in text, path
    for param in command.params:
        for option in getattr(param, "opts", []):
            if option.startswith("--"):
                assert option in text, f"{path} {option}"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make up" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_metric_and_dimension_is_in_the_catalog_page():
    from olist_bi.semantic.catalog import load

    text = (ROOT / "docs" / "metrics.md").read_text()
    catalog = load()
    for metric in catalog.metrics.values():
        assert f"### {metric.name}\n" in text, f"{metric.name} is missing from docs/metrics.md: run `olist-bi semantic docs`"
        section = text.split(f"### {metric.name}\n", 1)[1].split("\n### ", 1)[0]
        assert metric.description in section and metric.counts in section, f"docs/metrics.md is stale for {metric.name}"
    for dimension in catalog.dimensions.values():
        assert f"| `{dimension.name}` |" in text and dimension.description in text, dimension.name

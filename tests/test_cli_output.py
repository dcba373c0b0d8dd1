"""How the command line prints, for people and for scripts (platform/runtime/output.py): every
command that prints results takes --format table|json|csv, JSON on standard output alone,
NO_COLOR honoured, an error in one line (its details behind --verbose), and `etl run`
progress as one line per model and without the BI tools' step on --no-after-publish."""

from __future__ import annotations

import csv
import io
import json

import click
import pytest
from click.testing import CliRunner

from olist_bi.cli import main

# Commands that print no result of their own: they run in the foreground until stopped and
# log (the scheduler), or write a file in a format of their own (audit export: JSON lines or
# CSV; etl cluster-ddl: SQL).
NO_RESULT = {"scheduler", "audit export", "etl cluster-ddl"}


def commands(group: click.Group = main, prefix: str = ""):
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} ")


def test_every_command_that_prints_results_takes_the_one_format_option():
    checked = 0
    for path, command in commands():
        if path in NO_RESULT or (isinstance(command, click.Group) and not command.invoke_without_command):
            continue
        option = next((p for p in command.params if "--format" in getattr(p, "opts", [])), None)
        assert option is not None, f"`olist-bi {path}` has no --format"
        assert list(option.type.choices) == ["table", "json", "csv"] and option.default == "table", path
        assert not any("--json" in getattr(p, "opts", []) for p in command.params), f"`olist-bi {path}` still spells --json"
        checked += 1
    assert checked >= 35


def invoke(*args, env=None, **kwargs):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False, **kwargs)


@pytest.fixture(scope="module")
def loaded(small_drop, ops_url, tmp_path_factory):
    """A warehouse loaded by `etl run --format json --no-after-publish`: (env, result, its JSON)."""
    home = tmp_path_factory.mktemp("cli-output")
    env = {
        "OLIST_HOME": str(home),
        "OLIST_DATABASE_URL": ops_url,
        "OLIST_SUPERSET_URL": "http://127.0.0.1:9",
        "OLIST_METABASE_URL": "http://127.0.0.1:9",
    }
    result = CliRunner().invoke(main, ["etl", "run", "--source", str(small_drop), "--format", "json", "--no-after-publish"], env=env)
    assert result.exit_code == 0, result.output
    return env, result, json.loads(result.stdout)


def test_etl_run_as_json_is_the_run_and_only_the_run_on_standard_output(loaded):
    _, result, document = loaded
    assert document["status"] == "succeeded" and document["run_id"] >= 1
    assert {f["file"] for f in document["files"]} >= {"olist_orders_dataset.csv", "olist_customers_dataset.csv"}
    assert all(f["read"] == f["loaded"] + f["quarantined"] for f in document["files"])
    assert set(document["stage_seconds"]) >= {"extract", "validate", "transform", "publish"}
    assert document["after_publish"] == []  # --no-after-publish


def test_etl_run_prints_one_progress_line_per_model(loaded):
    from olist_bi.etl import transform

    _, result, document = loaded
    progress = result.stderr.splitlines()
    for model in transform.models():
        lines = [line for line in progress if line.split()[:1] == [model.name]]
        assert len(lines) == 1, f"{model.name}: {lines}"
        name, rows, unit, seconds, s = lines[0].split()
        assert (unit, s) == ("rows", "s") and float(seconds) >= 0 and int(rows.replace(",", "")) >= 0


def test_etl_run_without_the_flag_runs_each_tools_after_publish_step(loaded, small_drop):
    env, _, _ = loaded
    again = invoke("etl", "run", "--full", "--format", "json", env=env)
    tools = {o["tool"]: o["status"] for o in json.loads(again.stdout)["after_publish"]}
    assert set(tools) == {"superset", "metabase"}, tools


@pytest.mark.parametrize(
    "args",
    [
        ["etl", "status"],
        ["semantic", "list"],
        ["semantic", "show", "revenue"],
        ["semantic", "show", "customer_state"],
        ["semantic", "compile", "--metric", "orders", "--by", "customer_state"],
        ["semantic", "query", "--metric", "orders"],
        ["bi", "list"],
        ["audit", "tail", "--limit", "3"],
        ["audit", "checkpoint"],
        ["audit", "verify"],
        ["doctor"],
        ["outbox"],
    ],
    ids=" ".join,
)
def test_each_command_answers_in_json_and_csv(loaded, args):
    env, _, _ = loaded
    as_json = CliRunner().invoke(main, [*args, "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document not in (None, "", {})
    as_csv = CliRunner().invoke(main, [*args, "--format", "csv"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    if isinstance(document, list):
        assert len(rows) == len(document)


def test_etl_status_as_json_names_the_served_generation(loaded):
    env, _, run = loaded
    status = json.loads(invoke("etl", "status", "--format", "json", env=env).stdout)
    assert run["run_id"] in [r["run_id"] for r in status["runs"]]
    assert status["served_warehouse"]["generation"]


def test_a_contract_failure_is_one_line_and_its_details_come_with_verbose(drop_copy, ops_url, tmp_path):
    for path in drop_copy.glob("*.csv"):  # every file loses all but its first two columns
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(",".join(line.split(",")[:2]) for line in lines) + "\n", encoding="utf-8")
    env = {"OLIST_HOME": str(tmp_path / "home"), "OLIST_DATABASE_URL": ops_url}
    quiet = CliRunner().invoke(main, ["etl", "run", "--source", str(drop_copy)], env=env)
    assert quiet.exit_code == 1 and quiet.stdout == ""
    errors = [line for line in quiet.stderr.splitlines() if not line.startswith("  ")]  # progress lines are indented
    assert len(errors) == 1 and errors[0].startswith("Error: run") and "--verbose lists them" in errors[0], quiet.stderr
    assert "olist_orders_dataset.csv: missing column(s)" in errors[0]
    verbose = CliRunner().invoke(main, ["--verbose", "etl", "run", "--source", str(drop_copy)], env=env)
    assert verbose.exit_code == 1
    listed = [line for line in verbose.stderr.splitlines() if line.strip().startswith("- ")]
    assert len(listed) == 8 and all("missing column(s)" in line for line in listed), verbose.stderr


def test_no_color_turns_colour_off(tmp_path):
    env = {"OLIST_HOME": str(tmp_path), "OLIST_DATABASE_URL": "postgresql://u@127.0.0.1:1/x"}
    coloured = CliRunner().invoke(main, ["doctor"], env=env, color=True)
    assert "\x1b[" in coloured.output  # a terminal gets colour ...
    plain = CliRunner().invoke(main, ["doctor"], env={**env, "NO_COLOR": "1"}, color=True)
    assert "\x1b[" not in plain.output and "FAIL" in plain.output  # ... unless NO_COLOR is set

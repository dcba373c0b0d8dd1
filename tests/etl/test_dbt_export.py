"""`dbt_project.export`: the warehouse as a dbt project that dbt 1.12 parses, whose manifest
holds every model with its columns' descriptions, every test of models.yaml and the semantic
layer as MetricFlow; its measures compute what the catalog's metrics compute; and `dbt test`
agrees with the ETL's own checks on a built warehouse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot
import yaml
from sqlglot import exp

from olist_bi.etl import dbt_project, transform
from olist_bi.semantic import catalog as semantic_catalog
from olist_bi.semantic import compiler

ROOT = Path(__file__).resolve().parents[2]
INSTALL = (
    "dbt is not installed where the tests look (.venv-dbt/bin/dbt, beside this Python, or on PATH). "
    "Install it as docs/dbt.md says: `make .venv-dbt/.installed`, or python3.11 -m venv .venv-dbt and "
    "`.venv-dbt/bin/pip install --no-deps` the pins of pyproject.toml's `dbt` extra."
)
AGGREGATES = {
    "sum": "sum({})",
    "count": "count({})",
    "count_distinct": "count(distinct {})",
    "average": "avg({})",
    "max": "max({})",
    "min": "min({})",
}


def dbt_executable() -> str:
    """dbt from its own environment (.venv-dbt), else beside the running Python, else on PATH."""
    for candidate in (ROOT / ".venv-dbt" / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("dbt")
    if found is None:
        pytest.fail(INSTALL)
    return found


def run_dbt(project: Path, *arguments: str, warehouse: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        dbt_project.WAREHOUSE_VARIABLE: str(warehouse),
        "DO_NOT_TRACK": "1",  # no usage statistics, no version check over the network
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }
    command = [dbt_executable(), *arguments, "--project-dir", str(project), "--profiles-dir", str(project)]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("dbt") / "olist_bi"
    return out, dbt_project.export(out)


@pytest.fixture(scope="module")
def manifest(exported, tmp_path_factory) -> dict:
    project, _ = exported
    parsed = run_dbt(project, "parse", warehouse=tmp_path_factory.mktemp("no-warehouse") / "warehouse.duckdb")
    output = parsed.stdout + parsed.stderr
    assert parsed.returncode == 0, output
    assert "WARNING" not in output and "Deprecat" not in output, output  # parsed clean, MetricFlow's validations included
    return json.loads((project / "target" / "manifest.json").read_text())


def nodes(manifest: dict, kind: str) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == kind]


def test_export_writes_the_project_and_returns_every_path(exported):
    out, paths = exported
    assert sorted(paths) == sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {"dbt_project.yml", "profiles.yml", "models/sources.yml", "models/schema.yml"} <= names
    assert {f"models/{m.layer}/{m.name}.sql" for m in transform.models()} <= names
    project = yaml.safe_load((out / "dbt_project.yml").read_text())
    assert project["name"] == project["profile"] == "olist_bi"
    profile = yaml.safe_load((out / "profiles.yml").read_text())["olist_bi"]["outputs"]["warehouse"]
    assert profile["type"] == "duckdb" and profile["path"] == "{{ env_var('OLIST_WAREHOUSE_PATH') }}"


def test_an_earlier_exports_model_files_do_not_linger(tmp_path):
    stale = tmp_path / "models" / "marts" / "mart_dropped_long_ago.sql"
    stale.parent.mkdir(parents=True)
    stale.write_text("select 1")
    dbt_project.export(tmp_path)
    assert not stale.exists()
    assert (tmp_path / "models" / "marts" / "mart_monthly_revenue.sql").exists()


def test_dbt_parses_it_with_every_model_and_column_description(manifest):
    models = {n["name"]: n for n in nodes(manifest, "model")}
    assert sorted(models) == sorted(m.name for m in transform.models())
    for model in transform.models():
        node = models[model.name]
        assert node["description"] == model.description
        assert node["config"]["materialized"] == ("view" if model.layer in transform.VIEW_LAYERS else "table"), model.name
        assert {name: c["description"] for name, c in node["columns"].items()} == {c.name: c.description for c in model.columns}


def test_each_model_reads_the_models_and_sources_its_sql_reads(manifest):
    """The table references, turned into ref() and source() by sqlglot, are the build order's."""
    names = {m.name for m in transform.models()}
    for model in transform.models():
        node = manifest["nodes"][f"model.olist_bi.{model.name}"]
        read = set(node["depends_on"]["nodes"])
        assert {r.split(".")[-1] for r in read if r.startswith("model.")} == transform.references(model, names), model.name
        tables = sqlglot.parse_one(model.sql, read="duckdb").find_all(exp.Table)
        raw = {f"source.olist_bi.raw.{t.name}" for t in tables if t.db == "raw"}
        assert {r for r in read if r.startswith("source.")} == raw, model.name


def test_every_test_of_models_yaml_is_a_dbt_test(manifest):
    found = {}
    for test in nodes(manifest, "test"):
        meta = test["test_metadata"]
        model = test["attached_node"].split(".")[-1]
        kwargs = meta["kwargs"]
        key = (model, test.get("column_name"), meta["name"], kwargs.get("to"), kwargs.get("field"), tuple(kwargs.get("values") or ()))
        found[key] = test["config"]["severity"].lower()
    for model in transform.models():
        for column in model.columns:
            for t in column.tests:
                to = f"ref('{t.to}')" if t.to else None
                key = (model.name, column.name, t.kind, to, t.field, tuple(t.values))
                assert found.get(key) == t.severity, f"{model.name}.{column.name}: {t} is not in the manifest as {t.severity}"
        if len(model.grain) == 1:
            assert found.get((model.name, model.grain[0], "unique", None, None, ())) == "error", model.name
            assert found.get((model.name, model.grain[0], "not_null", None, None, ())) == "error", model.name
        if len(model.grain) > 1:
            assert any(k[0] == model.name and k[2] == "grain" for k in found), model.name
        if model.rows_equal:
            assert any(k[0] == model.name and k[2] == "rows_equal" for k in found), model.name


def test_the_semantic_layer_is_metricflow_and_what_is_left_out_says_why(manifest, exported):
    catalog = semantic_catalog.load()
    _, left_out = dbt_project.semantic_layer()
    assert sorted(left_out) == sorted(m.name for m in catalog.metrics.values() if m.requires)  # only the metrics a query must group
    metrics = {m["name"]: m for m in manifest["metrics"].values()}
    for metric in catalog.metrics.values():
        if metric.name in left_out:
            assert metric.name not in metrics
            continue
        assert metrics[metric.name]["label"] == metric.label
        assert metrics[metric.name]["type"] == ("ratio" if "safe_divide" in metric.sql else "simple"), metric.name
    semantic_models = {m["name"]: m for m in manifest["semantic_models"].values()}
    assert set(semantic_models) == {m.model for m in catalog.metrics.values() if m.name not in left_out}
    deliveries = semantic_models["fact_deliveries"]
    assert deliveries["depends_on"]["nodes"] == ["model.olist_bi.fact_deliveries"]
    assert {(e["name"], e["type"]) for e in deliveries["entities"]} == {("order", "primary"), ("customer", "foreign")}
    assert {d["name"] for d in deliveries["dimensions"]} >= {"purchase_date", "customer_state", "order_status", "delivery_delay"}
    header = (exported[0] / "models" / "schema.yml").read_text().split("\nversion: 2", 1)[0]
    for name, why in left_out.items():
        assert f"#   {name}: {why}" in header


def test_each_exported_metric_computes_what_the_catalog_computes(warehouse):
    """Each MetricFlow measure (its agg over its expr, nulls filled as it says) against the
    compiled metric, over the whole table of the built warehouse."""
    settings, _ = warehouse
    catalog = semantic_catalog.load()
    layer, left_out = dbt_project.semantic_layer()
    measures = {m["name"]: (s["name"], m) for s in layer["semantic_models"] for m in s["measures"]}
    metrics = {m["name"]: m for m in layer["metrics"]}

    def value(con, name: str):
        params = metrics[name]["type_params"]["measure"]
        model, measure = measures[params["name"]]
        sql = AGGREGATES[measure["agg"]].format(measure["expr"])
        if "fill_nulls_with" in params:
            sql = f"coalesce({sql}, {params['fill_nulls_with']})"
        return con.execute(f"select {sql} from {model}").fetchone()[0]

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for metric in catalog.metrics.values():
            if metric.name in left_out:
                continue
            want = con.execute(f"select {compiler.metric_sql(catalog, metric)} from {metric.model} as m").fetchone()[0]
            params = metrics[metric.name]["type_params"]
            got = value(con, metric.name) if "measure" in params else value(con, params["numerator"]) / value(con, params["denominator"])
            assert float(got) == pytest.approx(float(want), rel=1e-12), metric.name


def test_dbt_test_on_the_built_warehouse_agrees_with_the_etl(warehouse, exported):
    """The exported tests run by dbt (read-only) on the warehouse the ETL built: every test
    passes but the relationships of severity warn, which warn as the ETL's notes do."""
    settings, result = warehouse
    project, _ = exported
    ran = run_dbt(project, "test", warehouse=settings.warehouse_path)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    warned = [w for w in result.warnings if w.startswith("model test warning")]
    assert warned and f"WARN={len(warned)} ERROR=0" in output, output

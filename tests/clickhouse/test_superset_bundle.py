"""Superset's asset bundle for the ClickHouse engine: every SQL the bundle carries for the
warehouse, transpiled, runs on ClickHouse (embedded chdb, the warehouse built from the same
drop) and answers as on DuckDB and as the raw files. What Superset itself does with it against
a ClickHouse server cannot run here (chdb serves no HTTP): docs/clickhouse.md has the checklist."""

import json

import duckdb
import pytest
import yaml

from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.dashboards import datasets
from olist_bi.semantic.catalog import load
from olist_bi.bi.superset import bundle
from tests.reference import answer

METRICS = [(m.model, m.name) for m in load().metrics.values()]


@pytest.fixture(scope="module")
def built(clickhouse_warehouse):
    settings, _ = clickhouse_warehouse
    return bundle.build(
        "clickhousedb://olist_reader:XXXXXXXXXX@clickhouse:8123/olist",
        "postgresql+psycopg2://r:XXXXXXXXXX@h/db",
        {name: ["x"] for name in datasets()},
        clickhouse_database=settings.clickhouse_database,
    )


def files(built, prefix):
    return {path: yaml.safe_load(text) for path, text in built.files.items() if path.startswith(prefix)}


def test_the_warehouse_connection_is_clickhouse_without_duckdb_arguments(built):
    [database] = files(built, f"databases/{bundle.WAREHOUSE}").values()
    assert database["sqlalchemy_uri"].startswith("clickhousedb://olist_reader:")
    assert database["extra"]["engine_params"] == {} and database["allow_dml"] is False
    [operations] = files(built, f"databases/{bundle.OPERATIONS}").values()
    assert operations["sqlalchemy_uri"].startswith("postgresql")  # the operations database stays PostgreSQL


@pytest.mark.parametrize("model, metric", METRICS, ids=[m for _, m in METRICS])
def test_every_saved_metric_answers_on_clickhouse_as_the_raw_files(built, clickhouse_warehouse, reference, model, metric):
    settings, _ = clickhouse_warehouse
    dataset = next(
        d for d in files(built, f"datasets/{bundle.WAREHOUSE}/").values() if any(m["metric_name"] == metric for m in d["metrics"])
    )
    assert dataset["schema"] == f"{settings.clickhouse_database}_semantic"
    expression = next(m["expression"] for m in dataset["metrics"] if m["metric_name"] == metric)
    got = clickhouse.connect(settings).scalar(f"select {expression} from {dataset['schema']}.{dataset['table_name']}")
    [(want,)] = answer(reference, [metric]).values()
    assert got == pytest.approx(float(want), rel=1e-9) if isinstance(want, float) else float(got) == pytest.approx(float(want), rel=1e-12)


def test_every_row_dataset_on_the_warehouse_gives_duckdbs_rows(built, clickhouse_warehouse, warehouse):
    settings, _ = clickhouse_warehouse
    duckdb_settings, _ = warehouse  # the same drop on the DuckDB engine
    ch = clickhouse.connect(settings)
    checked = 0
    for name, spec in datasets().items():
        if spec.database != "warehouse":
            continue
        [data] = [d for p, d in files(built, f"datasets/{bundle.WAREHOUSE}/olist_{name}.yaml").items()]
        with duckdb.connect(str(duckdb_settings.warehouse_path), read_only=True) as con:
            want = con.execute(spec.sql).fetchall()
        assert data["sql"] is None and data["schema"] == f"{settings.clickhouse_database}_semantic", name  # a view, as Superset reads it
        got = ch.rows(f"select * from {data['schema']}.{data['table_name']}")
        if name == "freshness":  # when each engine's own run loaded the drop, and its id: only the data's last day is the same
            got, want = [row[-1:] for row in got], [row[-1:] for row in want]
        assert len(got) == len(want) > 0, name
        assert sorted(map(repr, got)) == sorted(map(repr, want)) or _close(got, want), name
        checked += 1
    assert checked >= 4


def _close(got, want) -> bool:
    from bench.queries import same_rows

    return same_rows([tuple(r) for r in got], [tuple(r) for r in want])


def test_every_sql_expression_of_a_warehouse_chart_runs_on_clickhouse(built, clickhouse_warehouse):
    settings, _ = clickhouse_warehouse
    ch = clickhouse.connect(settings)
    by_uuid = {d["uuid"]: d for d in files(built, f"datasets/{bundle.WAREHOUSE}/").values()}
    seen = set()
    for chart in files(built, "charts/").values():
        dataset = by_uuid.get(chart["dataset_uuid"])
        if dataset is None:
            continue  # a chart on the operations database
        source = f"({dataset['sql']})" if dataset["sql"] else f"{dataset['schema']}.{dataset['table_name']}"
        for expression in set(_expressions(json.loads(json.dumps(chart["params"]))) | _expressions(json.loads(chart["query_context"]))):
            ch.rows(f"select {expression} from {source} as d limit 1")
            seen.add(expression)
    assert any(e.startswith("MIN(CASE") for e in seen), "the ordered table's place expression was not checked"


def _expressions(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "sqlExpression" and isinstance(v, str):
                found.add(v)
            else:
                found |= _expressions(v)
    elif isinstance(node, list):
        for v in node:
            found |= _expressions(v)
    return found

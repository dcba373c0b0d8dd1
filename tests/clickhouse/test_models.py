"""Every table model built on ClickHouse (from the same drop, by the same ETL run, from the
same .sql files transpiled) equals the DuckDB build, row for row and column for column."""

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.etl import transform

TABLES = [m for m in transform.models() if m.layer not in transform.VIEW_LAYERS]


def _key(value):
    # None sorts last, as both engines do; everything else by its type's order
    return (value is None, str(type(value)) if value is not None else "", value if value is not None else 0)


def rows_of(columns, rows):
    return sorted((tuple(r) for r in rows), key=lambda r: tuple(_key(v) for v in r))


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == pytest.approx(float(b), rel=1e-9, abs=1e-12)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a.replace(tzinfo=None) == b.replace(tzinfo=None)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return a is not None and b is not None and Decimal(str(a)) == Decimal(str(b))
    return a == b


@pytest.fixture(scope="module")
def duck(warehouse):
    settings, _ = warehouse
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        yield con


def test_the_run_built_and_published_on_clickhouse(clickhouse_warehouse):
    settings, result = clickhouse_warehouse
    assert "transform" in result.stage_seconds and "readers" not in result.stage_seconds  # no DuckDB file, no copies of it
    assert (
        clickhouse.connect(settings).scalar(
            "select count() from system.tables where database = {db:String}", {"db": settings.clickhouse_database}
        )
        == len(clickhouse.served_tables(transform.build_plan()))
        == len(TABLES) + 1
    )  # the models and meta_loads


@pytest.mark.parametrize("model", TABLES, ids=lambda m: m.name)
def test_the_model_on_clickhouse_equals_duckdb(duck, clickhouse_warehouse, model):
    settings, _ = clickhouse_warehouse
    ours = duck.execute(f"select * from {model.name}")
    columns = [d[0] for d in ours.description]
    want = rows_of(columns, ours.fetchall())
    table = clickhouse.connect(settings).arrow(f"select * from {settings.clickhouse_database}.{model.name}")
    assert table.column_names == columns, f"{model.name}: columns differ"
    got = rows_of(columns, zip(*(c.to_pylist() for c in table.columns)))
    assert len(got) == len(want), f"{model.name}: {len(got)} rows on ClickHouse, {len(want)} on DuckDB"
    assert len(want) > 0 or model.python, f"{model.name} is empty: the comparison checks nothing"
    for g, w in zip(got, want):
        differing = [(c, a, b) for c, a, b in zip(columns, g, w) if not same(a, b)]
        assert not differing, f"{model.name}: first differing row, (column, ClickHouse, DuckDB): {differing}"


def test_the_record_of_loaded_files_is_served_with_the_models(duck, clickhouse_warehouse):
    settings, _ = clickhouse_warehouse
    want = duck.execute("select source_file, sha256, rows_loaded from meta.loads order by source_file").fetchall()
    assert len(want) == 9
    assert clickhouse.query(settings, "select source_file, sha256, rows_loaded from meta.loads order by source_file") == want

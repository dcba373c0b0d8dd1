"""The reader copies (etl/readers.py): what the BI tools open holds the models and their views
and nothing internal; a scoped copy holds its scope's rows only, counted against the source
files read with Python's csv module; the copies follow every publish, rollback and failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from olist_bi.access import spec as access
from olist_bi.engines.duckdb import warehouse as wh
from olist_bi.engines.duckdb import publish
from olist_bi.etl import pipeline, readers, transform
from tests.conftest import copy_home, make_settings
from tests.escapes import ESCAPES

CLI = [str(Path(sys.executable).parent / "olist-bi")]
TABLES = [m.name for m in transform.models() if m.layer not in transform.VIEW_LAYERS]

# What these check is the copies, not the revenue forecast: the runs in this process reuse its
# fits by input (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("reuse_forecast_fits")


def relations(path: Path) -> set[str]:
    with wh.connect(path) as con:
        tables = con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall()
        views = con.execute("select schema_name || '.' || view_name from duckdb_views() where not internal").fetchall()
    return {name for (name,) in tables + views}


def sp_orders(source_rows) -> set[str]:
    sp = {c["customer_id"] for c in source_rows["customers"] if c["customer_state"] == "SP"}
    return {o["order_id"] for o in source_rows["orders"] if o["customer_id"] in sp}


def test_the_reader_copy_holds_the_models_and_their_views_and_nothing_internal(warehouse):
    settings, _ = warehouse
    found = relations(wh.reader_path(settings.warehouse_path))
    assert {f"main.{t}" for t in TABLES} | {"meta.loads"} <= found
    assert {r for r in relations(settings.warehouse_path) if r.startswith("semantic.")} <= found
    internal = {r for r in found if r.split(".")[0] in ("raw", "quarantine") or r.split(".")[1].startswith(("stg_", "int_"))}
    assert not internal
    with wh.connect(settings.warehouse_path) as whole, wh.connect(wh.reader_path(settings.warehouse_path)) as copy:
        for table in TABLES:  # every model whole, row for row
            query = f"select count(*), sum(hash(columns(*))) from {table}"
            assert copy.execute(query).fetchall() == whole.execute(query).fetchall(), table


def test_every_copy_carries_the_models_descriptions(warehouse):
    """What an analyst's SQL client lists in the reader copy (and a scoped user's in theirs)
    says what each table and column is, as models.yaml declares it."""
    settings, _ = warehouse
    for path in (wh.reader_path(settings.warehouse_path), wh.reader_path(settings.warehouse_path, "olist_regional_sp")):
        with wh.connect(path) as con:
            tables = dict(con.execute("select table_name, comment from duckdb_tables() where schema_name = 'main'").fetchall())
            columns = dict(
                ((t, c), comment)
                for t, c, comment in con.execute(
                    "select table_name, column_name, comment from duckdb_columns() where schema_name = 'main'"
                ).fetchall()
            )
        for model in transform.models():
            if model.layer in transform.VIEW_LAYERS:
                continue
            assert tables[model.name] == model.description, (path.name, model.name)
            assert all(columns[(model.name, c.name)] == c.description for c in model.columns), (path.name, model.name)


def test_the_scoped_copy_holds_the_scope_s_rows_only_counted_from_the_source_files(warehouse, source_rows):
    settings, _ = warehouse
    orders = sp_orders(source_rows)
    assert 0 < len(orders) < len(source_rows["orders"])
    expected = {
        "fact_deliveries": len(orders),
        "fact_order_items": sum(1 for i in source_rows["items"] if i["order_id"] in orders),
        "fact_payments": sum(1 for p in source_rows["payments"] if p["order_id"] in orders),
        "fact_reviews": len({(r["review_id"], r["order_id"]) for r in source_rows["reviews"] if r["order_id"] in orders}),
    }
    scoped = wh.reader_path(settings.warehouse_path, "olist_regional_sp")
    with wh.connect(scoped) as con:
        assert {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in expected} == expected
        # No row of another state in any table that has one, whatever its column is called.
        for table, column in [
            ("fact_deliveries", "customer_state"),
            ("fact_order_items", "customer_state"),
            ("fact_payments", "customer_state"),
            ("fact_reviews", "customer_state"),
            ("dim_customer", "state"),
            ("mart_customer_cohorts", "customer_state"),
            ("mart_delivery_performance", "customer_state"),
            ("mart_revenue_forecast", "series"),
            ("mart_forecast_accuracy", "series"),
        ]:
            assert {v for (v,) in con.execute(f"select distinct {column} from {table}").fetchall()} <= {"SP"}, table
        # The marts are the scope's own aggregates: SP's orders by month, not Brazil's.
        months = Counter(o["order_purchase_timestamp"][:7] for o in source_rows["orders"] if o["order_id"] in orders)
        mart = dict(con.execute("select strftime(month_start, '%Y-%m'), orders from mart_monthly_revenue").fetchall())
        assert mart and all(mart[m] == months[m] for m in mart), (mart, months)
        assert con.execute("select count(*) from semantic.olist_deliveries").fetchone()[0] == len(orders)
    assert not {r for r in relations(scoped) if r.startswith(("raw.", "quarantine."))}


# What a query could try on a copy, with the scope's copy as the only data there is: none
# returns a row of another state or reaches a table outside the copy.
TRICKS = [
    "select customer_state, count(*) from fact_deliveries group by 1 union all select state, count(*) from dim_customer group by 1",
    "with x as (select * from fact_order_items) select customer_state, count(*) from x group by 1",
    "select customer_state, count(*) from (select * from fact_payments /* where customer_state = 'SP' */) group by 1",
    "select series, count(*) from mart_revenue_forecast group by 1",
    "select state, count(*) from dim_customer group by 1",
    "select distinct table_schema from information_schema.tables",
    "select distinct schema_name from duckdb_tables()",
]


@pytest.mark.parametrize("sql", TRICKS)
def test_no_query_on_the_scoped_copy_reads_another_state_or_an_internal_table(warehouse, sql):
    settings, _ = warehouse
    with wh.connect(wh.reader_path(settings.warehouse_path, "olist_regional_sp")) as con:
        values = {row[0] for row in con.execute(sql).fetchall()}
    assert values <= {"SP", "main", "meta", "semantic", "information_schema", "pg_catalog"}, values


@pytest.mark.parametrize(
    "sql", ESCAPES + ["select * from raw.customers", "select * from quarantine.rejected_rows", "select * from stg_orders"]
)
def test_the_copies_are_locked_down_like_the_warehouse(warehouse, sql):
    settings, _ = warehouse
    for path in (wh.reader_path(settings.warehouse_path), wh.reader_path(settings.warehouse_path, "olist_regional_sp")):
        with wh.connect(path) as con, pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()


def test_a_second_regional_role_works_by_configuration_alone(tmp_path, small_drop, ops_url, monkeypatch):
    model = access.model() | {"scopes": {**access.model()["scopes"], "olist_regional_rj": {"customer_state": "RJ"}}}
    monkeypatch.setattr(access, "model", lambda: model)
    settings = make_settings(tmp_path / "home", ops_url)
    pipeline.run(settings, small_drop)
    with wh.connect(wh.reader_path(settings.warehouse_path, "olist_regional_rj")) as con:
        states = con.execute("select customer_state, count(*) from fact_order_items group by 1").fetchall()
    assert [s for s, _ in states] == ["RJ"] and states[0][1] > 0


def served_small_drop(small_warehouse, home: Path, ops_url: str):
    """Settings on a private copy of the session's load of the small drop: what
    `pipeline.run(settings, small_drop)` on a fresh home leaves, without running it again."""
    return make_settings(copy_home(small_warehouse[0], home), ops_url)


def test_a_table_the_scope_cannot_cut_stops_the_run_and_nothing_changes(tmp_path, small_warehouse, drop_copy, ops_url, monkeypatch):
    settings = served_small_drop(small_warehouse, tmp_path / "home", ops_url)
    served = {p: publish.current(p) for p in (settings.warehouse_path, *(r.served(settings.warehouse_path) for r in readers.readers()))}
    undeclared = [m if m.name != "dim_date" else transform.Model(m.name, m.layer, m.grain, m.rows_equal) for m in transform.models()]
    monkeypatch.setattr(transform, "models", lambda: tuple(undeclared))
    orders = drop_copy / "olist_orders_dataset.csv"
    orders.write_text(orders.read_text(encoding="utf-8").replace(",delivered,", ",shipped,", 3), encoding="utf-8")
    with pytest.raises(pipeline.EtlError, match="dim_date has no column 'customer_state'.*declares no `scoped` rule"):
        pipeline.run(settings, drop_copy)
    assert {p: publish.current(p) for p in served} == served
    assert not list(settings.warehouse_path.parent.glob("*.building-*"))


@pytest.mark.parametrize(
    ("limit", "parts", "share"), [("3GB", 2, "1.5GB"), ("512MB", 3, "170.667MB"), ("3 GiB", 1, "3GiB"), ("10000000MB", 2, "5000000MB")]
)
def test_a_memory_limit_shared_between_copies_is_one_duckdb_reads(limit, parts, share):
    assert readers._share(limit, parts) == share
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{share}'")  # DuckDB takes it


def test_an_increment_cuts_its_copies_side_by_side_each_with_its_share_of_memory(
    tmp_path, small_warehouse, drop_copy, ops_url, monkeypatch
):
    settings = served_small_drop(small_warehouse, tmp_path / "home", ops_url)
    copies = len(readers.readers())
    together, limits, real = threading.Barrier(copies, timeout=60), [], readers.cut

    def cut(each, built, reader, target, scope=None):
        limits.append(each.duckdb_memory_limit)
        together.wait()  # breaks unless every copy is being cut at once
        return real(each, built, reader, target, scope)

    monkeypatch.setattr(readers, "cut", cut)
    orders = drop_copy / "olist_orders_dataset.csv"
    header, *rows = orders.read_text(encoding="utf-8").splitlines()
    shipped = [row.replace(",delivered,", ",shipped,") for row in rows if ",delivered," in row][:3]
    orders.write_text("\n".join([header, *shipped]) + "\n", encoding="utf-8")  # three orders re-sent, shipped: an increment
    result = pipeline.run(settings, drop_copy)
    assert result.status == "succeeded" and result.touched_orders
    assert limits == [readers._share(settings.duckdb_memory_limit, copies)] * copies
    assert re.fullmatch(r"[\d.]+\s*\w+", settings.duckdb_memory_limit) and limits[0] != settings.duckdb_memory_limit
    assert readers.stale(settings) == []


def test_a_copy_that_fails_to_publish_takes_the_warehouse_back_with_it(tmp_path, small_warehouse, drop_copy, ops_url, monkeypatch):
    settings = served_small_drop(small_warehouse, tmp_path / "home", ops_url)
    before = publish.current(settings.warehouse_path)
    real = readers.publish_all

    def half(settings, copies):
        real(settings, dict(list(copies.items())[:1]))  # the reader copy goes out, then the disk fails
        raise OSError("no space left on device")

    monkeypatch.setattr(readers, "publish_all", half)
    orders = drop_copy / "olist_orders_dataset.csv"
    orders.write_text(orders.read_text(encoding="utf-8").replace(",delivered,", ",shipped,", 3), encoding="utf-8")
    with pytest.raises(pipeline.EtlError, match="no space left"):
        pipeline.run(settings, drop_copy)
    assert publish.current(settings.warehouse_path) == before
    assert readers.stale(settings) == []  # the copies were cut again from what is served


def test_a_rollback_cuts_the_copies_again_from_the_warehouse_it_restores(tmp_path, small_warehouse, drop_copy, ops_url):
    settings = served_small_drop(small_warehouse, tmp_path / "home", ops_url)
    with wh.connect(wh.reader_path(settings.warehouse_path)) as con:
        first = con.execute("select count(*) filter (where order_status = 'shipped') from fact_deliveries").fetchone()[0]
    orders = drop_copy / "olist_orders_dataset.csv"
    orders.write_text(orders.read_text(encoding="utf-8").replace(",delivered,", ",shipped,", 3), encoding="utf-8")
    pipeline.run(settings, drop_copy)
    env = {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": ops_url, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(CLI + ["etl", "rollback", "--no-after-publish"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "cutting the reader, olist_regional_sp copies from the served warehouse" in done.stderr
    assert readers.stale(settings) == []
    with wh.connect(wh.reader_path(settings.warehouse_path)) as con:
        assert con.execute("select count(*) filter (where order_status = 'shipped') from fact_deliveries").fetchone()[0] == first


def test_etl_copies_cuts_a_missing_copy_and_then_has_nothing_to_do(tmp_path, small_warehouse, ops_url):
    """After a restore from a backup (the warehouse alone) or a new scoped role in access.yaml."""
    settings = served_small_drop(small_warehouse, tmp_path / "home", ops_url)
    scoped = wh.reader_path(settings.warehouse_path, "olist_regional_sp")
    scoped.unlink()
    env = {"OLIST_HOME": str(settings.home), "OLIST_DATABASE_URL": ops_url, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(CLI + ["etl", "copies", "--format", "json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [name.split("-")[0] for name in json.loads(done.stdout)["cut"]] == ["warehouse.olist_regional_sp"]
    assert scoped.exists() and readers.stale(settings) == []
    again = subprocess.run(CLI + ["etl", "copies"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr

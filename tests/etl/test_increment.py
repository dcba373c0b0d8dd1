"""An increment rebuilds only what a drop touches, and gives the same rows as a full rebuild:
every table and view, after drops that add orders, change them (a status, a delivery date, a
customer, a seller's state, a product's category, an item's price) and cancel them."""

import csv
import json
import datetime as dt
import shutil
from collections import Counter

import duckdb
import pandas as pd
import pytest

from olist_bi.contract import BY_TABLE
from olist_bi.engines.duckdb import publish
from olist_bi.etl import forecast, increment, pipeline, readers, transform
from olist_bi.generator import generate
from tests.conftest import make_settings

MOVED = "0123456789abcdef0123456789abcdef"  # the new customer id of an order moved to another person
# the runs' own records: run ids, load times (the freshness view reads them), the fingerprint
BOOKKEEPING = {
    ("meta", "loads"),
    ("meta", "build"),
    ("meta", "forecast_fits"),
    ("meta", "touched_orders"),
    ("meta", "touched_people"),
    ("quarantine", "rejected_rows"),
    ("semantic", "olist_freshness"),
}
SCHEMAS = ("main", "semantic", "dashboards", "meta", "quarantine", "raw")


def _read(folder, table):
    with open(folder / BY_TABLE[table].filename, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(folder, table, rows):
    with open(folder / BY_TABLE[table].filename, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(BY_TABLE[table].header))
        writer.writeheader()
        writer.writerows(rows)


def _later(stamp: str, days: int) -> str:
    return (dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def change_drop(base, target):
    """A drop that re-sends rows of the base drop changed: 15 orders canceled, 10 delivered five
    days later, one moved to another person's new customer id; 5 customers' cities, 3 sellers'
    states, 5 products' categories, 3 items' prices; 5 new reviews of old orders. The snapshots
    are the base drop's files (loaded before: skipped)."""
    target.mkdir()
    orders = sorted(_read(base, "orders"), key=lambda r: r["order_id"])
    delivered = [o for o in orders if o["order_status"] == "delivered" and o["order_delivered_customer_date"]]
    canceled = [{**o, "order_status": "canceled"} for o in delivered[:15]]
    late = [{**o, "order_delivered_customer_date": _later(o["order_delivered_customer_date"], 5)} for o in delivered[15:25]]
    customers = sorted(_read(base, "customers"), key=lambda r: r["customer_id"])
    by_id = {c["customer_id"]: c for c in customers}
    person = by_id[delivered[30]["customer_id"]]  # gains an order: becomes a repeat customer
    moved = {**delivered[26], "customer_id": MOVED}
    new_customer = {**person, "customer_id": moved["customer_id"]}
    cities = [{**c, "customer_city": c["customer_city"] + " velha"} for c in customers[40:45]]
    _write(target, "orders", canceled + late + [moved])
    _write(target, "customers", cities + [new_customer])
    sellers = sorted(_read(base, "sellers"), key=lambda r: r["seller_id"])
    _write(target, "sellers", [{**s, "seller_state": "AC"} for s in sellers[:3]])
    products = sorted(_read(base, "products"), key=lambda r: r["product_id"])
    _write(target, "products", [{**p, "product_category_name": "perfumaria"} for p in products[:5]])
    items = sorted(_read(base, "order_items"), key=lambda r: (r["order_id"], r["order_item_id"]))
    _write(target, "order_items", [{**i, "price": f"{float(i['price']) + 10:.2f}"} for i in items[100:103]])
    _write(target, "order_payments", [])
    reviews = _read(base, "order_reviews")[:5]
    fresh = [
        {**r, "review_id": f"{i:032x}", "review_score": "1", "review_creation_date": "2018-12-01 00:00:00"} for i, r in enumerate(reviews)
    ]
    _write(target, "order_reviews", fresh)
    for table in ("geolocation", "category_translation"):
        shutil.copy(base / BY_TABLE[table].filename, target / BY_TABLE[table].filename)
    return target


def relations(con):
    return con.execute(
        """select schema_name, table_name from duckdb_tables() where schema_name in ?
           union all select schema_name, view_name from duckdb_views() where schema_name in ? and not internal
           order by all""",
        [list(SCHEMAS), list(SCHEMAS)],
    ).fetchall()


def contents(path) -> dict:
    """{relation: Counter of its rows} of every table and view of the warehouse file `path`,
    doubles to 9 decimals (sums in another order differ in their last bits); the run's own
    bookkeeping (run ids, load times) left out."""
    with duckdb.connect(str(path), read_only=True) as con:
        out = {}
        for schema, name in relations(con):
            if (schema, name) in BOOKKEEPING:
                continue
            columns = con.execute(
                "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ? order by column_index",
                [schema, name],
            ).fetchall()
            select = ", ".join(f"round({c}, 9)" if kind in ("DOUBLE", "FLOAT") else c for c, kind in columns)
            out[f"{schema}.{name}"] = Counter(con.execute(f"select {select} from {schema}.{name}").fetchall())
        return out


def differences(increment_file, full_file) -> dict:
    """{relation: (rows only in the increment's, rows only in the full build's)} where they differ."""
    ours, theirs = contents(increment_file), contents(full_file)
    assert ours.keys() == theirs.keys()
    out = {}
    for name in ours:
        only = (sum((ours[name] - theirs[name]).values()), sum((theirs[name] - ours[name]).values()))
        if any(only):
            out[name] = only
    return out


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    root = tmp_path_factory.mktemp("increment-drops")
    base, added = root / "base", root / "added"
    generate(base, scale=0.05, seed=11)
    generate(added, scale=0.05, seed=11, start_date=dt.date(2018, 11, 1), months=1)
    return base, added, change_drop(base, root / "changed")


@pytest.fixture(scope="module")
def chain(drops, ops_url, tmp_path_factory):
    """The three drops loaded one run each (the last two incremental), then a full rebuild of
    the same drops: (settings, the increments' file, the full build's file, the run results)."""
    base, added, changed = drops
    settings = make_settings(tmp_path_factory.mktemp("increment-home"), ops_url)
    kept = tmp_path_factory.mktemp("kept")
    results = []
    for drop in (base, added, changed):  # each increment's files kept as `<drop>-<copy>.duckdb`
        results.append(pipeline.run(settings, drop))
        if drop is not base:
            shutil.copyfile(publish.current(settings.warehouse_path), kept / f"{drop.name}-warehouse.duckdb")
            for reader in readers.readers():
                shutil.copyfile(publish.current(reader.served(settings.warehouse_path)), kept / f"{drop.name}-{reader.name}.duckdb")
    full = pipeline.run(settings, None, full=True)
    return settings, kept / "changed-warehouse.duckdb", publish.current(settings.warehouse_path), results + [full]


def test_an_increment_rebuilds_only_the_orders_its_drop_touches(chain):
    *_, results = chain
    first, added, changed, full = results
    assert first.touched_orders is None and full.touched_orders is None  # nothing served yet; --full
    assert "copy" in added.stage_seconds and "copy" not in first.stage_seconds and "copy" not in full.stage_seconds
    orders = full.model_rows["fact_deliveries"]
    assert 0 < added.touched_orders < orders / 3, (added.touched_orders, orders)
    assert 0 < changed.touched_orders < orders / 10, (changed.touched_orders, orders)


def test_an_increment_and_a_full_rebuild_hold_the_same_rows_in_every_table_and_view(chain):
    _, increments, full, _ = chain
    assert differences(increments, full) == {}


@pytest.mark.parametrize("reader", readers.readers(), ids=lambda r: r.name)
def test_each_reader_copy_an_increment_changed_equals_the_one_cut_whole(chain, reader):
    settings, increments, _, _ = chain
    assert differences(increments.with_name(f"changed-{reader.name}.duckdb"), publish.current(reader.served(settings.warehouse_path))) == {}


def _segments(path, table: str) -> dict:
    """{(row group, column, segment): (block, offset)} of `table`'s stored columns in the file `path`."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f"select row_group_id, column_id, segment_id, block_id, block_offset from pragma_storage_info('{table}')")
        return {tuple(r[:3]): tuple(r[3:]) for r in rows.fetchall()}


@pytest.mark.parametrize("copy", ["warehouse", *(r.name for r in readers.readers())])
def test_an_increment_rewrites_no_row_group_it_only_deleted_rows_from(chain, copy):
    """The drop that changes orders deletes their rows here and there in the facts and appends
    their new ones: the stored row groups stay where they were (no vacuum rewrites them and all
    after them; engines/duckdb/publish.py), in the warehouse and in each reader copy."""
    settings, increments, _, _ = chain
    before, after = increments.with_name(f"added-{copy}.duckdb"), increments.with_name(f"changed-{copy}.duckdb")
    moved, appended = {}, {}
    for table in ("fact_deliveries", "fact_order_items", "fact_reviews", "dim_customer"):
        old, new = _segments(before, table), _segments(after, table)
        moved[table] = sorted({key[0] for key, place in old.items() if new.get(key) != place})
        appended[table] = len({key[0] for key in new}) - len({key[0] for key in old})
    assert moved == {table: [] for table in moved}  # the row groups rewritten
    assert all(n > 0 for n in appended.values()), appended


def test_a_backtest_reads_the_fits_of_earlier_origins(monkeypatch):
    months = pd.date_range("2017-01-01", periods=20, freq="MS")
    y = pd.Series([100.0 + 5 * i + 30 * (m.month == 11) for i, m in enumerate(months)], index=months)
    fits = forecast.Fits()
    forecast.backtest(y.iloc[:-1], fits=fits)  # the run before: one month less
    fresh = forecast.backtest(y)
    fitted, real = [], forecast.fit
    monkeypatch.setattr(forecast, "fit", lambda *a, **k: fitted.append(len(a[0])) or real(*a, **k))
    assert forecast.backtest(y, fits=forecast.Fits(dict(fits.used))) == fresh
    assert fitted == [19]  # the one new origin, on the 19 months before the last


def test_the_comparison_sees_a_changed_row(chain, tmp_path):
    _, increments, full, _ = chain
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(increments, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute(
            "update fact_deliveries set is_first_order = not is_first_order where order_id = (select min(order_id) from fact_deliveries)"
        )
    found = differences(broken, full)
    assert found.pop("main.fact_deliveries") == (1, 1)
    assert all(name.startswith("semantic.") for name in found), found  # the views over it


def test_the_changes_reached_the_facts(chain, drops):
    _, increments, _, _ = chain
    with duckdb.connect(str(increments), read_only=True) as con:
        assert con.execute("select count(*) from fact_deliveries where customer_key is null").fetchone()[0] == 0
        repeat = con.execute(
            """select is_repeat_customer from fact_deliveries
               where order_id in (select order_id from raw.orders where customer_id = ?)""",
            [MOVED],
        ).fetchall()
        assert repeat == [(True,)]  # moved to a person who had one order: now two
        assert con.execute("select count(*) from fact_order_items where seller_state = 'AC'").fetchone()[0] > 0
        assert (
            con.execute("select count(*) from fact_reviews where review_score = 1 and review_created_date = '2018-12-01'").fetchone()[0]
            == 5
        )


def test_changed_models_rebuild_everything(ops_url, tmp_path, drops, monkeypatch):
    base, added, _ = drops
    settings = make_settings(tmp_path / "home", ops_url)
    pipeline.run(settings, base)
    monkeypatch.setattr(increment, "fingerprint", lambda: "other models")
    said = []
    result = pipeline.run(settings, added, progress=said.append)
    assert result.touched_orders is None
    assert "rebuilding every model: the models changed since the served warehouse was built (models.yaml or a model's SQL)" in said


def _scoped(path, touched: int):
    """A connection to `path`, the tests of an increment over its first `touched` orders (by
    id) that changed the orders table set up: (connection, scope)."""
    con = duckdb.connect(str(path))
    con.execute(f"create temp table _touched_orders as select order_id from raw.orders order by order_id limit {touched}")
    scope = transform.Scope("_touched_orders", frozenset({"orders"}))
    transform.scope_tables(con, scope)
    return con, scope


@pytest.mark.parametrize(
    "plant, message",
    [
        (None, None),
        (
            "update fact_payments set payment_type = 'pix' where order_id = (select min(order_id) from raw.orders)",
            "fact_payments.payment_type: test accepted_values",
        ),
        (
            "insert into fact_deliveries select * from fact_deliveries where order_id = (select min(order_id) from raw.orders)",
            "fact_deliveries: 1 duplicated grain keys",
        ),
    ],
    ids=["as-built", "accepted_values", "grain"],
)
def test_an_increment_tests_the_rows_it_rebuilt(chain, tmp_path, plant, message):
    _, increments, _, _ = chain
    broken = tmp_path / "broken.duckdb"
    shutil.copyfile(increments, broken)
    if plant:
        with duckdb.connect(str(broken)) as con:
            con.execute(plant)
    con, scope = _scoped(broken, 50)
    try:
        if message is None:
            assert isinstance(transform.test_contracts(con, scope), list)  # it passes as built
        else:
            with pytest.raises(transform.ContractViolation, match=message):
                transform.test_contracts(con, scope)
    finally:
        con.close()


def test_the_increment_benchmark_runs_a_full_build_and_an_increment(tmp_path, ops_url, monkeypatch, capsys):
    from bench import increment as bench

    monkeypatch.setenv("OLIST_DATABASE_URL", ops_url)
    monkeypatch.setattr("sys.argv", ["bench.increment", "--scales", "0.02", "--data", str(tmp_path), "--json"])
    bench.main()
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["engine"] for r in results] == ["duckdb", "clickhouse"]
    for result in results:
        assert result["full_stages"].keys() >= {"extract", "validate", "transform", "publish"} and "copy" not in result["full_stages"]
        assert 0 < result["touched_orders"] < result["orders"]
        # the seconds are rounded to 0.01 s and the ratio before them: at this scale a run takes seconds
        assert result["ratio"] == pytest.approx(result["increment_seconds"] / result["full_seconds"], rel=0.01)
        assert result["full_peak_gb"] > 0
    duckdb_stages, clickhouse_stages = (r["increment_stages"] for r in results)
    assert {"copy", "readers"} <= duckdb_stages.keys() and not {"copy", "readers"} & clickhouse_stages.keys()  # no DuckDB file
    duck, house = (r["disk_gb"] for r in results)
    assert duck.keys() == {"warehouse", "warehouse_generations", "reader_copy", "olist_regional_sp_copy"} and house.keys() == {"clickhouse"}
    assert duck["warehouse_generations"] >= duck["warehouse"] > duck["reader_copy"] > 0 and house["clickhouse"] > 0


def test_a_file_loaded_before_is_not_read_through_again(drops, monkeypatch):
    from olist_bi import contract

    base, _, _ = drops
    read, real = [], contract._first_invalid_utf8
    monkeypatch.setattr(contract, "_first_invalid_utf8", lambda path: read.append(path.name) or real(path))
    checks = contract.check_folder(base, loaded=lambda path: path.name == BY_TABLE["geolocation"].filename)
    assert len(checks) == 9 and len(read) == 8 and BY_TABLE["geolocation"].filename not in read

"""On ClickHouse too an increment rebuilds only what a drop touches and gives the same rows as a
full rebuild: every served table and the raw history, after drops that add, change and cancel
orders (tests/etl/test_increment.py's drops). The increments start from the served
generation's raw history and tables (cloned), not from a load of all of `raw`."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest

from olist_bi.contract import BY_TABLE
from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.etl import pipeline, transform
from olist_bi.generator import generate
from tests.conftest import clickhouse_settings
from tests.etl.test_increment import change_drop

DATABASE = "olist_increment"


def contents(settings, database: str) -> dict[str, Counter]:
    """{table: Counter of its rows} of every served table of `database` and of its raw history,
    floats to 9 decimals (sums in another order differ in their last bits)."""
    ch, out = clickhouse.connect(settings), {}
    plan = transform.build_plan()
    tables = [f"{database}.{t}" for t in clickhouse.served_tables(plan) if t != clickhouse.LOADS]  # not the runs' own records
    tables += [f"{clickhouse.Databases.raw(database)}.{t}" for t in BY_TABLE]
    for table in tables:
        rows = ch.rows(f"select * from {table}")
        out[table] = Counter(tuple(_rounded(v) for v in row) for row in rows)
    return out


def _rounded(value):
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, Decimal):
        return Decimal(value).normalize()
    return value


@pytest.fixture(scope="module")
def chain(tmp_path_factory, ops_url, clickhouse_url):
    """Three drops on ClickHouse, one run each (the last two incremental), the served tables
    after them; then a full rebuild's. (settings, the increments' rows, the full build's rows,
    the runs' results, what the runs asked of ClickHouse's raw history.)"""
    root = tmp_path_factory.mktemp("ch-increment")
    base, added = root / "base", root / "added"
    generate(base, scale=0.05, seed=11)
    generate(added, scale=0.05, seed=11, start_date=dt.date(2018, 11, 1), months=1)
    changed = change_drop(base, root / "changed")
    settings = clickhouse_settings(root / "home", ops_url, clickhouse_url, DATABASE)
    calls = {"start": [], "merged": [], "loaded whole": [], "touched": [], "people": [], "scoped": []}
    real = {name: getattr(clickhouse, name) for name in ("start", "merge_drop", "_load_raw", "_scope_raw", "_keep_records")}

    def start(settings, plan, source, incremental):
        calls["start"].append(real["start"](settings, plan, source, incremental))
        calls["merged"].append(set())
        return calls["start"][-1]

    def merge_drop(settings, plan, source, table, key):
        calls["merged"][-1].add(table)
        return real["merge_drop"](settings, plan, source, table, key)

    def load_raw(*args):
        calls["loaded whole"].append(len(calls["start"]))
        return real["_load_raw"](*args)

    def scope_raw(ch, db, plan):
        calls["touched"].append(ch.scalar(f"select count() from {db.staging}.touched_orders"))
        people = f"select count(distinct customer_unique_id) from {clickhouse.Databases.raw(db.served)}.customers"
        calls["people"].append((ch.scalar(f"select count() from {db.staging}.touched_people"), ch.scalar(people)))
        return real["_scope_raw"](ch, db, plan)

    def keep_records(ch, db, *args):  # after every model is built: the rows built in part, by model
        names = ch.rows("select name from system.tables where database = {db:String} and name like 'scoped\\_%'", {"db": db.staging})
        calls["scoped"].append({name for (name,) in names})
        return real["_keep_records"](ch, db, *args)

    spies = {"start": start, "merge_drop": merge_drop, "_load_raw": load_raw, "_scope_raw": scope_raw, "_keep_records": keep_records}
    for name, spy in spies.items():
        setattr(clickhouse, name, spy)
    try:
        results = [pipeline.run(settings, drop) for drop in (base, added, changed)]
        increments = contents(settings, DATABASE)
        full = pipeline.run(settings, None, full=True)
    finally:
        for name, function in real.items():
            setattr(clickhouse, name, function)
    return settings, increments, contents(settings, DATABASE), results + [full], calls


def test_clickhouse_keeps_its_raw_history_from_the_drops_themselves(chain):
    """Raw history is never loaded from the DuckDB build: a full run merges each drop into
    empty tables, an increment into the served generation's, as each drop is validated."""
    *_, results, calls = chain
    assert all(r.status == "succeeded" for r in results), [r.message for r in results]
    assert calls["start"] == ["replayed", "extended", "extended", "replayed"]
    assert calls["loaded whole"] == []
    assert calls["merged"][0] == calls["merged"][3] == set(BY_TABLE)  # every file of the first drop, replayed by the full run
    assert "orders" in calls["merged"][1] and "sellers" in calls["merged"][2]


def test_clickhouse_finds_the_touched_orders_in_its_own_history(chain):
    """From the keys the drop brought and its own raw history, ClickHouse touches the orders
    the DuckDB build touched: no more, no fewer."""
    *_, results, calls = chain
    assert calls["touched"] == [r.touched_orders for r in results[1:3]]
    assert all(t > 0 for t in calls["touched"])


def test_an_increment_rebuilds_the_touched_people_of_dim_customer_not_all(chain):
    """dim_customer is rebuilt for the touched people only, as on DuckDB (per person), when the
    drop changes its sources; both increments here bring customers."""
    *_, calls = chain
    assert len(calls["people"]) == 2 and all(0 < touched < everyone for touched, everyone in calls["people"])
    full_builds, increments = [calls["scoped"][0], calls["scoped"][3]], calls["scoped"][1:3]
    assert all("scoped_dim_customer" in built and "scoped_fact_deliveries" in built for built in increments)
    assert full_builds == [set(), set()]


def test_an_increment_and_a_full_rebuild_hold_the_same_rows_on_clickhouse(chain):
    _, increments, full, _, _ = chain
    assert increments.keys() == full.keys()
    differ = {t: (sum((increments[t] - full[t]).values()), sum((full[t] - increments[t]).values())) for t in full}
    assert {t: d for t, d in differ.items() if any(d)} == {}


def test_the_comparison_sees_a_changed_row(chain):
    settings, increments, _, _, _ = chain
    ch = clickhouse.connect(settings)
    table = f"{DATABASE}.fact_deliveries"
    flip = f"alter table {table} update is_first_order = not is_first_order where order_id = (select min(order_id) from {table})"
    ch.command(f"{flip} settings mutations_sync = 2")
    try:
        changed = contents(settings, DATABASE)[table]
    finally:
        ch.command(f"{flip} settings mutations_sync = 2")
    assert sum((changed - increments[table]).values()) == 1 and sum((increments[table] - changed).values()) == 1


def test_the_raw_history_is_kept_with_its_generation_out_of_the_readers_database(chain):
    settings, *_ = chain
    ch = clickhouse.connect(settings)
    served = {t for (t,) in ch.rows("select name from system.tables where database = {db:String}", {"db": DATABASE})}
    assert not served & set(BY_TABLE)  # the readers' database holds the models, not raw
    raw = clickhouse.Databases.raw(DATABASE)
    assert ch.scalar(f"select count() from {raw}.orders") == ch.scalar(f"select count() from {DATABASE}.fact_deliveries")
    kept = clickhouse.Databases.raw(clickhouse.databases(settings).previous(1))
    assert ch.scalar(f"select count() from {kept}.orders") > 0  # the generation before keeps its own

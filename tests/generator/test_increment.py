"""An increment adds new orders after a date over the same world as its base drop."""

import datetime as dt

import duckdb
import pytest

from olist_bi.contract import load_raw
from olist_bi.generator import generate


@pytest.fixture(scope="module")
def base_and_increment(tmp_path_factory):
    base = tmp_path_factory.mktemp("base")
    increment = tmp_path_factory.mktemp("increment")
    generate(base, scale=0.05, seed=7)
    generate(increment, scale=0.05, seed=7, start_date=dt.date(2018, 9, 1), months=2)
    con = duckdb.connect()
    load_raw(con, base, schema="base")
    load_raw(con, increment, schema="inc")
    return base, increment, con


def one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_orders_fall_inside_the_increment(base_and_increment):
    _, _, con = base_and_increment
    first, last, n = con.execute("select min(order_purchase_timestamp), max(order_purchase_timestamp), count(*) from inc.orders").fetchone()
    assert first >= dt.datetime(2018, 9, 1) and last < dt.datetime(2018, 11, 1)
    assert n > 100


def test_new_ids_do_not_collide_with_the_base(base_and_increment):
    _, _, con = base_and_increment
    assert one(con, "select count(*) from inc.orders join base.orders using (order_id)") == 0
    assert one(con, "select count(*) from inc.customers join base.customers using (customer_id)") == 0
    assert one(con, "select count(*) from inc.order_reviews join base.order_reviews using (review_id)") == 0


def test_items_point_at_base_products_and_sellers(base_and_increment):
    _, _, con = base_and_increment
    assert one(con, "select count(*) from inc.order_items") > 0
    assert one(con, "select count(*) from inc.order_items anti join base.products using (product_id)") == 0
    assert one(con, "select count(*) from inc.order_items anti join base.sellers using (seller_id)") == 0


def test_some_customers_return_with_their_base_address(base_and_increment):
    _, _, con = base_and_increment
    returning = one(con, "select count(*) from inc.customers where customer_unique_id in (select customer_unique_id from base.customers)")
    total = one(con, "select count(*) from inc.customers")
    assert 0 < returning < 0.2 * total
    moved = one(
        con,
        """select count(*) from inc.customers i join (select distinct customer_unique_id, customer_zip_code_prefix from base.customers) b
           using (customer_unique_id) where i.customer_zip_code_prefix <> b.customer_zip_code_prefix""",
    )
    assert moved == 0


def test_every_order_has_its_customer_and_children_reference_increment_orders(base_and_increment):
    _, _, con = base_and_increment
    assert one(con, "select count(*) from inc.orders anti join inc.customers using (customer_id)") == 0
    for table in ("order_items", "order_payments", "order_reviews"):
        assert one(con, f"select count(*) from inc.{table} anti join inc.orders using (order_id)") == 0


def test_dimension_files_are_byte_identical_to_the_base(base_and_increment):
    base, increment, _ = base_and_increment
    for name in (
        "olist_products_dataset.csv",
        "olist_sellers_dataset.csv",
        "olist_geolocation_dataset.csv",
        "product_category_name_translation.csv",
    ):
        assert (base / name).read_bytes() == (increment / name).read_bytes(), name


def test_increment_is_deterministic(base_and_increment, tmp_path):
    _, increment, _ = base_and_increment
    generate(tmp_path, scale=0.05, seed=7, start_date=dt.date(2018, 9, 1), months=2)
    assert (tmp_path / "olist_orders_dataset.csv").read_bytes() == (increment / "olist_orders_dataset.csv").read_bytes()


def test_next_increment_gets_other_ids(base_and_increment, tmp_path):
    _, _, con = base_and_increment
    generate(tmp_path, scale=0.05, seed=7, start_date=dt.date(2018, 11, 1), months=1)
    load_raw(con, tmp_path, schema="inc2")
    assert one(con, "select count(*) from inc2.orders join inc.orders using (order_id)") == 0
    assert (
        one(
            con,
            "select count(*) from inc2.customers c join inc.customers using (customer_unique_id) "
            "where c.customer_unique_id not in (select customer_unique_id from base.customers)",
        )
        == 0
    )

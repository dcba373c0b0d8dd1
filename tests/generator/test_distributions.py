"""A generated drop reproduces the real files' counts, distributions and quirks.

The drop is at scale 0.2, so a real count C is expected near 0.2 * C; shares are compared
with the real files' shares (OLIST_DATA.md) within a tolerance stated per check.
"""

import pytest

SCALE = 0.2


def one(raw, sql):
    return raw.execute(sql).fetchone()[0]


def near(value, real, rel=0.1, scale=SCALE):
    value = float(value)
    expected = real * scale
    assert abs(value - expected) <= rel * expected, f"{value} not within {rel:.0%} of {expected:g}"


@pytest.mark.parametrize(
    "table, real, rel",
    [
        ("orders", 99_441, 0.02),
        ("customers", 99_441, 0.02),
        ("order_items", 112_650, 0.02),
        ("order_payments", 103_886, 0.02),
        ("order_reviews", 99_224, 0.02),
        ("sellers", 3_095, 0.02),
        ("products", 32_951, 0.02),
        ("geolocation", 1_000_163, 0.02),
    ],
)
def test_row_counts_scale(raw, table, real, rel):
    near(one(raw, f"select count(*) from raw.{table}"), real, rel)


def test_translation_has_71_rows_with_the_real_typos(raw):
    assert one(raw, "select count(*) from raw.category_translation") == 71
    english = {r[0] for r in raw.execute("select product_category_name_english from raw.category_translation").fetchall()}
    assert {"costruction_tools_garden", "fashio_female_clothing", "home_confort"} <= english


def share(raw, sql_counts):
    rows = dict(raw.execute(sql_counts).fetchall())
    total = sum(rows.values())
    return {k: v / total for k, v in rows.items()}


def test_order_status_mix(raw):
    got = share(raw, "select order_status, count(*) from raw.orders group by 1")
    assert abs(got["delivered"] - 96_478 / 99_441) < 0.002
    assert abs(got["shipped"] - 1_107 / 99_441) < 0.002
    assert set(got) == {"delivered", "shipped", "canceled", "unavailable", "invoiced", "processing", "created", "approved"}


def test_payment_type_mix(raw):
    got = share(raw, "select payment_type, count(*) from raw.order_payments group by 1")
    real = {"credit_card": 76_795, "boleto": 19_784, "voucher": 5_775, "debit_card": 1_529}
    for kind, count in real.items():
        assert abs(got[kind] - count / 103_886) < 0.01, kind
    assert "not_defined" in got
    installments = raw.execute(
        "select min(payment_installments), max(payment_installments) from raw.order_payments where payment_type = 'credit_card'"
    ).fetchone()
    assert installments[0] == 1 and 10 <= installments[1] <= 24
    assert one(raw, "select max(payment_installments) from raw.order_payments where payment_type <> 'credit_card'") == 1


def test_vouchers_split_into_several_payment_rows(raw):
    split = one(raw, "select count(*) from (select order_id from raw.order_payments group by 1 having count(*) > 1)")
    near(split, 2_961, 0.15)
    assert one(raw, "select max(payment_sequential) from raw.order_payments where payment_type = 'voucher'") > 2


def test_review_scores(raw):
    got = share(raw, "select review_score, count(*) from raw.order_reviews group by 1")
    real = {5: 57_328, 4: 19_142, 3: 8_180, 2: 3_150, 1: 11_424}
    for score, count in real.items():
        assert abs(got[score] - count / 99_224) < 0.015, score
    assert abs(one(raw, "select avg(review_score) from raw.order_reviews") - 4.09) < 0.08


def test_customers_by_state(raw):
    got = share(raw, "select customer_state, count(*) from raw.customers group by 1")
    assert len(got) == 27
    assert abs(got["SP"] - 41_746 / 99_441) < 0.01
    assert abs(got["RJ"] - 12_852 / 99_441) < 0.01
    assert abs(got["MG"] - 11_635 / 99_441) < 0.01
    assert sorted(got, key=got.get, reverse=True)[:3] == ["SP", "RJ", "MG"]


def test_purchases_span_2016_to_2018_with_the_black_friday_peak(raw):
    first, last = raw.execute("select min(order_purchase_timestamp)::date, max(order_purchase_timestamp)::date from raw.orders").fetchone()
    assert str(first) == "2016-09-04" and str(last) == "2018-10-17"
    by_year = share(raw, "select year(order_purchase_timestamp), count(*) from raw.orders group by 1")
    assert abs(by_year[2017] - 45_101 / 99_441) < 0.01
    assert abs(by_year[2018] - 54_011 / 99_441) < 0.01
    top_month = one(raw, "select strftime(order_purchase_timestamp, '%Y-%m') m from raw.orders group by 1 order by count(*) desc limit 1")
    assert top_month == "2017-11"
    top_day = one(raw, "select order_purchase_timestamp::date from raw.orders group by 1 order by count(*) desc limit 1")
    assert str(top_day) == "2017-11-24"
    after_august = one(raw, "select count(*) from raw.orders where order_purchase_timestamp >= '2018-09-01'")
    assert after_august < 0.001 * one(raw, "select count(*) from raw.orders") + 5


def test_multi_item_orders_and_price_ranges(raw):
    multi = one(raw, "select avg((n > 1)::int) from (select order_id, count(*) n from raw.order_items group by 1)")
    assert 0.08 < multi < 0.12
    low, high, freight_low, freight_high = raw.execute(
        "select min(price), max(price), min(freight_value), max(freight_value) from raw.order_items"
    ).fetchone()
    assert low >= 0.85 and high <= 6735 and freight_low == 0 and freight_high <= 409.68
    near(one(raw, "select sum(price) from raw.order_items"), 13_591_643.70, 0.05)
    near(one(raw, "select sum(freight_value) from raw.order_items"), 2_251_909.54, 0.05)


def test_payments_exceed_price_plus_freight(raw):
    payments = one(raw, "select sum(payment_value) from raw.order_payments")
    goods = one(raw, "select sum(price + freight_value) from raw.order_items")
    near(payments, 16_008_872.12, 0.05)
    assert payments > goods


def test_repeat_customers(raw):
    distinct, repeaters = raw.execute(
        "select count(*), count(*) filter (where n > 1) from (select customer_unique_id, count(*) n from raw.customers group by 1)"
    ).fetchone()
    near(distinct, 96_096, 0.02)
    assert abs(repeaters / distinct - 2_997 / 96_096) < 0.004


def test_delivery_times_and_lateness(raw):
    days = one(raw, "select avg(date_diff('second', order_purchase_timestamp, order_delivered_customer_date) / 86400) from raw.orders")
    assert 11.5 < days < 13.5
    by_timestamp, by_date = raw.execute(
        """select avg((order_delivered_customer_date > order_estimated_delivery_date)::int),
                  avg((order_delivered_customer_date::date > order_estimated_delivery_date::date)::int)
           from raw.orders where order_delivered_customer_date is not null"""
    ).fetchone()
    assert 0.065 < by_timestamp < 0.10 and 0.055 < by_date < 0.085 and by_date < by_timestamp
    late, on_time = raw.execute(
        """select avg(review_score) filter (where late), avg(review_score) filter (where not late)
           from (select order_delivered_customer_date > order_estimated_delivery_date late, r.review_score
                 from raw.orders o join raw.order_reviews r using (order_id)
                 where order_delivered_customer_date is not null)"""
    ).fetchone()
    assert abs(late - 2.6) < 0.3 and abs(on_time - 4.3) < 0.15


def test_missing_timestamps(raw):
    counts = raw.execute(
        """select count(*) filter (where order_approved_at is null),
                  count(*) filter (where order_delivered_carrier_date is null),
                  count(*) filter (where order_delivered_customer_date is null),
                  count(*) filter (where order_status = 'delivered' and order_delivered_customer_date is null),
                  count(*) filter (where order_delivered_carrier_date < order_approved_at)
           from raw.orders"""
    ).fetchone()
    for value, real in zip(counts, (160, 1_783, 2_965, 8, 1_359)):
        near(value, real, 0.25 if real > 100 else 0.5)


def test_orders_without_items_payments_or_reviews(raw):
    def orphans(table):
        return one(raw, f"select count(*) from raw.orders o where not exists (select 1 from raw.{table} x where x.order_id = o.order_id)")

    near(orphans("order_items"), 775, 0.05)
    assert orphans("order_payments") >= 1
    near(orphans("order_reviews"), 768, 0.05)


def test_product_quirks(raw):
    no_category, no_dims = raw.execute(
        "select count(*) filter (where product_category_name is null), count(*) filter (where product_weight_g is null) from raw.products"
    ).fetchone()
    near(no_category, 610, 0.05)
    assert no_dims >= 1
    assert one(raw, "select count(*) from raw.products where product_category_name is null and product_photos_qty is not null") == 0
    untranslated = {
        r[0]
        for r in raw.execute(
            """select distinct product_category_name from raw.products p
               where product_category_name is not null
                 and not exists (select 1 from raw.category_translation t where t.product_category_name = p.product_category_name)"""
        ).fetchall()
    }
    assert untranslated == {"pc_gamer", "portateis_cozinha_e_preparadores_de_alimentos"}


def test_review_quirks(raw):
    reused = one(raw, "select count(*) from (select review_id from raw.order_reviews group by 1 having count(distinct order_id) > 1)")
    near(reused, 789, 0.05)
    multi = one(raw, "select count(*) from (select order_id from raw.order_reviews group by 1 having count(*) > 1)")
    near(multi, 547, 0.05)
    assert one(raw, "select count(*) - count(distinct (review_id, order_id)) from raw.order_reviews") == 0


def test_geolocation_quirks(raw):
    prefixes, duplicates = raw.execute(
        "select count(distinct geolocation_zip_code_prefix), "
        "count(*) - (select count(*) from (select distinct * from raw.geolocation)) from raw.geolocation"
    ).fetchone()
    near(prefixes, 19_015, 0.02)
    near(duplicates, 261_831, 0.02)
    two_states = one(
        raw,
        "select count(*) from (select geolocation_zip_code_prefix from raw.geolocation "
        "group by 1 having count(distinct geolocation_state) > 1)",
    )
    assert 1 <= two_states <= 8
    outside = one(
        raw,
        "select count(*) from raw.geolocation where geolocation_lat not between -33.75 and 5.27 "
        "or geolocation_lng not between -73.99 and -34.79",
    )
    assert 1 <= outside <= 60
    spellings = one(
        raw,
        "select count(*) from (select geolocation_zip_code_prefix from raw.geolocation group by 1 "
        "having count(distinct geolocation_city) > 1 and bool_or(geolocation_city = 'são paulo'))",
    )
    assert spellings > 0


def test_references_hold(raw):
    assert one(raw, "select count(*) from raw.order_items i anti join raw.products p using (product_id)") == 0
    assert one(raw, "select count(*) from raw.order_items i anti join raw.sellers s using (seller_id)") == 0
    assert one(raw, "select count(*) from raw.order_items i anti join raw.orders o using (order_id)") == 0
    assert one(raw, "select count(*) from raw.order_payments i anti join raw.orders o using (order_id)") == 0
    assert one(raw, "select count(*) from raw.order_reviews i anti join raw.orders o using (order_id)") == 0
    # one customer row per order, and no customer row without its order
    assert one(raw, "select count(*) from raw.orders o anti join raw.customers c using (customer_id)") == 0
    assert one(raw, "select count(*) - count(distinct customer_id) from raw.customers") == 0
    assert one(raw, "select count(*) from raw.customers") == one(raw, "select count(*) from raw.orders")
    # most customer zips are in the geolocation file, a few are not (as in the real files)
    unknown = one(
        raw,
        "select count(*) from raw.customers c where not exists "
        "(select 1 from raw.geolocation g where g.geolocation_zip_code_prefix = c.customer_zip_code_prefix)",
    )
    assert 0 < unknown < 0.005 * one(raw, "select count(*) from raw.customers")
    # ids are unique where the real files' are
    for table, key in [("orders", "order_id"), ("products", "product_id"), ("sellers", "seller_id")]:
        assert one(raw, f"select count(*) - count(distinct {key}) from raw.{table}") == 0
    assert one(raw, "select count(*) - count(distinct (order_id, order_item_id)) from raw.order_items") == 0
    assert one(raw, "select count(*) - count(distinct (order_id, payment_sequential)) from raw.order_payments") == 0

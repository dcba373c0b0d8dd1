"""Facts and marts equal independent computations from the raw CSV files, on DuckDB and on
ClickHouse (OLIST_WAREHOUSE_ENGINE=clickhouse, embedded chdb).

The expected figures are computed here with Python's csv module straight from the generated
files, sharing no code with the pipeline.
"""

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from tests.conftest import ts


@pytest.fixture(scope="module")
def source(source_rows):
    return source_rows


@pytest.fixture(scope="module")
def wh(engine_warehouse):
    """The warehouse on each engine (DuckDB, and ClickHouse built from the same drop)."""
    _, _, reader = engine_warehouse
    return reader


def one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_sum_of_price_and_freight(source, wh):
    assert one(wh, "select sum(price) from fact_order_items") == sum(Decimal(r["price"]) for r in source["items"])
    assert one(wh, "select sum(freight_value) from fact_order_items") == sum(Decimal(r["freight_value"]) for r in source["items"])


def test_sum_of_payments_is_not_inflated_by_items(source, wh):
    expected = sum(Decimal(r["payment_value"]) for r in source["payments"])
    assert one(wh, "select sum(payment_value) from fact_payments") == expected
    assert one(wh, "select sum(payment_value) from fact_deliveries") == expected


def test_every_order_survives(source, wh):
    assert one(wh, "select count(*) from fact_deliveries") == len(source["orders"])
    with_items = {r["order_id"] for r in source["items"]}
    assert one(wh, "select count(*) from fact_deliveries where items = 0") == len({r["order_id"] for r in source["orders"]} - with_items)


def test_orders_per_month(source, wh):
    expected = Counter(r["order_purchase_timestamp"][:7] for r in source["orders"])
    got = {m.strftime("%Y-%m"): n for m, n in wh.execute("select month_start, orders from mart_monthly_revenue").fetchall()}
    assert got == dict(expected)


def test_revenue_per_month_excludes_canceled_and_unavailable(source, wh):
    status = {r["order_id"]: r["order_status"] for r in source["orders"]}
    month = {r["order_id"]: r["order_purchase_timestamp"][:7] for r in source["orders"]}
    expected = defaultdict(Decimal)
    for p in source["payments"]:
        if status[p["order_id"]] not in ("canceled", "unavailable"):
            expected[month[p["order_id"]]] += Decimal(p["payment_value"])
    got = {m.strftime("%Y-%m"): v for m, v in wh.execute("select month_start, revenue from mart_monthly_revenue").fetchall()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}
    assert one(wh, "select sum(revenue) from mart_monthly_revenue") == sum(expected.values())


def test_late_rate(source, wh):
    delivered = [r for r in source["orders"] if r["order_delivered_customer_date"]]
    late = [r for r in delivered if ts(r["order_delivered_customer_date"]).date() > ts(r["order_estimated_delivery_date"]).date()]
    assert one(wh, "select count(*) filter (where is_late) from fact_deliveries") == len(late)
    assert one(wh, "select count(*) filter (where is_delivered) from fact_deliveries") == len(delivered)
    assert one(wh, "select sum(late_orders) from mart_delivery_performance") == len(late)


def test_average_review_score_counts_each_order_once(source, wh):
    latest = {}
    for r in source["reviews"]:
        key = (ts(r["review_answer_timestamp"]), ts(r["review_creation_date"]), r["review_id"])
        if r["order_id"] not in latest or key > latest[r["order_id"]][0]:
            latest[r["order_id"]] = (key, int(r["review_score"]))
    expected = sum(score for _, score in latest.values()) / len(latest)
    assert one(wh, "select avg(review_score) from fact_deliveries") == pytest.approx(expected, rel=1e-12)
    assert one(wh, "select count(*) from fact_reviews where is_order_review") == len(latest)
    assert one(wh, "select count(*) from fact_reviews") == len(source["reviews"])


def test_cohort_sizes(source, wh):
    person = {r["customer_id"]: r["customer_unique_id"] for r in source["customers"]}
    first = {}
    for r in source["orders"]:
        p = person[r["customer_id"]]
        month = r["order_purchase_timestamp"][:7]
        first[p] = min(first.get(p, month), month)
    expected = Counter(first.values())
    got = {
        m.strftime("%Y-%m"): n
        for m, n in wh.execute(
            "select cohort_month, sum(cohort_size) from mart_customer_cohorts where months_since_first = 0 group by 1"
        ).fetchall()
    }
    assert got == dict(expected)
    assert one(wh, "select count(*) from dim_customer") == len(first)
    assert one(wh, "select sum(new_customers) from mart_monthly_revenue") == len(first)


def test_repeat_customers(source, wh):
    orders_per_person = Counter(r["customer_unique_id"] for r in source["customers"])
    assert one(wh, "select count(*) filter (where is_repeat) from dim_customer") == sum(1 for n in orders_per_person.values() if n > 1)


def test_seller_scorecard_adds_up(source, wh):
    status = {r["order_id"]: r["order_status"] for r in source["orders"]}
    kept = [r for r in source["items"] if status[r["order_id"]] not in ("canceled", "unavailable")]
    assert one(wh, "select sum(gmv) from mart_seller_scorecard") == sum(Decimal(r["price"]) for r in kept)
    assert one(wh, "select sum(items) from mart_seller_scorecard") == len(kept)
    assert one(wh, "select sum(gmv) from mart_product_trends") == sum(Decimal(r["price"]) for r in kept)


def test_seller_scorecard_reviews_per_seller(source, wh):
    """Each seller's average review score and reviewed orders: the order's latest review,
    over the seller's orders that were not canceled or unavailable (a mutant that summed the
    scores instead of averaging them passed every other test)."""
    status = {r["order_id"]: r["order_status"] for r in source["orders"]}
    latest = {}
    for r in source["reviews"]:
        key = (ts(r["review_answer_timestamp"]), ts(r["review_creation_date"]), r["review_id"])
        if r["order_id"] not in latest or key > latest[r["order_id"]][0]:
            latest[r["order_id"]] = (key, int(r["review_score"]))
    orders = defaultdict(set)
    for r in source["items"]:
        if status[r["order_id"]] not in ("canceled", "unavailable"):
            orders[r["seller_id"]].add(r["order_id"])
    expected = {}
    for seller, ids in orders.items():
        scores = [latest[o][1] for o in ids if o in latest]
        expected[seller] = (sum(scores) / len(scores) if scores else None, len(scores))
    got = {s: (a, n) for s, a, n in wh.execute("select seller_id, avg_review_score, reviewed_orders from mart_seller_scorecard").fetchall()}
    assert set(expected) <= set(got)
    for seller in set(got) - set(expected):  # sellers with no kept order: no reviews to average
        assert got[seller][0] is None and not got[seller][1], seller
    for seller, (average, count) in expected.items():
        assert got[seller][1] == count, seller
        assert (got[seller][0] is None) if average is None else got[seller][0] == pytest.approx(average, rel=1e-12), seller


def test_marts_count_delivered_and_canceled_orders_and_freight_per_month_and_seller(source, wh):
    """Columns a mutation run found unchecked: each month's delivered and canceled orders, each
    seller's freight, the products' freight (from the raw CSVs)."""
    delivered, canceled = Counter(), Counter()
    for r in source["orders"]:
        month = r["order_purchase_timestamp"][:7]
        delivered[month] += r["order_status"] == "delivered"
        canceled[month] += r["order_status"] == "canceled"
    got = {
        m.strftime("%Y-%m"): (d, c)
        for m, d, c in wh.execute("select month_start, delivered_orders, canceled_orders from mart_monthly_revenue").fetchall()
    }
    assert got == {m: (delivered[m], canceled[m]) for m in got} and set(got) == set(delivered)
    status = {r["order_id"]: r["order_status"] for r in source["orders"]}
    kept = [r for r in source["items"] if status[r["order_id"]] not in ("canceled", "unavailable")]
    freight = defaultdict(Decimal)
    for r in kept:
        freight[r["seller_id"]] += Decimal(r["freight_value"])
    by_seller = dict(wh.execute("select seller_id, freight from mart_seller_scorecard where items > 0").fetchall())
    assert by_seller == dict(freight)
    assert one(wh, "select sum(freight) from mart_product_trends") == sum(freight.values())


def test_weekends_are_saturday_and_sunday(wh):
    days = wh.execute("select date_key, is_weekend from dim_date").fetchall()
    assert days and all(weekend == (day.isoweekday() >= 6) for day, weekend in days)


def test_untranslated_categories_fall_back_and_unknown_exists(wh):
    rows = dict(wh.execute("select category_key, category_name_english from dim_category").fetchall())
    assert rows["pc_gamer"] == "pc gamer"
    assert rows["unknown"] == "unknown"
    assert rows["cama_mesa_banho"] == "bed_bath_table"


def test_geography_centroids_lie_inside_brazil(wh):
    outside = one(wh, "select count(*) from dim_geography where lat not between -33.75 and 5.27 or lng not between -73.99 and -34.79")
    assert outside == 0
    assert one(wh, "select count(*) from dim_geography where points_outside_brazil > 0") > 0


def test_delivery_performance_mart_per_month_and_state(reference, wh):
    groups = defaultdict(list)
    for o in reference.orders:
        if o.delivered:
            groups[o.purchased.date().replace(day=1), o.state].append(o)
    rows = wh.execute(
        "select month_start, customer_state, delivered_orders, late_orders, avg_delivery_days, avg_review_score, avg_review_score_late,"
        " avg_review_score_on_time from mart_delivery_performance"
    ).fetchall()
    assert len(rows) == len(groups)

    def mean(values):
        values = [v for v in values if v is not None]
        return pytest.approx(sum(values) / len(values), rel=1e-9) if values else None

    for month, state, delivered, late, days, score, score_late, score_on_time in rows:
        mine = groups[month, state]
        is_late = [o for o in mine if o.delivered.date() > o.estimated]
        on_time = [o for o in mine if o.delivered.date() <= o.estimated]
        assert (delivered, late) == (len(mine), len(is_late)), (month, state)
        assert days == mean((o.delivered - o.purchased).total_seconds() / 86400 for o in mine), (month, state)
        assert (score, score_late, score_on_time) == (
            mean(o.score for o in mine),
            mean(o.score for o in is_late),
            mean(o.score for o in on_time),
        ), (month, state)


def test_geography_takes_each_prefix_s_most_frequent_city_and_state(drop, wh):
    import csv
    import statistics
    import unicodedata

    def plain(city):
        return "".join(c for c in unicodedata.normalize("NFD", city) if not unicodedata.combining(c))

    cities, states, points = defaultdict(Counter), defaultdict(Counter), defaultdict(list)
    with (drop / "olist_geolocation_dataset.csv").open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            prefix = r["geolocation_zip_code_prefix"]
            cities[prefix][plain(r["geolocation_city"])] += 1
            states[prefix][r["geolocation_state"]] += 1
            lat, lng = float(r["geolocation_lat"]), float(r["geolocation_lng"])
            if -33.75 <= lat <= 5.27 and -73.99 <= lng <= -34.79:
                points[prefix].append((lat, lng))

    def mode(counts):
        return min(counts, key=lambda k: (-counts[k], k))  # ties: the first name in order

    rows = {r[0]: r[1:] for r in wh.execute("select zip_code_prefix, city, state, lat, lng from dim_geography").fetchall()}
    assert set(rows) == set(cities)
    for prefix in cities:
        city, state, lat, lng = rows[prefix]
        assert (city, state) == (mode(cities[prefix]), mode(states[prefix])), prefix
        if points[prefix]:
            assert (lat, lng) == (
                pytest.approx(statistics.median(p[0] for p in points[prefix])),
                pytest.approx(statistics.median(p[1] for p in points[prefix])),
            ), prefix
        else:
            assert lat is None and lng is None, prefix


def test_product_trends_per_month_and_category(reference, wh):
    """Orders, items, GMV and freight per month and category (the third mutation run found a
    distinct order count that could count items instead)."""
    groups = defaultdict(list)
    for i in reference.items:
        if i.order.counts:
            groups[i.order.purchased.date().replace(day=1), i.english].append(i)
    rows = wh.execute("select month_start, category_name_english, orders, items, gmv, freight from mart_product_trends").fetchall()
    assert len(rows) == len(groups)
    for month, category, orders, items, gmv, freight in rows:
        mine = groups[month, category]
        want = (len({i.order.id for i in mine}), len(mine), sum(i.price for i in mine), sum(i.freight for i in mine))
        assert (orders, items, gmv, freight) == want, (month, category)


def test_seller_scorecard_deliveries_per_seller(reference, wh):
    """Each seller's orders, delivered and late orders and average delivery time over the orders
    they sold items in (the third mutation run found a sum where the average belongs)."""
    orders = defaultdict(dict)
    for i in reference.items:
        if i.order.counts:
            orders[i.seller][i.order.id] = i.order
    rows = wh.execute(
        "select seller_id, orders, delivered_orders, late_orders, avg_delivery_days from mart_seller_scorecard where items > 0"
    ).fetchall()
    assert len(rows) == len(orders)
    for seller, n, delivered, late, days in rows:
        mine = list(orders[seller].values())
        done = [o for o in mine if o.delivered]
        assert (n, delivered, late) == (len(mine), len(done), sum(1 for o in done if o.delivered.date() > o.estimated)), seller
        want = sum((o.delivered - o.purchased).total_seconds() / 86400 for o in done) / len(done) if done else None
        assert days == (pytest.approx(want, rel=1e-9) if done else None), seller


def test_reporting_window_is_the_settled_months_of_the_raw_files(reference, wh):
    """The complete months that time series show: from the raw files by the documented rule.
    The sample reproduces the real files' ragged edges, so the window trims both ends."""
    from tests.reference import reporting_window

    first, last = reporting_window(reference)
    assert wh.execute("select first_day, last_day from mart_reporting_window").fetchall() == [(first, last)]
    months = Counter(o.purchased.date().replace(day=1) for o in reference.orders)
    assert min(months) < first and max(months) > last  # something was trimmed at each end

"""Every metric equals an independent computation from the raw CSV files (Python's csv
module, sharing no code with the warehouse or the compiler), on DuckDB and on ClickHouse."""

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from olist_bi.semantic import query
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import GroupBy, Query, compile_query, parse_by, parse_where
from tests.conftest import ts

CANCELED = ("canceled", "unavailable")


@pytest.fixture(scope="module")
def raw(source_rows):
    orders = [dict(o) for o in source_rows["orders"]]  # a copy: the rows are shared, this adds fields
    customers = {r["customer_id"]: r for r in source_rows["customers"]}
    for o in orders:
        o["person"] = customers[o["customer_id"]]["customer_unique_id"]
        o["state"] = customers[o["customer_id"]]["customer_state"]
    return {
        "orders": orders,
        "by_id": {o["order_id"]: o for o in orders},
        "items": source_rows["items"],
        "payments": source_rows["payments"],
        "reviews": source_rows["reviews"],
    }


@pytest.fixture(scope="module")
def ask(engine_warehouse):
    """A metric's answer from the warehouse on each engine (DuckDB, ClickHouse)."""
    _, settings, _ = engine_warehouse

    def ask(metric, by=(), where=(), start=None, end=None):
        compiled = compile_query(Query([metric], [parse_by(b) for b in by], [parse_where(w) for w in where], start, end))
        return query.answer(compiled, settings)

    return ask


def total(ask, metric, **kw):
    [(value,)] = ask(metric, **kw)
    return value


def revenue_orders(raw):
    return {o["order_id"] for o in raw["orders"] if o["order_status"] not in CANCELED}


def order_scores(raw):
    latest = {}
    for r in raw["reviews"]:
        key = (ts(r["review_answer_timestamp"]), ts(r["review_creation_date"]), r["review_id"])
        if r["order_id"] not in latest or key > latest[r["order_id"]][0]:
            latest[r["order_id"]] = (key, int(r["review_score"]))
    return {k: v for k, (_, v) in latest.items()}


def expected(raw):
    kept = revenue_orders(raw)
    items = [i for i in raw["items"] if i["order_id"] in kept]
    payments = [p for p in raw["payments"] if p["order_id"] in kept]
    revenue = sum(Decimal(p["payment_value"]) for p in payments)
    gmv = sum(Decimal(i["price"]) for i in items)
    freight = sum(Decimal(i["freight_value"]) for i in items)
    delivered = [o for o in raw["orders"] if o["order_delivered_customer_date"]]
    late = [o for o in delivered if ts(o["order_delivered_customer_date"]).date() > ts(o["order_estimated_delivery_date"]).date()]
    scores = order_scores(raw)
    per_person = Counter(o["person"] for o in raw["orders"])
    return {
        "revenue": revenue,
        "gmv": gmv,
        "freight": freight,
        "orders": len(raw["orders"]),
        "items": len(items),
        "customers": len(per_person),
        "new_customers": len(per_person),
        "aov": float(revenue) / len({p["order_id"] for p in payments}),
        "avg_items_per_order": len(items) / len({i["order_id"] for i in items}),
        "freight_ratio": float(freight) / float(gmv),
        "avg_delivery_days": sum(
            (ts(o["order_delivered_customer_date"]) - ts(o["order_purchase_timestamp"])).total_seconds() / 86400 for o in delivered
        )
        / len(delivered),
        "late_delivery_rate": len(late) / len(delivered),
        "avg_review_score": sum(scores.values()) / len(scores),
        "detractor_share": sum(1 for s in scores.values() if s <= 2) / len(scores),
        "repeat_customer_rate": sum(1 for n in per_person.values() if n > 1) / len(per_person),
        "cancellation_rate": sum(1 for o in raw["orders"] if o["order_status"] == "canceled") / len(raw["orders"]),
        "active_sellers": len({i["seller_id"] for i in items}),
    }


@pytest.mark.parametrize(
    "metric", [m for m in load().metrics if m not in ("cohort_retention", "cohort_return_rate") and not load().metrics[m].requires]
)
def test_metric_total_matches_the_raw_files(raw, ask, metric):
    want = expected(raw)[metric]
    got = total(ask, metric)
    if isinstance(want, Decimal):
        assert got == want
    else:
        assert float(got) == pytest.approx(want, rel=1e-9)


def test_cohort_retention_matches_the_raw_files(raw, ask):
    month = lambda o: o["order_purchase_timestamp"][:7]
    first = {}
    for o in raw["orders"]:
        first[o["person"]] = min(first.get(o["person"], month(o)), month(o))
    active = defaultdict(set)  # months since first -> persons

    def months_between(a, b):
        return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7])

    for o in raw["orders"]:
        active[months_between(first[o["person"]], month(o))].add(o["person"])
    last = max(month(o) for o in raw["orders"])
    rows = dict(ask("cohort_retention", by=["months_since_first"]))
    assert rows[0] == 1.0
    for n in (1, 2, 6):
        eligible = [p for p, f in first.items() if months_between(f, last) >= n]
        want = len(active[n] & set(eligible)) / len(eligible)
        assert rows[n] == pytest.approx(want, rel=1e-9), n


def test_revenue_by_state_matches_the_raw_files(raw, ask):
    kept = revenue_orders(raw)
    want = defaultdict(Decimal)
    for p in raw["payments"]:
        if p["order_id"] in kept:
            want[raw["by_id"][p["order_id"]]["state"]] += Decimal(p["payment_value"])
    assert dict(ask("revenue", by=["customer_state"])) == dict(want)


def test_gmv_by_category_and_revenue_by_payment_type_add_up(ask):
    assert sum(v for _, v in ask("gmv", by=["product_category"])) == total(ask, "gmv")
    assert sum(v for _, v in ask("revenue", by=["payment_type"])) == total(ask, "revenue")


@pytest.mark.parametrize("metric", [m.name for m in load().metrics.values() if m.additive])
def test_additive_metrics_by_month_add_up_to_the_total(ask, metric):
    by_month = ask(metric, by=["purchase_date:month"])
    assert len(by_month) > 12
    assert sum(v for _, v in by_month) == total(ask, metric)
    for grain in ("day", "week", "quarter", "year"):
        assert sum(v for _, v in ask(metric, by=[f"purchase_date:{grain}"])) == total(ask, metric)


def test_filters_and_ranges(raw, ask):
    sp = [o for o in raw["orders"] if o["state"] == "SP"]
    assert total(ask, "orders", where=["customer_state=SP"]) == len(sp)
    both = [o for o in raw["orders"] if o["state"] in ("SP", "RJ")]
    assert total(ask, "orders", where=["customer_state=SP,RJ"]) == len(both)
    in_2017 = [o for o in raw["orders"] if o["order_purchase_timestamp"].startswith("2017")]
    assert total(ask, "orders", start=dt.date(2017, 1, 1), end=dt.date(2017, 12, 31)) == len(in_2017)
    delivered = [o for o in raw["orders"] if o["order_status"] == "delivered"]
    assert total(ask, "orders", where=["order_status=Delivered"]) == len(delivered)


def test_several_metrics_on_several_models_keep_their_columns(engine_warehouse, ask):
    _, settings, _ = engine_warehouse
    compiled = compile_query(Query(["revenue", "orders", "aov", "gmv"], [GroupBy("purchase_date", "year")]))
    rows = query.answer(compiled, settings)
    assert compiled.columns == ["purchase_date", "revenue", "orders", "aov", "gmv"]
    for metric in ("revenue", "orders", "aov", "gmv"):
        alone = dict(ask(metric, by=["purchase_date:year"]))
        column = compiled.columns.index(metric)
        assert {r[0]: r[column] for r in rows} == alone, metric

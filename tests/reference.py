"""An independent answer to any question the dashboards ask: metrics, grouped by dimensions,
filtered by values and a purchase-date range, computed from the raw CSV files with Python's
csv module and plain loops. It shares no code with the warehouse, the semantic compiler,
Superset's datasets or Metabase's questions, so a test that compares one of them with it
checks a definition against its meaning (metrics.yaml, dimensions.yaml), not against itself.

Written from the catalog's descriptions; where they leave a choice open, the choice is the
one docs/metrics.md documents (late = a later calendar day than the estimate, an order's
review is its latest answered one, revenue leaves canceled and unavailable orders out)."""

from __future__ import annotations

import csv
import math
import statistics
import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

NO_REVENUE = ("canceled", "unavailable")
ORDER_METRICS = {
    "orders",
    "customers",
    "new_customers",
    "aov",
    "avg_items_per_order",
    "avg_delivery_days",
    "late_delivery_rate",
    "avg_review_score",
    "detractor_share",
    "repeat_customer_rate",
    "cancellation_rate",
}
ITEM_METRICS = {"gmv", "freight", "items", "freight_ratio", "active_sellers"}
PAYMENT_METRICS = {"revenue"}
ITEM_DIMENSIONS = {"product_category", "seller_state"}
PAYMENT_DIMENSIONS = {"payment_type"}
COHORT_DIMENSIONS = {"cohort_month", "months_since_first"}
# The forecast's metrics: (the measure forecast, which figure of its forecast).
FORECAST_METRICS = {
    "revenue_forecast": ("revenue", "mean"),
    "revenue_forecast_low_95": ("revenue", "low"),
    "revenue_forecast_high_95": ("revenue", "high"),
    "orders_forecast": ("orders", "mean"),
}
FORECAST_DIMENSIONS = {"forecast_month", "forecast_series"}


def _ts(value: str) -> dt.datetime | None:
    return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S") if value else None


def _read(folder: Path, name: str) -> list[dict]:
    with (folder / name).open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class Order:
    id: str
    person: str
    state: str
    city: str
    status: str
    purchased: dt.datetime
    delivered: dt.datetime | None
    estimated: dt.date
    items: int = 0
    paid: Decimal | None = None
    score: int | None = None
    first: bool = False
    repeat: bool = False

    @property
    def counts(self) -> bool:
        return self.status not in NO_REVENUE


@dataclass
class Item:
    order: Order
    price: Decimal
    freight: Decimal
    seller: str
    seller_state: str
    category: str  # as the dashboards show it (Title Case)
    english: str  # as dim_category.category_name_english and the marts hold it


@dataclass
class Payment:
    order: Order
    value: Decimal
    type: str


@dataclass
class Raw:
    orders: list[Order]
    items: list[Item]
    payments: list[Payment]
    cohort_grid: list[tuple[dt.date, str, int, int, int]] = field(default_factory=list)  # (cohort, state, months since, size, active)


def load(folder: Path) -> Raw:
    orders = _orders(folder)
    products = _products(folder)
    items = _items(folder, orders, products)
    payments = _payments(folder, orders)
    _score(folder, orders)
    by_person = _by_person(orders)
    return Raw(list(orders.values()), items, payments, _cohort_grid(by_person))


def _orders(folder: Path) -> dict[str, Order]:
    """The orders by id, with their customer's person, state and city."""
    customers = {r["customer_id"]: r for r in _read(folder, "olist_customers_dataset.csv")}
    orders = {}
    for r in _read(folder, "olist_orders_dataset.csv"):
        c = customers[r["customer_id"]]
        orders[r["order_id"]] = Order(
            r["order_id"],
            c["customer_unique_id"],
            c["customer_state"],
            c["customer_city"],
            r["order_status"],
            _ts(r["order_purchase_timestamp"]),
            _ts(r["order_delivered_customer_date"]),
            _ts(r["order_estimated_delivery_date"]).date(),
        )
    return orders


def _products(folder: Path) -> dict[str, tuple[str, str]]:
    """Product id -> its category as the dashboards show it, and in English as the marts hold it."""
    english = {
        r["product_category_name"]: r["product_category_name_english"] for r in _read(folder, "product_category_name_translation.csv")
    }

    def category(name: str) -> str:  # what the dashboards show: English, Title Case, spaces
        name = name or "unknown"
        words = english.get(name, name).replace("_", " ").split(" ")
        return " ".join(w[:1].upper() + w[1:] for w in words)

    def plain(name: str) -> str:
        name = name or "unknown"
        return english.get(name, name.replace("_", " "))

    return {
        r["product_id"]: (category(r["product_category_name"]), plain(r["product_category_name"]))
        for r in _read(folder, "olist_products_dataset.csv")
    }


def _items(folder: Path, orders: dict[str, Order], products: dict[str, tuple[str, str]]) -> list[Item]:
    """The order items, each counted on its order."""
    sellers = {r["seller_id"]: r["seller_state"] for r in _read(folder, "olist_sellers_dataset.csv")}
    items = []
    for r in _read(folder, "olist_order_items_dataset.csv"):
        order = orders[r["order_id"]]
        order.items += 1
        items.append(
            Item(
                order, Decimal(r["price"]), Decimal(r["freight_value"]), r["seller_id"], sellers[r["seller_id"]], *products[r["product_id"]]
            )
        )
    return items


def _payments(folder: Path, orders: dict[str, Order]) -> list[Payment]:
    """The payments, each added to what its order was paid."""
    payments = []
    for r in _read(folder, "olist_order_payments_dataset.csv"):
        order = orders[r["order_id"]]
        order.paid = (order.paid or Decimal(0)) + Decimal(r["payment_value"])
        payments.append(Payment(order, Decimal(r["payment_value"]), r["payment_type"]))
    return payments


def _score(folder: Path, orders: dict[str, Order]) -> None:
    """Give each reviewed order the score of its latest answered review."""
    latest = {}
    for r in _read(folder, "olist_order_reviews_dataset.csv"):
        key = (_ts(r["review_answer_timestamp"]), _ts(r["review_creation_date"]), r["review_id"])
        if r["order_id"] not in latest or key > latest[r["order_id"]][0]:
            latest[r["order_id"]] = (key, int(r["review_score"]))
    for order_id, (_, score) in latest.items():
        orders[order_id].score = score


def _by_person(orders: dict[str, Order]) -> dict[str, list[Order]]:
    """Each person's orders, their first and repeat flags set."""
    by_person = defaultdict(list)
    for o in orders.values():
        by_person[o.person].append(o)
    for mine in by_person.values():
        min(mine, key=lambda o: (o.purchased, o.id)).first = True
        for o in mine:
            o.repeat = len(mine) > 1
    return by_person


def _months(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def _cohort_grid(by_person: dict[str, list[Order]]) -> list[tuple[dt.date, str, int, int, int]]:
    """(cohort month, state of the first order, months since, cohort size, active) for every
    cohort and state, and every month up to the last month with orders."""
    month = lambda o: o.purchased.date().replace(day=1)
    last = max(month(o) for mine in by_person.values() for o in mine)
    size, active = defaultdict(int), defaultdict(set)
    for person, mine in by_person.items():
        first = next(o for o in mine if o.first)
        cohort, state = month(first), first.state
        size[cohort, state] += 1
        for o in mine:
            active[cohort, state, _months(cohort, month(o))].add(person)
    return [(c, st, n, size[c, st], len(active[c, st, n])) for c, st in size for n in range(_months(c, last) + 1)]


def truncate(day: dt.date, grain: str) -> dt.date:
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    if grain == "year":
        return dt.date(day.year, 1, 1)
    raise ValueError(grain)


def delay_bucket(o: Order) -> str:
    if o.delivered is None:
        return "Not delivered"
    days = (o.delivered.date() - o.estimated).days
    for limit, name in (
        (-15, "15+ days early"),
        (-8, "8-14 days early"),
        (-1, "1-7 days early"),
        (0, "On the day"),
        (3, "1-3 days late"),
        (7, "4-7 days late"),
    ):
        if days <= limit:
            return name
    return "8+ days late"


DELAY_ORDER = [
    "15+ days early",
    "8-14 days early",
    "1-7 days early",
    "On the day",
    "1-3 days late",
    "4-7 days late",
    "8+ days late",
    "Not delivered",
]


def _order_value(o: Order, dimension: str, grain: str | None):
    if dimension == "purchase_date":
        return truncate(o.purchased.date(), grain or "month")
    if dimension == "delivery_delay":
        return delay_bucket(o)
    return {"customer_state": o.state, "customer_city": o.city, "order_status": o.status.capitalize()}[dimension]


def value(row, dimension: str, grain: str | None = None):
    """The value of `dimension` on an order, item or payment row."""
    if dimension == "product_category":
        return row.category
    if dimension == "seller_state":
        return row.seller_state
    if dimension == "payment_type":
        return {"credit_card": "Credit card", "debit_card": "Debit card", "not_defined": "Not defined"}.get(row.type, row.type.capitalize())
    return _order_value(row if isinstance(row, Order) else row.order, dimension, grain)


def _ratio(numerator, denominator):
    return float(numerator) / float(denominator) if denominator else None


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else None


def measure(metric: str, rows: list):
    """One metric over the rows of its grain (orders, items or payments) in one group."""
    if metric == "revenue":
        return sum((p.value for p in rows if p.order.counts), Decimal(0))
    if metric in ITEM_METRICS:
        return _item_measure(metric, rows)
    group = _OrderGroup(rows)
    if metric not in ORDER_MEASURES:
        raise KeyError(f"the reference does not know metric {metric}")
    return ORDER_MEASURES[metric](group)


def _item_measure(metric: str, rows: list[Item]):
    """An item metric over the items of one group (those of orders that count)."""
    kept = [i for i in rows if i.order.counts]
    price, freight = sum((i.price for i in kept), Decimal(0)), sum((i.freight for i in kept), Decimal(0))
    return {
        "gmv": price,
        "freight": freight,
        "items": len(kept),
        "freight_ratio": _ratio(freight, price),
        "active_sellers": len({i.seller for i in kept}),
    }[metric]


class _OrderGroup:
    """The orders of one group, and the ones the order metrics count."""

    def __init__(self, rows: list[Order]):
        self.rows = rows
        self.delivered = [o for o in rows if o.delivered]
        self.reviewed = [o.score for o in rows if o.score is not None]
        self.paying = [o for o in rows if o.counts and o.paid is not None]
        self.with_items = [o for o in rows if o.counts and o.items > 0]
        self.people = {o.person for o in rows}


# The order metrics over one group's orders.
ORDER_MEASURES = {
    "orders": lambda g: len(g.rows),
    "customers": lambda g: len(g.people),
    "new_customers": lambda g: sum(1 for o in g.rows if o.first),
    "aov": lambda g: _ratio(sum((o.paid for o in g.paying), Decimal(0)), len(g.paying)),
    "avg_items_per_order": lambda g: _ratio(sum(o.items for o in g.with_items), len(g.with_items)),
    "avg_delivery_days": lambda g: _mean((o.delivered - o.purchased).total_seconds() / 86400 for o in g.delivered),
    "late_delivery_rate": lambda g: _ratio(sum(1 for o in g.delivered if o.delivered.date() > o.estimated), len(g.delivered)),
    "avg_review_score": lambda g: _mean(g.reviewed),
    "detractor_share": lambda g: _ratio(sum(1 for s in g.reviewed if s <= 2), len(g.reviewed)),
    "repeat_customer_rate": lambda g: _ratio(len({o.person for o in g.rows if o.repeat}), len(g.people)),
    "cancellation_rate": lambda g: _ratio(sum(1 for o in g.rows if o.status == "canceled"), len(g.rows)),
}


def _grain_rows(raw: Raw, metric: str) -> list:
    if metric in PAYMENT_METRICS:
        return raw.payments
    if metric in ITEM_METRICS:
        return raw.items
    if metric in ORDER_METRICS:
        return raw.orders
    raise KeyError(f"the reference does not know metric {metric}")


def _cohorts(raw: Raw, by, where, start, end, from_month: int = 0, complete_until: dt.date | None = None) -> dict[tuple, float | None]:
    """Retention: those active over the cohort's size, summed over the groups' rows; rows of
    months before `from_month` count in no sum (their group's share is then empty); with
    `complete_until`, a row whose counted month (cohort month + months since) comes after it
    is left out (complete periods: that month has not happened, or not wholly)."""
    if set(where) - {"customer_state"}:
        raise ValueError("cohort metrics take no filter but the state and the date range")
    sums = defaultdict(lambda: [0, 0])
    for cohort, state, n, size, active in raw.cohort_grid:
        if (start and cohort < start) or (end and cohort > end) or state not in where.get("customer_state", {state}):
            continue
        if complete_until and _add_months(cohort, n) > complete_until:
            continue
        key = tuple(
            truncate(cohort, grain or "month") if d == "cohort_month" else (state if d == "customer_state" else n) for d, grain in by
        )
        sums[key][0] += active if n >= from_month else 0
        sums[key][1] += size if n >= from_month else 0
    return {k: _ratio(a, s) for k, (a, s) in sums.items()}


def answer(
    raw: Raw, metrics, by=(), where=None, start: dt.date | None = None, end: dt.date | None = None, complete_until: dt.date | None = None
) -> dict[tuple, tuple]:
    """{group key: metric values}: `by` is [(dimension, grain or None)], `where` {dimension:
    allowed values}, `start`/`end` an inclusive purchase-date range (cohort month for cohorts);
    `complete_until` the reporting window's last day, for complete periods (cohorts: the month
    a row counts must not come after it)."""
    where = where or {}
    columns = []
    for metric in metrics:
        if metric in ("cohort_retention", "cohort_return_rate"):
            columns.append(
                _cohorts(raw, by, where, start, end, from_month=1 if metric == "cohort_return_rate" else 0, complete_until=complete_until)
            )
            continue
        if metric in FORECAST_METRICS:
            columns.append(_forecasts(raw, metric, by, where))
            continue
        groups = defaultdict(list)
        for row in _grain_rows(raw, metric):
            day = (row if isinstance(row, Order) else row.order).purchased.date()
            if (start and day < start) or (end and day > end):
                continue
            if all(value(row, d) in allowed for d, allowed in where.items()):
                groups[tuple(value(row, d, grain) for d, grain in by)].append(row)
        if not by:
            groups.setdefault((), [])
        columns.append({key: measure(metric, rows) for key, rows in groups.items()})
    keys = dict.fromkeys(k for column in columns for k in column)
    return {k: tuple(column.get(k) for column in columns) for k in keys}


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def assert_matches(rows, want: dict[tuple, tuple], dims: int, limit: int | None = None, what: str = "") -> None:
    """Rows of a tool's answer (group columns first, then metrics) equal the reference's
    `want`; with a limit, the rows are a top-`limit` of `want` by the first metric (ties may
    pick either row, so the values are compared, not the keys)."""
    got = {tuple(r[:dims]): tuple(r[dims:]) for r in rows}
    assert len(got) == len(rows), f"{what}: the same group twice"
    expected_count = min(limit, len(want)) if limit else len(want)
    assert len(got) == expected_count, f"{what}: {len(got)} groups, the raw files give {expected_count}"
    for key, values in got.items():
        assert key in want, f"{what}: group {key} is not in the raw files' answer"
        assert len(values) == len(want[key]) and all(_same(a, b) for a, b in zip(values, want[key])), (
            f"{what}: {key} -> {values}, the raw files give {want[key]}"
        )
    if limit and len(want) > limit:
        first = sorted((v[0] for v in want.values() if v[0] is not None), reverse=True)[:limit]
        top = sorted((v[0] for v in got.values()), reverse=True)
        assert all(_same(a, b) for a, b in zip(top, first)), f"{what}: not the top {limit}"


# The value each dashboard filter is tried with: a state, status, category and a date range
# that keep a fair share of the rows, so that a filter that does nothing, or filters on the
# wrong column, changes the answer.
FILTER_VALUES = {
    "customer_state": "SP",
    "seller_state": "SP",
    "order_status": "Delivered",
    "product_category": "Bed Bath Table",
    "purchase_date": (dt.date(2017, 3, 1), dt.date(2017, 8, 31)),
}


def reporting_window(raw: Raw) -> tuple[dt.date, dt.date] | None:
    """The complete months, as docs/metrics.md states the rule: a month is settled when the data
    run past its last day and it has at least a tenth of the median month's orders; the
    window runs from the first settled month's first day to the last one's last day."""
    months = Counter(o.purchased.date().replace(day=1) for o in raw.orders)
    last = max(o.purchased.date() for o in raw.orders)
    typical = statistics.median(months.values())
    settled = sorted(m for m, n in months.items() if n >= 0.1 * typical and _next_month(m) <= last)
    if not settled:
        return None
    return settled[0], _next_month(settled[-1]) - dt.timedelta(days=1)


def _add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def for_chart(raw: Raw, chart, filters=()) -> dict[tuple, tuple]:
    """The reference answer to a dashboard chart (olist_bi.dashboards.Chart) with some of its
    dashboard's filters set to their FILTER_VALUES; a chart of complete periods reads the
    reporting window only."""
    start, end = FILTER_VALUES["purchase_date"] if "purchase_date" in filters else (None, None)
    complete_until = None
    if chart.complete_periods:
        first, last = reporting_window(raw)
        start, end, complete_until = max(start or first, first), min(end or last, last), last
    where = {f: {FILTER_VALUES[f]} for f in filters if f != "purchase_date"}
    return answer(raw, chart.metrics, [(g.dimension, g.grain) for g in chart.by], where, start, end, complete_until)


_GRIDS: dict[int, list] = {}


def forecast_grid(raw: Raw) -> list[tuple[str, dt.date, str, object, object, object]]:
    """(series, month, measure, forecast, 95% low, 95% high) as docs/forecast.md states the
    method: the complete months' revenue and orders of Brazil ('All states') and of its five
    largest states by revenue over them (a month without orders counts 0), simple exponential
    smoothing (statsmodels' ETSModel: additive errors, no trend, no season), three months ahead
    with the 95% interval, its low end never below 0; the months that happened carry no
    forecast. Kept as the mart keeps them: money to the cent, orders to a tenth."""
    if id(raw) in _GRIDS:
        return _GRIDS[id(raw)]
    import warnings

    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    first, last = reporting_window(raw)
    total = answer(raw, ["revenue", "orders"], [("purchase_date", "month")], start=first, end=last)
    by_state = answer(raw, ["revenue", "orders"], [("purchase_date", "month"), ("customer_state", None)], start=first, end=last)
    months = sorted(k[0] for k in total)
    revenue = Counter()
    for (_, state), (money, _) in by_state.items():
        revenue[state] += money
    states = [state for state, _ in revenue.most_common(5)]
    grid = []
    for series in ["All states", *states]:
        for index, name in enumerate(("revenue", "orders")):
            values = [
                float(total[(m,)][index]) if series == "All states" else float(by_state.get((m, series), (0, 0))[index]) for m in months
            ]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted = ETSModel(pd.Series(values, index=pd.DatetimeIndex(months, freq="MS")), error="add").fit(disp=False)
            frame = fitted.get_prediction(start=len(values), end=len(values) + 2).summary_frame(alpha=0.05)
            keep = (lambda x: Decimal(f"{x:.2f}")) if name == "revenue" else (lambda x: round(x, 1))
            grid += [(series, m, name, None, None, None) for m in months]
            grid += [
                (series, when.date(), name, keep(row["mean"]), keep(max(row["pi_lower"], 0.0)), keep(row["pi_upper"]))
                for when, row in frame.iterrows()
            ]
    _GRIDS[id(raw)] = grid
    return grid


def _forecasts(raw: Raw, metric: str, by, where) -> dict[tuple, object]:
    """A forecast metric: the sum of its figure over the grid's rows in each group (none
    where the group holds only months that happened)."""
    name, which = FORECAST_METRICS[metric]
    sums: dict[tuple, object] = {}
    for series, month, measured, mean, low, high in forecast_grid(raw):
        if measured != name or series not in where.get("forecast_series", {series}):
            continue
        key = tuple(truncate(month, grain or "month") if d == "forecast_month" else series for d, grain in by)
        figure = {"mean": mean, "low": low, "high": high}[which]
        sums[key] = sums.get(key) if figure is None else (sums.get(key) or 0) + figure
    return sums

"""Orders and what hangs off them: customers, items, payments and reviews.

A `Plan` fixes, for every order of a drop, what must hold exactly (its status, its customer,
which quirks it carries); chunks of orders are then generated independently from it, each
with its own random stream seeded by its first order, so memory stays flat at any scale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from olist_bi.generator import ids
from olist_bi.generator.world import REAL, World, allocate, count, pick
from olist_bi.generator.writer import integers, strings, timestamps

DAY = 86_400
HOUR = 3_600

STATUSES = ["delivered", "shipped", "canceled", "unavailable", "invoiced", "processing", "created", "approved"]
STATUS_COUNTS = np.array([96_478, 1_107, 625, 609, 314, 301, 5, 2], dtype=float)
DELIVERED, SHIPPED, CANCELED, UNAVAILABLE, INVOICED, PROCESSING, CREATED, APPROVED = range(8)

PAYMENT_TYPES = ["credit_card", "boleto", "voucher", "debit_card", "not_defined"]
CREDIT_CARD, BOLETO, VOUCHER, DEBIT_CARD, NOT_DEFINED = range(5)
# Share of orders by their first payment type; vouchers also come as extra rows (below).
PRIMARY_PAYMENT_SHARE = np.array([0.7723, 0.1990, 0.0135, 0.0154])
SPLIT_SHARE = 0.038  # credit-card or voucher orders paying part with one or more vouchers
INSTALLMENTS = np.arange(1, 25)
INSTALLMENT_WEIGHTS = np.array(
    [50.5, 12.2, 10.4, 7.0, 5.2, 3.9, 1.6, 4.3, 0.6, 5.4, 0.03, 0.13, 0.02, 0.02, 0.09, 0.01, 0.01, 0.03, 0.0, 0.02, 0.0, 0.0, 0.0, 0.02]
)
ITEMS_PER_ORDER = np.arange(1, 8)
ITEMS_WEIGHTS = np.array([90.05, 7.57, 1.18, 0.74, 0.2, 0.2, 0.06])

# Review score distributions (1..5) for orders delivered on time, late, or never delivered:
# late orders average about 2.6 stars against 4.3 on time, as in the real files.
SCORES_ON_TIME = np.array([0.068, 0.027, 0.078, 0.197, 0.63])
SCORES_LATE = np.array([0.46, 0.09, 0.12, 0.12, 0.21])
SCORES_UNDELIVERED = np.array([0.60, 0.08, 0.10, 0.07, 0.15])

# Orders per month in the real files (2016-09 .. 2018-10).
MONTHLY_ORDERS = {
    (2016, 9): 4, (2016, 10): 324, (2016, 11): 0, (2016, 12): 1,
    (2017, 1): 800, (2017, 2): 1_780, (2017, 3): 2_682, (2017, 4): 2_404, (2017, 5): 3_700, (2017, 6): 3_245,
    (2017, 7): 4_026, (2017, 8): 4_331, (2017, 9): 4_285, (2017, 10): 4_631, (2017, 11): 7_544, (2017, 12): 5_673,
    (2018, 1): 7_269, (2018, 2): 6_728, (2018, 3): 7_211, (2018, 4): 6_939, (2018, 5): 6_873, (2018, 6): 6_167,
    (2018, 7): 6_292, (2018, 8): 6_512, (2018, 9): 16, (2018, 10): 4,
}  # fmt: skip
FIRST_DAY, LAST_DAY = dt.date(2016, 9, 4), dt.date(2018, 10, 17)
BLACK_FRIDAY = {dt.date(2017, 11, 24): 8.0, dt.date(2017, 11, 25): 2.5, dt.date(2017, 11, 26): 1.8, dt.date(2017, 11, 27): 1.6}
HOUR_WEIGHTS = np.array(
    [2.4, 1.1, 0.5, 0.3, 0.2, 0.2, 0.5, 1.2, 3.0, 4.8, 6.2, 6.6, 6.0, 6.5, 6.6, 6.4, 6.3, 6.0, 5.8, 5.9, 6.2, 6.3, 5.9, 4.6]
)
INCREMENT_ORDERS_PER_MONTH = 6_500  # at scale 1
INCREMENT_RETURNING_SHARE = 0.05


def epoch(day: dt.date) -> int:
    return int((day - dt.date(1970, 1, 1)).days) * DAY


@dataclass
class Calendar:
    """Days orders can fall on, with a weight each."""

    days: np.ndarray  # epoch seconds at midnight
    weight: np.ndarray

    @classmethod
    def base(cls) -> "Calendar":
        days, weight = [], []
        day = FIRST_DAY
        while day <= LAST_DAY:
            days.append(day)
            day += dt.timedelta(days=1)
        for (year, month), orders in MONTHLY_ORDERS.items():
            members = [d for d in days if (d.year, d.month) == (year, month)]
            bumps = np.array([BLACK_FRIDAY.get(d, 1.0) for d in members])
            weight.extend(orders * bumps / bumps.sum())
        return cls(np.array([epoch(d) for d in days]), np.array(weight))

    @classmethod
    def increment(cls, start: dt.date, months: int) -> "Calendar":
        end_month = start.month - 1 + months
        end = dt.date(start.year + end_month // 12, end_month % 12 + 1, 1)
        n = (end - start).days
        return cls(np.array([epoch(start) + i * DAY for i in range(n)]), np.ones(n))


@dataclass
class Plan:
    """What is fixed per order before any chunk is generated."""

    n: int
    status: np.ndarray
    person: np.ndarray
    no_items: np.ndarray
    no_payment: np.ndarray
    not_defined: np.ndarray
    no_review: np.ndarray
    multi_review: np.ndarray
    review_source: np.ndarray  # whose review id an order's first review carries
    no_approval: np.ndarray
    no_carrier: np.ndarray
    no_delivery: np.ndarray
    carrier_first: np.ndarray  # handed to the carrier before approval
    calendar: Calendar
    increment: int  # 0 for the base drop
    new_person_offset: int  # person numbers from here on are new in this increment


def _mask(n: int, chosen: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask


def build_plan(world: World, increment: int = 0, calendar: Calendar | None = None, months: int = 0) -> Plan:
    """The plan of the base drop, or of an increment (`increment` > 0) over `calendar`."""
    rng = np.random.default_rng([world.seed, 21, increment])
    if increment == 0:
        n = count(REAL["orders"], world.scale, minimum=20)
        person = _base_persons(world, n, rng)
        calendar = Calendar.base()
        offset = world.persons
    else:
        n = max(10, int(round(INCREMENT_ORDERS_PER_MONTH * months * world.scale)))
        returning = rng.random(n) < INCREMENT_RETURNING_SHARE
        person = np.where(returning, rng.integers(0, world.persons, n), world.persons + np.arange(n))
        offset = world.persons
    scale = n / REAL["orders"]

    status = np.repeat(np.arange(len(STATUSES)), allocate(n, STATUS_COUNTS, minimum=1))
    status = status[rng.permutation(n)]
    by_status = {s: np.flatnonzero(status == s) for s in range(len(STATUSES))}

    # Orders without items: the unavailable and created ones first, then canceled ones.
    priority = np.select([np.isin(status, [UNAVAILABLE, CREATED]), status == CANCELED], [0, 1], 2)
    ranked = np.lexsort((rng.random(n), priority))
    no_items = _mask(n, ranked[: count(775, scale)])

    shuffled = rng.permutation(n)
    with_items = shuffled[~no_items[shuffled]]
    no_payment = _mask(n, with_items[: count(1, scale)])
    canceled = by_status[CANCELED][~no_payment[by_status[CANCELED]]]
    not_defined = _mask(n, rng.permutation(canceled)[: count(3, scale)])

    shuffled = rng.permutation(n)
    no_review = _mask(n, shuffled[: count(768, scale)])
    reviewed = shuffled[len(np.flatnonzero(no_review)) :]
    multi = count(547, scale)
    multi_review = _mask(n, reviewed[:multi])
    reused = min(count(789, scale), (len(reviewed) - multi) // 2)
    sources = reviewed[multi : multi + reused]
    targets = reviewed[multi + reused : multi + 2 * reused]
    review_source = np.arange(n)
    review_source[targets] = sources

    delivered = rng.permutation(by_status[DELIVERED])
    cuts = np.cumsum([count(14, scale), count(2, scale), count(8, scale), count(1_359, scale)])
    return Plan(
        n=n,
        status=status,
        person=person,
        no_items=no_items,
        no_payment=no_payment,
        not_defined=not_defined,
        no_review=no_review,
        multi_review=multi_review,
        review_source=review_source,
        no_approval=_mask(n, delivered[: cuts[0]]),
        no_carrier=_mask(n, delivered[cuts[0] : cuts[1]]),
        no_delivery=_mask(n, delivered[cuts[1] : cuts[2]]),
        carrier_first=_mask(n, delivered[cuts[2] : cuts[3]]),
        calendar=calendar,
        increment=increment,
        new_person_offset=offset,
    )


def _base_persons(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    """Each person orders once; repeaters order again (a few several times)."""
    extra = n - world.persons
    repeaters = rng.choice(world.persons, size=world.repeaters, replace=False)
    again = np.concatenate([repeaters, rng.choice(repeaters, size=max(0, extra - len(repeaters)))])[:extra]
    person = np.concatenate([np.arange(world.persons), again])
    return person[rng.permutation(n)]


def generate_chunk(world: World, plan: Plan, start: int, stop: int) -> dict[str, pa.Table]:
    """Orders [start, stop) of the plan with their customers, items, payments and reviews."""
    rng = np.random.default_rng([world.seed, 22, plan.increment, start])
    index = np.arange(start, stop)
    n = stop - start
    status = plan.status[start:stop]
    person = plan.person[start:stop]
    zip_index = _person_zips(world, plan, person)
    state = world.zips.state[zip_index]
    transit = world.ref.transit[state]

    day = plan.calendar.days[pick(rng, plan.calendar.weight, n)]
    if start == 0:  # the first and last days of the range always carry an order
        day[0], day[-1] = plan.calendar.days[0], plan.calendar.days[-1]
    purchase = day + pick(rng, HOUR_WEIGHTS, n) * HOUR + rng.integers(0, HOUR, n)
    quick = rng.random(n) < 0.55
    approval_delay = np.where(quick, 60 + rng.exponential(1_200, n), rng.uniform(6 * HOUR, 60 * HOUR, n))
    approved = purchase + approval_delay.astype(np.int64)
    carrier = approved + (0.1 * DAY + rng.gamma(1.6, 1.7 * DAY, n)).astype(np.int64)
    first = plan.carrier_first[start:stop]
    approved[first] = purchase[first] + rng.integers(DAY, 5 * DAY, first.sum())
    carrier[first] = approved[first] - ((approved[first] - purchase[first]) * rng.uniform(0.1, 0.9, first.sum())).astype(np.int64)
    delivered = carrier + (rng.gamma(2.0, 4.5 * DAY, n) * transit).astype(np.int64)
    estimated_days = np.clip(np.round(rng.normal(26.0, 6.0, n) * transit**0.6), 3, 140).astype(np.int64)
    estimated = day + estimated_days * DAY

    u = rng.random(n)
    no_approval = (status == CREATED) | ((status == CANCELED) & (u < 0.2256)) | plan.no_approval[start:stop]
    shipped_at_all = np.isin(status, [DELIVERED, SHIPPED]) | ((status == CANCELED) & (u > 0.88))
    no_carrier = ~shipped_at_all | plan.no_carrier[start:stop]
    has_delivery = ((status == DELIVERED) & ~plan.no_delivery[start:stop]) | ((status == CANCELED) & (u > 0.99))
    is_late = has_delivery & (delivered > estimated)

    orders = pa.table(
        {
            **ids.id_columns("order_id", ids.salt(world.seed, "order", plan.increment), index),
            **ids.id_columns("customer_id", ids.salt(world.seed, "customer", plan.increment), index),
            "order_status": strings(status, STATUSES),
            "order_purchase_timestamp": timestamps(purchase),
            "order_approved_at": timestamps(approved, no_approval),
            "order_delivered_carrier_date": timestamps(carrier, no_carrier),
            "order_delivered_customer_date": timestamps(delivered, ~has_delivery),
            "order_estimated_delivery_date": timestamps(estimated),
        }
    )
    customers = _customers(world, plan, index, person, zip_index)
    items, order_totals = _items(world, plan, rng, index, approved, state)
    payments = _payments(world, plan, rng, index, order_totals)
    reviews = _reviews(world, plan, rng, index, status, has_delivery, is_late, delivered, estimated)
    return {"orders": orders, "customers": customers, "order_items": items, "order_payments": payments, "order_reviews": reviews}


def _person_zips(world: World, plan: Plan, person: np.ndarray) -> np.ndarray:
    zips = np.empty(len(person), dtype=np.int64)
    known = person < plan.new_person_offset
    zips[known] = world.person_zip[person[known]]
    if (~known).any():
        # New people of an increment: their zip is a function of their number alone.
        new = person[~known]
        rng = np.random.default_rng([world.seed, 23, plan.increment, int(new[0])])
        unknown_share = REAL["unknown_customer_zips"] / REAL["orders"]
        zips[~known] = world.zips.draw(rng, world.ref.customer_share, len(new), unknown_share)
    return zips


def _customers(world: World, plan: Plan, index, person, zip_index) -> pa.Table:
    base = person < plan.new_person_offset
    person_ids_base = ids.id_columns("customer_unique_id", ids.salt(world.seed, "person"), person)
    person_ids_new = ids.id_columns("customer_unique_id", ids.salt(world.seed, "person", plan.increment), person)
    unique_ids = {k: np.where(base, person_ids_base[k], person_ids_new[k]) for k in person_ids_base}
    zips = world.zips
    return pa.table(
        {
            **ids.id_columns("customer_id", ids.salt(world.seed, "customer", plan.increment), index),
            **unique_ids,
            "customer_zip_code_prefix": zips.prefix[zip_index],
            "customer_city": strings(zips.city[zip_index], world.ref.city_plain),
            "customer_state": strings(zips.state[zip_index], world.ref.states),
        }
    )


def _items(world: World, plan: Plan, rng, index, approved, state) -> tuple[pa.Table, np.ndarray]:
    n = len(index)
    local = index - index[0]
    n_items = ITEMS_PER_ORDER[pick(rng, ITEMS_WEIGHTS, n)]
    n_items[plan.no_items[index]] = 0
    row_order = np.repeat(local, n_items)
    group_start = np.repeat(np.cumsum(n_items) - n_items, n_items)
    item_no = np.arange(len(row_order)) - group_start + 1
    products = world.products
    product = pick(rng, products.popularity, len(row_order))
    same_as_first = (item_no > 1) & (rng.random(len(row_order)) < 0.6)
    product[same_as_first] = product[group_start[same_as_first]]
    price = products.price_cents[product]
    freight = (products.freight_cents[product] * (0.75 + 0.25 * world.ref.transit[state[row_order]])).astype(np.int64)
    freight[rng.random(len(row_order)) < 0.0034] = 0
    freight = np.minimum(freight, 40_900)
    shipping_limit = approved[row_order] + 6 * DAY + rng.integers(0, DAY, len(row_order))
    totals = np.bincount(row_order, weights=price + freight, minlength=n).astype(np.int64)
    table = pa.table(
        {
            **ids.id_columns("order_id", ids.salt(world.seed, "order", plan.increment), index[row_order]),
            "order_item_id": integers(item_no),
            **ids.id_columns("product_id", ids.salt(world.seed, "product"), product),
            **ids.id_columns("seller_id", ids.salt(world.seed, "seller"), products.seller[product]),
            "shipping_limit_date": timestamps(shipping_limit),
            "price": integers(price),
            "freight_value": integers(freight),
        }
    )
    return table, totals


def _payments(world: World, plan: Plan, rng, index, totals) -> pa.Table:
    n = len(index)
    no_items = plan.no_items[index]
    totals = totals.copy()
    totals[no_items] = (rng.lognormal(np.log(110), 0.8, no_items.sum()) * 100).astype(np.int64)
    primary = pick(rng, PRIMARY_PAYMENT_SHARE, n)
    not_defined = plan.not_defined[index]
    primary[not_defined] = NOT_DEFINED
    installments = np.where(primary == CREDIT_CARD, INSTALLMENTS[pick(rng, INSTALLMENT_WEIGHTS, n)], 1)
    # Card instalments carry interest: why payments exceed price plus freight.
    paid = (totals * (1 + 0.0015 * (installments - 1))).round().astype(np.int64)
    paid[not_defined] = 0
    split = np.isin(primary, [CREDIT_CARD, VOUCHER]) & (rng.random(n) < SPLIT_SHARE) & ~not_defined
    extra = np.where(split, rng.geometric(0.67, n), 0)
    rows = 1 + extra
    rows[plan.no_payment[index]] = 0

    row_order = np.repeat(np.arange(n), rows)
    group_start = np.repeat(np.cumsum(rows) - rows, rows)
    sequential = np.arange(len(row_order)) - group_start + 1
    is_first = sequential == 1
    voucher_total = (paid * rng.uniform(0.1, 0.6, n)).astype(np.int64)
    voucher_each = np.where(extra > 0, voucher_total // np.maximum(extra, 1), 0)
    value = np.where(is_first, paid[row_order] - voucher_each[row_order] * extra[row_order], voucher_each[row_order])
    kind = np.where(is_first, primary[row_order], VOUCHER)
    return pa.table(
        {
            **ids.id_columns("order_id", ids.salt(world.seed, "order", plan.increment), index[row_order]),
            "payment_sequential": integers(sequential),
            "payment_type": strings(kind, PAYMENT_TYPES),
            "payment_installments": integers(np.where(is_first, installments[row_order], 1)),
            "payment_value": integers(value),
        }
    )


def _reviews(world: World, plan: Plan, rng, index, status, has_delivery, is_late, delivered, estimated) -> pa.Table:
    n = len(index)
    rows = np.where(plan.no_review[index], 0, 1) + plan.multi_review[index]
    row_order = np.repeat(np.arange(n), rows)
    group_start = np.repeat(np.cumsum(rows) - rows, rows)
    is_first = np.arange(len(row_order)) == group_start
    m = len(row_order)

    on_time = has_delivery[row_order] & ~is_late[row_order]
    late = is_late[row_order]
    score = (
        np.where(
            on_time,
            pick(rng, SCORES_ON_TIME, m),
            np.where(late, pick(rng, SCORES_LATE, m), pick(rng, SCORES_UNDELIVERED, m)),
        )
        + 1
    )
    sent = np.where(has_delivery[row_order], delivered[row_order], estimated[row_order])
    created = (sent // DAY + rng.integers(0, 3, m)) * DAY
    answered = created + (rng.exponential(2.5 * DAY, m) + rng.integers(HOUR, 20 * HOUR, m)).astype(np.int64)

    ref = world.ref
    good = score >= 4
    bad = (score <= 2) | ((score == 3) & (rng.random(m) < 0.5))
    n_good_t, n_bad_t = len(ref.titles["good"]), len(ref.titles["bad"])
    n_good_m, n_bad_m = len(ref.messages["good"]), len(ref.messages["bad"])
    title = np.where(bad, n_good_t + rng.integers(0, n_bad_t, m), rng.integers(0, n_good_t, m))
    message = np.where(bad, n_good_m + rng.integers(0, n_bad_m, m), rng.integers(0, n_good_m, m))
    no_title = rng.random(m) >= np.where(bad, 0.2, 0.09)
    no_message = rng.random(m) >= np.where(bad, 0.75, np.where(good, 0.33, 0.5))

    order_index = index[row_order]
    first_ids = ids.id_columns("review_id", ids.salt(world.seed, "review", plan.increment), plan.review_source[order_index])
    extra_ids = ids.id_columns("review_id", ids.salt(world.seed, "review_extra", plan.increment), order_index)
    return pa.table(
        {
            **{k: np.where(is_first, first_ids[k], extra_ids[k]) for k in first_ids},
            **ids.id_columns("order_id", ids.salt(world.seed, "order", plan.increment), order_index),
            "review_score": integers(score),
            "review_comment_title": strings(title, ref.titles["good"] + ref.titles["bad"], no_title),
            "review_comment_message": strings(message, ref.messages["good"] + ref.messages["bad"], no_message),
            "review_creation_date": timestamps(created),
            "review_answer_timestamp": timestamps(answered),
        }
    )

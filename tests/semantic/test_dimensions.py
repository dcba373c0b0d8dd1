"""Every dimension of the catalog, with every grain, groups a metric as the raw files do
(tests/reference.py computes the expected groups from the CSVs), on DuckDB and on ClickHouse."""

import pytest

from olist_bi.semantic import query
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import GroupBy, Query, compile_query
from tests.reference import FORECAST_METRICS, answer, assert_matches

# The metric each dimension is checked with: one that the dimension splits in a way a wrong
# column would change (an additive one where the model allows, so groups must also add up).
METRIC = {
    "purchase_date": "orders",
    "customer_state": "revenue",
    "customer_city": "orders",
    "order_status": "orders",
    "delivery_delay": "avg_review_score",
    "seller_state": "gmv",
    "product_category": "items",
    "payment_type": "revenue",
    "cohort_month": "cohort_retention",
    "months_since_first": "cohort_retention",
    "forecast_month": "revenue_forecast",
    "forecast_series": "orders_forecast",
}


CASES = [
    pytest.param(name, grain, id=f"{name}:{grain}" if grain else name)
    for name, d in load().dimensions.items()
    for grain in d.grains or (None,)
]


@pytest.mark.parametrize("dimension, grain", CASES)
def test_every_dimension_groups_like_the_raw_files(engine_warehouse, reference, dimension, grain):
    assert dimension in METRIC, f"dimension {dimension} has no case here: add the metric it is checked with"
    metric = METRIC[dimension]
    by = [(dimension, grain)]
    if metric == "cohort_retention" and dimension != "months_since_first":
        by.append(("months_since_first", None))  # the metric requires it
    if metric in FORECAST_METRICS and dimension != "forecast_series":
        by.append(("forecast_series", None))  # the metric requires it
    _, settings, _ = engine_warehouse
    rows = query.answer(compile_query(Query([metric], [GroupBy(d, g) for d, g in by])), settings)
    want = answer(reference, [metric], by)
    assert len(want) > 1, "a one-group answer checks nothing"
    assert_matches(rows, want, len(by), what=f"{metric} by {dimension}:{grain}")


def test_buckets_come_in_their_own_order_not_alphabetically(engine_warehouse):
    """delivery_delay has an `order`: its buckets are listed from the earliest to not delivered,
    with readable names (no "1." prefixes), alone and beside another dimension."""
    from tests.reference import DELAY_ORDER

    _, settings, _ = engine_warehouse
    rows = query.answer(compile_query(Query(["orders"], [GroupBy("delivery_delay")])), settings)
    assert [r[0] for r in rows] == DELAY_ORDER
    rows = query.answer(compile_query(Query(["orders", "revenue"], [GroupBy("order_status"), GroupBy("delivery_delay")])), settings)
    for status in {r[0] for r in rows}:
        listed = [r[1] for r in rows if r[0] == status]
        assert listed == sorted(listed, key=DELAY_ORDER.index), status

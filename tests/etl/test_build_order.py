"""The build order comes from the models' own references (transform.in_build_order), not from
the order models.yaml happens to list them in."""

from __future__ import annotations

import pytest

from olist_bi.etl import pipeline, transform
from tests.conftest import make_settings


def test_every_model_comes_after_the_models_it_reads():
    order = [m.name for m in transform.models()]
    names = set(order)
    for model in transform.models():
        for read in transform.references(model, names):
            assert order.index(read) < order.index(model.name), (model.name, read)
    # what the references hold, checked against the SQL by hand
    by_name = {m.name: m for m in transform.models()}
    assert transform.references(by_name["fact_deliveries"], names) >= {"dim_customer", "fact_reviews", "int_order_attributes"}
    assert transform.references(by_name["mart_revenue_forecast"], names) >= {"fact_deliveries"}  # through the semantic layer's queries
    assert "orders" not in transform.references(by_name["dim_customer"], names | {"orders"})  # a CTE of its own, not a model


def test_models_listed_backwards_build_the_same_warehouse(tmp_path, small_drop, small_warehouse, ops_url, monkeypatch):
    forwards = small_warehouse[1].model_rows  # the small drop's first run on a fresh home, models in their declared order
    backwards = tuple(reversed(transform.declared()))
    assert [m.name for m in transform.in_build_order(backwards)] != [m.name for m in transform.models()]  # another valid order
    transform.models.cache_clear()
    monkeypatch.setattr(transform, "declared", lambda: backwards)
    try:
        result = pipeline.run(make_settings(tmp_path / "backwards", ops_url), small_drop)
    finally:
        transform.models.cache_clear()
    assert result.status == "succeeded" and result.model_rows == forwards


def test_models_that_read_each_other_are_named():
    class Loop(transform.Model):
        @property
        def sql(self) -> str:
            return {"a_loop": "select * from b_loop", "b_loop": "select * from a_loop"}[self.name]

    a = Loop("a_loop", "dims", ("x",), None)
    b = Loop("b_loop", "dims", ("x",), None)
    with pytest.raises(transform.ContractViolation, match="cycle.*'a_loop': \\['b_loop'\\].*'b_loop': \\['a_loop'\\]"):
        transform.in_build_order((a, b))

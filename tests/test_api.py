"""olist_bi.api, the analysts' Python API: the same answers as the CLI and as the raw files,
and one clear error, naming the choices, for anything it cannot answer."""

import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

from olist_bi import api
from olist_bi.cli import main
from tests.reference import answer


@pytest.fixture(scope="module")
def served(warehouse):
    settings, _ = warehouse
    return settings.warehouse_path


def test_the_catalog_is_described(served):
    metrics = api.metrics()
    assert {"revenue", "orders", "aov"} <= set(metrics["name"]) and {"label", "format", "model", "description"} <= set(metrics.columns)
    dims = api.dimensions().set_index("name")
    assert "month" in dims.loc["purchase_date", "grains"] and "fact_payments" in dims.loc["payment_type", "models"]


def test_answers_equal_the_raw_files(served, reference):
    frame = api.query(["revenue", "orders"], by="purchase_date:month", where={"customer_state": ["SP", "RJ"]}, warehouse_path=served)
    want = answer(reference, ["revenue", "orders"], [("purchase_date", "month")], {"customer_state": {"SP", "RJ"}})
    got = {row.purchase_date.date(): (row.revenue, row.orders) for row in frame.itertuples()}
    assert set(got) == {k[0] for k in want}
    for (month,), (revenue, orders) in want.items():
        assert got[month][0] == pytest.approx(float(revenue), abs=0.005) and got[month][1] == orders, month


def test_answers_equal_the_clis(served, monkeypatch):
    monkeypatch.setenv("OLIST_WAREHOUSE_PATH", str(served))
    cli = CliRunner().invoke(main, ["semantic", "query", "--metric", "aov", "--by", "order_status", "--format", "json"])
    assert cli.exit_code == 0, cli.output
    theirs = {
        row["order_status"]: float("nan") if row["aov"] is None else row["aov"] for row in json.loads(cli.output)
    }  # no revenue: empty
    mine = api.query("aov", by="order_status")  # OLIST_WAREHOUSE_PATH, as the CLI reads it
    assert dict(zip(mine["order_status"], mine["aov"])) == pytest.approx(theirs, abs=0.005, nan_ok=True)


def test_order_by_limit_and_arrow(served, reference):
    top = api.query("revenue", by="customer_state", order_by="-revenue", limit=3, warehouse_path=served)
    want = sorted(answer(reference, ["revenue"], [("customer_state", None)]).items(), key=lambda kv: kv[1][0], reverse=True)[:3]
    assert list(top["customer_state"]) == [k[0] for k, _ in want]
    table = api.query("revenue", by="customer_state", arrow=True, warehouse_path=served)
    assert isinstance(table, pa.Table) and pa.types.is_decimal(table.schema.field("revenue").type)  # exact money
    complete = api.query("orders", by="purchase_date:month", complete_periods=True, warehouse_path=served)
    every = api.query("orders", by="purchase_date:month", warehouse_path=served)
    assert 0 < len(complete) < len(every)


@pytest.mark.parametrize(
    "ask, says",
    [
        ({"metrics": "revenu"}, "known metrics: active_sellers"),
        ({"metrics": "revenue", "by": "customer_stat"}, "known dimensions:"),
        ({"metrics": "revenue", "by": "purchase_date:decade"}, "its grains: month"),
        ({"metrics": "revenue", "where": {"customer_state": "XX"}}, "its values: AC"),
        ({"metrics": "revenue", "order_by": "profit"}, "the answer's columns are revenue"),
        ({"metrics": "revenue", "start": "2018-13-01"}, "YYYY-MM-DD"),
    ],
)
def test_a_wrong_name_or_value_names_the_choices(served, ask, says):
    with pytest.raises(api.QueryError) as error:
        api.query(**ask, warehouse_path=served)
    assert says in str(error.value)


def test_the_forecast_by_its_series(served, reference):
    from tests.reference import forecast_grid

    frame = api.query(
        ["revenue_forecast", "revenue_forecast_high_95"],
        by="forecast_month",
        where={"forecast_series": "All states"},
        warehouse_path=served,
    ).dropna()
    want = {
        m: (float(mean), float(high))
        for s, m, name, mean, _, high in forecast_grid(reference)
        if s == "All states" and name == "revenue" and mean is not None
    }
    got = {row.forecast_month.date(): (row.revenue_forecast, row.revenue_forecast_high_95) for row in frame.itertuples()}
    assert set(got) == set(want) and len(want) == 3
    for month, values in want.items():
        assert got[month] == pytest.approx(values, abs=0.005), month
    with pytest.raises(api.QueryError, match="forecast_series has no value 'XX'; its values: All states"):
        api.query("revenue_forecast", by="forecast_month", where={"forecast_series": "XX"}, warehouse_path=served)

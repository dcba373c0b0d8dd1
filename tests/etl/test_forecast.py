"""The revenue forecast (etl/forecast.py): its history is the raw files' revenue and orders of
the complete months, its forecasts and intervals those of simple exponential smoothing on
them (tests/reference.py fits statsmodels itself), its backtest scores what happened, and a
short history leaves the marts empty with the reason in the run."""

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from olist_bi.etl import forecast, pipeline
from olist_bi.generator import generate
from tests.conftest import make_settings
from tests.reference import answer, forecast_grid, reporting_window


@pytest.fixture(scope="module")
def marts(warehouse):
    settings, _ = warehouse
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("select * from mart_revenue_forecast order by series, month_start").df()
        accuracy = con.execute("select * from mart_forecast_accuracy order by series, measure").df()
    return rows, accuracy


def test_the_history_is_the_raw_files_complete_months(marts, reference):
    rows, _ = marts
    first, last = reporting_window(reference)
    want_total = answer(reference, ["revenue", "orders"], [("purchase_date", "month")], start=first, end=last)
    history = rows[~rows["is_forecast"]]
    brazil = history[history["series"] == "All states"]
    assert [d.date() for d in brazil["month_start"]] == sorted(k[0] for k in want_total)
    for row in brazil.itertuples():
        revenue, orders = want_total[(row.month_start.date(),)]
        assert Decimal(str(row.revenue)) == revenue and row.orders == orders, row.month_start
    by_state = answer(reference, ["revenue"], [("customer_state", None)], start=first, end=last)
    largest = [k[0] for k, _ in sorted(by_state.items(), key=lambda kv: kv[1][0], reverse=True)[: forecast.LARGEST_STATES]]
    assert sorted(set(rows["series"])) == sorted(["All states", *largest])
    sp = history[history["series"] == "SP"].set_index("month_start")["revenue"]
    want_sp = answer(reference, ["revenue"], [("purchase_date", "month")], {"customer_state": {"SP"}}, first, last)
    assert {k.date(): Decimal(str(v)) for k, v in sp.items()} == {k[0]: v[0] for k, v in want_sp.items()}


def test_the_forecasts_are_simple_exponential_smoothing_of_the_history(marts, reference):
    rows, _ = marts
    ahead = rows[rows["is_forecast"]]
    assert len(ahead) == forecast.HORIZON * ahead["series"].nunique()
    want = {(s, m, name): (mean, low, high) for s, m, name, mean, low, high in forecast_grid(reference) if mean is not None}
    for row in ahead.itertuples():
        mean, low, high = want[(row.series, row.month_start.date(), "revenue")]
        assert (Decimal(str(row.revenue_forecast)), Decimal(str(row.revenue_low_95)), Decimal(str(row.revenue_high_95))) == (
            mean,
            low,
            high,
        ), row
        assert row.orders_forecast == pytest.approx(want[(row.series, row.month_start.date(), "orders")][0], abs=1e-9)
        assert row.revenue is None or pd.isna(row.revenue)
    last = rows[~rows["is_forecast"]]["month_start"].max()
    assert sorted(ahead["month_start"].unique()) == list(pd.date_range(last + pd.offsets.MonthBegin(1), periods=3, freq="MS"))


def test_the_intervals_nest_and_widen(marts):
    rows, _ = marts
    ahead = rows[rows["is_forecast"]]
    for measure in forecast.MEASURES:
        low95, low80, mid, high80, high95 = (
            ahead[f"{measure}_{c}"].astype(float) for c in ("low_95", "low_80", "forecast", "high_80", "high_95")
        )
        assert (low95 <= low80).all() and (low80 <= mid).all() and (mid <= high80).all() and (high80 <= high95).all(), measure
        assert (low95 >= 0).all(), measure
        for _, series in ahead.groupby("series"):
            width = (series[f"{measure}_high_95"].astype(float) - series[f"{measure}_low_95"].astype(float)).to_numpy()
            assert (np.diff(width) >= -0.01).all() and width[-1] > width[0], measure  # a later month is less certain


def test_the_backtest_scores_what_happened(marts, reference):
    _, accuracy = marts
    rows = accuracy[(accuracy["series"] == "All states") & (accuracy["measure"] == "revenue")].iloc[0]
    first, last = reporting_window(reference)
    history = answer(reference, ["revenue"], [("purchase_date", "month")], start=first, end=last)
    y = np.array([float(history[k][0]) for k in sorted(history)])
    seasonal, naive, pairs = [], [], 0
    for n in range(12, len(y)):  # origins from month 12, one to three months ahead
        for h in range(min(3, len(y) - n)):
            seasonal.append(abs(y[n + h] - y[n + h - 12]) / y[n + h])
            naive.append(abs(y[n + h] - y[n - 1]) / y[n + h])
            pairs += 1
    assert rows["forecasts"] == pairs > 0 and rows["history_months"] == len(y)
    assert rows["seasonal_naive_mape"] == pytest.approx(round(100 * np.mean(seasonal), 2))
    assert rows["naive_mape"] == pytest.approx(round(100 * np.mean(naive), 2))
    assert 0 < rows["mape"] < 100
    assert bool(rows["beats_seasonal_naive"]) == (rows["mape"] < rows["seasonal_naive_mape"])
    assert ("does not beat" in rows["verdict"]) != bool(rows["beats_seasonal_naive"])


def test_a_forecast_that_loses_to_the_baseline_says_so():
    months = pd.date_range("2017-01-01", periods=26, freq="MS")
    seasonal = pd.Series([100 + 80 * (m.month == 12) for m in months], index=months, dtype="float64")  # a December spike, nothing else
    accuracy = forecast.backtest(seasonal)
    assert accuracy.seasonal_naive_mape == 0 and not accuracy.beats_seasonal_naive
    assert forecast._verdict(accuracy).startswith("does not beat the seasonal naive baseline")


def test_a_short_history_gives_no_forecast_and_says_why(tmp_path, ops_url):
    drop = tmp_path / "drop"
    generate(drop, scale=0.02, seed=3, start_date=dt.date(2018, 1, 1), months=8)  # eight months of orders only
    settings = make_settings(tmp_path / "home", ops_url)
    result = pipeline.run(settings, drop)
    assert result.status == "succeeded"
    assert any("no revenue forecast" in w and "at least 12" in w for w in result.warnings), result.warnings
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from mart_revenue_forecast").fetchone() == (0,)
        assert con.execute("select count(*) from mart_forecast_accuracy").fetchone() == (0,)


def test_a_month_without_orders_in_a_state_counts_zero(warehouse, tmp_path):
    settings, _ = warehouse
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(Path(os.path.realpath(settings.warehouse_path)).read_bytes())
    with duckdb.connect(str(copy)) as con:
        month = con.execute("select min(first_day) + interval 4 month from mart_reporting_window").fetchone()[0]
        for table in ("fact_payments", "fact_deliveries"):
            con.execute(f"delete from {table} where customer_state = 'SP' and date_trunc('month', purchase_date) = ?", [month])
        built = forecast.build(forecast.on(con))
    rows = built.forecast_rows
    gap = rows[(rows["series"] == "SP") & (rows["month_start"] == pd.Timestamp(month))]
    assert list(gap[["revenue", "orders"]].iloc[0]) == [0, 0]
    assert rows[rows["is_forecast"]]["revenue_forecast"].notna().all()


def test_a_month_without_any_order_is_a_zero_not_a_gap(monkeypatch):
    months = pd.date_range("2017-01-01", periods=15, freq="MS")
    rows = [
        {"series": "All states", "month_start": m, "revenue": 1000.0 + 10 * i, "orders": 10 + i} for i, m in enumerate(months) if i != 7
    ]
    monkeypatch.setattr(forecast, "history", lambda query: pd.DataFrame(rows))
    built = forecast.build(None)
    history = built.forecast_rows[~built.forecast_rows["is_forecast"]]
    assert len(history) == 15 and list(history[history["month_start"] == months[7]][["revenue", "orders"]].iloc[0]) == [0, 0]
    assert built.forecast_rows["revenue_forecast"].notna().sum() == forecast.HORIZON

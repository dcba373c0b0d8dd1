"""Benchmark: how well the revenue forecast did before (a rolling-origin backtest).

For each series of mart_revenue_forecast (Brazil and its five largest states) and each
measure (revenue, orders): the mean absolute percentage error of forecasts one to three
months ahead, refit at every origin from month 12 on, for the platform's model, simple
exponential smoothing ETS(A,N,N), beside ETS models with a trend (additive, damped) that it
was chosen over, and the seasonal naive (same month a year before) and naive (last month)
baselines. The history is the semantic layer's revenue and orders of the complete months.

    .venv/bin/python -m bench.forecast [--scale 1] [--warehouse PATH]

Without --warehouse, builds the warehouse from the generated drop bench/data/scale<S>-seed42
(generated if missing) under a temporary OLIST_HOME; uses OLIST_DATABASE_URL or the embedded
PostgreSQL. Prints a Markdown table (docs/forecast.md quotes it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb

from bench.queries import seed42_drop
from olist_bi.etl import forecast, pipeline
from olist_bi.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OTHERS = {"ETS(A,A,N)": {"trend": "add"}, "ETS(A,Ad,N)": {"trend": "add", "damped_trend": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--warehouse", type=Path, default=None, help="a built warehouse to read instead")
    args = parser.parse_args()
    path = args.warehouse
    if path is None:
        drop = seed42_drop(ROOT / "bench" / "data" / f"scale{args.scale:g}-seed42", args.scale)
        home = Path(tempfile.mkdtemp(prefix="olist-bench-forecast-"))
        settings = Settings.from_env({**os.environ, "OLIST_HOME": str(home)})
        pipeline.run(settings, drop)
        path = settings.warehouse_path
    with duckdb.connect(str(path), read_only=True) as con:
        history = forecast.history(forecast.on(con))
        accuracy = con.execute(
            "select series, measure, history_months, forecasts from mart_forecast_accuracy "
            "order by series = 'All states' desc, series, measure"
        ).fetchall()
    print(f"| series | measure | months | forecasts | ETS(A,N,N) (ours) | {' | '.join(OTHERS)} | seasonal naive | naive |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(OTHERS) + "---:|---:|")
    began = time.perf_counter()
    for series, measure, months, scored in accuracy:
        y = history[history["series"] == series].set_index("month_start")[measure].astype("float64").sort_index()
        ours = forecast.backtest(y)
        others = [forecast.backtest(y, **spec).mape for spec in OTHERS.values()]
        cells = [f"{ours.mape:.2f}%", *(f"{m:.2f}%" for m in others), f"{ours.seasonal_naive_mape:.2f}%", f"{ours.naive_mape:.2f}%"]
        print(f"| {series} | {measure} | {months} | {scored} | " + " | ".join(cells) + " |")
    print(f"\n({len(accuracy)} series backtested in {time.perf_counter() - began:.1f} s; warehouse {path})")


if __name__ == "__main__":
    main()

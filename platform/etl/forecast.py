"""The revenue forecast: the next three months of revenue and orders, for Brazil and for its
largest states, with 80% and 95% prediction intervals, and how well the method did before.

History is the semantic layer's own `revenue` and `orders` by purchase month over the
complete months of the reporting window (mart_reporting_window), so the forecast continues
exactly the figures the dashboards draw. Each series gets simple exponential smoothing as a
state-space model, ETS(A,N,N) (statsmodels' ETSModel), whose prediction intervals are the
model's own. Trend models chosen by AICc did worse in the backtest: they carry 2017's growth
into 2018's plateau (docs/forecast.md has the figures).

The backtest refits the model at every rolling origin from month 12 on and compares
its forecasts, one to three months ahead, with what happened; beside it, the seasonal naive
baseline (the same month a year before) and the naive one (the last month). Their mean
absolute percentage errors go into `mart_forecast_accuracy`, with a verdict the Executive
overview shows: a forecast that does not beat the seasonal naive baseline says so.

With fewer than 12 complete months there is nothing to learn a year from: both marts are
built empty and the run says why.

A backtest's fit depends only on the months before its origin, and an increment adds a month:
the forecasts of the origins an earlier run fitted are read back from the warehouse
(`meta.forecast_fits`, keyed by their input) instead of fitted again (`Fits`).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from typing import Callable

import duckdb
import numpy as np
import pandas as pd

from olist_bi.semantic.compiler import GroupBy, Query, compile_query

log = logging.getLogger(__name__)

HORIZON = 3  # months ahead
MIN_HISTORY = 12  # complete months before anything is forecast (and the backtest's first origin)
SEASON = 12  # months in a year: the seasonal naive baseline's lag
LARGEST_STATES = 5  # by revenue over the reporting window, beside Brazil as a whole
ALL_STATES = "All states"
MEASURES = ("revenue", "orders")
LEVELS = (80, 95)  # prediction intervals, in percent


@dataclass(frozen=True)
class Forecast:
    model: str
    mean: np.ndarray
    bounds: dict[int, tuple[np.ndarray, np.ndarray]]  # level -> (low, high)


@dataclass(frozen=True)
class Accuracy:
    mape: float  # percent, the model's, over every (origin, months ahead) of the backtest
    seasonal_naive_mape: float
    naive_mape: float
    forecasts: int  # how many (origin, months ahead) pairs the figures average

    @property
    def beats_seasonal_naive(self) -> bool:
        return self.mape < self.seasonal_naive_mape


MODEL = "ETS(A,N,N)"  # simple exponential smoothing with additive errors; why this one: docs/forecast.md


def fit(history: pd.Series, horizon: int = HORIZON, **ets) -> Forecast:
    """Forecast `horizon` months after a monthly series (a DatetimeIndex at month starts):
    ETS(A,N,N), its smoothing weight and initial level fitted by maximum likelihood; the
    intervals at LEVELS are the model's analytic ones, widening with each month ahead.
    `ets` (ETSModel's trend, damped_trend, seasonal...) fits another model, for comparison."""
    y = history.astype("float64").asfreq("MS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the optimizer's convergence chatter on short series
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # slow to import: only when fitting

        result = ETSModel(y, error="add", **ets).fit(disp=False)
    prediction = result.get_prediction(start=len(y), end=len(y) + horizon - 1)
    bounds = {}
    for level in LEVELS:
        frame = prediction.summary_frame(alpha=1 - level / 100)
        bounds[level] = (frame["pi_lower"].to_numpy(), frame["pi_upper"].to_numpy())
    return Forecast(MODEL if not ets else str(ets), prediction.predicted_mean.to_numpy(), bounds)


class Fits:
    """Forecasts already fitted, by their input (the history's months and values, the months
    ahead, the model), read from and written back to FITS: what `backtest` fitted before."""

    TABLE = "meta.forecast_fits"

    def __init__(self, known: dict[str, list[float]] | None = None):
        self.known = known or {}
        self.used: dict[str, list[float]] = {}

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> Fits:
        try:
            return cls(dict(con.execute(f"select key, mean from {cls.TABLE}").fetchall()))
        except duckdb.CatalogException:  # a warehouse built before this table
            return cls()

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Keep this run's fits only: the next run's origins are these and one more."""
        con.execute(f"create schema if not exists meta; create or replace table {self.TABLE} (key varchar, mean double[])")
        if self.used:
            con.executemany(f"insert into {self.TABLE} values (?, ?)", list(self.used.items()))

    def mean(self, history: pd.Series, horizon: int, **ets) -> np.ndarray:
        values = history.astype("float64").asfreq("MS")
        key = hashlib.sha256(
            repr((MODEL, sorted(ets.items()), horizon, [str(d.date()) for d in values.index])).encode() + values.to_numpy().tobytes()
        ).hexdigest()
        if key not in self.known:
            self.known[key] = [float(v) for v in fit(history, horizon, **ets).mean]
        self.used[key] = self.known[key]
        return np.asarray(self.used[key])


def backtest(
    history: pd.Series, horizon: int = HORIZON, first_origin: int = MIN_HISTORY, fits: Fits | None = None, **ets
) -> Accuracy | None:
    """Rolling origin: fit on the first n months for every n from `first_origin`, forecast up to
    `horizon` months ahead, and score every forecast that has an actual, beside the seasonal
    naive and the naive baselines (`ets`: another model, as `fit`; `fits`: those fitted
    before). None when no origin leaves a month to score."""
    y = history.astype("float64").to_numpy()
    fits = fits or Fits()
    errors = {"model": [], "seasonal": [], "naive": []}
    for n in range(first_origin, len(y)):
        ahead = min(horizon, len(y) - n)
        forecast = fits.mean(history.iloc[:n], horizon, **ets)[:ahead]  # the same fit at every origin a later month adds
        for h in range(ahead):
            actual = y[n + h]
            if actual == 0:
                continue  # a percentage of nothing
            errors["model"].append(abs(actual - forecast[h]) / abs(actual))
            errors["seasonal"].append(abs(actual - y[n + h - SEASON]) / abs(actual))
            errors["naive"].append(abs(actual - y[n - 1]) / abs(actual))
    if not errors["model"]:
        return None
    return Accuracy(*(round(100 * float(np.mean(errors[k])), 2) for k in ("model", "seasonal", "naive")), len(errors["model"]))


def history_queries() -> list:
    """The semantic layer's queries the history reads: Brazil's months, then each state's
    (the ETL orders the forecast's models after the tables these read)."""
    groupings = ([GroupBy("purchase_date", "month")], [GroupBy("purchase_date", "month"), GroupBy("customer_state")])
    return [compile_query(Query(list(MEASURES), by, complete_periods=True)) for by in groupings]


Ask = Callable[[str, list], pd.DataFrame]  # a DuckDB query with `?` parameters, answered by a build


def on(con: duckdb.DuckDBPyConnection) -> Ask:
    """Queries answered by the DuckDB connection `con`."""
    return lambda sql, params: con.execute(sql, params).df()


def history(query: Ask) -> pd.DataFrame:
    """Revenue and orders by complete month, for Brazil (series ALL_STATES) and by customer
    state: columns series, month_start, revenue, orders. Compiled by the semantic layer, asked
    of `query` (a DuckDB build: `on(con)`; ClickHouse's transpiles them)."""
    frames = []
    for compiled in history_queries():
        frame = query(compiled.sql, list(compiled.params))
        frame["series"] = frame["customer_state"] if "customer_state" in frame else ALL_STATES
        frames.append(frame.dropna(subset=["series"]).rename(columns={"purchase_date": "month_start"}))
    found = pd.concat(frames, ignore_index=True)[["series", "month_start", *MEASURES]]
    found["month_start"] = pd.to_datetime(found["month_start"])
    return found


@dataclass
class Built:
    forecast_rows: pd.DataFrame
    accuracy_rows: pd.DataFrame
    note: str | None  # why there is no forecast, when there is none


FORECAST_COLUMNS = ["series", "month_start", "is_forecast"] + [
    c for m in MEASURES for c in (m, f"{m}_forecast", *(f"{m}_{side}_{level}" for level in LEVELS for side in ("low", "high")))
]
ACCURACY_COLUMNS = [
    "series",
    "measure",
    "model",
    "history_months",
    "first_month",
    "last_month",
    "forecasts",
    "mape",
    "seasonal_naive_mape",
    "naive_mape",
    "beats_seasonal_naive",
    "verdict",
]


def build(query: Ask, fits: Fits | None = None) -> Built:
    """The rows of mart_revenue_forecast and mart_forecast_accuracy (empty, with the reason,
    when the window holds fewer than MIN_HISTORY complete months), from the build `query`
    answers; `fits`, the backtest's forecasts fitted before, gains this run's."""
    found = history(query)
    overall = found[found["series"] == ALL_STATES]
    # every month of the window, a month without orders included (as 0: a model needs no gaps)
    index = pd.date_range(overall["month_start"].min(), overall["month_start"].max(), freq="MS") if len(overall) else pd.DatetimeIndex([])
    months = len(index)
    if months < MIN_HISTORY:
        note = (
            f"no revenue forecast: the reporting window holds {months} complete month{'s' if months != 1 else ''}, "
            f"and a forecast needs at least {MIN_HISTORY}"
        )
        log.warning(note)
        return Built(pd.DataFrame(columns=FORECAST_COLUMNS), pd.DataFrame(columns=ACCURACY_COLUMNS), note)
    states = (
        found[found["series"] != ALL_STATES]
        .groupby("series")["revenue"]
        .sum()
        .astype("float64")
        .sort_values(ascending=False)
        .head(LARGEST_STATES)
        .index.tolist()
    )
    forecast_rows, accuracy_rows, fits = [], [], fits or Fits()
    for series in [ALL_STATES, *states]:
        rows = found[found["series"] == series].set_index("month_start")[list(MEASURES)].sort_index()
        rows = rows.reindex(index, fill_value=0)  # a month without orders is a 0, not a gap
        future = pd.date_range(rows.index[-1] + pd.offsets.MonthBegin(1), periods=HORIZON, freq="MS")
        table = pd.DataFrame(
            {"series": series, "month_start": list(rows.index) + list(future), "is_forecast": [False] * len(rows) + [True] * HORIZON}
        )
        for measure in MEASURES:
            y = rows[measure].astype("float64")
            result, accuracy = fit(y), backtest(y, fits=fits)
            table[measure] = list(rows[measure]) + [None] * HORIZON
            table[f"{measure}_forecast"] = [None] * len(rows) + list(result.mean)
            for level, (low, high) in result.bounds.items():
                table[f"{measure}_low_{level}"] = [None] * len(rows) + list(np.maximum(low, 0))  # no negative money or orders
                table[f"{measure}_high_{level}"] = [None] * len(rows) + list(high)
            accuracy_rows.append(
                {
                    "series": series,
                    "measure": measure,
                    "model": result.model,
                    "history_months": len(y),
                    "first_month": y.index[0],
                    "last_month": y.index[-1],
                    "forecasts": accuracy.forecasts if accuracy else 0,
                    "mape": accuracy.mape if accuracy else None,
                    "seasonal_naive_mape": accuracy.seasonal_naive_mape if accuracy else None,
                    "naive_mape": accuracy.naive_mape if accuracy else None,
                    "beats_seasonal_naive": accuracy.beats_seasonal_naive if accuracy else None,
                    "verdict": _verdict(accuracy),
                }
            )
        forecast_rows.append(table[FORECAST_COLUMNS])
    return Built(pd.concat(forecast_rows, ignore_index=True), pd.DataFrame(accuracy_rows, columns=ACCURACY_COLUMNS), None)


def _verdict(accuracy: Accuracy | None) -> str:
    if accuracy is None:
        return "not backtested: no month after the first origin"
    if accuracy.beats_seasonal_naive:
        return "beats the seasonal naive baseline"
    return "does not beat the seasonal naive baseline: read it as a rough guide"

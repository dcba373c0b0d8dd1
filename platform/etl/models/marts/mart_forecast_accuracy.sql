-- mart_forecast_accuracy: how the forecast method of mart_revenue_forecast did before, per
-- series and measure: a rolling-origin backtest (refit from month 12 on, forecasts one to
-- three months ahead) scored by mean absolute percentage error, beside the seasonal naive
-- (same month a year before) and naive (last month) baselines, and the verdict the Executive
-- overview shows. Rows from etl/forecast.py (`python_rows`). Grain: series, measure.
select
    cast(series as varchar) as series,
    cast(measure as varchar) as measure,
    cast(model as varchar) as model,
    cast(history_months as integer) as history_months,
    cast(first_month as date) as first_month,
    cast(last_month as date) as last_month,
    cast(forecasts as integer) as forecasts,
    cast(mape as double) as mape,
    cast(seasonal_naive_mape as double) as seasonal_naive_mape,
    cast(naive_mape as double) as naive_mape,
    cast(beats_seasonal_naive as boolean) as beats_seasonal_naive,
    cast(verdict as varchar) as verdict,
from python_rows

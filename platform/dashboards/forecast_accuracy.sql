-- How the revenue and orders forecasts did in their backtest, beside the naive baselines,
-- with the verdict, per series (mart_forecast_accuracy; one series per reader: `scope`).
select
    series,
    case measure when 'revenue' then 'Revenue' when 'orders' then 'Orders' else measure end as measure,
    model,
    history_months,
    forecasts,
    mape / 100 as mape,
    seasonal_naive_mape / 100 as seasonal_naive_mape,
    naive_mape / 100 as naive_mape,
    verdict,
from mart_forecast_accuracy

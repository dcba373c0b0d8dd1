-- mart_revenue_forecast: revenue and orders by month for Brazil ('All states') and its five
-- largest states: the complete months as they happened, then the next three as forecast,
-- each with its 80% and 95% prediction interval. etl/forecast.py fits the models and hands
-- its rows over as `python_rows`; this file gives the table its columns and types. Empty
-- (and the run says why) when the reporting window holds fewer than 12 complete months.
-- Grain: one row per series and month.
select
    cast(series as varchar) as series,
    cast(month_start as date) as month_start,
    cast(is_forecast as boolean) as is_forecast,
    cast(revenue as decimal(18, 2)) as revenue,
    cast(round(revenue_forecast, 2) as decimal(18, 2)) as revenue_forecast,
    cast(round(revenue_low_80, 2) as decimal(18, 2)) as revenue_low_80,
    cast(round(revenue_high_80, 2) as decimal(18, 2)) as revenue_high_80,
    cast(round(revenue_low_95, 2) as decimal(18, 2)) as revenue_low_95,
    cast(round(revenue_high_95, 2) as decimal(18, 2)) as revenue_high_95,
    cast(orders as bigint) as orders,
    cast(round(orders_forecast, 1) as double) as orders_forecast,
    cast(round(orders_low_80, 1) as double) as orders_low_80,
    cast(round(orders_high_80, 1) as double) as orders_high_80,
    cast(round(orders_low_95, 1) as double) as orders_low_95,
    cast(round(orders_high_95, 1) as double) as orders_high_95,
from python_rows

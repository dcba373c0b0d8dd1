-- Revenue by month, one series per scope (Brazil as a whole, 'All states', and the five
-- largest states): the complete months as they happened, then the next three forecast with
-- their 80% and 95% prediction intervals (mart_revenue_forecast). The dataset's `scope`
-- (datasets.yaml) keeps one series per reader: Brazil, or a regional role's own state.
select
    series,
    month_start,
    revenue,
    revenue_forecast,
    revenue_low_95,
    revenue_high_95,
    revenue_low_80,
    revenue_high_80,
from mart_revenue_forecast

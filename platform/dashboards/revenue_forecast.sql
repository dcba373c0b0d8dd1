-- Revenue of Brazil as a whole by month: the complete months as they happened, then the next
-- three forecast with their 80% and 95% prediction intervals (mart_revenue_forecast).
select
    month_start,
    revenue,
    revenue_forecast,
    revenue_low_95,
    revenue_high_95,
    revenue_low_80,
    revenue_high_80,
from mart_revenue_forecast
where series = 'All states'

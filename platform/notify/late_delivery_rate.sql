-- The late delivery rate of the orders delivered in the last {{ days }} days of the reporting
-- window (mart_reporting_window: the data's complete months; after it the Olist files hold
-- a few stragglers, mostly late, that would keep the alert firing): the semantic layer's
-- late_delivery_rate (semantic/metrics.yaml) over those orders. One row and one column.
select {{ metric("late_delivery_rate") }} as late_delivery_rate
from fact_deliveries as m
where cast(m.delivered_customer_at as date) between (select last_day from mart_reporting_window) - {{ days - 1 }}
                                                and (select last_day from mart_reporting_window)

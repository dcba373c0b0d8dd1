-- mart_delivery_performance: delivered orders per purchase month and customer state, with
-- delivery time, the late rate (fact_deliveries' rule) and the per-order review score.
-- Grain: (month_start, customer_state).
with delivered as (
    select
        cast(date_trunc('month', purchase_date) as date) as month_start,
        coalesce(customer_state, 'unknown') as customer_state,
        delivery_days, delay_days, is_late, review_score,
    from fact_deliveries
    where is_delivered
)
select
    month_start,
    customer_state,
    cast(count(*) as integer) as delivered_orders,
    cast(count(*) filter (where is_late) as integer) as late_orders,
    count(*) filter (where is_late) / count(*) as late_rate,
    avg(delivery_days) as avg_delivery_days,
    avg(delay_days) as avg_delay_days,
    avg(review_score) as avg_review_score,
    avg(review_score) filter (where is_late) as avg_review_score_late,
    avg(review_score) filter (where not is_late) as avg_review_score_on_time,
from delivered
group by month_start, customer_state

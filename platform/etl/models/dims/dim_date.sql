-- dim_date: one row per calendar day from the first purchase to the last date of any order
-- event. Grain: date_key.
with bounds as (
    select
        min(purchase_date) as first_date,
        greatest(
            max(purchase_date),
            max(estimated_delivery_date),
            max(cast(delivered_customer_at as date))
        ) as last_date,
    from stg_orders
),
days as (
    select cast(d as date) as day
    from bounds, range(first_date, last_date + interval 1 day, interval 1 day) as t(d)
)
select
    day as date_key,
    cast(year(day) as integer) as year,
    cast(quarter(day) as integer) as quarter,
    cast(month(day) as integer) as month,
    cast(date_trunc('month', day) as date) as month_start,
    cast(date_trunc('week', day) as date) as week_start,
    cast(date_trunc('quarter', day) as date) as quarter_start,
    cast(isodow(day) as integer) as day_of_week,
    isodow(day) >= 6 as is_weekend,
from days

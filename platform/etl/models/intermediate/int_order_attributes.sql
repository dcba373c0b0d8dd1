-- int_order_attributes: one row per order with what every fact carries about its order: keys,
-- the customer (person, key and address at the time of the order), status, purchase time, the
-- purchase month (the first day of the purchase date's month, which monthly metrics group by:
-- a stored date groups several times faster than date_trunc per row), the delivery delay
-- (delivery date minus estimated date, in days; negative when early), whether the order counts
-- as revenue (not canceled or unavailable) and whether its purchase date falls in the reporting
-- window (int_reporting_window). The last two are stored so that metrics filter on a boolean
-- instead of comparing statuses and dates on every row (bench/findings.md). So are what the
-- dashboards show for an order: its status in words, sentence case (delivered reads
-- Delivered), and its delivery against the estimate in buckets, from 15+ days early to 8+ days
-- late, Not delivered without a delivery date (the semantic layer's delay_order lists the
-- labels in this order).
-- The facts read it so that these columns are defined once. Grain: order_id.
with orders as (
    select
        order_id, order_key, customer_id, order_status, purchased_at, purchase_date,
        date_diff('day', estimated_delivery_date, cast(delivered_customer_at as date)) as delay_days,
    from stg_orders
),
customers as (
    select customer_id, customer_unique_id, zip_code_prefix, city, state from stg_customers
),
people as (
    select customer_unique_id, customer_key from dim_customer
),
reporting_window as (  -- one row, its dates null when no month is settled
    select max(first_day) as first_day, max(last_day) as last_day from int_reporting_window
)
select
    o.order_id,
    o.order_key,
    c.customer_unique_id,
    pp.customer_key,
    c.zip_code_prefix as customer_zip_code_prefix,
    c.city as customer_city,
    c.state as customer_state,
    o.order_status,
    o.purchased_at,
    o.purchase_date,
    cast(date_trunc('month', o.purchase_date) as date) as purchase_month,
    o.delay_days,
    upper(substr(replace(o.order_status, '_', ' '), 1, 1)) || substr(replace(o.order_status, '_', ' '), 2) as order_status_label,
    o.order_status not in ('canceled', 'unavailable') as counts_as_revenue,
    case
        when o.delay_days <= -15 then '15+ days early'
        when o.delay_days <= -8 then '8-14 days early'
        when o.delay_days <= -1 then '1-7 days early'
        when o.delay_days = 0 then 'On the day'
        when o.delay_days <= 3 then '1-3 days late'
        when o.delay_days <= 7 then '4-7 days late'
        when o.delay_days is not null then '8+ days late'
        else 'Not delivered'
    end as delivery_delay,
    coalesce(o.purchase_date between w.first_day and w.last_day, false) as in_reporting_window,
from orders as o
cross join reporting_window as w
left join customers as c on c.customer_id = o.customer_id
left join people as pp on pp.customer_unique_id = c.customer_unique_id

-- fact_deliveries: one row per order, every order (with or without items, payments or
-- reviews), with its delivery timings. Late rule: delivered on a later calendar day than the
-- estimated delivery date (the estimate is a date; a delivery during that day is on time).
-- delivery_days: purchase to delivery, in days with fractions. delay_days: delivery date minus
-- estimated date (negative when early). is_first_order marks each customer's first order;
-- is_repeat_customer marks orders of customers with more than one order in all. An order's
-- sums are DECIMAL(18,2), not the DECIMAL(38,2) a sum gives: summing 128-bit decimals over the
-- orders cost 80 ms at scale 1 against a few for 64-bit ones (the AOV metric reads them).
-- Grain: order_id.
with timings as (
    select order_id, approved_at, delivered_carrier_at, delivered_customer_at, estimated_delivery_date from stg_orders
),
attributes as (
    select
        order_id, order_key, customer_unique_id, customer_key, customer_zip_code_prefix, customer_city,
        customer_state, order_status, order_status_label, counts_as_revenue, purchased_at, purchase_date, purchase_month, in_reporting_window, delay_days, delivery_delay,
    from int_order_attributes
),
people as (
    select customer_unique_id, is_repeat from dim_customer
),
items as (
    select
        order_id,
        count(*) as items,
        cast(sum(price) as decimal(18, 2)) as items_value,
        cast(sum(freight_value) as decimal(18, 2)) as freight_value,
    from stg_order_items
    group by order_id
),
payments as (
    select order_id, cast(sum(payment_value) as decimal(18, 2)) as payment_value from stg_payments group by order_id
),
reviews as (
    select order_id, review_score from fact_reviews where is_order_review
),
-- the window reads three columns, not every column of the order: at scale 100 (10 million
-- orders) a window over the whole row ran out of a 6 GB memory limit
first_orders as (
    select order_id, row_number() over (partition by customer_unique_id order by purchased_at, order_id) = 1 as is_first_order
    from int_order_attributes
)
select
    a.order_id,
    a.order_key,
    a.customer_unique_id,
    a.customer_key,
    a.customer_zip_code_prefix,
    a.customer_city,
    a.customer_state,
    a.order_status,
    a.order_status_label,
    a.counts_as_revenue,
    a.purchased_at,
    a.purchase_date,
    a.purchase_month,
    a.in_reporting_window,
    t.approved_at,
    t.delivered_carrier_at,
    t.delivered_customer_at,
    t.estimated_delivery_date,
    t.delivered_customer_at is not null as is_delivered,
    date_diff('second', a.purchased_at, t.delivered_customer_at) / 86400.0 as delivery_days,
    a.delay_days,
    a.delivery_delay,
    case
        when t.delivered_customer_at is null then null
        else cast(t.delivered_customer_at as date) > t.estimated_delivery_date
    end as is_late,
    t.delivered_carrier_at < t.approved_at as is_carrier_before_approval,
    cast(coalesce(i.items, 0) as integer) as items,
    coalesce(i.items_value, 0) as items_value,
    coalesce(i.freight_value, 0) as freight_value,
    p.payment_value,
    r.review_score,
    f.is_first_order,
    coalesce(pp.is_repeat, false) as is_repeat_customer,
from attributes as a
left join timings as t on t.order_id = a.order_id
left join items as i on i.order_id = a.order_id
left join payments as p on p.order_id = a.order_id
left join reviews as r on r.order_id = a.order_id
left join people as pp on pp.customer_unique_id = a.customer_unique_id
left join first_orders as f on f.order_id = a.order_id

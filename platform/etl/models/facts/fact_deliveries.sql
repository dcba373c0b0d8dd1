-- fact_deliveries: one row per order, every order (with or without items, payments or
-- reviews), with its delivery timings. Late rule: delivered on a later calendar day than the
-- estimated delivery date (the estimate is a date; a delivery during that day is on time).
-- delivery_days: purchase to delivery, in days with fractions. delay_days: delivery date minus
-- estimated date (negative when early). is_first_order marks each customer's first order;
-- is_repeat_customer marks orders of customers with more than one order in all.
-- Grain: order_id.
with orders as (
    select
        order_id, order_key, customer_id, order_status, purchased_at, purchase_date, approved_at,
        delivered_carrier_at, delivered_customer_at, estimated_delivery_date,
    from stg_orders
),
customers as (
    select customer_id, customer_unique_id, zip_code_prefix, city, state from stg_customers
),
people as (
    select customer_unique_id, customer_key, first_order_at, is_repeat from dim_customer
),
items as (
    select order_id, count(*) as items, sum(price) as items_value, sum(freight_value) as freight_value
    from stg_order_items
    group by order_id
),
payments as (
    select order_id, sum(payment_value) as payment_value from stg_payments group by order_id
),
reviews as (
    select order_id, review_score from fact_reviews where is_order_review
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
    o.approved_at,
    o.delivered_carrier_at,
    o.delivered_customer_at,
    o.estimated_delivery_date,
    o.delivered_customer_at is not null as is_delivered,
    date_diff('second', o.purchased_at, o.delivered_customer_at) / 86400.0 as delivery_days,
    date_diff('day', o.estimated_delivery_date, cast(o.delivered_customer_at as date)) as delay_days,
    case
        when o.delivered_customer_at is null then null
        else cast(o.delivered_customer_at as date) > o.estimated_delivery_date
    end as is_late,
    o.delivered_carrier_at < o.approved_at as is_carrier_before_approval,
    cast(coalesce(i.items, 0) as integer) as items,
    coalesce(i.items_value, 0) as items_value,
    coalesce(i.freight_value, 0) as freight_value,
    p.payment_value,
    r.review_score,
    row_number() over (partition by c.customer_unique_id order by o.purchased_at, o.order_id) = 1 as is_first_order,
    coalesce(pp.is_repeat, false) as is_repeat_customer,
from orders as o
left join customers as c on c.customer_id = o.customer_id
left join items as i on i.order_id = o.order_id
left join payments as p on p.order_id = o.order_id
left join reviews as r on r.order_id = o.order_id
left join people as pp on pp.customer_unique_id = c.customer_unique_id

-- fact_payments: one row per payment row, never joined to items (that would repeat a payment
-- once per item). The order's attributes are carried on every payment row, so payment
-- metrics need no join. Grain: (order_id, payment_sequential). Sum of payment_value equals the source's.
with payments as (
    select order_id, payment_sequential, payment_type, payment_installments, payment_value from stg_payments
),
orders as (
    select
        order_id, order_key, customer_id, order_status, purchased_at, purchase_date,
        date_diff('day', estimated_delivery_date, cast(delivered_customer_at as date)) as delay_days,
    from stg_orders
),
customers as (
    select customer_id, customer_unique_id, city, state from stg_customers
),
people as (
    select customer_unique_id, customer_key from dim_customer
)
select
    p.order_id,
    p.payment_sequential,
    o.order_key,
    c.customer_unique_id,
    pp.customer_key,
    c.city as customer_city,
    c.state as customer_state,
    o.order_status,
    o.delay_days,
    o.purchased_at,
    o.purchase_date,
    p.payment_type,
    p.payment_installments,
    p.payment_value,
from payments as p
left join orders as o on o.order_id = p.order_id
left join customers as c on c.customer_id = o.customer_id
left join people as pp on pp.customer_unique_id = c.customer_unique_id

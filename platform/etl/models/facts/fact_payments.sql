-- fact_payments: one row per payment row, never joined to items (that would repeat a payment
-- once per item). The order's attributes (int_order_attributes) are carried on every payment
-- row, so payment metrics need no join. payment_type_label: the payment type in words,
-- sentence case (credit_card reads Credit card), what the dashboards show.
-- Grain: (order_id, payment_sequential). Sum of payment_value equals the source's.
with payments as (
    select order_id, payment_sequential, payment_type, payment_installments, payment_value from stg_payments
),
orders as (
    select
        order_id, order_key, customer_unique_id, customer_key, customer_city, customer_state,
        order_status, order_status_label, counts_as_revenue, delay_days, delivery_delay, purchased_at, purchase_date, purchase_month, in_reporting_window,
    from int_order_attributes
)
select
    p.order_id,
    p.payment_sequential,
    o.order_key,
    o.customer_unique_id,
    o.customer_key,
    o.customer_city,
    o.customer_state,
    o.order_status,
    o.order_status_label,
    o.counts_as_revenue,
    o.delay_days,
    o.delivery_delay,
    o.purchased_at,
    o.purchase_date,
    o.purchase_month,
    o.in_reporting_window,
    p.payment_type,
    upper(substr(replace(p.payment_type, '_', ' '), 1, 1)) || substr(replace(p.payment_type, '_', ' '), 2) as payment_type_label,
    p.payment_installments,
    p.payment_value,
from payments as p
left join orders as o on o.order_id = p.order_id

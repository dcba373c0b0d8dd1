-- stg_payments: one row per payment row of an order. Grain: (order_id, payment_sequential).
select
    order_id,
    payment_sequential,
    payment_type,
    payment_installments,
    payment_value,
from raw.order_payments

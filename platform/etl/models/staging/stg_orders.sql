-- stg_orders: one row per order, renamed and typed; dates derived; order_key, an integer
-- surrogate key numbered in order_id order (stable within a build, not across builds).
-- Grain: order_id.
select
    order_id,
    row_number() over (order by order_id) as order_key,
    customer_id,
    order_status,
    order_purchase_timestamp as purchased_at,
    order_approved_at as approved_at,
    order_delivered_carrier_date as delivered_carrier_at,
    order_delivered_customer_date as delivered_customer_at,
    cast(order_estimated_delivery_date as date) as estimated_delivery_date,
    cast(order_purchase_timestamp as date) as purchase_date,
from raw.orders

-- stg_orders: one row per order, renamed and typed; dates derived; order_key, a stable
-- integer key: the first 15 hex digits of the md5 of order_id, the same in every build and on
-- every engine, so that an increment keeps the keys of the rows it does not rebuild.
-- Grain: order_id.
select
    order_id,
    cast(('0x' || left(md5(order_id), 15)) as bigint) as order_key,
    customer_id,
    order_status,
    order_purchase_timestamp as purchased_at,
    order_approved_at as approved_at,
    order_delivered_carrier_date as delivered_carrier_at,
    order_delivered_customer_date as delivered_customer_at,
    cast(order_estimated_delivery_date as date) as estimated_delivery_date,
    cast(order_purchase_timestamp as date) as purchase_date,
from raw.orders

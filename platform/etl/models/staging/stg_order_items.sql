-- stg_order_items: one row per order item. Grain: (order_id, order_item_id).
select
    order_id,
    order_item_id,
    product_id,
    seller_id,
    shipping_limit_date as shipping_limit_at,
    price,
    freight_value,
from raw.order_items

-- fact_order_items: one row per order item, with its order's customer, dates and status.
-- The order's attributes (int_order_attributes: status, dates, customer city and state,
-- delivery delay) are carried on every item, so item metrics need no join; so are the seller's
-- key and state (dim_seller) and the category's label (dim_category). Orders without items have no row here (they stay in
-- fact_deliveries).
-- Grain: (order_id, order_item_id). Sum of price equals the source's.
with items as (
    select order_id, order_item_id, product_id, seller_id, shipping_limit_at, price, freight_value from stg_order_items
),
orders as (
    select
        order_id, order_key, customer_unique_id, customer_key, customer_city, customer_state,
        order_status, order_status_label, counts_as_revenue, delay_days, delivery_delay, purchased_at, purchase_date, purchase_month, in_reporting_window,
    from int_order_attributes
),
products as (
    select product_id, category_key from dim_product
),
categories as (
    select category_key, category_label from dim_category
),
sellers as (
    select seller_id, seller_key, state as seller_state from dim_seller
)
select
    i.order_id,
    i.order_item_id,
    o.order_key,
    o.customer_unique_id,
    o.customer_key,
    i.product_id,
    i.seller_id,
    s.seller_key,
    s.seller_state,
    coalesce(p.category_key, 'unknown') as category_key,
    k.category_label,
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
    i.shipping_limit_at,
    i.price,
    i.freight_value,
from items as i
left join orders as o on o.order_id = i.order_id
left join products as p on p.product_id = i.product_id
left join sellers as s on s.seller_id = i.seller_id
left join categories as k on k.category_key = coalesce(p.category_key, 'unknown')

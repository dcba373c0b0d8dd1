-- dim_customer: one row per person (customer_unique_id), with the address of their latest
-- order and their order history; customer_key, a stable integer key (the first 15 hex digits
-- of the md5 of customer_unique_id, as stg_orders.order_key), makes distinct counts of
-- customers cheap. Grain: customer_unique_id.
with customers as (
    select customer_id, customer_unique_id, zip_code_prefix, city, state from stg_customers
),
orders as (
    select order_id, customer_id, purchased_at from stg_orders
),
joined as (
    select c.*, o.purchased_at
    from customers as c
    left join orders as o on o.customer_id = c.customer_id
),
ranked as (
    select
        *,
        row_number() over (partition by customer_unique_id order by purchased_at desc nulls last, customer_id) as recency,
        count(*) over (partition by customer_unique_id) as orders_count,
        min(purchased_at) over (partition by customer_unique_id) as first_order_at,
        max(purchased_at) over (partition by customer_unique_id) as last_order_at,
    from joined
)
select
    cast(('0x' || left(md5(customer_unique_id), 15)) as bigint) as customer_key,
    customer_unique_id,
    zip_code_prefix,
    city,
    state,
    first_order_at,
    last_order_at,
    cast(orders_count as integer) as orders_count,
    orders_count > 1 as is_repeat,
from ranked
where recency = 1

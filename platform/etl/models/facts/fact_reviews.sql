-- fact_reviews: one row per (review_id, order_id). An order with several reviews keeps them
-- all; `is_order_review` marks the one that speaks for the order (the latest answered, then
-- the latest created, then the highest review_id), so per-order averages count each order once.
-- Grain: (review_id, order_id).
with reviews as (
    select review_id, order_id, review_score, has_comment, review_created_date, review_answered_at from stg_reviews
),
orders as (
    select order_id, customer_id, order_status, purchase_date from stg_orders
),
customers as (
    select customer_id, customer_unique_id, state from stg_customers
),
ranked as (
    select
        *,
        row_number() over (
            partition by order_id
            order by review_answered_at desc nulls last, review_created_date desc nulls last, review_id desc
        ) as rank_in_order,
    from reviews
)
select
    r.review_id,
    r.order_id,
    c.customer_unique_id,
    c.state as customer_state,
    o.order_status,
    o.purchase_date,
    r.review_score,
    r.has_comment,
    r.review_created_date,
    r.review_answered_at,
    r.rank_in_order = 1 as is_order_review,
from ranked as r
left join orders as o on o.order_id = r.order_id
left join customers as c on c.customer_id = o.customer_id

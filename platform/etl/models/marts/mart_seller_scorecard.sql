-- mart_seller_scorecard: one row per seller with sales, delivery and review figures over the
-- orders they sold items in (canceled and unavailable orders excluded). A review counts once
-- per order (fact_reviews.is_order_review). Grain: seller_id.
with items as (
    select seller_id, order_id, price, freight_value, purchased_at
    from fact_order_items
    where order_status not in ('canceled', 'unavailable')
),
seller_orders as (
    select distinct seller_id, order_id from items
),
deliveries as (
    select order_id, is_delivered, is_late, delivery_days, review_score from fact_deliveries
),
per_seller as (
    select
        so.seller_id,
        count(*) as orders,
        count(*) filter (where d.is_delivered) as delivered_orders,
        count(*) filter (where d.is_late) as late_orders,
        avg(d.delivery_days) as avg_delivery_days,
        avg(d.review_score) as avg_review_score,
        count(d.review_score) as reviewed_orders,
    from seller_orders as so
    join deliveries as d on d.order_id = so.order_id
    group by so.seller_id
),
sales as (
    select
        seller_id,
        count(*) as items,
        sum(price) as gmv,
        sum(freight_value) as freight,
        min(purchased_at) as first_sale_at,
        max(purchased_at) as last_sale_at,
    from items
    group by seller_id
)
select
    s.seller_id,
    s.city,
    s.state,
    cast(coalesce(p.orders, 0) as integer) as orders,
    cast(coalesce(x.items, 0) as integer) as items,
    coalesce(x.gmv, 0) as gmv,
    coalesce(x.freight, 0) as freight,
    cast(coalesce(p.delivered_orders, 0) as integer) as delivered_orders,
    cast(coalesce(p.late_orders, 0) as integer) as late_orders,
    p.late_orders / nullif(p.delivered_orders, 0) as late_rate,
    p.avg_delivery_days,
    p.avg_review_score,
    cast(coalesce(p.reviewed_orders, 0) as integer) as reviewed_orders,
    x.first_sale_at,
    x.last_sale_at,
from dim_seller as s
left join per_seller as p on p.seller_id = s.seller_id
left join sales as x on x.seller_id = s.seller_id

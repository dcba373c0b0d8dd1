-- The seller scorecard's rows, best sellers first.
select
    seller_id,
    city,
    state,
    orders,
    items,
    gmv,
    freight,
    delivered_orders,
    late_orders,
    late_rate,
    avg_delivery_days,
    avg_review_score,
    reviewed_orders,
    first_sale_at,
    last_sale_at,
from mart_seller_scorecard

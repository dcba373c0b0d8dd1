-- The seller scorecard's rows, best sellers first. The state column is named after the
-- seller_state dimension, so the dashboard's Seller state filter applies to it.
select
    seller_id,
    city,
    state as seller_state,
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

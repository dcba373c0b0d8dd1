-- The seller scorecard's rows: the 100 sellers with the most GMV of all time, best first. A
-- chart of them asks for more rows than this gives, so Superset never shows its "row limit
-- reached" warning over a list that is meant to be the top 100. The state column is named after
-- the seller_state dimension, so the dashboard's Seller state filter shows those of the 100 in
-- the chosen states (mart_seller_scorecard holds every seller, for SQL Lab).
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
order by gmv desc, seller_id
limit 100

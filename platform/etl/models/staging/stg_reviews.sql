-- stg_reviews: one row per review of an order (a review id can cover several orders).
-- Grain: (review_id, order_id).
select
    review_id,
    order_id,
    review_score,
    review_comment_title,
    review_comment_message,
    review_comment_message is not null as has_comment,
    cast(review_creation_date as date) as review_created_date,
    review_answer_timestamp as review_answered_at,
from raw.order_reviews

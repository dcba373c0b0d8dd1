-- dim_seller: one row per seller; seller_key, an integer surrogate key (stable within a
-- build: sellers in id order), which distinct counts of sellers read (an integer is counted
-- faster than a 32-character id). Grain: seller_id.
select
    seller_id,
    row_number() over (order by seller_id) as seller_key,
    zip_code_prefix,
    city,
    state,
from stg_sellers

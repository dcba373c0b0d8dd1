-- dim_seller: one row per seller. Grain: seller_id.
select
    seller_id,
    zip_code_prefix,
    city,
    state,
from stg_sellers

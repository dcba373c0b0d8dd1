-- stg_sellers: one row per seller. Grain: seller_id.
select
    seller_id,
    seller_zip_code_prefix as zip_code_prefix,
    seller_city as city,
    seller_state as state,
from raw.sellers

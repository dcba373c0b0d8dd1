-- dim_seller: one row per seller; seller_key, a stable integer key (the first 15 hex digits of
-- the md5 of seller_id, as stg_orders.order_key), which distinct counts of sellers read (an
-- integer is counted faster than a 32-character id). Grain: seller_id.
select
    seller_id,
    cast(('0x' || left(md5(seller_id), 15)) as bigint) as seller_key,
    zip_code_prefix,
    city,
    state,
from stg_sellers

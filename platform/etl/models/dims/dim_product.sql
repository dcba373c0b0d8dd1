-- dim_product: one row per product, with its category key. Grain: product_id.
select
    p.product_id,
    coalesce(p.category_name, 'unknown') as category_key,
    c.category_name_english as category_name_english,
    p.name_length,
    p.description_length,
    p.photos_qty,
    p.weight_g,
    p.length_cm,
    p.height_cm,
    p.width_cm,
from stg_products as p
left join dim_category as c on c.category_key = coalesce(p.category_name, 'unknown')

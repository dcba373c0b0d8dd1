-- stg_category_translation: one row per Portuguese category name. Grain: category_name.
select
    product_category_name as category_name,
    product_category_name_english as category_name_english,
from raw.category_translation

-- dim_category: one row per product category, with its English name. Categories missing from
-- the translation keep their Portuguese name with underscores as spaces; products without a
-- category fall under 'unknown'. category_label is the English name in Title Case with spaces
-- (bed_bath_table reads Bed Bath Table), what the dashboards show. Grain: category_key.
with translations as (
    select category_name, category_name_english from stg_category_translation
),
used as (
    select distinct coalesce(category_name, 'unknown') as category_name from stg_products
),
all_categories as (
    select category_name from translations
    union
    select category_name from used
)
select
    c.category_name as category_key,
    c.category_name as category_name,
    coalesce(t.category_name_english, replace(c.category_name, '_', ' ')) as category_name_english,
    array_to_string(
        list_transform(string_split(replace(coalesce(t.category_name_english, c.category_name), '_', ' '), ' '), w -> upper(substring(w, 1, 1)) || substring(w, 2)),
        ' '
    ) as category_label,
    t.category_name_english is not null as is_translated,
from all_categories as c
left join translations as t on t.category_name = c.category_name

-- mart_product_trends: sales per purchase month and product category (canceled and
-- unavailable orders excluded). Grain: (month_start, category_key).
with items as (
    select order_id, category_key, price, freight_value, cast(date_trunc('month', purchase_date) as date) as month_start
    from fact_order_items
    where order_status not in ('canceled', 'unavailable')
)
select
    i.month_start,
    i.category_key,
    c.category_name_english,
    cast(count(distinct i.order_id) as integer) as orders,
    cast(count(*) as integer) as items,
    sum(i.price) as gmv,
    sum(i.freight_value) as freight,
from items as i
left join dim_category as c on c.category_key = i.category_key
group by i.month_start, i.category_key, c.category_name_english

-- mart_monthly_revenue: one row per purchase month. Revenue counts payments of orders that
-- were not canceled or unavailable; gmv and freight the items of the same orders; orders and
-- customers count every order. aov = revenue / revenue_orders. Grain: month_start.
with orders as (
    select
        order_id, customer_unique_id, order_status, purchased_at,
        cast(date_trunc('month', purchase_date) as date) as month_start,
        order_status not in ('canceled', 'unavailable') as counts_as_revenue,
        items, items_value, freight_value, payment_value,
    from fact_deliveries
),
first_orders as (
    select customer_unique_id, cast(date_trunc('month', min(purchased_at)) as date) as first_month
    from orders
    group by customer_unique_id
),
monthly as (
    select
        month_start,
        count(*) as orders,
        count(*) filter (where order_status = 'delivered') as delivered_orders,
        count(*) filter (where order_status = 'canceled') as canceled_orders,
        count(*) filter (where counts_as_revenue) as revenue_orders,
        count(distinct customer_unique_id) as customers,
        sum(items) filter (where counts_as_revenue) as items,
        coalesce(sum(items_value) filter (where counts_as_revenue), 0) as gmv,
        coalesce(sum(freight_value) filter (where counts_as_revenue), 0) as freight,
        coalesce(sum(payment_value) filter (where counts_as_revenue), 0) as revenue,
    from orders
    group by month_start
),
new_customers as (
    select first_month as month_start, count(*) as new_customers from first_orders group by first_month
)
select
    m.month_start,
    cast(m.orders as integer) as orders,
    cast(m.delivered_orders as integer) as delivered_orders,
    cast(m.canceled_orders as integer) as canceled_orders,
    cast(m.revenue_orders as integer) as revenue_orders,
    cast(m.customers as integer) as customers,
    cast(coalesce(n.new_customers, 0) as integer) as new_customers,
    cast(coalesce(m.items, 0) as integer) as items,
    m.gmv,
    m.freight,
    m.revenue,
    cast(m.revenue as double) / nullif(m.revenue_orders, 0) as aov,
from monthly as m
left join new_customers as n on n.month_start = m.month_start

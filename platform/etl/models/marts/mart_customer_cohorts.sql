-- mart_customer_cohorts: customers grouped by the month of their first order (the cohort),
-- and how many of them ordered in each later month. Grain: (cohort_month, months_since_first).
with orders as (
    select customer_unique_id, cast(date_trunc('month', purchase_date) as date) as order_month
    from fact_deliveries
),
cohorts as (
    select customer_unique_id, min(order_month) as cohort_month from orders group by customer_unique_id
),
activity as (
    select distinct
        c.cohort_month,
        c.customer_unique_id,
        cast(date_diff('month', c.cohort_month, o.order_month) as integer) as months_since_first,
    from orders as o
    join cohorts as c on c.customer_unique_id = o.customer_unique_id
),
sizes as (
    select cohort_month, count(*) as cohort_size from cohorts group by cohort_month
)
select
    a.cohort_month,
    a.months_since_first,
    cast(s.cohort_size as integer) as cohort_size,
    cast(count(*) as integer) as active_customers,
    count(*) / s.cohort_size as retention,
from activity as a
join sizes as s on s.cohort_month = a.cohort_month
group by a.cohort_month, a.months_since_first, s.cohort_size

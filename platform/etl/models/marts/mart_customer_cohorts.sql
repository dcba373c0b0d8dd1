-- mart_customer_cohorts: customers grouped by the month of their first order (the cohort) and
-- the state they ordered from then, and how many of them ordered in each later month, up to
-- the last month with orders. Every (cohort, state, month) has a row, zero when nobody came
-- back, so averages over cohorts are not biased towards the cohorts that did return. The
-- state lets the dashboards' state filter and the regional role's row-level security apply.
-- in_reporting_window: the cohort's month and the month the row counts (cohort month plus
-- months_since_first) both fall in the reporting window (int_reporting_window), stored so that
-- the semantic layer filters on a boolean.
-- Grain: (cohort_month, customer_state, months_since_first).
with orders as (
    select customer_unique_id, cast(date_trunc('month', purchase_date) as date) as order_month
    from fact_deliveries
),
cohorts as (
    select
        customer_unique_id,
        cast(date_trunc('month', purchase_date) as date) as cohort_month,
        coalesce(customer_state, 'unknown') as customer_state,
    from fact_deliveries
    where is_first_order
),
sizes as (
    select cohort_month, customer_state, count(*) as cohort_size from cohorts group by cohort_month, customer_state
),
months as (
    select distinct month_start from dim_date
),
last_month as (
    select max(order_month) as last_month from orders
),
reporting_window as (  -- one row, its dates null when no month is settled
    select max(first_day) as first_day, max(last_day) as last_day from int_reporting_window
),
grid as (
    select
        s.cohort_month,
        s.customer_state,
        s.cohort_size,
        cast(date_diff('month', s.cohort_month, m.month_start) as integer) as months_since_first,
    from sizes as s
    cross join months as m
    cross join last_month as l
    where m.month_start between s.cohort_month and l.last_month
),
activity as (
    select
        c.cohort_month,
        c.customer_state,
        cast(date_diff('month', c.cohort_month, o.order_month) as integer) as months_since_first,
        count(distinct c.customer_unique_id) as active_customers,
    from orders as o
    join cohorts as c on c.customer_unique_id = o.customer_unique_id
    group by c.cohort_month, c.customer_state, months_since_first
)
select
    g.cohort_month,
    g.customer_state,
    g.months_since_first,
    cast(g.cohort_size as integer) as cohort_size,
    cast(coalesce(a.active_customers, 0) as integer) as active_customers,
    coalesce(a.active_customers, 0) / g.cohort_size as retention,
    coalesce(
        g.cohort_month between w.first_day and w.last_day
        and cast(g.cohort_month + g.months_since_first * interval '1 month' as date) between w.first_day and w.last_day,
        false
    ) as in_reporting_window,
from grid as g
cross join reporting_window as w
left join activity as a
    on a.cohort_month = g.cohort_month and a.customer_state = g.customer_state and a.months_since_first = g.months_since_first

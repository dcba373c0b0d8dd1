-- int_reporting_window: one row, the complete months that time series show by default (the
-- semantic layer's complete periods). A month is settled when the data run past its last day
-- and it has at least a tenth of the median month's orders; the window runs from the first
-- settled month to the last, so a real dip between them stays visible, while the ragged
-- edges (the Olist files' few orders of late 2016 and of September and October 2018) are
-- left out. No settled month: no row, and time series show nothing. The facts and the cohort
-- mart store whether each row falls in it (`in_reporting_window`), which the semantic layer
-- reads instead of comparing every row with this row's dates; mart_reporting_window publishes
-- it. Grain: one row.
with monthly as (
    select cast(date_trunc('month', purchase_date) as date) as month_start, count(*) as orders
    from stg_orders
    where purchase_date is not null
    group by 1
),
settled as (
    select month_start
    from monthly
    where orders >= 0.1 * (select median(orders) from monthly)
      and cast(month_start + interval 1 month as date) <= (select max(purchase_date) from stg_orders)
)
select
    min(month_start) as first_day,
    cast(max(month_start) + interval 1 month - interval 1 day as date) as last_day,
    count(*) as settled_months,
    (select count(*) from monthly) as months_with_orders,
from settled
having count(*) > 0

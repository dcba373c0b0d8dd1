-- How fresh the dashboards' data is: when the warehouse's newest files were loaded (the run
-- that published them) and the last day with an order. One row.
select
    (select max(loaded_at) from meta.loads) as published_at,
    (select max(run_id) from meta.loads) as run_id,
    (select max(purchase_date) from fact_deliveries) as last_order_date,

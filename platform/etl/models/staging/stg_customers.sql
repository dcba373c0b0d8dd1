-- stg_customers: one row per customer_id (one per order); customer_unique_id is the person.
-- Grain: customer_id.
select
    customer_id,
    customer_unique_id,
    customer_zip_code_prefix as zip_code_prefix,
    customer_city as city,
    customer_state as state,
from raw.customers

-- mart_reporting_window: one row, the reporting window of complete months
-- (int_reporting_window, where the rule is), published for the BI tools and the alerts.
-- Grain: one row.
select first_day, last_day, settled_months, months_with_orders from int_reporting_window

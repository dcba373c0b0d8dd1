-- 1 when the admins should hear about the pipeline, else 0: the last ETL run that ran to an
-- end failed, or no run has published a warehouse for more than {{ max_age_hours }} hours
-- (operations store). One row and one column, as an alert needs.
select case
    when (select status from pipeline_runs where status in ('succeeded', 'failed') order by run_id desc limit 1) = 'failed' then 1
    when coalesce((select max(finished_at) from pipeline_runs where status = 'succeeded' and published_file is not null),
                  '-infinity'::timestamptz) < now() - interval '{{ max_age_hours }} hours' then 1
    else 0
end as pipeline_alert

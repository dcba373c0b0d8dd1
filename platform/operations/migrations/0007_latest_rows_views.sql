-- Platform health lists the latest ETL runs and quality failures, not all of them: the views
-- end at the latest 50 runs and the latest 100 failures. A table chart asked for its latest N
-- rows got N, and Superset then showed "The row limit set for the chart was reached" over a
-- list meant to be the latest N; the charts now ask for more rows than a view gives. The whole
-- history stays in pipeline_runs and quality_checks (SQL Lab on the operations store).

create or replace view olist_pipeline_runs as
select
    r.run_id,
    r.started_at,
    r.trigger,
    r.status,
    r.duration_s,
    coalesce((select sum(value::bigint) from jsonb_each_text(r.rows_read)), 0) as rows_read,
    coalesce((select sum(value::bigint) from jsonb_each_text(r.rows_loaded)), 0) as rows_loaded,
    coalesce((select sum(value::bigint) from jsonb_each_text(r.rows_quarantined)), 0) as rows_quarantined,
    q.rules_failed,
    q.warnings,
    r.error
from pipeline_runs as r
left join quality_reports as q on q.run_id = r.run_id
order by r.run_id desc
limit 50;

create or replace view olist_quality_failures as
select
    c.run_id,
    r.started_at,
    c.rule,
    q.severity,
    q.source_table,
    c.rows_checked,
    c.rows_failing,
    c.example_keys::text as example_keys
from quality_checks as c
join quality_rules as q on q.rule = c.rule
join pipeline_runs as r on r.run_id = c.run_id
where not c.passed
order by c.run_id desc, c.rule
limit 100;

-- The operations store's rows the Platform health dashboard shows, as views the BI tools read
-- like tables (datasets.yaml: database operations). As SQL in the dataset, Superset parsed and
-- wrapped it and opened a connection for the default schema on every chart request, even one
-- answered from its cache. The read-only role olist_ops_reader is granted these views when
-- provisioning creates it (olist_bi.operations.postgres.OPS_TABLES).

-- ETL runs, with rows summed over files and the run's quality summary.
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
left join quality_reports as q on q.run_id = r.run_id;

-- Quality rules that did not pass, per run: rejects, warnings and errors.
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
where not c.passed;

grant select on olist_pipeline_runs, olist_quality_failures to olist_app;

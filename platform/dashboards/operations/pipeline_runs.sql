-- ETL runs, newest first, with rows summed over files.
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

-- Quality rules that did not pass, per run: rejects, warnings and errors.
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

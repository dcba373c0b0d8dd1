-- The quality rules a run failed (rows it rejected or that stopped it), worst first: what the
-- admins' mail about a failed run names.
select c.rule, r.source_table, r.severity, c.rows_failing, c.rows_checked, r.description
from quality_checks as c
join quality_rules as r using (rule)
where c.run_id = %s and not c.passed and r.severity in ('error', 'reject')
order by r.severity = 'error' desc, c.rows_failing desc
limit 10

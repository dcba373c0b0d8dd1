-- The application role: what every command of the platform needs, and nothing more.
--
-- Migrations run as the store's owner (`olist-bi migrate`, the compose init job); every other
-- command runs as a login that is a member of `olist_app` (docs/operations.md). `olist_app`
-- reads and writes the operational tables, reads the audit trail and appends to it through
-- `audit_append` (0003); it creates nothing, so the tables the platform's libraries would
-- otherwise create on first use are made here.

-- APScheduler's job store (SQLAlchemyJobStore's own table, as it would create it).
create table if not exists apscheduler_jobs (
    id            varchar(191) primary key,
    next_run_time double precision,
    job_state     bytea not null
);
create index if not exists ix_apscheduler_jobs_next_run_time on apscheduler_jobs (next_run_time);

grant usage on schema public to olist_app;
grant select on schema_migrations to olist_app;
grant select, insert, update, delete on
    pipeline_runs, task_executions, data_loads, quality_rules, quality_checks, quality_reports,
    roles, users, access_snapshots, apscheduler_jobs
    to olist_app;
grant usage, select on all sequences in schema public to olist_app;
revoke all on sequence audit_logs_id_seq from olist_app;  -- the trail's ids come from audit_append only

-- The operations store: run history, loads and data-quality results of the warehouse pipeline.

create table pipeline_runs (
    run_id          bigint generated always as identity primary key,
    trigger         text not null check (trigger in ('manual', 'schedule', 'new_drop')),
    status          text not null check (status in ('running', 'succeeded', 'failed', 'skipped')),
    source          text,
    full_rebuild    boolean not null default false,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    duration_s      double precision,
    rows_read       jsonb not null default '{}'::jsonb,   -- per table
    rows_loaded     jsonb not null default '{}'::jsonb,
    rows_quarantined jsonb not null default '{}'::jsonb,
    published_file  text,
    error           text,
    host            text,
    pid             integer
);
create index pipeline_runs_started on pipeline_runs (started_at desc);

create table task_executions (
    task_id     bigint generated always as identity primary key,
    run_id      bigint not null references pipeline_runs (run_id),
    task        text not null,              -- extract, validate, transform, test, publish
    status      text not null check (status in ('running', 'succeeded', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    duration_s  double precision,
    detail      jsonb not null default '{}'::jsonb,
    error       text
);
create index task_executions_run on task_executions (run_id);

create table data_loads (
    load_id     bigint generated always as identity primary key,
    run_id      bigint not null references pipeline_runs (run_id),
    source_file text not null,             -- the contract's file name
    path        text not null,
    size_bytes  bigint not null,
    sha256      text not null,
    rows_read   bigint not null,
    rows_loaded bigint not null,
    rows_quarantined bigint not null,
    loaded_at   timestamptz not null default now()
);
create index data_loads_checksum on data_loads (source_file, sha256);

create table quality_rules (
    rule        text primary key,
    source_table text not null,
    severity    text not null check (severity in ('error', 'reject', 'warn')),
    description text not null,
    definition  text not null,
    updated_at  timestamptz not null default now()
);

create table quality_checks (
    check_id    bigint generated always as identity primary key,
    run_id      bigint not null references pipeline_runs (run_id),
    rule        text not null references quality_rules (rule),
    rows_checked bigint not null,
    rows_failing bigint not null,
    passed      boolean not null,
    example_keys jsonb not null default '[]'::jsonb,
    checked_at  timestamptz not null default now()
);
create index quality_checks_run on quality_checks (run_id);

create table quality_reports (
    run_id      bigint primary key references pipeline_runs (run_id),
    rules_checked integer not null,
    rules_failed integer not null,
    warnings    integer not null,
    rows_read   bigint not null,
    rows_quarantined bigint not null,
    quarantined_share double precision not null,
    summary     jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now()
);

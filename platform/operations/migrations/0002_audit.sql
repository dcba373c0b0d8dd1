-- The audit trail: append-only, each row's hash chained over the previous one.
-- Rows are written only through INSERT; a trigger assigns the id, the time and the hashes
-- under an advisory lock, so concurrent writers never fork the chain. UPDATE, DELETE and
-- TRUNCATE are refused by triggers (which also stop a superuser's plain statements) and
-- by privileges for the application role `olist_app`.

create table audit_logs (
    id        bigint primary key,
    at        timestamptz not null,
    actor     text not null,
    source    text not null,   -- etl, superset, metabase, platform, access_review, sqllab
    action    text not null,   -- e.g. etl.run.succeeded, access.role.granted
    target    text,
    details   jsonb not null default '{}'::jsonb,
    prev_hash text not null,
    hash      text not null
);
create sequence audit_logs_id_seq owned by audit_logs.id;
create index audit_logs_at on audit_logs (at);
create index audit_logs_actor on audit_logs (actor);
create index audit_logs_action on audit_logs (action);

-- The one definition of a row's hash, used by the insert trigger and by verification.
create function audit_row_hash(prev text, at timestamptz, actor text, source text, action text, target text, details jsonb)
returns text language sql immutable as $$
    select encode(sha256(convert_to(
        prev || '|' || to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '|' || actor || '|' || source
        || '|' || action || '|' || coalesce(target, '') || '|' || details::text, 'UTF8')), 'hex')
$$;

create function audit_logs_chain() returns trigger language plpgsql as $$
declare
    last_hash text;
begin
    perform pg_advisory_xact_lock(7106713);
    select hash into last_hash from audit_logs order by id desc limit 1;
    new.id := nextval('audit_logs_id_seq');
    new.at := clock_timestamp();
    new.details := coalesce(new.details, '{}'::jsonb);
    new.prev_hash := coalesce(last_hash, repeat('0', 64));
    new.hash := audit_row_hash(new.prev_hash, new.at, new.actor, new.source, new.action, new.target, new.details);
    return new;
end $$;

create trigger audit_logs_chain before insert on audit_logs for each row execute function audit_logs_chain();

create function audit_logs_refuse() returns trigger language plpgsql as $$
begin
    raise exception 'audit_logs is append-only: % is not allowed', tg_op using errcode = 'insufficient_privilege';
end $$;

create trigger audit_logs_no_update before update or delete on audit_logs for each row execute function audit_logs_refuse();
create trigger audit_logs_no_truncate before truncate on audit_logs for each statement execute function audit_logs_refuse();

-- The application role: may append and read the trail, never change it.
do $$ begin
    if not exists (select 1 from pg_roles where rolname = 'olist_app') then
        create role olist_app nologin;
    end if;
end $$;
revoke all on audit_logs from public;
grant select, insert on audit_logs to olist_app;
grant usage on sequence audit_logs_id_seq to olist_app;

-- The access model the platform provisions (platform/access/access.yaml) and what the BI tools hold.
create table roles (
    name        text primary key,
    description text not null,
    source      text not null,      -- platform (declared in the repo) or superset (seen there)
    updated_at  timestamptz not null default now()
);

create table users (
    username   text primary key,
    roles      text[] not null default '{}',
    active     boolean not null default true,
    source     text not null,
    updated_at timestamptz not null default now()
);

-- The last snapshot of each BI tool's users, roles and memberships, for the access review.
create table access_snapshots (
    tool       text primary key,
    taken_at   timestamptz not null,
    snapshot   jsonb not null,
    last_query_time double precision not null default 0   -- SQL Lab history copied up to this start time (epoch ms)
);

-- The audit trail, hardened against the login that runs the platform.
--
-- 1. An unambiguous hash. Version 1 joined the fields with '|' unescaped, so text moved across
--    a field boundary kept the hash. Version 2 (every row from now on) hashes each field as a
--    netstring, `<bytes>:<text>,` (a null is `~`), after the tag `v2;`. Rows written before
--    keep version 1 (`hash_version`): the trail is append-only, history is not rewritten.
--    `olist-bi audit verify` recomputes both versions in Python, never with these functions.
-- 2. An owner nobody logs in as. The table, its sequence and its trigger functions belong to
--    `olist_audit_owner` (NOLOGIN); the application role `olist_app` reads the trail and
--    appends through `audit_append`, a SECURITY DEFINER function, and holds no other right on
--    it: it cannot insert a row of its own making, update, delete, disable a trigger, alter
--    or own the table. (The identity that runs migrations must be able to hand ownership
--    over: a superuser, or a member of olist_audit_owner; docker/postgres/init.sh.)

alter table audit_logs add column hash_version smallint not null default 1;

create function audit_field(value text) returns text language sql immutable as $$
    select case when value is null then '~' else octet_length(convert_to(value, 'UTF8'))::text || ':' || value || ',' end
$$;

create function audit_row_hash_v2(prev text, at timestamptz, actor text, source text, action text, target text, details jsonb)
returns text language sql immutable as $$
    select encode(sha256(convert_to(
        'v2;' || audit_field(prev) || audit_field(to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'))
        || audit_field(actor) || audit_field(source) || audit_field(action) || audit_field(target) || audit_field(details::text),
        'UTF8')), 'hex')
$$;

create or replace function audit_logs_chain() returns trigger language plpgsql as $$
declare
    last_hash text;
begin
    perform pg_advisory_xact_lock(7106713);
    select hash into last_hash from audit_logs order by id desc limit 1;
    new.id := nextval('audit_logs_id_seq');
    new.at := clock_timestamp();
    new.details := coalesce(new.details, '{}'::jsonb);
    new.prev_hash := coalesce(last_hash, repeat('0', 64));
    new.hash_version := 2;
    new.hash := audit_row_hash_v2(new.prev_hash, new.at, new.actor, new.source, new.action, new.target, new.details);
    return new;
end $$;

create function audit_append(p_actor text, p_source text, p_action text, p_target text, p_details jsonb)
returns bigint language sql security definer set search_path = pg_catalog, public as $$
    insert into public.audit_logs (actor, source, action, target, details, id, at, prev_hash, hash)
    values (p_actor, p_source, p_action, p_target, coalesce(p_details, '{}'::jsonb), 0, now(), '', '')
    returning id
$$;

do $$ begin
    if not exists (select 1 from pg_roles where rolname = 'olist_audit_owner') then
        create role olist_audit_owner nologin;
    end if;
end $$;

-- A new owner must be able to create in the table's schema (PostgreSQL 15+ no longer lets
-- everyone create in `public`): granted for the hand-over, taken back after it.
grant create on schema public to olist_audit_owner;
alter table audit_logs owner to olist_audit_owner;
alter sequence audit_logs_id_seq owner to olist_audit_owner;
alter function audit_logs_chain() owner to olist_audit_owner;
alter function audit_logs_refuse() owner to olist_audit_owner;
alter function audit_row_hash(text, timestamptz, text, text, text, text, jsonb) owner to olist_audit_owner;
alter function audit_row_hash_v2(text, timestamptz, text, text, text, text, jsonb) owner to olist_audit_owner;
alter function audit_field(text) owner to olist_audit_owner;
alter function audit_append(text, text, text, text, jsonb) owner to olist_audit_owner;
revoke create on schema public from olist_audit_owner;

revoke all on audit_logs from public, olist_app;
revoke all on sequence audit_logs_id_seq from public, olist_app;
grant select on audit_logs to olist_app;
revoke all on function audit_append(text, text, text, text, jsonb) from public;
grant execute on function audit_append(text, text, text, text, jsonb) to olist_app;

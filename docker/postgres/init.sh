#!/bin/sh
# Runs once, when the postgres volume is empty (docker-entrypoint-initdb.d): one database per
# consumer, each owned by its own login role. Passwords come from the environment (.env).
#   olist     -> olist_ops  (operations and audit: the owner, which runs `olist-bi migrate`;
#                            may create the read-only role olist_ops_reader)
#   olist_runtime           (the login every other platform command runs as: a member of
#                            olist_app, which may append to the audit trail and nothing more)
#   olist_audit_owner       (owns the audit trail; nobody logs in as it; olist may hand
#                            ownership to it, which is what migration 0003 does)
#   superset  -> superset   (Superset's metadata)
#   metabase  -> metabase   (Metabase's application database)
set -eu

for name in POSTGRES_PASSWORD OLIST_DB_PASSWORD OLIST_RUNTIME_DB_PASSWORD SUPERSET_DB_PASSWORD METABASE_DB_PASSWORD; do
    eval "value=\${$name}"
    case "$value" in
        *change-me*) echo "init: $name still holds the example value of .env.example; set a real password" >&2; exit 1 ;;
    esac
done

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v olist_pw="$OLIST_DB_PASSWORD" -v runtime_pw="$OLIST_RUNTIME_DB_PASSWORD" \
    -v superset_pw="$SUPERSET_DB_PASSWORD" -v metabase_pw="$METABASE_DB_PASSWORD" <<'SQL'
create role olist login createrole password :'olist_pw';
create role olist_app nologin;
create role olist_audit_owner nologin;
grant olist_audit_owner to olist;
create role olist_runtime login password :'runtime_pw' in role olist_app;
create role superset login password :'superset_pw';
create role metabase login password :'metabase_pw';
create database olist_ops owner olist;
create database superset owner superset;
create database metabase owner metabase;
revoke all on database olist_ops from public;
grant connect on database olist_ops to olist_runtime;
revoke all on database superset from public;
revoke all on database metabase from public;
SQL

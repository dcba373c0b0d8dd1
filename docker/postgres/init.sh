#!/bin/sh
# Runs once, when the postgres volume is empty (docker-entrypoint-initdb.d): one database per
# consumer, each owned by its own login role. Passwords come from the environment (.env).
#   olist     -> olist_ops  (operations and audit; may create the roles the migrations and
#                            provisioning need: olist_app, olist_ops_reader)
#   superset  -> superset   (Superset's metadata)
#   metabase  -> metabase   (Metabase's application database)
set -eu

for name in POSTGRES_PASSWORD OLIST_DB_PASSWORD SUPERSET_DB_PASSWORD METABASE_DB_PASSWORD; do
    eval "value=\${$name}"
    case "$value" in
        *change-me*) echo "init: $name still holds the example value of .env.example; set a real password" >&2; exit 1 ;;
    esac
done

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v olist_pw="$OLIST_DB_PASSWORD" -v superset_pw="$SUPERSET_DB_PASSWORD" -v metabase_pw="$METABASE_DB_PASSWORD" <<'SQL'
create role olist login createrole password :'olist_pw';
create role superset login password :'superset_pw';
create role metabase login password :'metabase_pw';
create database olist_ops owner olist;
create database superset owner superset;
create database metabase owner metabase;
revoke all on database olist_ops from public;
revoke all on database superset from public;
revoke all on database metabase from public;
SQL

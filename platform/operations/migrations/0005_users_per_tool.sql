-- One row per user and tool. The access review now reads Metabase as well as Superset, and a
-- login can exist in both (Superset names users by username, Metabase by e-mail; the demo's
-- "admin" is in both): `source` says where the row comes from (`platform` for the users the
-- platform provisioned, `superset` and `metabase` for what each tool's access review saw), and
-- the same name in two tools is two rows.
alter table users drop constraint users_pkey;
alter table users add primary key (source, username);

"""What a reader of the warehouse must never do, in SQL: the nine SQL Lab escapes (files, URLs,
other databases, extensions, the external-access switch), then changes to the locked
configuration and writes. Superset's SQL Lab, the connection provider and Metabase's native
editor are all tried with the same list."""

ESCAPE_FILE = "/tmp/olist-escape.csv"

ESCAPES = [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from glob('/etc/*')",
    f"copy (select 1) to '{ESCAPE_FILE}'",
    "attach '/tmp/olist-escape.duckdb' as other",
    "install httpfs",
    "load httpfs",
    "set enable_external_access = true",
    "select * from 'file:///etc/passwd'",
]

LOCKED = [
    "set threads = 8",
    "set memory_limit = '64GB'",
    "create table escaped as select 1",
]

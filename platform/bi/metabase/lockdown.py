"""The warehouse connection Metabase gets: read-only and locked down like every other reader.

Metabase reaches the warehouse through the community DuckDB driver (the pair pinned in
docker/metabase/Dockerfile: Metabase 0.63.5, driver 1.5.5.0 with DuckDB 1.5.5). What the
driver does with a connection's details, read in its source (`src/metabase/driver/duckdb.clj`,
`jdbc-spec` and `ensure-init-sql!`, tag 1.5.5.0):

- `read_only`, `memory_limit` and `old_implicit_casting` become DuckDB options; so does every
  `key=value` of `additional-options` (joined with `&`), applied last.
- It always sets `temp_directory` to `<file>.tmp`, inside the warehouse's read-only mount, and
  `TimeZone=UTC`, which DuckDB can only apply at start-up by loading the `icu` extension.
  That is why `enable_external_access=false` and `autoload_known_extensions=false` cannot be
  start-up options here: every connection would fail to open (upstream driver issues #54, #60
  and #67). They are set right after opening instead, by `init_sql`.
- `init_sql` runs once on every new pooled connection, as one statement list that stops at the
  first error; an error whose message holds "attach" and "already exists" is taken as "already
  done" and swallowed, any other error fails the query.

All pooled connections share one DuckDB instance per file, and settings are the instance's.
The driver runs `init_sql` on every checkout (c3p0 hands out a new proxy each time, and the
driver remembers proxies). So its first statement asks whether the instance is locked already
and, if it is, raises an error the driver takes as "already done" (`already-attached-error?`):
the list ends before any `SET` meets the lock, and the query runs on the locked instance. On an
unlocked instance it passes, and this connection applies the refusals and the lock before its
own query. No connection can query an unlocked instance: two connections opening a fresh
instance at once both pass the first statement, and the second to reach a `SET` after the
first has locked fails its query with DuckDB's "the configuration has been locked", an error
the driver does not swallow (and a `SET` that fails for any other reason fails the same way).
The same refusals as Superset's connection (`olist_bi.engines.duckdb.warehouse.LOCKDOWN`)
follow; `tests/metabase/test_lockdown.py` runs the nine SQL Lab escapes through a model of the
driver and every interleaving of two connections' lists, and docs/metabase.md has the
checklist for a real one.
"""

from __future__ import annotations

from olist_bi.engines.duckdb.warehouse import DEFAULT_LIMITS, LOCKDOWN

# The first statement of `init_sql`: it ends the list, as the driver's "already done", on an
# instance whose configuration is locked. (It replaces a marker secret whose second creation
# failed with "already exists": that let a second connection query a fresh instance before the
# first had locked it.)
SKIP_WHEN_LOCKED = (
    "SELECT CASE WHEN current_setting('lock_configuration') "
    "THEN error('olist lockdown: attach already exists: the configuration is locked') END"
)
# Spilling goes to a directory the Metabase server can write, not beside the read-only file.
TEMP_DIRECTORY = "/tmp/olist-duckdb"


def init_sql() -> str:
    """The statements every checkout runs: end here if locked, else the refusals, then the lock."""
    # The driver sets temp_directory itself (additional_options below); Metabase's readers keep
    # it, and its spill folder stays for issue 34 to settle.
    settings = [
        f"SET {name} = {str(value).lower()}" for name, value in LOCKDOWN.items() if name not in ("lock_configuration", "temp_directory")
    ]
    return ";\n".join([SKIP_WHEN_LOCKED, *settings, "SET lock_configuration = true"]) + ";"


def additional_options() -> str:
    """The start-up options without a field of their own in the driver (`a=b&c=d`)."""
    return f"threads={DEFAULT_LIMITS['threads']}&temp_directory={TEMP_DIRECTORY}"


def details(database_file: str) -> dict:
    """The connection details of the warehouse in Metabase, for the generation file as Metabase sees it."""
    return {
        "database_file": database_file,
        "read_only": True,
        "old_implicit_casting": True,
        "memory_limit": DEFAULT_LIMITS["memory_limit"],
        "additional-options": additional_options(),
        "init_sql": init_sql(),
    }

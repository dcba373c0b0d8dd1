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
So `init_sql` first creates a marker that can exist once per instance, named so that the
driver recognises the second attempt as "already done": on the first connection the settings
are applied and the configuration locked; on every later one the marker's "already exists"
ends the list before any `SET` meets the lock. The same refusals as Superset's connection
(`olist_bi.engines.duckdb.warehouse.LOCKDOWN`) follow; `tests/metabase/test_lockdown.py` runs the nine SQL Lab
escapes through a model of the driver, and docs/metabase.md has the checklist for a real one.
"""

from __future__ import annotations

from olist_bi.engines.duckdb.warehouse import DEFAULT_LIMITS, LOCKDOWN

# A temporary secret lives in the DuckDB instance (not in one connection), is allowed on a
# read-only database, and its second creation fails with "... 'olist_lockdown_attached' already exists!".
MARKER = "olist_lockdown_attached"
# Spilling goes to a directory the Metabase server can write, not beside the read-only file.
TEMP_DIRECTORY = "/tmp/olist-duckdb"


def init_sql() -> str:
    """The statements every new connection runs: the marker, the refusals, then the lock."""
    # The driver sets temp_directory itself (additional_options below); Metabase's readers keep
    # it, and its spill folder stays for issue 34 to settle.
    settings = [
        f"SET {name} = {str(value).lower()}" for name, value in LOCKDOWN.items() if name not in ("lock_configuration", "temp_directory")
    ]
    return ";\n".join([f"CREATE SECRET {MARKER} (TYPE http)", *settings, "SET lock_configuration = true"]) + ";"


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

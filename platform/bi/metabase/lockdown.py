"""The warehouse connection Metabase gets: read-only and locked down like every other reader,
one DuckDB instance for months of publishes.

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
- `init_sql` runs on every checkout (c3p0 hands out a new proxy each time, and the driver
  remembers proxies), as one statement list that stops at the first error; an error whose
  message holds "attach" and "already exists" is taken as "already done" and swallowed, any
  other error fails the query.

**One instance, generations attached.** The driver's `describe-database` and `describe-table`
(a sync) clone a pooled connection and never close the clone, and DuckDB's JDBC layer keeps an
instance while any connection to it lives: pointed at each new generation file, Metabase would
keep one more instance (up to its memory limit, and the deleted file's disk) per publish. So
Metabase opens a file that never changes, an empty catalog (`catalog_name`) named by the
options it is opened and locked with, and each checkout's `init_sql` attaches the generation
served now, read-only, makes it the connection's default catalog and detaches the generations
before it (`details`). A query in flight on a detached generation finishes on it; the next
checkout reads the new one. Changed options name a new catalog, so they apply at once.

**The lock.** After the attachments, `init_sql` asks whether the instance is locked already
and, if it is, raises an error the driver takes as "already done" (`already-attached-error?`):
the list ends before any `SET` meets the lock, and the query runs on the locked instance. On an
unlocked instance it passes, and this connection applies the refusals and the lock before its
own query. No connection can query an unlocked instance: two connections opening a fresh
instance at once both pass the check, and the second to reach a `SET` after the first has
locked fails its query with DuckDB's "the configuration has been locked", an error the driver
does not swallow (and a `SET` that fails for any other reason fails the same way).
The refusals are Superset's (`olist_bi.engines.duckdb.warehouse.LOCKDOWN`) plus one folder a
locked instance may still open: the copy's generations folder (`allowed_directories`), so that
the next publish can be attached. DuckDB lets a query write there too (`COPY ... TO`), so
Metabase must see the warehouse read-only (docker-compose mounts it `:ro`), which provisioning
checks (`provision.check_read_only`). `tests/metabase/test_lockdown.py` runs the nine SQL Lab
escapes through a model of the driver and every interleaving of two connections' lists, and
docs/metabase.md has the checklist for a real one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from olist_bi.engines.duckdb.warehouse import DEFAULT_LIMITS, LOCKDOWN

# The statement after the attachments: it ends the list, as the driver's "already done", on an
# instance whose configuration is locked. (It replaces a marker secret whose second creation
# failed with "already exists": that let a second connection query a fresh instance before the
# first had locked it.)
SKIP_WHEN_LOCKED = (
    "SELECT CASE WHEN current_setting('lock_configuration') "
    "THEN error('olist lockdown: attach already exists: the configuration is locked') END"
)
# Spilling goes to a directory the Metabase server can write, not beside the read-only file.
TEMP_DIRECTORY = "/tmp/olist-duckdb"


# After the attachments, on every checkout: a pooled connection that holds a temporary object
# refuses to run the query. Metabase hands the same pooled connections to every user, and DuckDB
# resolves a temporary table, view or macro before the warehouse's (a `CREATE TEMP MACRO nullif`
# changes every ratio): one analyst's temporary objects would change the next user's figures.
# DuckDB cannot refuse to create them, nor drop them by a pattern, so such a connection fails
# every query until Metabase closes the pool (docs/metabase.md). The message holds no "attach":
# the driver does not swallow it.
REFUSE_TEMPORARY_OBJECTS = (
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM duckdb_tables() WHERE temporary)"
    " OR EXISTS (SELECT 1 FROM duckdb_views() WHERE temporary AND NOT internal)"
    " OR EXISTS (SELECT 1 FROM duckdb_functions() WHERE database_name = 'temp')"
    " OR EXISTS (SELECT 1 FROM duckdb_sequences() WHERE temporary)"
    " OR EXISTS (SELECT 1 FROM duckdb_types() WHERE database_name = 'temp' AND NOT internal)"
    " THEN error('olist lockdown: this pooled connection holds temporary objects a query made, which could change "
    "other users'' figures: it answers no more queries until Metabase reopens its pool (at the next publish, or a restart)') END"
)


def alias(generation: str) -> str:
    """The catalog name a generation file is attached as (one per file, never reused)."""
    return "g_" + re.sub(r"\W", "_", PurePosixPath(generation).stem)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_statements(generation: str, detach: Sequence[str] = ()) -> list[str]:
    """Attach `generation` (as Metabase sees it) read-only, make it the default catalog, detach
    the generations named `detach` (aliases, once attached by an earlier `init_sql`), refuse a
    connection holding temporary objects."""
    name = alias(generation)
    return [
        f"ATTACH IF NOT EXISTS {_literal(generation)} AS {name} (READ_ONLY)",
        f"USE {name}",
        *(f"DETACH DATABASE IF EXISTS {old}" for old in detach if old != name),
        REFUSE_TEMPORARY_OBJECTS,
    ]


def lock_statements(folder: str) -> list[str]:
    """End here if locked, else the refusals (the generations `folder` alone left open), then the lock."""
    # The driver sets temp_directory itself (additional_options below); allowed_directories can
    # only be set while external access is still on.
    settings = [f"SET allowed_directories = [{_literal(folder.rstrip('/') + '/')}]"] + [
        f"SET {name} = {str(value).lower()}" for name, value in LOCKDOWN.items() if name not in ("lock_configuration", "temp_directory")
    ]
    return [SKIP_WHEN_LOCKED, *settings, "SET lock_configuration = true"]


def init_sql(generation: str, folder: str, detach: Sequence[str] = ()) -> str:
    """The statements every checkout runs."""
    return ";\n".join([*attach_statements(generation, detach), *lock_statements(folder)]) + ";"


def attached(init: str | None) -> list[str]:
    """The aliases an earlier `init_sql` attached or detached, newest first: what the next one
    detaches (a generation attached by a checkout may have been skipped by none since)."""
    return list(dict.fromkeys(re.findall(r"(?:AS|DETACH DATABASE IF EXISTS) (g_\w+)", init or "")))


def attached_generation(init: str | None) -> str | None:
    """The generation file an `init_sql` attaches."""
    found = re.match(r"ATTACH IF NOT EXISTS '((?:[^']|'')*)'", init or "")
    return found.group(1).replace("''", "'") if found else None


def additional_options() -> str:
    """The start-up options without a field of their own in the driver (`a=b&c=d`)."""
    return f"threads={DEFAULT_LIMITS['threads']}&temp_directory={TEMP_DIRECTORY}"


def _options() -> dict:
    return {
        "read_only": True,
        "old_implicit_casting": True,
        "memory_limit": DEFAULT_LIMITS["memory_limit"],
        "additional-options": additional_options(),
    }


def catalog_name(copy: str, folder: str) -> str:
    """The file name of the empty catalog Metabase opens for a reader copy (`copy`, the copy's
    served file name without suffix): named by every option its instance is opened and locked
    with, as DuckDB keeps one configuration per open file and process."""
    key = json.dumps([_options(), lock_statements(folder)], sort_keys=True)
    return catalog_pattern(copy).replace("*", hashlib.sha256(key.encode()).hexdigest()[:12])


def catalog_pattern(copy: str) -> str:
    """A glob of the catalog files of `copy` (itself a glob, or a copy's name), whatever their options."""
    return f"{copy}.metabase-*.duckdb"


def details(catalog: str, generation: str, folder: str, detach: Sequence[str] = ()) -> dict:
    """The connection details of a reader copy in Metabase, every path as Metabase sees it: the
    catalog file it opens, the generation served now, the folder of the copy's generations, and
    the aliases of generations earlier details attached."""
    return {"database_file": catalog, **_options(), "init_sql": init_sql(generation, folder, detach)}

"""Superset's warehouse connection: the SQLAlchemy dialect `duckdb+olist://<served path>`.

Why a dialect: Superset builds a new SQLAlchemy engine, with NullPool, several times per
chart request and offers no hook that hands it a connection (DB_CONNECTION_MUTATOR only
rewrites the URL and engine arguments). A dialect is what Superset does support: the
provisioned database URI names it, SQLAlchemy finds it through the `sqlalchemy.dialects`
entry point of this package (installed into Superset's environment without dependencies,
see the Makefile), and its `connect()` is ours. It is duckdb-engine's dialect with three
changes:

- `connect()` leases a cursor from the process's warehouse provider (`olist_bi.engines.duckdb.warehouse`)
  instead of opening the file: the current generation, opened once, read-only and locked
  down whatever the connection arguments say; closing the connection ends the lease.
- every statement runs under the platform's query limits, read from the environment Superset
  runs with (OLIST_QUERY_TIMEOUT_SECONDS, OLIST_QUERY_MAX_RESULT_MB; `superset serve` and
  docker-compose set them), not from the database's settings, which a Superset admin can
  edit: interrupted at its deadline, its answer refused past the byte cap, each with a
  message that names the limit (SQL Lab, charts, alerts and reports all come this way).
- the default schema is `main` without a query (duckdb-engine asks every new engine);
- DuckDB's reserved words are read once per process, not once per engine;
- SQL Lab's schema list holds the warehouse's own schemas (main, raw, semantic, meta,
  quarantine) by their plain names: duckdb-engine lists every attached database's schemas
  qualified by database, which here means DuckDB's internal `system` and `temp` and the
  published generation's file name, a name that changes with every publish.

Superset keeps choosing its DuckDB engine spec for `duckdb+olist` (the backend is `duckdb`;
the spec declares no drivers), so SQL Lab, time grains and the sqlglot dialect are unchanged.
"""

from __future__ import annotations

import functools
import os

import duckdb
import duckdb_engine
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.base import PGIdentifierPreparer
from sqlalchemy.pool import NullPool

from olist_bi.engines.duckdb import warehouse


@functools.lru_cache(maxsize=1)
def _reserved_words() -> frozenset[str]:
    with duckdb.connect() as con:
        rows = con.execute("select keyword_name from duckdb_keywords() where keyword_category = 'reserved'").fetchall()
    return frozenset(r[0] for r in rows)


class _Preparer(duckdb_engine.DuckDBIdentifierPreparer):
    def __init__(self, dialect, **kwargs):
        PGIdentifierPreparer.__init__(self, dialect, **kwargs)  # not duckdb-engine's: it queries DuckDB
        self.reserved_words = self.reserved_words | _reserved_words()


def query_limits(env=os.environ) -> warehouse.Limits:
    """The platform's limits on one reader's query, as Superset's processes were given them
    (`superset serve` always passes both; olist_bi.settings, which imports APScheduler, cannot
    load in Superset's environment, hence the defaults repeated here)."""
    timeout = float(env.get("OLIST_QUERY_TIMEOUT_SECONDS") or 60)
    cap_mb = float(env.get("OLIST_QUERY_MAX_RESULT_MB") or 100)
    return warehouse.Limits(timeout, int(cap_mb * 1_000_000))


class LimitedCursor(duckdb_engine.CursorWrapper):
    """duckdb-engine's cursor, each statement on its lease's clock and its answer capped."""

    def __init__(self, lease: warehouse.Lease, connection_wrapper: "LeasedConnection"):
        super().__init__(lease.connection, connection_wrapper)
        self._lease, self._fetched = lease, 0

    def execute(self, statement, parameters=None, context=None):
        self._lease.arm()
        self._fetched = 0
        with self._lease.stopping():
            return super().execute(statement, parameters, context)

    def _counted(self, rows: list) -> list:
        self._fetched += warehouse.estimated_bytes(rows)
        warehouse.check_size(self._fetched, self._lease.limits.max_result_bytes)
        return rows

    def fetchall(self) -> list:
        with self._lease.stopping():  # the rest of the answer: nothing is left to fetch after it
            return warehouse.fetch_capped(self._lease.connection, self._lease.limits.max_result_bytes, fetched=self._fetched)

    def fetchmany(self, size=None) -> list:
        with self._lease.stopping():
            return self._counted(super().fetchmany(size))

    def fetchone(self):
        row = self._lease.connection.fetchone()
        if row is not None:
            self._counted([row])
        return row


class LeasedConnection(duckdb_engine.ConnectionWrapper):
    """duckdb-engine's DBAPI connection around a leased cursor; close() ends the lease."""

    def __init__(self, lease: warehouse.Lease):
        super().__init__(lease.connection)
        self._lease = lease

    def cursor(self) -> LimitedCursor:
        return LimitedCursor(self._lease, self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._lease.release()


class Dialect(duckdb_engine.Dialect):
    driver = "olist"
    preparer = _Preparer
    supports_statement_cache = False

    def connect(self, *cargs, **cparams):
        config = cparams.get("config") or {}
        limits = {k: config[k] for k in warehouse.LIMIT_KEYS if k in config}
        return LeasedConnection(warehouse.lease(cparams["database"], limits, query_limits()))

    def _get_default_schema_name(self, connection) -> str:
        return "main"

    def get_schema_names(self, connection, **kw) -> list[str]:
        rows = connection.execute(
            text(
                "select schema_name from duckdb_schemas() where database_name = current_database() "
                "and schema_name not in ('information_schema', 'pg_catalog') order by schema_name"
            )
        )
        return [r[0] for r in rows]

    @classmethod
    def get_pool_class(cls, url):
        # A pooled connection would pin its generation: each query leases afresh (0.01 ms).
        return NullPool

"""Superset's warehouse connection: the SQLAlchemy dialect `duckdb+olist://<served path>`.

Why a dialect: Superset builds a new SQLAlchemy engine, with NullPool, several times per
chart request and offers no hook that hands it a connection (DB_CONNECTION_MUTATOR only
rewrites the URL and engine arguments). A dialect is what Superset does support: the
provisioned database URI names it, SQLAlchemy finds it through the `sqlalchemy.dialects`
entry point of this package (installed into Superset's environment without dependencies,
see the Makefile), and its `connect()` is ours. It is duckdb-engine's dialect with three
changes:

- `connect()` leases a cursor from the process's warehouse provider (`olist_bi.warehouse`)
  instead of opening the file: the current generation, opened once, read-only and locked
  down whatever the connection arguments say; closing the connection ends the lease.
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

import duckdb
import duckdb_engine
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.base import PGIdentifierPreparer
from sqlalchemy.pool import NullPool

from olist_bi import warehouse


@functools.lru_cache(maxsize=1)
def _reserved_words() -> frozenset[str]:
    with duckdb.connect() as con:
        rows = con.execute("select keyword_name from duckdb_keywords() where keyword_category = 'reserved'").fetchall()
    return frozenset(r[0] for r in rows)


class _Preparer(duckdb_engine.DuckDBIdentifierPreparer):
    def __init__(self, dialect, **kwargs):
        PGIdentifierPreparer.__init__(self, dialect, **kwargs)  # not duckdb-engine's: it queries DuckDB
        self.reserved_words = self.reserved_words | _reserved_words()


class LeasedConnection(duckdb_engine.ConnectionWrapper):
    """duckdb-engine's DBAPI connection around a leased cursor; close() ends the lease."""

    def __init__(self, lease: warehouse.Lease):
        super().__init__(lease.connection)
        self._lease = lease

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
        return LeasedConnection(warehouse.lease(cparams["database"], limits))

    def _get_default_schema_name(self, connection) -> str:
        return "main"

    def get_schema_names(self, connection, **kw) -> list[str]:
        rows = connection.execute(text(
            "select schema_name from duckdb_schemas() where database_name = current_database() "
            "and schema_name not in ('information_schema', 'pg_catalog') order by schema_name"
        ))
        return [r[0] for r in rows]

    @classmethod
    def get_pool_class(cls, url):
        # A pooled connection would pin its generation: each query leases afresh (0.01 ms).
        return NullPool

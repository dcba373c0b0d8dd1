"""The warehouse engines: DuckDB (duckdb/, the default: one file per published generation) and
ClickHouse (clickhouse/, chosen by OLIST_WAREHOUSE_ENGINE)."""

"""The warehouse on ClickHouse (`OLIST_WAREHOUSE_ENGINE=clickhouse`): the same models and
metrics, transpiled from their DuckDB SQL (`dialect`), built and published in ClickHouse
(`warehouse`), through a ClickHouse server (`OLIST_CLICKHOUSE_URL`) or embedded chdb under
`$OLIST_HOME/clickhouse` (`connection`). docs/clickhouse.md says how it fits together."""

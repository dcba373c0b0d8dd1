"""The warehouse on a ClickHouse cluster, on paper: the DDL of a replicated, sharded deployment,
generated from the same models as the single server's (docs/scaling.md).

Replicas first, facts sharded by order:

- every table is a `ReplicatedMergeTree`, its replicas kept in step through ClickHouse Keeper;
- the facts, and the raw tables with an `order_id` beside them, are sharded by order: a
  `<table>_local` table on each shard (its Keeper path holds the `{shard}` macro) and a
  `Distributed` table of the model's name over them, rows placed by `cityHash64(order_id)`, so
  that an order's items, payments and reviews live on one shard;
- the dims and marts (small) and the other raw tables are whole on every node (one Keeper path
  for the cluster): a fact's joins to them stay on its shard.

The columns and their types are read from a warehouse ClickHouse serves (`columns`), so the DDL
follows the models as they build. Every statement is checked by ClickHouse's own parser
(`formatQuery`) in tests/clickhouse/test_cluster.py, which also keeps
docker/clickhouse/cluster/schema.sql, the DDL for the docker-compose profile
`clickhouse-cluster`, equal to what this module generates. Regenerate it with
`olist-bi etl cluster-ddl > docker/clickhouse/cluster/schema.sql` after an `etl run` has built
the warehouse on ClickHouse. What only a cluster can confirm is
on docs/scaling.md's checklist: nothing here builds, publishes or queries on a cluster.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from olist_bi.contract import BY_TABLE
from olist_bi.engines.base import BuildPlan, PlannedModel
from olist_bi.engines.clickhouse.connection import ClickHouse

CLUSTER = "olist"  # the cluster's name in docker/clickhouse/cluster/cluster.xml
SHARDING_KEY = "cityHash64(order_id)"

Columns = Mapping[str, Sequence[tuple[str, str]]]  # table (`<name>` or `raw.<name>`) -> (column, ClickHouse type)


def columns(ch: ClickHouse, database: str, plan: BuildPlan) -> dict[str, list[tuple[str, str]]]:
    """The columns and types of every table model in `database` and of every raw table beside
    it (`<database>_raw`), as ClickHouse built them."""
    sql = "select name, type from system.columns where database = {db:String} and table = {t:String} order by position"
    out = {}
    for model in plan.models:
        if not model.view:
            out[model.name] = ch.rows(sql, {"db": database, "t": model.name})
    for table in BY_TABLE:
        out[f"raw.{table}"] = ch.rows(sql, {"db": f"{database}_raw", "t": table})
    missing = sorted(name for name, found in out.items() if not found)
    if missing:
        raise ValueError(f"ClickHouse's {database} holds no {', '.join(missing)}: build the warehouse there (olist-bi etl run --full)")
    return out


def sharded(model: PlannedModel) -> bool:
    """Whether a table model is sharded by order: a per-order table (its grain holds order_id)."""
    return not model.view and model.scoped_by == "order_id"


def ddl(plan: BuildPlan, found: Columns, database: str = "olist", cluster: str = CLUSTER) -> list[str]:
    """The statements that create the warehouse's tables on `cluster`: its databases, then each
    raw table and each table model (a sharded one as `<name>_local` and `<name>`)."""
    raw = f"{database}_raw"
    statements = [f"CREATE DATABASE IF NOT EXISTS {name} ON CLUSTER {cluster}" for name in (database, raw)]
    for table in BY_TABLE:
        by_order = "order_id" in BY_TABLE[table].header
        statements += _table(raw, table, found[f"raw.{table}"], "tuple()", None, by_order, cluster)
    for model in plan.models:
        if model.view:
            continue
        order_by = f"({', '.join(model.order_by)})" if model.order_by else "tuple()"
        statements += _table(database, model.name, found[model.name], order_by, model.partition_by, sharded(model), cluster)
    return statements


def _table(
    database: str, name: str, found: Sequence[tuple[str, str]], order_by: str, partition_by: str | None, by_order: bool, cluster: str
) -> list[str]:
    columns = ",\n".join(f"    `{column}` {kind}" for column, kind in found)
    local = f"{name}_local" if by_order else name
    path = f"/clickhouse/tables/{{shard}}/{database}/{name}" if by_order else f"/clickhouse/tables/all/{database}/{name}"
    clause = f"ENGINE = ReplicatedMergeTree('{path}', '{{replica}}')"
    if partition_by:
        clause += f"\nPARTITION BY {partition_by}"
    clause += f"\nORDER BY {order_by}\nSETTINGS allow_nullable_key = 1"
    out = [f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster}\n(\n{columns}\n)\n{clause}"]
    if by_order:
        out.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} AS {database}.{local}\n"
            f"ENGINE = Distributed({cluster}, {database}, {local}, {SHARDING_KEY})"
        )
    return out


def script(statements: Sequence[str]) -> str:
    """The statements as one SQL file (clickhouse-client --multiquery reads it)."""
    head = "-- Generated by `olist-bi etl cluster-ddl` from the models (docs/scaling.md). Do not edit.\n\n"
    return head + "".join(f"{s};\n\n" for s in statements)

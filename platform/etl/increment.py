"""What a drop touches, and so what an incremental run rebuilds.

An incremental run starts from a copy of the served warehouse file, merges the drop into its
`raw` tables in place and rebuilds only what the drop changes (etl/transform.py):

- the models whose grain holds `order_id` (the order-level staging and intermediate views,
  and the four facts) for the **touched orders** only: their rows are deleted and built again
  from SQL that reads only those orders;
- every other model (the dims, the marts, the forecast) whole: they are small, or aggregate
  over all history.

The touched orders are those whose result can differ from the served build's:

- orders the drop brings, new or changed, and orders whose items, payments or reviews it brings;
- orders of the customers, sellers and products it brings (their address, state, key or
  category is carried on the facts);
- every order of a person (`customer_unique_id`) with a touched order, before the drop and after:
  the first-order and repeat flags compare a person's orders with each other;
- the orders of the days that enter or leave the reporting window (`int_reporting_window`), whose
  `in_reporting_window` flips.

The model per person (`dim_customer`) rebuilds the rows of the touched people: those of the
touched orders and of the customers the drop brings, before it and after.

The run rebuilds every model from `raw` instead (`rebuild_reason`) when the drop brings a new
category translation (a snapshot carried on every item), when the served build was made by
other models (a fingerprint of models.yaml and every model's SQL, stored in `meta.build`), or
when more than half of all orders are touched (a whole build is then as cheap).
"""

from __future__ import annotations

import hashlib

import duckdb

from olist_bi.contract import ORDER_TABLES
from olist_bi.etl import transform

TOUCHED = "_touched_orders"  # a temp table of the run's connection: the touched orders' ids
PEOPLE = "_touched_people"  # and the touched people's customer_unique_id (dim_customer's rows)
RECORDED = "meta.touched_orders"  # in the file an increment built: the orders whose rows it rebuilt
RECORDED_PEOPLE = "meta.touched_people"  # and the people whose dim_customer rows it rebuilt
ROWS = "touched"  # and a schema of the rows it built for each per-order table, named after it
NOTED = "_drop_keys"  # a temp table: (kind, key) of what the drop brings, noted before each merge
FULL_SNAPSHOTS = ("category_translation",)  # a new one changes every item's category label
MOST = 0.5  # touching more than this share of the orders rebuilds everything


def fingerprint() -> str:
    """A digest of the models: models.yaml and every model's SQL."""
    digest = hashlib.sha256((transform.MODELS / "models.yaml").read_bytes())
    for model in transform.models():
        digest.update(model.name.encode() + b"\0" + model.sql.encode())
    return digest.hexdigest()


def record(con: duckdb.DuckDBPyConnection, scope: transform.Scope | None) -> None:
    """After the build: store the models' fingerprint, and what an increment rebuilt, which the
    reader copies change in theirs (etl/readers.py): the touched orders (`meta.touched_orders`),
    the touched people (`meta.touched_people`) and the rows it built for each table it rebuilt
    per order or per person (`touched.<table>`, a few per cent of the table, which a copy reads
    instead of scanning the whole table for them). None of it after a full build."""
    con.execute("create schema if not exists meta; create or replace table meta.build (fingerprint varchar)")
    con.execute("insert into meta.build values (?)", [fingerprint()])
    con.execute(f"drop table if exists {RECORDED}; drop table if exists {RECORDED_PEOPLE}; drop schema if exists {ROWS} cascade")
    if scope is None:
        return
    con.execute(f"create table {RECORDED} as select order_id from {scope.touched}")
    con.execute(f"create table {RECORDED_PEOPLE} as select customer_unique_id from {scope.people}")
    con.execute(f"create schema {ROWS}")
    for model in transform.models():
        if model.layer not in transform.VIEW_LAYERS and transform.rebuilt_in_scope(model, scope):
            con.execute(f"create table {ROWS}.{model.name} as select * from scoped_{model.name}")


# What `note` reads of raw history for each table, as (raw table, its column, a query of the
# build for the values it reads): the rows an engine keeping raw history outside the build puts
# there first (engines/base.py's `mirror`), in this order.
HISTORY_READS = {
    "orders": [
        ("orders", "order_id", "select order_id from incoming.orders"),
        ("customers", "customer_id", "select customer_id from raw.orders where order_id in (select order_id from incoming.orders)"),
    ],
    "customers": [("customers", "customer_id", "select customer_id from incoming.customers")],
}


def note(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Before `incoming.<table>` is merged into `raw.<table>`: note the keys it brings, and the
    people whose orders it may change as `raw` holds them now."""
    con.execute(f"create temp table if not exists {NOTED} (kind varchar, key varchar)")
    if table in ORDER_TABLES:
        con.execute(f"insert into {NOTED} select distinct 'order', order_id from incoming.{table}")
    if table == "orders":  # an order re-sent with another customer leaves its old person
        con.execute(
            f"""insert into {NOTED} select distinct 'person', c.customer_unique_id
                from raw.orders as o join raw.customers as c on c.customer_id = o.customer_id
                where o.order_id in (select order_id from incoming.orders)"""
        )
    elif table == "customers":
        con.execute(f"insert into {NOTED} select distinct 'customer', customer_id from incoming.customers")
        con.execute(
            f"""insert into {NOTED} select distinct 'person', customer_unique_id from raw.customers
                where customer_id in (select customer_id from incoming.customers)"""
        )
    elif table in ("sellers", "products"):
        key = table.removesuffix("s") + "_id"
        con.execute(f"insert into {NOTED} select distinct '{key}', {key} from incoming.{table}")
    elif table in FULL_SNAPSHOTS:
        con.execute(f"insert into {NOTED} values ('snapshot', '{table}')")


def rebuild_reason(con: duckdb.DuckDBPyConnection, stored: str | None) -> str | None:
    """Why this run must rebuild every model rather than the touched orders, or None; `stored`:
    the fingerprint of the models that built what is served (the engine's)."""
    if stored is None:
        return "the served warehouse records no fingerprint of the models that built it"
    if stored != fingerprint():
        return "the models changed since the served warehouse was built (models.yaml or a model's SQL)"
    snapshots = [r[0] for r in con.execute(f"select key from {NOTED} where kind = 'snapshot'").fetchall()] if _noted(con) else []
    if snapshots:
        return f"the drop brings a new {snapshots[0]} (a snapshot every item carries)"
    return None


def touched_sql(noted: str = NOTED) -> str:
    """The touched orders' ids, as a DuckDB select over `raw` after the merge, the served
    build's `mart_reporting_window`, the new `int_reporting_window` and `noted` (the keys
    `note` recorded): an engine that keeps its own raw history runs it there."""
    return f"""with brought as (
            select key as order_id from {noted} where kind = 'order'
            union select o.order_id from raw.orders as o
                where o.customer_id in (select key from {noted} where kind = 'customer')
            union select i.order_id from raw.order_items as i
                where i.seller_id in (select key from {noted} where kind = 'seller_id')
                   or i.product_id in (select key from {noted} where kind = 'product_id')
        ),
        people as (
            select key as customer_unique_id from {noted} where kind = 'person'
            union select c.customer_unique_id from raw.orders as o join raw.customers as c on c.customer_id = o.customer_id
                where o.order_id in (select order_id from brought)
        ),
        window_change as (
            select o.first_day as old_first, o.last_day as old_last, n.first_day as new_first, n.last_day as new_last
            from (select max(first_day) as first_day, max(last_day) as last_day from mart_reporting_window) as o,
                 (select max(first_day) as first_day, max(last_day) as last_day from int_reporting_window) as n
        )
        select order_id from brought
        union select o.order_id from raw.orders as o join raw.customers as c on c.customer_id = o.customer_id
            where c.customer_unique_id in (select customer_unique_id from people)
        union select o.order_id from raw.orders as o, window_change as w
            where coalesce(cast(o.order_purchase_timestamp as date) between w.old_first and w.old_last, false)
               <> coalesce(cast(o.order_purchase_timestamp as date) between w.new_first and w.new_last, false)"""


def people_sql(noted: str = NOTED, touched: str = TOUCHED) -> str:
    """The touched people's customer_unique_id, as a DuckDB select over `raw` after the merge,
    `noted` and `touched` (the touched orders' ids): the people the drop names, of the
    customers it brings, and of the touched orders."""
    return f"""select key as customer_unique_id from {noted} where kind = 'person'
        union select customer_unique_id from raw.customers where customer_id in (select key from {noted} where kind = 'customer')
        union select c.customer_unique_id from raw.orders as o join raw.customers as c on c.customer_id = o.customer_id
            where o.order_id in (select order_id from {touched})"""


def touch(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """After the merge, with the served build's tables still in place: fill `_touched_orders`,
    and `_touched_people` with the people of those orders and of the customers the drop brings,
    before it and after; return (touched orders, all orders)."""
    noted = NOTED if _noted(con) else "(select null::varchar as kind, null::varchar as key where false)"
    con.execute(f"create or replace temp table {TOUCHED} as {touched_sql(noted)}")
    con.execute(f"create or replace temp table {PEOPLE} as {people_sql(noted, TOUCHED)}")
    touched = con.execute(f"select count(*) from {TOUCHED}").fetchone()[0]
    return touched, con.execute("select count(*) from raw.orders").fetchone()[0]


def noted_keys(con: duckdb.DuckDBPyConnection) -> str:
    """A query of the keys `note` recorded, (kind, key), for an engine to copy: none when the
    drop noted nothing."""
    return f"select kind, key from {NOTED}" if _noted(con) else "select null::varchar as kind, null::varchar as key where false"


def _noted(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("select count(*) from duckdb_tables() where temporary and table_name = ?", [NOTED]).fetchone()[0])

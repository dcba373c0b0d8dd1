"""The scale-factor generator: the nine Olist files, in the original format, from a seed.

Scale 1 reproduces the real files' row counts, distributions and quirks (OLIST_DATA.md);
the same scale and seed give byte-identical files. An increment (`start_date`, `months`)
writes new orders after a date over the same world (products, sellers, customers) as the
base drop of that scale and seed, so incremental loads can be tested.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa

from olist_bi.contract import BY_TABLE
from olist_bi.generator import geolocation, ids
from olist_bi.generator.orders import Calendar, build_plan, generate_chunk
from olist_bi.generator.world import World, build_world
from olist_bi.generator.writer import CsvWriter, integers, strings

ORDER_CHUNK = 50_000
ORDER_TABLES = ("orders", "customers", "order_items", "order_payments", "order_reviews")

Progress = Callable[[str, int, int], None]


@dataclass
class GenerateResult:
    folder: Path
    rows: dict[str, int] = field(default_factory=dict)


def generate(
    out: Path | str,
    scale: float = 1.0,
    seed: int = 42,
    start_date: dt.date | None = None,
    months: int = 1,
    progress: Progress | None = None,
) -> GenerateResult:
    """Write a drop of the nine files into `out`; with `start_date`, an increment."""
    if not 0 < scale <= 100:
        raise ValueError(f"scale must be above 0 and at most 100, got {scale:g}")
    if start_date is not None and months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda stage, done, total: None)
    world = build_world(scale, seed)
    if start_date is None:
        plan = build_plan(world)
    else:
        increment = (start_date.year - 2016) * 12 + start_date.month
        plan = build_plan(world, increment, Calendar.increment(start_date, months), months)

    result = GenerateResult(out)
    con = duckdb.connect()
    con.execute("set threads = 2")
    try:
        for table, chunk in _static_tables(world):
            with CsvWriter(out / BY_TABLE[table].filename, BY_TABLE[table], con) as writer:
                writer.write(chunk)
            result.rows[table] = writer.rows
            report(table, writer.rows, writer.rows)

        with CsvWriter(out / BY_TABLE["geolocation"].filename, BY_TABLE["geolocation"], con) as writer:
            expected = geolocation.row_count(scale)
            for chunk in geolocation.chunks(world):
                writer.write(chunk)
                report("geolocation", writer.rows, expected)
        result.rows["geolocation"] = writer.rows

        writers = {t: CsvWriter(out / BY_TABLE[t].filename, BY_TABLE[t], con) for t in ORDER_TABLES}
        for writer in writers.values():
            writer.__enter__()
        try:
            for start in range(0, plan.n, ORDER_CHUNK):
                stop = min(plan.n, start + ORDER_CHUNK)
                for table, chunk in generate_chunk(world, plan, start, stop).items():
                    writers[table].write(chunk)
                report("orders", stop, plan.n)
        finally:
            for writer in writers.values():
                writer.__exit__(None, None, None)
        result.rows.update({t: w.rows for t, w in writers.items()})
    finally:
        con.close()
    return result


def _static_tables(world: World) -> list[tuple[str, pa.Table]]:
    """The small files: sellers, products and the category translation."""
    ref, zips, products = world.ref, world.zips, world.products
    n_sellers = len(world.sellers.zip)
    sellers = pa.table(
        {
            **ids.id_columns("seller_id", ids.salt(world.seed, "seller"), np.arange(n_sellers)),
            "seller_zip_code_prefix": zips.prefix[world.sellers.zip],
            "seller_city": strings(zips.city[world.sellers.zip], ref.city_plain),
            "seller_state": strings(zips.state[world.sellers.zip], ref.states),
        }
    )
    n = len(products.category)
    no_category = products.category < 0
    no_dims = ~products.has_dims
    product_table = pa.table(
        {
            **ids.id_columns("product_id", ids.salt(world.seed, "product"), np.arange(n)),
            "product_category_name": strings(np.maximum(products.category, 0), world.category_names(), no_category),
            "product_name_lenght": integers(products.name_length, no_category),
            "product_description_lenght": integers(products.description_length, no_category),
            "product_photos_qty": integers(products.photos, no_category),
            "product_weight_g": integers(products.weight_g, no_dims),
            "product_length_cm": integers(products.dims[:, 0], no_dims),
            "product_height_cm": integers(products.dims[:, 1], no_dims),
            "product_width_cm": integers(products.dims[:, 2], no_dims),
        }
    )
    translation = pa.table(
        {
            "product_category_name": pa.array(ref.categories),
            "product_category_name_english": pa.array(ref.categories_english),
        }
    )
    return [("sellers", sellers), ("products", product_table), ("category_translation", translation)]

"""Scale 1 reproduces the real row counts within 2% (slow: about a million rows)."""

import duckdb
import pytest

from olist_bi.contract import load_raw
from olist_bi.generator import generate

REAL = {
    "orders": 99_441,
    "order_items": 112_650,
    "order_payments": 103_886,
    "order_reviews": 99_224,
    "customers": 99_441,
    "sellers": 3_095,
    "products": 32_951,
    "geolocation": 1_000_163,
    "category_translation": 71,
}


@pytest.mark.slow
def test_scale_one_matches_the_real_row_counts(tmp_path):
    result = generate(tmp_path, scale=1, seed=42)
    con = duckdb.connect()
    loaded = {f.source.table: f.rows for f in load_raw(con, tmp_path)}
    assert loaded == result.rows
    for table, real in REAL.items():
        assert abs(loaded[table] - real) <= 0.02 * real, (table, loaded[table], real)
    distinct = con.execute("select count(distinct customer_unique_id) from raw.customers").fetchone()[0]
    assert abs(distinct - 96_096) <= 0.02 * 96_096

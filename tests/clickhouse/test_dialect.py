"""The rules that make DuckDB SQL mean the same on ClickHouse: each query runs on DuckDB and,
transpiled, on embedded ClickHouse, and the answers must agree."""

import datetime as dt

import duckdb
import pytest

from olist_bi.engines.clickhouse.connection import ClickHouse, ClickHouseError, Target
from olist_bi.engines.clickhouse.dialect import DialectError, to_clickhouse, to_clickhouse_query


@pytest.fixture(scope="module")
def ch(clickhouse_url):
    return ClickHouse(Target(clickhouse_url))


def both(ch, sql, params=()):
    want = duckdb.connect().execute(sql, list(params)).fetchall()
    text, named = to_clickhouse_query(sql, list(params))
    return ch.rows(text, named), want


def test_a_series_of_days_stops_before_its_end_as_duckdb_range_does(ch):
    sql = """select cast(d as date) as day
             from (select date '2018-01-30' as lo, date '2018-02-02' as hi) as b, range(lo, hi, interval 1 day) as t(d)
             order by day"""
    got, want = both(ch, sql)
    assert got == want == [(dt.date(2018, 1, 30),), (dt.date(2018, 1, 31),), (dt.date(2018, 2, 1),)]


def test_only_a_series_of_days_has_a_rule():
    with pytest.raises(DialectError, match="series of days"):
        to_clickhouse("select d from b, range(lo, hi, interval 1 month) as t(d)")


def test_a_bare_qualified_column_keeps_its_name(ch):
    text = to_clickhouse("select t.a, t.b as renamed from (select 1 as a, 2 as b) as t")
    assert ch.arrow(text).column_names == ["a", "renamed"]


def test_the_median_is_exact_on_many_rows(ch):
    # ClickHouse's own median samples 8,192 values; DuckDB's is exact
    import pyarrow as pa

    values = pa.table({"x": [float((i * 7919) % 100003) for i in range(50_000)]})
    ch.command("create database if not exists dialect_test")
    ch.command("drop table if exists dialect_test.values_table")
    ch.create_from_arrow("dialect_test.values_table", values, "ENGINE = MergeTree ORDER BY tuple()")
    want = duckdb.connect().execute("select median(x) from values").fetchone()[0]
    got = ch.scalar(to_clickhouse("select median(x) from values_table", database="dialect_test"))
    assert got == want
    assert ch.scalar("select median(x) from dialect_test.values_table") != want  # what the rule is for


def test_a_series_must_be_joined_to_what_bounds_it():
    with pytest.raises(DialectError, match="join"):
        to_clickhouse("select d from range(date '2018-01-01', date '2018-02-01', interval 1 day) as t(d)")


def test_a_number_of_months_times_an_interval_is_an_interval(ch):
    got, want = both(ch, "select cast(date '2017-11-01' + 3 * interval '1 month' as date) as d")
    assert got == want == [(dt.date(2018, 2, 1),)]


def test_accents_are_stripped_and_case_changes_beyond_ascii(ch):
    got, want = both(ch, "select strip_accents('São Paulo'), upper('ção'), substring('Ébano', 1, 1)")
    assert got == want == [("Sao Paulo", "ÇÃO", "É")]


def test_parameters_are_bound_by_type_not_spliced(ch):
    sql = "select count(*) from (select 'SP' as s, date '2018-01-01' as d, 3 as n) where s in (?, ?) and d >= ? and n = ?"
    got, want = both(ch, sql, ["SP", "x' or '1'='1", dt.date(2017, 12, 31), 3])
    assert got == want == [(1,)]
    text, named = to_clickhouse_query(sql, ["SP", "x' or '1'='1", dt.date(2017, 12, 31), 3])
    assert "or '1'='1" not in text and named["p1"] == "x' or '1'='1"


def test_tables_are_read_from_the_databases_they_were_built_in():
    text = to_clickhouse(
        "with c as (select 1 as x) select * from raw.orders join stg_orders using (order_id) join c on true",
        {"raw.orders": "olist_staging.raw_orders"},
        "olist_build",
    )
    assert "olist_staging.raw_orders" in text and "olist_build.stg_orders" in text
    assert "olist_build.c" not in text  # a CTE is not a table


def test_clickhouse_errors_name_the_engine_and_the_statement(ch):
    with pytest.raises(ClickHouseError, match=r"(?s)embedded ClickHouse \(chdb\).*no_such_function.*in: select no_such_function"):
        ch.rows("select no_such_function(1)")


def test_parameters_follow_the_text_not_the_parse_tree(ch):
    # a CTE and a LIMIT put placeholders where a walk of the tree would meet them out of order
    sql = (
        "with a as (select * from (select 1 as x, 's' as y union all select 2, 't') where x >= ?) "
        "select x from a where y = ? order by x limit ?"
    )
    got, want = both(ch, sql, [1, "t", 5])
    assert got == want == [(2,)]
    text, _ = to_clickhouse_query("select '?' as q, ? as v", [3])
    assert "'?'" in text and "{p0:Int64}" in text  # a ? in a string is no parameter

"""The compiler: clear errors, identifiers only from the catalog, user values only as bound
parameters, templates only in Jinja's sandbox."""

import dataclasses
import datetime as dt

import duckdb
import pytest

from olist_bi.semantic import query
from olist_bi.semantic.catalog import CatalogError, UnknownName, check, load
from olist_bi.semantic.compiler import CompileError, Filter, GroupBy, Query, compile_query, parse_by, parse_where

HOSTILE = [
    "SP' OR '1'='1",
    "SP'; drop table fact_deliveries; --",
    'SP" or 1=1 --',
    "') union all select 1 --",
    "read_csv('/etc/passwd')",
    "{{ 7 * 7 }}",
    "{% for x in range(3) %}x{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "/* comment */ SP",
    "SP\nRJ",
]


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownName, match="unknown metric 'profit'; known metrics: .*revenue"):
        compile_query(Query(["profit"]))
    with pytest.raises(UnknownName, match="unknown dimension 'state'; known dimensions: .*customer_state"):
        compile_query(Query(["revenue"], [GroupBy("state")]))
    with pytest.raises(UnknownName, match="unknown dimension"):
        compile_query(Query(["revenue"], where=[Filter("customer_state; drop table x", ("SP",))]))


def test_grains_are_checked():
    with pytest.raises(CompileError, match="no grain 'hour'; its grains: month, day, week, quarter, year"):
        compile_query(Query(["orders"], [GroupBy("purchase_date", "hour")]))
    with pytest.raises(CompileError, match="no grain"):
        compile_query(Query(["orders"], [GroupBy("purchase_date", "month'); drop table x; --")]))
    with pytest.raises(CompileError, match="has no grains"):
        compile_query(Query(["orders"], [GroupBy("customer_state", "month")]))
    sql = compile_query(Query(["orders"], [GroupBy("purchase_date")])).sql
    assert "m.purchase_month as purchase_date" in sql and "date_trunc" not in sql  # the default grain, stored
    sql = compile_query(Query(["orders"], [GroupBy("purchase_date", "quarter")])).sql
    assert "date_trunc('quarter', m.purchase_date)" in sql  # a grain not stored is truncated per row


STORED = {  # what the facts store per row, against the rule it stands for
    "purchase_month": "cast(date_trunc('month', purchase_date) as date)",
    "counts_as_revenue": "order_status not in ('canceled', 'unavailable')",
    "in_reporting_window": (
        "coalesce(purchase_date between (select first_day from mart_reporting_window) "
        "and (select last_day from mart_reporting_window), false)"
    ),
    "order_status_label": "upper(substr(replace(order_status, '_', ' '), 1, 1)) || substr(replace(order_status, '_', ' '), 2)",
    "delivery_delay": """case when delay_days <= -15 then '15+ days early' when delay_days <= -8 then '8-14 days early'
        when delay_days <= -1 then '1-7 days early' when delay_days = 0 then 'On the day' when delay_days <= 3 then '1-3 days late'
        when delay_days <= 7 then '4-7 days late' when delay_days is not null then '8+ days late' else 'Not delivered' end""",
}


def test_the_columns_metrics_read_instead_of_rules_hold_the_rules(warehouse):
    """The stored month, revenue flag and window flag equal their rules on every row of every
    fact a metric reads, and the cohorts' window flag keeps both of its months in the window."""
    import duckdb

    settings, _ = warehouse
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from mart_reporting_window").fetchone()[0] == 1
        for fact in ("fact_deliveries", "fact_payments", "fact_order_items"):
            for column, rule in STORED.items():
                wrong = con.execute(f"select count(*) from {fact} where {column} is distinct from {rule}").fetchone()[0]
                assert wrong == 0, (fact, column)
            assert con.execute(
                f"select count(*) filter (where in_reporting_window), count(*) filter (where not in_reporting_window) from {fact}"
            ).fetchone() > (0, 0)
        labels = "upper(substr(replace(payment_type, '_', ' '), 1, 1)) || substr(replace(payment_type, '_', ' '), 2)"
        assert con.execute(f"select count(*) from fact_payments where payment_type_label is distinct from {labels}").fetchone()[0] == 0
        wrong = con.execute(
            """select count(*) from fact_order_items as i left join dim_category as c using (category_key)
               where i.category_label is distinct from c.category_label or c.category_key is null"""
        ).fetchone()[0]
        assert wrong == 0
        wrong = con.execute(
            """select count(*) from mart_customer_cohorts, mart_reporting_window as w
               where in_reporting_window is distinct from coalesce(cohort_month between w.first_day and w.last_day
                     and cast(cohort_month + months_since_first * interval '1 month' as date) between w.first_day and w.last_day, false)"""
        ).fetchone()[0]
        assert wrong == 0


def test_a_dimension_the_model_does_not_offer_is_a_clear_error():
    with pytest.raises(CompileError, match="dimension product_category is not available for metric revenue .*offers: purchase_date"):
        compile_query(Query(["revenue"], [GroupBy("product_category")]))


def test_required_dimensions_and_other_mistakes():
    with pytest.raises(CompileError, match="cohort_retention needs --by months_since_first"):
        compile_query(Query(["cohort_retention"]))
    with pytest.raises(CompileError, match="name at least one metric"):
        compile_query(Query([]))
    with pytest.raises(CompileError, match="starts .* after it ends"):
        compile_query(Query(["orders"], start=dt.date(2018, 1, 2), end=dt.date(2018, 1, 1)))
    with pytest.raises(CompileError, match="DIMENSION=VALUE"):
        parse_where("customer_state")
    with pytest.raises(CompileError, match="takes dates as YYYY-MM-DD"):
        compile_query(Query(["orders"], where=[parse_where("purchase_date=yesterday")]))
    with pytest.raises(CompileError, match="takes whole numbers"):
        compile_query(Query(["cohort_retention"], [parse_by("months_since_first")], [parse_where("months_since_first=1 or 1=1")]))


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_bound_never_spliced(value):
    compiled = compile_query(Query(["orders", "revenue"], [GroupBy("customer_state")], [Filter("customer_state", (value,))]))
    assert value not in compiled.sql
    assert compiled.params.count(value) == 2
    assert compiled.sql.count("?") == len(compiled.params)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_match_nothing_and_change_nothing(warehouse, value):
    settings, _ = warehouse
    before = query.run(compile_query(Query(["orders", "revenue"])), settings.warehouse_path)
    compiled = compile_query(Query(["orders"], [GroupBy("customer_state")], [Filter("customer_state", (value,))]))
    assert query.run(compiled, settings.warehouse_path) == []
    assert query.run(compile_query(Query(["orders", "revenue"])), settings.warehouse_path) == before


def test_a_plain_value_still_matches(warehouse):
    settings, _ = warehouse
    rows = query.run(
        compile_query(Query(["orders"], [GroupBy("customer_state")], [Filter("customer_state", ("SP",))])), settings.warehouse_path
    )
    assert len(rows) == 1 and rows[0][0] == "SP" and rows[0][1] > 0


def test_templates_render_in_the_sandbox():
    catalog = load()
    evil = dataclasses.replace(catalog.metrics["orders"], name="evil", sql="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    patched = dataclasses.replace(catalog, metrics={**catalog.metrics, "evil": evil})
    with pytest.raises(CompileError, match="metric evil"):
        compile_query(Query(["evil"]), patched)
    undefined = dataclasses.replace(catalog.metrics["orders"], name="typo", sql="count({{ ordr }}.order_id)")
    patched = dataclasses.replace(catalog, metrics={**catalog.metrics, "typo": undefined})
    with pytest.raises(CompileError, match="metric typo"):
        compile_query(Query(["typo"]), patched)


def test_the_catalog_refuses_undocumented_or_odd_definitions():
    catalog = load()
    bare = dataclasses.replace(catalog.metrics["orders"], description=" ")
    with pytest.raises(CatalogError, match="metric orders: description is missing"):
        check(dataclasses.replace(catalog, metrics={**catalog.metrics, "orders": bare}))
    odd = dataclasses.replace(catalog.metrics["orders"], name="Orders; drop")
    with pytest.raises(CatalogError, match="names are lower-case identifiers"):
        check(dataclasses.replace(catalog, metrics={**catalog.metrics, "Orders; drop": odd}))


def test_the_reader_connection_cannot_reach_files(warehouse):
    settings, _ = warehouse
    with query.connect(settings.warehouse_path) as con:
        assert con.execute("select count(*) from fact_deliveries").fetchone()[0] > 0
        for sql in ("select * from read_csv('/etc/passwd')", "copy fact_deliveries to '/tmp/x.csv'", "set enable_external_access = true"):
            with pytest.raises(duckdb.Error):
                con.execute(sql)


def test_compiled_sql_is_readable():
    sql = compile_query(Query(["revenue", "orders"], [GroupBy("purchase_date", "month")], [Filter("customer_state", ("SP",))])).sql
    assert sql.startswith("with q0 as (")
    assert "from fact_payments as m" in sql and "from fact_deliveries as m" in sql
    assert "full outer join q1" in sql and sql.rstrip().endswith("order by purchase_date")

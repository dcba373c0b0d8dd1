"""Metabase's native questions on ClickHouse: each question's SQL, transpiled with its template
tags and optional clauses kept (`to_clickhouse_native`), then bound as Metabase binds it,
answers on ClickHouse (chdb, built from the same drop) as the raw files do, alone and with each
of its dashboard's filters, and all filters at once."""

import pytest

from olist_bi.engines.clickhouse import warehouse as clickhouse
from olist_bi.engines.clickhouse.dialect import DialectError, _parameter_type, to_clickhouse_native
from olist_bi.dashboards import dashboards, filter_targets
from tests.metabase.native import bind
from tests.metabase.test_assets import QUESTIONS, _values, generated
from tests.reference import assert_matches, for_chart


def run(settings, card, values):
    """The question as Metabase would send it to ClickHouse: transpiled once, bound per run."""
    native = to_clickhouse_native(card["sql"], clickhouse.served_names(clickhouse.databases(settings)), settings.clickhouse_database)
    assert all(f"{{{{{tag}}}}}" in native for tag in card["template_tags"]), "a template tag was lost"
    sql, params = bind(native, card["template_tags"], values)
    parts = sql.split("?")
    assert len(parts) == len(params) + 1
    text = parts[0] + "".join(f"{{p{i}:{_parameter_type(v)}}}" + rest for i, (v, rest) in enumerate(zip(params, parts[1:])))
    return clickhouse.connect(settings).rows(text, {f"p{i}": v for i, v in enumerate(params)})


@pytest.mark.parametrize("dashboard, chart, dimension", QUESTIONS, ids=[f"{d.slug}/{c.key}/{f or 'unfiltered'}" for d, c, f in QUESTIONS])
def test_every_question_gives_the_raw_files_answer_on_clickhouse(clickhouse_warehouse, reference, dashboard, chart, dimension):
    settings, _ = clickhouse_warehouse
    card = next(c for c in dict(generated())[dashboard.slug]["cards"] if c["key"] == chart.key)
    values = _values(dimension) if dimension else {}
    rows = run(settings, card, values)
    want = for_chart(reference, chart, [dimension] if dimension else [])
    assert any(v is not None for values in want.values() for v in values), "an empty answer checks nothing"
    assert_matches(rows, want, len(chart.by), chart.limit, f"{dashboard.slug}/{chart.key} {values}")


def test_all_filters_at_once_narrow_each_question_on_clickhouse(clickhouse_warehouse, reference):
    settings, _ = clickhouse_warehouse
    checked = 0
    for dashboard in dashboards():
        for card in dict(generated())[dashboard.slug]["cards"]:
            chart = next(c for c in dashboard.charts if c.key == card["key"])
            targeting = [f for f in dashboard.filters if chart in filter_targets(dashboard, f)]
            if len(targeting) < 2 or not chart.is_semantic:
                continue
            values = {k: v for f in targeting for k, v in _values(f).items()}
            assert_matches(
                run(settings, card, values),
                for_chart(reference, chart, targeting),
                len(chart.by),
                chart.limit,
                f"{dashboard.slug}/{chart.key}",
            )
            checked += 1
    assert checked > 5


def test_the_warehouse_row_questions_run_on_clickhouse(clickhouse_warehouse):
    settings, _ = clickhouse_warehouse
    checked = 0
    for _, a in generated():
        for card in a["cards"]:
            if card["database"] == "warehouse" and not card["template_tags"]:
                assert run(settings, card, {}) or card["key"] == "quality", card["key"]
                checked += 1
    assert checked >= 5


def test_a_clause_that_is_not_an_and_is_refused():
    with pytest.raises(DialectError, match="must start with 'and'"):
        to_clickhouse_native("select 1 where 1 = 1 [[or x = {{x}}]]")

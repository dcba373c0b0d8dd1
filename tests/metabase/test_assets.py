"""Metabase's assets: generated from the specs, up to date in metabase/, and every question's
SQL gives the semantic layer's answer, with and without its dashboard's filters."""

from __future__ import annotations

import datetime as dt
import functools
import math
from pathlib import Path

import psycopg
import pytest

from olist_bi.dashboards import dashboards
from olist_bi.metabase import assets
from olist_bi.semantic.catalog import load
from olist_bi.semantic.compiler import Filter, GroupBy, Query, compile_query
from olist_bi.semantic.query import connect, run
from tests.metabase.native import MissingValue, bind

ROOT = Path(__file__).parents[2]
FILTER_VALUES = {
    "customer_state": "SP",
    "seller_state": "SP",
    "order_status": "delivered",
    "product_category": "bed_bath_table",
    "purchase_date_from": "2017-03-01",
    "purchase_date_to": "2017-08-31",
}


@functools.cache
def generated() -> list[tuple[str, dict]]:
    """Each dashboard's assets, made once (read them, do not change them)."""
    catalog = load()
    return [(d.slug, assets.dashboard_assets(d, catalog)) for d in dashboards()]


def test_the_committed_assets_are_up_to_date():
    for name, text in assets.generate().items():
        path = ROOT / "metabase" / name
        assert path.exists(), f"metabase/{name} is missing: run `olist-bi metabase build`"
        assert path.read_text(encoding="utf-8") == text, f"metabase/{name} is stale: run `olist-bi metabase build`"
    committed = {p.relative_to(ROOT / "metabase").as_posix() for p in (ROOT / "metabase").rglob("*.yaml")}
    assert committed == set(assets.generate()), "metabase/ holds files no spec makes"


def test_read_gives_what_was_written(tmp_path):
    assets.write(tmp_path)
    read = assets.read(tmp_path)
    assert sorted(d["dashboard"]["name"] for d in read.dashboards) == sorted(a["dashboard"]["name"] for _, a in generated())
    assert read.dashboards[0]["cards"][0]["sql"].startswith("select")
    assert read.access == assets.access_assets()
    (tmp_path / "access.yaml").unlink()
    with pytest.raises(FileNotFoundError, match="olist-bi metabase build"):
        assets.read(tmp_path)


def test_names_are_unique_where_provisioning_looks_them_up():
    collections = [a["collection"]["name"] for _, a in generated()] + [assets.access_assets()["root_collection"]["name"]]
    assert len(set(collections)) == len(collections)
    for slug, a in generated():
        names = [c["name"] for c in a["cards"]] + [a["dashboard"]["name"]]
        assert len(set(names)) == len(names), slug


def test_dashboards_are_wired_to_their_cards():
    for slug, a in generated():
        cards = {c["key"]: c for c in a["cards"]}
        parameters = {p["id"]: p for p in a["dashboard"]["parameters"]}
        mapped = set()
        cells = set()
        for dashcard in a["dashboard"]["dashcards"]:
            card = cards[dashcard["card"]]
            assert 0 <= dashcard["col"] and dashcard["col"] + dashcard["size_x"] <= assets.GRID_COLUMNS, (slug, card["key"])
            area = {(r, c) for r in range(dashcard["row"], dashcard["row"] + dashcard["size_y"]) for c in range(dashcard["col"], dashcard["col"] + dashcard["size_x"])}
            assert not cells & area, f"{slug}: {card['key']} overlaps another card"
            cells |= area
            for mapping in dashcard["parameter_mappings"]:
                assert mapping["tag"] in card["template_tags"], (slug, card["key"], mapping)
                assert parameters[mapping["parameter_id"]]["slug"] == mapping["tag"]
                mapped.add(mapping["parameter_id"])
            for tag in card["template_tags"]:
                assert "{{" + tag + "}}" in card["sql"]
                assert tag in {m["tag"] for m in dashcard["parameter_mappings"]}, f"{slug}/{card['key']}: tag {tag} is wired to no filter"
        assert mapped == set(parameters), f"{slug}: a filter reaches no card"
        assert {d["card"] for d in a["dashboard"]["dashcards"]} == set(cards)


def test_a_tag_outside_an_optional_clause_needs_a_value():
    with pytest.raises(MissingValue, match="pick a value for 'State'"):
        bind("select {{s}}", {"s": {"display-name": "State", "type": "text"}}, {})
    assert bind("select 1 [[and x = {{s}}]]", {"s": {"display-name": "S", "type": "text"}}, {}) == ("select 1 ", [])


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _compare(card_rows, semantic_rows, dims: int, limit: int | None, where: str) -> None:
    expected = {tuple(r[:dims]): r[dims:] for r in semantic_rows}
    if limit:
        assert len(card_rows) == min(limit, len(expected)), where
    else:
        assert len(card_rows) == len(expected), where
    for row in card_rows:
        key = tuple(row[:dims])
        assert key in expected, f"{where}: row {key} not in the semantic answer"
        assert all(_close(a, b) for a, b in zip(row[dims:], expected[key])), f"{where}: {row} != {expected[key]}"


@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "filtered"])
def test_every_question_gives_the_semantic_answer(warehouse, filtered):
    settings, _ = warehouse
    catalog = load()
    specs = {d.slug: d for d in dashboards()}
    checked = 0
    for slug, a in generated():
        charts = {c.key: c for c in specs[slug].charts}
        for card in a["cards"]:
            chart = charts[card["key"]]
            if not chart.is_semantic:
                continue
            values = {t: FILTER_VALUES[t] for t in card["template_tags"]} if filtered else {}
            sql, params = bind(card["sql"], card["template_tags"], values)
            with connect(settings.warehouse_path) as con:
                rows = con.execute(sql, params).fetchall()
            where = [Filter(t, (v,)) for t, v in values.items() if t in catalog.dimensions]
            query = Query(list(chart.metrics), [GroupBy(g.dimension, g.grain) for g in chart.by], where)
            if "purchase_date_from" in values:
                query.start = dt.date.fromisoformat(values["purchase_date_from"])
                query.end = dt.date.fromisoformat(values["purchase_date_to"])
            expected = run(compile_query(query, catalog), settings.warehouse_path)
            assert rows, f"{slug}/{card['key']}: no rows"
            _compare(rows, expected, len(chart.by), chart.limit, f"{slug}/{card['key']} {values}")
            checked += 1
    assert checked == sum(1 for d in dashboards() for c in d.charts if c.is_semantic)


def test_row_questions_run_on_their_databases(warehouse):
    settings, _ = warehouse
    for slug, a in generated():
        for card in a["cards"]:
            if card["database"] == "warehouse" and not card["template_tags"]:
                with connect(settings.warehouse_path) as con:
                    con.execute(card["sql"]).fetchall()
            elif card["database"] == "operations":
                with psycopg.connect(settings.database_url) as conn:
                    rows = conn.execute(card["sql"]).fetchall()
                assert rows or card["key"] == "quality", f"{slug}/{card['key']}: no rows"


def test_groups_keep_native_sql_and_the_operations_store_from_viewers():
    access = assets.access_assets()
    viewers, analysts = access["groups"]["Olist Viewers"], access["groups"]["Olist Analysts"]
    assert viewers["databases"]["warehouse"]["create-queries"] == "no"
    assert analysts["databases"]["warehouse"]["create-queries"] == "query-builder-and-native"
    for group in (viewers, analysts):
        assert group["databases"]["operations"]["create-queries"] == "no"
        assert group["collections"]["admin"] == "none"
    assert access["all_users"]["collections"] == "none"
    assert all(v["create-queries"] == "no" for v in access["all_users"]["databases"].values())
    # Only what the open-source edition has: "blocked" is a paid feature (402).
    granted = [p for g in [*access["groups"].values(), access["all_users"]] for p in g["databases"].values()]
    assert {p["view-data"] for p in granted} == {"unrestricted"}

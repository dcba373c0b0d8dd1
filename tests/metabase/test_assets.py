"""Metabase's assets: generated from the specs, up to date in metabase/, and every question's
SQL gives the answer computed from the raw CSVs (tests/reference.py), alone and with each of
its dashboard's filters."""

from __future__ import annotations

import functools

import psycopg
import pytest

from olist_bi.dashboards import dashboards, filter_targets
from olist_bi.bi.metabase import assets
from olist_bi.semantic.catalog import load
from olist_bi.semantic.query import connect
from tests.metabase.native import MissingValue, bind
from tests.reference import FILTER_VALUES, assert_matches, for_chart


@functools.cache
def generated() -> list[tuple[str, dict]]:
    """Each dashboard's assets, made once (read them, do not change them)."""
    catalog = load()
    return [(d.slug, assets.dashboard_assets(d, catalog)) for d in dashboards()]


def test_the_committed_assets_are_up_to_date():
    for name, text in assets.generate().items():
        path = assets.ASSETS_DIR / name
        assert path.exists(), f"platform/bi/metabase/built/{name} is missing: run `olist-bi metabase build`"
        assert path.read_text(encoding="utf-8") == text, f"platform/bi/metabase/built/{name} is stale: run `olist-bi metabase build`"
    committed = {p.relative_to(assets.ASSETS_DIR).as_posix() for p in (assets.ASSETS_DIR).rglob("*.yaml")}
    assert committed == set(assets.generate()), "platform/bi/metabase/built/ holds files no spec makes"


def test_read_gives_what_was_written(tmp_path):
    assets.write(tmp_path)
    read = assets.read(tmp_path)
    written = [a for _, a in generated()]
    business = [a["collection"]["name"] for a in written if a["collection"]["audience"] == "business"] + ["Semantic layer"]
    # each written collection (a dashboard's, the semantic layer's), then a copy of each business one for the SP regional managers
    assert sorted(d["collection"]["name"] for d in read.dashboards) == sorted(
        [a["collection"]["name"] for a in written] + ["Semantic layer"] + [f"{n} (SP)" for n in business]
    )
    copies = [d for d in read.dashboards if d["collection"]["audience"] == "olist_regional_sp"]
    assert len(copies) == len(business) >= 6
    assert {c["database"] for d in copies for c in d["cards"]} == {"olist_regional_sp"}
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
            area = {
                (r, c)
                for r in range(dashcard["row"], dashcard["row"] + dashcard["size_y"])
                for c in range(dashcard["col"], dashcard["col"] + dashcard["size_x"])
            }
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


def _tags(dimension: str) -> list[str]:
    return ["purchase_date_from", "purchase_date_to"] if dimension == "purchase_date" else [dimension]


def _values(dimension: str) -> dict[str, str]:
    if dimension == "purchase_date":
        start, end = FILTER_VALUES["purchase_date"]
        return {"purchase_date_from": start.isoformat(), "purchase_date_to": end.isoformat()}
    return {dimension: FILTER_VALUES[dimension]}


QUESTIONS = [
    (d, c, f) for d in dashboards() for c in d.charts if c.is_semantic for f in (None, *(f for f in d.filters if c in filter_targets(d, f)))
]


@pytest.mark.parametrize("dashboard, chart, dimension", QUESTIONS, ids=[f"{d.slug}/{c.key}/{f or 'unfiltered'}" for d, c, f in QUESTIONS])
def test_every_question_gives_the_raw_files_answer(warehouse, reference, dashboard, chart, dimension):
    """Each question, alone and with each filter its dashboard applies to it, equals the answer
    computed from the raw CSVs, and has a template tag for exactly those filters."""
    settings, _ = warehouse
    card = next(c for c in dict(generated())[dashboard.slug]["cards"] if c["key"] == chart.key)
    targeting = [f for f in dashboard.filters if chart in filter_targets(dashboard, f)]
    assert set(card["template_tags"]) == {t for f in targeting for t in _tags(f)}, (
        f"{dashboard.slug}/{chart.key}: tags for other filters than {targeting}"
    )
    values = _values(dimension) if dimension else {}
    sql, params = bind(card["sql"], card["template_tags"], values)
    with connect(settings.warehouse_path) as con:
        rows = con.execute(sql, params).fetchall()
    want = for_chart(reference, chart, [dimension] if dimension else [])
    assert any(v is not None for values in want.values() for v in values), "an empty answer checks nothing"
    assert_matches(rows, want, len(chart.by), chart.limit, f"{dashboard.slug}/{chart.key} {values}")


def test_all_filters_at_once_narrow_each_question(warehouse, reference):
    settings, _ = warehouse
    for dashboard in dashboards():
        for card in dict(generated())[dashboard.slug]["cards"]:
            chart = next(c for c in dashboard.charts if c.key == card["key"])
            targeting = [f for f in dashboard.filters if chart in filter_targets(dashboard, f)]
            if len(targeting) < 2:
                continue
            values = {k: v for f in targeting for k, v in _values(f).items()}
            sql, params = bind(card["sql"], card["template_tags"], values)
            with connect(settings.warehouse_path) as con:
                rows = con.execute(sql, params).fetchall()
            assert_matches(
                rows, for_chart(reference, chart, targeting), len(chart.by), chart.limit, f"{dashboard.slug}/{chart.key} {values}"
            )


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


def sp_top_sellers(reference, n: int = 100) -> list[str]:
    """Of the top `n` sellers by GMV (items of orders not canceled or unavailable), those in SP,
    best first, from the raw files: what the scorecard shows with the Seller state filter on SP."""
    gmv, state = {}, {}
    for i in reference.items:
        if i.order.counts:
            gmv[i.seller] = gmv.get(i.seller, 0) + i.price
            state[i.seller] = i.seller_state
    return [s for s in sorted(gmv, key=lambda s: (-gmv[s], s))[:n] if state[s] == "SP"]


def test_the_seller_scorecard_follows_the_seller_state_filter(warehouse, reference):
    settings, _ = warehouse
    sellers = next(d for d in dashboards() if d.slug == "sellers")
    card = next(c for c in dict(generated())["sellers"]["cards"] if c["key"] == "scorecard")
    assert set(card["template_tags"]) == {"seller_state"}
    assert "Not narrowed by the dashboard's Purchase date filter." in card["description"]
    chart = next(c for c in sellers.charts if c.key == "scorecard")
    sql, params = bind(card["sql"], card["template_tags"], {"seller_state": "SP"})
    with connect(settings.warehouse_path) as con:
        rows = con.execute(sql, params).fetchall()
    state, seller = chart.columns.index("seller_state"), chart.columns.index("seller_id")
    assert {r[state] for r in rows} == {"SP"}
    assert [r[seller] for r in rows] == sp_top_sellers(reference)

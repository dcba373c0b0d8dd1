"""Headless Chromium opens every dashboard as a person would and finds no chart error."""

import datetime as dt
import re
from collections import Counter

import pytest

from olist_bi.dashboards import dashboards
from olist_bi.bi.superset import legibility, provision, tool
from olist_bi.bi.superset.browser import BLANK_LEVELS, PAINTED_MS, Browser, drawn_levels
from olist_bi.bi.superset.screenshots import DASHBOARD_WINDOW
from olist_bi.notify import reports as report_specs
from olist_bi.bi.superset.server import ADMIN_USER, admin_password
from tests.reference import reporting_window

pytestmark = pytest.mark.browser


def test_every_dashboard_renders_without_a_chart_error(superset, tmp_path):
    """At 1600 px, every dashboard draws every chart, without an error, and reads cleanly
    (`unclean`); its screenshot is a picture; the warm-up warms what the browser reads."""
    settings, client, _ = superset
    seen, drawn_by_echarts = {}, echarts(client)
    ids = provision.ids_by_uuid(client)
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings), read_charts=True) as browser:
        for dashboard in dashboards():
            shot = tmp_path / f"{dashboard.slug}.png"
            rendered = browser.render(dashboard.slug, len(dashboard.charts), shot, record=True)
            assert rendered.charts == len(dashboard.charts), dashboard.slug
            assert rendered.errors == 0, (dashboard.slug, rendered.error_texts)
            faults = unclean(browser.page, dashboard, drawn_by_echarts)
            assert faults == [], f"{dashboard.slug} at 1600 px: {faults}"
            assert shot.stat().st_size > 20_000  # a real picture, not a blank page
            assert drawn_levels(shot) > BLANK_LEVELS, f"{dashboard.slug}: the screenshot's dashboard area is blank"
            lists = rendered.cache_keys.pop(None, [])  # the filters' lists of values (no chart)
            seen.update(rendered.cache_keys)
            warmed = [
                client.post("/api/v1/chart/data", tool.filter_value_query(f, ids[dashboard.uuid()]))["result"][0]["cache_key"]
                for f in tool.value_filters(client, ids[dashboard.uuid()])
            ]
            assert sorted(warmed) == sorted(set(lists)), f"{dashboard.slug}: the warm-up fills other filter lists than the browser reads"
    # The after-publish warm-up runs each chart's saved query context: it warms what the
    # dashboards read only if that context has the cache key of the request the browser sends.
    charts = provision.chart_ids(client)
    assert set(charts.values()) <= set(seen), "a chart sent no chart-data request"
    differ = [
        key
        for key, chart in charts.items()
        if client.get(f"/api/v1/chart/{chart}/data/", format="json", type="full")["result"][0]["cache_key"] not in seen[chart]
    ]
    assert differ == [], f"saved query contexts with another cache key than the dashboard's request: {differ}"


def test_charts_are_drawn_whole_as_soon_as_they_are_on_the_page(superset):
    """No chart grows into its shape after the dashboard is drawn (ECharts' one-second
    animation is off, platform/bi/superset/app.py): the pixels of every chart's canvas a moment
    after the view is drawn are those of a second later."""
    settings, _, _ = superset
    dashboard = next(d for d in dashboards() if d.slug == "executive-overview")
    pixels = "() => [...document.querySelectorAll('canvas')].map(c => c.toDataURL())"
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings)) as browser:
        browser.render(dashboard.slug, len(dashboard.charts))
        browser.page.wait_for_timeout(PAINTED_MS)
        soon = browser.page.evaluate(pixels)
        browser.page.wait_for_timeout(1200)
        later = browser.page.evaluate(pixels)
    assert len(soon) >= 4, "the dashboard's line and bar charts draw on canvases"
    assert soon == later, f"{sum(a != b for a, b in zip(soon, later))} of {len(soon)} charts still changed after the view was drawn"


def test_the_viewer_sees_the_business_dashboards(superset, login):
    """On a laptop's 1280 px, the business user opens every business dashboard without a chart
    error, and every chart reads cleanly (the narrower of the widths the dashboards are laid out
    for; 1600 px is checked above, and Platform health at 1280 px below)."""
    settings, client, report = superset
    drawn_by_echarts = echarts(client)
    with Browser(settings.superset_base_url, "viewer", report.users["viewer"], width=1280, read_charts=True) as browser:
        for dashboard in [d for d in dashboards() if d.audience == "business"]:
            rendered = browser.render(dashboard.slug, len(dashboard.charts))
            assert rendered.errors == 0, (dashboard.slug, rendered.error_texts)
            faults = unclean(browser.page, dashboard, drawn_by_echarts)
            assert faults == [], f"{dashboard.slug} at 1280 px: {faults}"
        browser.page.goto(f"{settings.superset_base_url}/sqllab/")
        browser.page.wait_for_load_state("networkidle")
        assert "/sqllab" not in browser.page.url or browser.page.locator(".ace_editor, [data-test='sql-editor']").count() == 0


def test_money_shows_in_reais_and_cards_compare_with_the_previous_month(superset, reference, tmp_path):
    """What a business user reads on the Executive overview: the revenue and order value cards
    in R$ with two decimals, the orders card without; each card shows the latest complete month
    against the one before ("+3.1% vs previous month"), as the raw files give them. (The axes
    are drawn on a canvas, out of the page's text: their "R$ 250k" is checked on the screenshot.)"""
    settings, _, _ = superset
    overview = next(d for d in dashboards() if d.slug == "executive-overview")
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings)) as browser:
        browser.render(overview.slug, len(overview.charts), tmp_path / "overview.png")
        page = browser.page

        def text(name: str) -> str:
            return page.locator(f'[data-test-chart-name="{name}"]').inner_text()

        for card in ("Revenue, latest month", "Order value, latest month"):
            assert re.search(r"R\$\s?[\d,]+\.\d\d\b", text(card)), f"{card}: {text(card)!r}"
        assert "R$" not in text("Orders, latest month")
        orders = text("Orders, latest month")
    first, last = reporting_window(reference)
    by_month = Counter(o.purchased.date().replace(day=1) for o in reference.orders)
    latest, before = by_month[last.replace(day=1)], by_month[(last.replace(day=1) - dt.timedelta(days=1)).replace(day=1)]
    assert f"{latest:,}" in orders, orders
    change = re.search(r"([-+−]?\d+(?:\.\d+)?)%\s*vs previous month", orders)
    assert change, orders
    assert abs(abs(float(change.group(1).replace("−", "-"))) - abs(100 * (latest - before) / before)) < 0.1, (orders, latest, before)


def echarts(client) -> set[str]:
    """The titles of the charts ECharts draws (on a canvas, with axes or a legend): not the tables and KPI cards."""
    return {
        row["slice_name"]
        for row in client.list_all("/api/v1/chart/", ["slice_name", "viz_type"], order="slice_name")
        if row["viz_type"].startswith("echarts") or row["viz_type"] in ("heatmap_v2", "pie")
    }


def unclean(page, dashboard, drawn_by_echarts: set[str]) -> list[str]:
    """What would make a reader squint on the dashboard drawn in `page` (legibility.py): labels
    of a chart that overlap or touch, one cut at its chart's edge, a tick twice in a row, a
    warning in a chart's header. Fails if the recorder missed a chart ECharts draws."""
    drawn = {label.chart for label in legibility.labels(page)}
    expected = {c.title for c in dashboard.charts} & drawn_by_echarts
    assert expected and expected <= drawn, f"{dashboard.slug}: no labels read from {expected - drawn}"
    return [str(fault) for fault in legibility.faults(page)]


def test_the_admins_dashboards_read_cleanly_at_1280_px(superset):
    """The dashboards no business user opens (Platform health), at 1280 px as the viewer's are above."""
    settings, client, _ = superset
    found, drawn_by_echarts = [], echarts(client)
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings), width=1280, read_charts=True) as browser:
        for dashboard in [d for d in dashboards() if d.audience != "business"]:
            browser.render(dashboard.slug, len(dashboard.charts))
            found += [f"{dashboard.slug}: {fault}" for fault in unclean(browser.page, dashboard, drawn_by_echarts)]
    assert found == [], "\n".join(found)


def test_the_mailed_reports_pictures_read_cleanly(superset):
    """What the report worker's browser draws for each mailed dashboard (the standalone view at
    the report's window) reads as cleanly as the dashboards do."""
    settings, client, _ = superset
    mailed = sorted({r.dashboard for r in report_specs.load().reports})
    assert len(mailed) == 2
    found, drawn_by_echarts = [], echarts(client)
    width, height = DASHBOARD_WINDOW
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings), width=width, height=height, read_charts=True) as browser:
        for slug in mailed:
            dashboard = next(d for d in dashboards() if d.slug == slug)
            url = f"{settings.superset_base_url}/superset/dashboard/{slug}/?standalone=3"
            browser.render(slug, len(dashboard.charts), url=url)
            found += [f"{slug}: {fault}" for fault in unclean(browser.page, dashboard, drawn_by_echarts)]
    assert found == [], "\n".join(found)

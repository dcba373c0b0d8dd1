"""A business user (olist_viewer, and the regional role) in headless Chromium meets no dead
end: no create buttons or menus, chart titles that are not links to the chart editor,
readable refusal pages, filter state kept in a permalink, a chart's data as CSV."""

import json
from contextlib import contextmanager

import pytest

from olist_bi.dashboards import dashboards
from olist_bi.bi.superset import provision
from olist_bi.bi.superset.browser import Browser

pytestmark = pytest.mark.browser


def _dashboard(slug: str):
    return next(d for d in dashboards() if d.slug == slug)


@contextmanager
def _viewer_on(superset, slug: str):
    """The viewer's page with dashboard `slug` rendered."""
    settings, _, report = superset
    dashboard = _dashboard(slug)
    with Browser(settings.superset_base_url, "viewer", report.users["viewer"]) as browser:
        browser.render(dashboard.slug, len(dashboard.charts))
        yield browser.page, dashboard


def test_the_viewer_lands_on_the_dashboard_list_with_nothing_to_create(superset):
    settings, _, report = superset
    with Browser(settings.superset_base_url, "viewer", report.users["viewer"]) as browser:
        page = browser.page
        page.goto(f"{settings.superset_base_url}/superset/welcome/")
        page.wait_for_load_state("networkidle")
        assert "/dashboard/list" in page.url
        nav = page.locator("#main-menu, [role=menubar]").first.inner_text()
        assert "Dashboards" in nav and not any(item in nav for item in ("Charts", "Datasets", "SQL", "Data"))
        buttons = page.locator("button").all_inner_texts()
        assert not any("Dashboard" in b or "Chart" in b for b in buttons), buttons
        listed = set(page.locator("[data-test='cell-text'], td a").all_inner_texts())
        assert "Executive overview" in listed


def test_chart_titles_are_not_links_to_the_editor_and_refusals_are_pages(superset):
    settings, _, report = superset
    with _viewer_on(superset, "executive-overview") as (page, overview):
        titles = page.locator("[data-test='slice-header'] [data-test='editable-title']")
        assert titles.count() == len(overview.charts)
        assert page.locator("[data-test='slice-header'] [data-test='editable-title'] a").count() == 0
        for path in ("/sqllab/", "/explore/?slice_id=1", "/dashboard/new/"):
            response = page.goto(f"{settings.superset_base_url}{path}")
            assert response.status == 403
            assert "This page is not available to you" in page.locator("h1").inner_text()
            assert page.locator("a[href='/dashboard/list/']").count() == 1
    # API clients keep Superset's JSON error.
    from olist_bi.bi.superset.client import SupersetClient

    viewer = SupersetClient(settings.superset_base_url, "viewer", report.users["viewer"])
    answer = viewer.session.get(f"{settings.superset_base_url}/api/v1/sqllab/results/", params={"key": "x"})
    assert answer.status_code in (401, 403) and answer.headers["Content-Type"].startswith("application/json")


def test_a_permalink_keeps_the_viewers_filter_and_the_scorecard_follows_it(superset, login):
    """The viewer saves the Seller state = RJ filter as a permalink (as the Share menu does)
    and opens it: the scorecard lists RJ sellers only; the same dashboard unfiltered lists others."""
    settings, _, report = superset
    sellers = _dashboard("sellers")
    viewer = login("viewer")
    dashboard_id = next(
        d["id"] for d in viewer.get("/api/v1/dashboard/", q="(page_size:100)")["result"] if d["dashboard_title"] == sellers.title
    )
    mask = {
        "NATIVE_FILTER-seller_state": {
            "id": "NATIVE_FILTER-seller_state",
            "extraFormData": {"filters": [{"col": "seller_state", "op": "IN", "val": ["RJ"]}]},
            "filterState": {"value": ["RJ"], "label": "RJ"},
            "ownState": {},
        }
    }
    link = viewer.post(f"/api/v1/dashboard/{dashboard_id}/permalink", {"dataMask": mask, "activeTabs": [], "urlParams": []})
    with Browser(settings.superset_base_url, "viewer", report.users["viewer"]) as browser:
        page = browser.page

        def scorecard_states(url: str) -> set[str]:
            """The seller states in the scorecard's chart-data answer on the page at `url`."""
            answers = []

            def note(response) -> None:
                if "/api/v1/chart/data" in response.url and response.request.method == "POST":
                    answers.append(response)

            page.on("response", note)
            browser.render(sellers.slug, len(sellers.charts), url=url)
            page.remove_listener("response", note)
            states = set()
            for response in answers:
                if json.loads(response.request.post_data or "{}").get("form_data", {}).get("viz_type") == "table":
                    for result in response.json().get("result", []):
                        states |= {row["seller_state"] for row in result["data"] if "seller_state" in row}
            return states

        assert scorecard_states(link["url"]) == {"RJ"}
        assert len(scorecard_states(f"{settings.superset_base_url}/superset/dashboard/{sellers.slug}/")) > 1


def test_the_viewer_downloads_a_charts_data_as_csv(superset):
    with _viewer_on(superset, "sales-and-products") as (page, _):
        header = page.locator("[data-test='slice-header']", has_text="Revenue by payment type")
        header.locator("[aria-label='More Options']").click()
        page.locator(".ant-dropdown-menu-submenu-title", has_text="Download").hover()
        with page.expect_download() as download:
            page.locator(".ant-dropdown-menu-item", has_text="Export to .CSV").click()
        text = open(download.value.path(), encoding="utf-8-sig").read()
    lines = text.strip().splitlines()
    assert "Credit card" in text and len(lines) >= 4, text[:300]


def test_the_regional_role_opens_only_dashboards_it_may_read_and_sees_no_error(superset):
    """Each dashboard lists the roles that may open it; for the regional role that leaves out
    Sellers (its scorecard spans every state's customers) and Platform health. Without
    Sellers' roles list, the regional role could open it and meet the refused scorecard:
    that is also how this test knows its error count sees an error."""
    settings, client, report = superset
    sellers = _dashboard("sellers")
    with Browser(settings.superset_base_url, "regional_sp", report.users["regional_sp"]) as browser:
        for dashboard in dashboards():
            if "olist_regional_sp" not in provision.dashboard_roles(dashboard):
                response = browser.page.goto(f"{settings.superset_base_url}/superset/dashboard/{dashboard.slug}/")
                assert response.status in (403, 404), dashboard.slug
                continue
            rendered = browser.render(dashboard.slug, len(dashboard.charts))
            assert rendered.errors == 0, (dashboard.slug, rendered.error_texts)
        sellers_id = provision.ids_by_uuid(client)[sellers.uuid()]
        roles = [r["id"] for r in client.get(f"/api/v1/dashboard/{sellers_id}")["result"]["roles"]]
        client.put(f"/api/v1/dashboard/{sellers_id}", {"roles": []})
        try:
            rendered = browser.render(sellers.slug, len(sellers.charts))
        finally:
            client.put(f"/api/v1/dashboard/{sellers_id}", {"roles": roles})
    assert rendered.errors == 1 and "datasource" in rendered.error_texts[0]

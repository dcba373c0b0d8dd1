"""Headless Chromium opens every dashboard as a person would and finds no chart error."""

import pytest

from olist_bi.dashboards import dashboards
from olist_bi.superset import provision
from olist_bi.superset.browser import Browser
from olist_bi.superset.server import ADMIN_USER, admin_password

pytestmark = pytest.mark.browser


def test_every_dashboard_renders_without_a_chart_error(superset, tmp_path):
    settings, client, _ = superset
    seen = {}
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings)) as browser:
        for dashboard in dashboards():
            shot = tmp_path / f"{dashboard.slug}.png"
            rendered = browser.render(dashboard.slug, len(dashboard.charts), shot, record=True)
            assert rendered.charts == len(dashboard.charts), dashboard.slug
            assert rendered.errors == 0, (dashboard.slug, rendered.error_texts)
            assert shot.stat().st_size > 20_000  # a real picture, not a blank page
            seen.update(rendered.cache_keys)
    # The after-publish warm-up runs each chart's saved query context: it warms what the
    # dashboards read only if that context has the cache key of the request the browser sends.
    charts = provision.chart_ids(client)
    assert set(charts.values()) <= set(seen), "a chart sent no chart-data request"
    differ = [key for key, chart in charts.items()
              if client.get(f"/api/v1/chart/{chart}/data/", format="json", type="full")["result"][0]["cache_key"] not in seen[chart]]
    assert differ == [], f"saved query contexts with another cache key than the dashboard's request: {differ}"


def test_the_viewer_sees_the_business_dashboards(superset, login):
    settings, _, report = superset
    with Browser(settings.superset_base_url, "viewer", report.users["viewer"]) as browser:
        for dashboard in [d for d in dashboards() if d.audience == "business"]:
            rendered = browser.render(dashboard.slug, len(dashboard.charts))
            assert rendered.errors == 0, (dashboard.slug, rendered.error_texts)
        browser.page.goto(f"{settings.superset_base_url}/sqllab/")
        browser.page.wait_for_load_state("networkidle")
        assert "/sqllab" not in browser.page.url or browser.page.locator(".ace_editor, [data-test='sql-editor']").count() == 0


def test_error_detection_sees_a_chart_the_user_may_not_read(superset):
    """The regional role has no access to the cohort dataset: its two cohort charts fail,
    and the browser check must see exactly those."""
    settings, _, report = superset
    cohorts = next(d for d in dashboards() if d.slug == "customers-and-cohorts")
    with Browser(settings.superset_base_url, "regional_sp", report.users["regional_sp"]) as browser:
        rendered = browser.render(cohorts.slug, len(cohorts.charts))
    assert rendered.errors == 2 and all("datasource" in t for t in rendered.error_texts)

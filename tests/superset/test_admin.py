"""An admin manages roles and users in Superset's own UI (headless Chromium): the role editor
names its permissions, each role carries a description, each dashboard lists the roles that
may open it, and a user the admin adds to olist_viewer sees exactly the viewer's dashboards."""

import re
import secrets

import pytest

from olist_bi import access
from olist_bi.dashboards import dashboards
from olist_bi.bi.superset import provision
from olist_bi.bi.superset.browser import Browser
from olist_bi.bi.superset.client import SupersetClient
from olist_bi.bi.superset.server import ADMIN_USER, admin_password

pytestmark = pytest.mark.browser


def _api_errors(page) -> list:
    errors = []
    page.on("response", lambda r: errors.append((r.status, r.url)) if "/api/" in r.url and r.status >= 400 else None)
    return errors


def test_the_role_editor_names_the_permissions_it_loads(superset):
    settings, _, _ = superset
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings)) as browser:
        page = browser.page
        errors = _api_errors(page)
        page.goto(f"{settings.superset_base_url}/roles/")
        row = page.locator("tr", has_text="olist_viewer").first
        row.hover()
        with page.expect_response(lambda r: "/api/v1/security/permissions-resources/" in r.url) as lookup:
            row.locator("[data-test=role-list-edit-action]").click()
        assert lookup.value.status == 200
        modal = page.locator(".ant-modal")
        modal.get_by_text(re.compile(r"^can \w+ \w+")).first.wait_for(timeout=20_000)  # names, drawn once looked up
        modal.locator(".ant-select-selection-item-content", has_text="olist_viewer").wait_for(timeout=20_000)  # the group
        tags = [t.strip() for t in modal.locator(".ant-select-selection-item-content").all_inner_texts()]
        assert tags and not any(t.isdigit() for t in tags), tags  # no permission (or group) shown as a bare id
        assert "olist_viewer" in tags  # the role's group, by name
        assert "There was an error loading permissions" not in page.content()
        assert errors == []


def test_each_role_has_a_description_and_each_dashboard_its_roles(superset):
    _, client, report = superset
    groups = {g["name"]: g for g in client.list_all("/api/v1/security/groups/", ["name", "description", "roles.name"], order="id")}
    for role, description in access.roles().items():
        assert groups[role]["description"] == description
        assert [r["name"] for r in groups[role]["roles"]] == [role]
    listed = {
        d["dashboard_title"]: {r["name"] for r in d["roles"]} for d in client.get("/api/v1/dashboard/", q="(page_size:100)")["result"]
    }
    for dashboard in dashboards():
        assert listed[dashboard.title] == set(provision.dashboard_roles(dashboard)), dashboard.title
    # The regional role may not read the seller scorecard: Sellers is not its dashboard.
    assert "olist_regional_sp" not in listed["Sellers"] and "olist_regional_sp" in listed["Executive overview"]
    assert listed["Platform health"] == {"olist_admin"}


def test_a_user_the_admin_adds_to_the_viewer_role_sees_the_viewers_dashboards(superset, login):
    settings, admin, _ = superset
    username, password = f"newviewer{secrets.randbelow(10**6)}", secrets.token_urlsafe(12)
    with Browser(settings.superset_base_url, ADMIN_USER, admin_password(settings)) as browser:
        page = browser.page
        errors = _api_errors(page)
        page.goto(f"{settings.superset_base_url}/users/")
        page.locator("button", has_text="User").first.click()
        page.fill("#first_name", "New")
        page.fill("#last_name", "Viewer")
        page.fill("#username", username)
        page.fill("#email", f"{username}@example.com")
        page.check("#active")  # Superset's form leaves a new user inactive unless ticked
        page.locator("#roles").click()
        page.keyboard.type("olist_viewer")
        page.locator(".ant-select-item-option", has_text="olist_viewer").first.click()
        page.keyboard.press("Escape")
        page.fill("#password", password)
        page.fill("#confirmPassword", password)
        with page.expect_response(lambda r: r.url.rstrip("/").endswith("/api/v1/security/users") and r.request.method == "POST") as created:
            page.locator("[data-test=form-modal-save-button]").click()
        assert created.value.status == 201, created.value.text()
        assert errors == []
    user = next(
        u for u in admin.list_all("/api/v1/security/users/", ["username", "active", "roles.name"], order="id") if u["username"] == username
    )
    assert user["active"] is True and [r["name"] for r in user["roles"]] == ["olist_viewer"]

    def titles(client):
        return {d["dashboard_title"] for d in client.get("/api/v1/dashboard/", q="(page_size:100)")["result"]}

    newcomer = SupersetClient(settings.superset_base_url, username, password)
    assert titles(newcomer) == titles(login("viewer")) == {d.title for d in dashboards() if "olist_viewer" in provision.dashboard_roles(d)}
    with Browser(settings.superset_base_url, username, password) as browser:
        sellers = next(d for d in dashboards() if d.slug == "sellers")
        rendered = browser.render(sellers.slug, len(sellers.charts))
        assert rendered.errors == 0, rendered.error_texts

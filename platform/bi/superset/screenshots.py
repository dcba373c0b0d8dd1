"""How the report worker's browser signs in to Superset (superset_config's WEBDRIVER_AUTH_FUNC).

Superset 6.1.0's own way (`MachineAuthProvider.authenticate_browser_context`) first opens
/login/ in the browser context and never closes that page; a late anonymous `Set-Cookie:
session=...` from it can overwrite the signed-in cookie, and the screenshot is then of the
login page (apache/superset#44005, fixed after 6.1.0 by apache/superset#44109, which drops
the navigation). This does what the fix does: the same cookies, for the same user, added to
the context directly, with no page opened first.
"""

from __future__ import annotations

# The browser window of a dashboard report (superset_config's WEBDRIVER_WINDOW). Superset 6.1
# captures a dashboard whole (`page.screenshot(full_page=True)`), at least as tall as the window:
# a window taller than the dashboard left its bottom empty (1600 x 2000, the last fifth blank).
# A short one ends the picture where the dashboard ends; every chart still draws, since
# Superset draws all of them for a browser driven by Playwright (`navigator.webdriver`: no
# virtualization).
DASHBOARD_WINDOW = (1600, 600)
CHART_WINDOW = (1600, 1000)


def authenticate(browser_context, user):
    from flask import current_app

    from superset.extensions import machine_auth_provider_factory

    cookies = machine_auth_provider_factory.instance.get_cookies(user)
    url = current_app.config["WEBDRIVER_BASEURL"]
    browser_context.clear_cookies()
    browser_context.add_cookies(
        [{"name": name, "value": value, "url": url, "sameSite": "Lax", "httpOnly": True} for name, value in cookies.items()]
    )
    return browser_context

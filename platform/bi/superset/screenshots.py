"""How the report worker's browser signs in to Superset (superset_config's WEBDRIVER_AUTH_FUNC).

Superset 6.1.0's own way (`MachineAuthProvider.authenticate_browser_context`) first opens
/login/ in the browser context and never closes that page; a late anonymous `Set-Cookie:
session=...` from it can overwrite the signed-in cookie, and the screenshot is then of the
login page (apache/superset#44005, fixed after 6.1.0 by apache/superset#44109, which drops
the navigation). This does what the fix does: the same cookies, for the same user, added to
the context directly, with no page opened first.
"""

from __future__ import annotations


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

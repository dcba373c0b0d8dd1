"""What the platform changes in Superset's Flask app (superset_config.py's FLASK_APP_MUTATOR):
a dashboard reader's landing page, readable refusal pages, a workaround for a SQL Lab
defect, charts drawn without animation, and mail only to allowed recipients. Runs inside
Superset; each change is checked on the real Superset by the tests named in its docstring.
"""

from __future__ import annotations

import html
import json
import os

from flask import Flask, jsonify, redirect, request
from werkzeug.exceptions import Forbidden

HOME = "/superset/welcome/"
DASHBOARDS = "/dashboard/list/"


def mutate(app: Flask) -> None:
    readers_land_on_the_dashboard_list(app)
    refusals_are_readable_pages(app)
    keep_a_smaller_query_limit()
    charts_draw_without_animation(app)
    mail_only_to_allowed_recipients(app)


def _may_create_dashboards() -> bool:
    from superset import security_manager

    return security_manager.can_access("can_write", "Dashboard")


def readers_land_on_the_dashboard_list(app: Flask) -> None:
    """Superset's Home page offers "+ Dashboard" and "+ Chart" to everyone, buttons a reader
    cannot use (Superset 6.1 draws them whatever the permissions). Users who may not create
    dashboards land on the dashboard list instead, which shows them only what they may open.
    (tests/superset/test_viewer.py)"""

    @app.before_request
    def _land() -> object:
        from flask_login import current_user

        if request.method == "GET" and request.path == HOME and current_user.is_authenticated and not _may_create_dashboards():
            return redirect(DASHBOARDS)
        return None


REFUSAL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not available to you | {app_name}</title></head>
<body style="font-family: Inter, Helvetica, Arial, sans-serif; margin: 10vh auto; max-width: 40em; color: #333">
<h1 style="font-weight: 500">This page is not available to you</h1>
<p>Your account may not open <code>{path}</code>. If you need it, ask an administrator
for a role that includes it; your roles decide which dashboards, charts and tools you see.</p>
<p><a href="{dashboards}">Go to the dashboards you may open</a></p>
</body></html>
"""


def refusals_are_readable_pages(app: Flask) -> None:
    """A page the user may not open (SQL Lab, explore, a list they may not read) answered a
    raw JSON error in the browser. A person gets a readable page with a way back; API
    clients keep Superset's JSON error. (tests/superset/test_viewer.py)"""

    @app.errorhandler(Forbidden)
    def _forbidden(error: Forbidden):
        # a browser's page load names text/html; the frontend's and API clients' requests do not
        wants_page = any(kind == "text/html" for kind, _ in request.accept_mimetypes) and not request.path.startswith("/api/")
        if wants_page:
            page = REFUSAL.format(
                app_name=html.escape(app.config.get("APP_NAME", "Superset")), path=html.escape(request.path), dashboards=DASHBOARDS
            )
            return page, 403, {"Content-Type": "text/html; charset=utf-8"}
        handlers = app.error_handler_spec.get(None, {}).get(None, {})
        for kind in type(error).__mro__[1:]:  # Superset's own (for HTTPException): its JSON error
            if kind in handlers:
                return handlers[kind](error)
        return error


def keep_a_smaller_query_limit() -> None:
    """Work around apache/superset#40070 (Superset 6.0 and 6.1): SQL Lab works out the limit of
    a query (the smaller of its own LIMIT and the dropdown's) on the query's row but does not
    save it before running, so `SELECT ... LIMIT 5` came back with 1,000 rows (`LIMIT 1001`).
    Saving the row right after Superset sets the limit keeps the user's LIMIT. Remove once
    Superset saves it itself. (tests/superset/test_sqllab.py checks the behaviour either way.)"""
    from superset.commands.sql_lab.execute import ExecuteSqlCommand
    from superset.extensions import db

    original = ExecuteSqlCommand._set_query_limit

    def set_and_save(self, rendered_query):
        original(self, rendered_query)
        db.session.commit()

    ExecuteSqlCommand._set_query_limit = set_and_save


def charts_draw_without_animation(app: Flask) -> None:
    """ECharts grows every line and bar from zero for a second (its default animation), so a
    dashboard's charts reached their real shape a second after they were on the page.
    Superset 6 merges the theme token `echartsOptionsOverrides` into every ECharts chart's
    options: with `animation` off, charts draw their final picture at once.
    (tests/superset/test_browser.py)"""
    for name in ("THEME_DEFAULT", "THEME_DARK"):
        theme = app.config.get(name)
        if theme:
            token = theme.setdefault("token", {})
            token["echartsOptionsOverrides"] = {"animation": False, **AXES_THAT_READ}
            token["echartsOptionsOverridesByChartType"] = ROOM_FOR_LABELS


# Ticks that would run into each other are left out, on every axis of every chart.
AXES_THAT_READ = {"xAxis": {"axisLabel": {"hideOverlap": True}}, "yAxis": {"axisLabel": {"hideOverlap": True}}}
# A bar chart's horizontal axis: room on the right for its last label ("R$ 1.5M" is centred on
# the grid's end), and about three ticks, not five: a horizontal bar chart's value axis is short
# beside its category names, and ECharts' hideOverlap leaves ticks that touch ("R$ 0R$ 600k").
# (A vertical bar chart's horizontal axis holds categories, which take no splitNumber.)
ROOM_FOR_LABELS = {"echarts_timeseries_bar": {"grid": {"right": 36}, "xAxis": {"splitNumber": 3}}}


def _allowed_recipients() -> tuple[str, ...]:
    from olist_bi.settings import BY_NAME, parse_allowed_recipients

    default = BY_NAME["OLIST_MAIL_ALLOWED_DOMAINS"].default
    return parse_allowed_recipients(os.environ.get("OLIST_MAIL_ALLOWED_DOMAINS") or default)


def _outside(addresses: list[str]) -> str | None:
    """The refusal for `addresses` with one outside OLIST_MAIL_ALLOWED_DOMAINS, else None."""
    from olist_bi.notify.mail import refused

    allowed = _allowed_recipients()
    outside = refused([a for a in addresses if a.strip()], allowed)
    if not outside:
        return None
    return f"Reports and alerts mail only within OLIST_MAIL_ALLOWED_DOMAINS ({', '.join(allowed)}): {', '.join(outside)} is outside it"


def mail_only_to_allowed_recipients(app: Flask) -> None:
    """Superset mails a report or an alert to any address its owner types (To, Cc and Bcc).
    A report saved with a recipient outside OLIST_MAIL_ALLOWED_DOMAINS is refused with a
    message that says so (422), and every mail Superset sends is checked again on its way
    out, Bcc included, whatever created the report (an import, an edit in the metadata
    database). (tests/superset/test_reports.py)"""
    import superset.utils.core as core
    from superset.exceptions import SupersetException

    @app.before_request
    def _check_saved_recipients() -> object:
        if request.method not in ("POST", "PUT") or not request.path.startswith("/api/v1/report/"):
            return None
        body = request.get_json(silent=True) or {}
        addresses = []
        for recipient in body.get("recipients") or []:
            if recipient.get("type") != "Email":
                continue
            config = recipient.get("recipient_config_json") or {}
            config = json.loads(config) if isinstance(config, str) else config
            for key in ("target", "ccTarget", "bccTarget"):
                addresses += core.recipients_string_to_list(config.get(key) or "")
        refusal = _outside(addresses)
        return (jsonify({"message": {"recipients": [refusal]}}), 422) if refusal else None

    original = core.send_mime_email

    def send_within_the_allow_list(e_from, e_to, mime_msg, config, dryrun=False):
        refusal = _outside(list(e_to))
        if refusal:
            raise SupersetException(refusal)
        return original(e_from, e_to, mime_msg, config, dryrun=dryrun)

    core.send_mime_email = send_within_the_allow_list

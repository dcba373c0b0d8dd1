"""Superset's Alerts & Reports, end to end on the session's real Superset: its Celery worker
runs the provisioned schedules, Playwright drives Debian's Chromium for the screenshots, and
the mail lands in the demo's mail sink (the session's outbox)."""

import dataclasses
import email
import email.policy
import io
import json
import time

import psycopg
import pytest
from PIL import Image

from olist_bi.notify import reports as spec_module
from olist_bi.engines.duckdb import warehouse as served
from olist_bi.dashboards import dashboards
from olist_bi.bi.superset import reports
from olist_bi.bi.superset.client import SupersetApiError
from olist_bi.bi.superset.provision import ids_by_uuid
from olist_bi.bi.superset.screenshots import DASHBOARD_WINDOW

MARGIN_ROWS = 40  # below a dashboard's last card: its margin, not a band of nothing


def mails(settings, subject_part: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(settings.outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if subject_part in message["Subject"]:
            found.append(message)
    return found


def wait_for_mail(settings, subject_part: str, count: int, timeout: float = 30) -> list:
    """The mail goes out before the execution's log says Success; the sink writes it a moment later."""
    deadline = time.monotonic() + timeout
    while len(found := mails(settings, subject_part)) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def test_provisioning_made_one_schedule_per_report_format_and_alert(superset):
    settings, client, _ = superset
    spec = spec_module.load()
    rows = [client.get(f"/api/v1/report/{r['id']}")["result"] for r in client.list_all("/api/v1/report/", ["id"], order="name")]
    expected = {
        f"{r.name} ({f})" if len(r.formats) > 1 else r.name: ("Report", r.crontab, f, r.dashboard) for r in spec.reports for f in r.formats
    }
    expected |= {a.name: ("Alert", a.crontab, "PNG", a.dashboard) for a in spec.alerts}
    titles = {d.slug: d.title for d in dashboards()}
    assert {r["name"]: (r["type"], r["crontab"], r["report_format"], r["dashboard"]["dashboard_title"]) for r in rows} == {
        name: (kind, crontab, fmt, titles[slug]) for name, (kind, crontab, fmt, slug) in expected.items()
    }
    assert {r["timezone"] for r in rows} == {spec.timezone}
    targets = {r["name"]: [json.loads(x["recipient_config_json"]) for x in r["recipients"]] for r in rows}
    assert targets["Platform health, daily"] == [{"target": "manager@olist-bi.local"}]  # mail.yaml admins: [manager], the demo's address
    alert = next(r for r in rows if r["name"] == "Late deliveries above threshold")
    assert alert["validator_type"] == "operator" and alert["database"]["database_name"] == "olist_warehouse"
    assert alert["sql"].startswith("-- The late delivery rate") and "{{" not in alert["sql"]


def test_provisioning_twice_creates_no_duplicate_and_removes_only_its_own(superset):
    settings, client, _ = superset
    before = {r["name"]: r["id"] for r in client.list_all("/api/v1/report/", ["id", "name"], order="name")}
    ids = ids_by_uuid(client)
    again = reports.provision(settings, client, ids)
    assert (again.created, again.updated, again.deleted) == (0, len(before), 0)
    assert {r["name"]: r["id"] for r in client.list_all("/api/v1/report/", ["id", "name"], order="name")} == before

    # An admin's own schedule (made in the UI) stays; one the spec no longer names goes.
    body = reports.schedules(settings, spec_module.load(), ids)["Platform health, daily"]
    client.post("/api/v1/report/", {**body, "name": "An admin's own report", "description": "made in the UI"})
    spec = spec_module.load()
    fewer = dataclasses.replace(spec, reports=tuple(r for r in spec.reports if r.name != "Platform health, daily"))
    try:
        outcome = reports.provision(settings, client, ids, fewer)
        names = {r["name"] for r in client.list_all("/api/v1/report/", ["id", "name"], order="name")}
        assert outcome.deleted == 1 and "Platform health, daily" not in names and "An admin's own report" in names
    finally:
        own = reports.find(client, "An admin's own report")  # a quote in the name: rison's escape
        client.delete(f"/api/v1/report/{own['id']}")
        reports.provision(settings, client, ids)
    assert {r["name"]: r["type"] for r in client.list_all("/api/v1/report/", ["id", "name", "type"], order="name")}.keys() == before.keys()


def test_the_weekly_report_mails_a_png_of_the_executive_overview(superset):
    settings, client, _ = superset
    name = "Executive overview, weekly (PNG)"
    entry = reports.run(settings, client, name)
    # Success means the browser found the dashboard's `.standalone` element: a login page
    # (the failure of apache/superset#44005) has none and ends in Error.
    assert entry["state"] == "Success", entry["error_message"]
    (message,) = wait_for_mail(settings, name, 1)
    assert message["Subject"] == f"[Olist BI] {name}: Executive overview"
    assert message["To"] == "manager@olist-bi.local"
    html = message.get_body(("html",)).get_content()
    assert "/superset/dashboard/" in html and "Scheduled by Olist BI" in html
    (png,) = [part for part in message.walk() if part.get_content_type() == "image/png"]
    data = png.get_payload(decode=True)
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes every pixel: a truncated or corrupt PNG raises
    assert image.format == "PNG" and image.width == DASHBOARD_WINDOW[0] and image.height > 1000
    assert empty_rows_at_the_bottom(image) <= MARGIN_ROWS, "the picture runs on past the dashboard's end"
    assert len(data) > 50_000
    # A dashboard, not a blank page: many colours, and the upper half (the charts) far from uniform.
    top = image.convert("RGB").crop((0, 0, 1600, 1000))
    assert len(top.getcolors(1_000_000)) > 200
    extrema = top.convert("L").getextrema()
    assert extrema[1] - extrema[0] > 150


def empty_rows_at_the_bottom(image: Image.Image) -> int:
    """How many rows at the picture's bottom are one flat colour (a few levels of noise allowed)."""
    gray = image.convert("L")
    rows = 0
    for y in range(gray.height - 1, -1, -1):
        low, high = gray.crop((0, y, gray.width, y + 1)).getextrema()
        if high - low > 8:
            break
        rows += 1
    return rows


def test_the_daily_report_picture_ends_where_platform_health_ends(superset):
    """On a schedule of its own, a copy of the daily one: the provisioned schedule's state (its
    last run) is what another test here relies on."""
    settings, client, _ = superset
    body = reports.schedules(settings, spec_module.load(), ids_by_uuid(client))["Platform health, daily"]
    name = "Platform health, picture check"
    created = client.post("/api/v1/report/", {**body, "name": name})
    try:
        entry = reports.run(settings, client, name)
        assert entry["state"] == "Success", entry["error_message"]
        (message,) = wait_for_mail(settings, name, 1)
        (png,) = [part for part in message.walk() if part.get_content_type() == "image/png"]
        image = Image.open(io.BytesIO(png.get_payload(decode=True)))
        assert image.width == DASHBOARD_WINDOW[0] and image.height > DASHBOARD_WINDOW[1]
        assert empty_rows_at_the_bottom(image) <= MARGIN_ROWS
    finally:
        client.delete(f"/api/v1/report/{created['id']}")


def test_the_weekly_report_as_a_pdf(superset):
    settings, client, _ = superset
    name = "Executive overview, weekly (PDF)"
    assert reports.run(settings, client, name)["state"] == "Success"
    (message,) = wait_for_mail(settings, name, 1)
    (pdf,) = list(message.iter_attachments())
    data = pdf.get_payload(decode=True)
    assert pdf.get_filename().endswith(".pdf") and data.startswith(b"%PDF-") and b"/Type /Page" in data and len(data) > 50_000


def late_rate(settings) -> float:
    """The late delivery rate of the last seven days of the reporting window, from the
    warehouse's fact columns, without the semantic layer."""
    with served.connect(settings.warehouse_path) as con:
        (last_day,) = con.execute("select last_day from mart_reporting_window").fetchone()
        orders = con.execute(
            "select cast(delivered_customer_at as date), estimated_delivery_date from fact_deliveries "
            "where delivered_customer_at is not null"
        ).fetchall()
    window = [(d, e) for d, e in orders if 0 <= (last_day - d).days < 7]
    return sum(d > e for d, e in window) / len(window)


def test_the_late_delivery_alert_fires_above_its_threshold_only(superset):
    settings, client, _ = superset
    name = "Late deliveries above threshold"
    expected = late_rate(settings)
    assert 0.01 < expected < 0.5
    spec = spec_module.load()
    ids = ids_by_uuid(client)

    def with_threshold(above: float):
        alerts = tuple(dataclasses.replace(a, above=above) if a.name == name else a for a in spec.alerts)
        reports.provision(settings, client, ids, dataclasses.replace(spec, alerts=alerts))

    try:
        with_threshold(round(expected + 0.02, 4))  # under: nothing sent
        under = reports.run(settings, client, name)
        assert under["state"] == "Not triggered" and under["value"] == pytest.approx(expected)
        time.sleep(2)
        assert mails(settings, name) == []

        with_threshold(round(expected - 0.02, 4))  # over: the alert goes, with the dashboard
        over = reports.run(settings, client, name)
        assert over["state"] == "Success" and over["value"] == pytest.approx(expected)
        (message,) = wait_for_mail(settings, name, 1)
        assert message["To"] == "manager@olist-bi.local" and "Delivery and satisfaction" in message["Subject"]
        assert [p.get_content_type() for p in message.walk() if p.get_content_maintype() == "image"] == ["image/png"]
    finally:
        reports.provision(settings, client, ids)


def test_a_recipient_outside_the_allowed_domains_is_refused_when_saved_and_when_sent(superset):
    """Any owner of a report could mail a dashboard anywhere (Bcc included). The session's
    Superset allows olist-bi.local (OLIST_MAIL_ALLOWED_DOMAINS' default)."""
    settings, client, _ = superset
    ids = ids_by_uuid(client)
    name = "Platform health, daily"
    body = reports.schedules(settings, spec_module.load(), ids)[name]
    spy = {"type": "Email", "recipient_config_json": {"target": "manager@olist-bi.local", "bccTarget": "spy@evil.example"}}
    with pytest.raises(SupersetApiError) as refused:
        client.post("/api/v1/report/", {**body, "name": "Exfiltrate", "recipients": [spy]})
    assert refused.value.status == 422 and "spy@evil.example" in str(refused.value) and "OLIST_MAIL_ALLOWED_DOMAINS" in str(refused.value)
    assert not client.named("/api/v1/report/", "Exfiltrate")

    # A report whose recipients were changed behind the API (in the metadata database) is
    # still refused when it sends: nothing reaches the mail server.
    schedule = reports.find(client, name)["id"]
    with psycopg.connect(settings.superset_database_url, autocommit=True) as conn:
        conn.execute(
            "update report_recipient set recipient_config_json = %s where report_schedule_id = %s",
            (json.dumps(spy["recipient_config_json"]), schedule),
        )

    def reports_sent() -> int:
        return sum(1 for m in mails(settings, name) if "Error occurred" not in m["Subject"])

    sent_before = reports_sent()
    try:
        worker_log = settings.superset_dir / "celery-worker.log"
        offset = worker_log.stat().st_size
        entry = reports.run(settings, client, name)
        assert entry["state"] == "Error" and entry["error_message"] == "Notification sent with error", entry  # Superset's words
        with worker_log.open("rb") as f:  # the why is in the worker's log
            f.seek(offset)
            assert b"OLIST_MAIL_ALLOWED_DOMAINS (olist-bi.local): spy@evil.example is outside it" in f.read()
        time.sleep(2)
        assert reports_sent() == sent_before  # not even to the allowed recipient beside the spy
        notices = [m for m in mails(settings, name) if "Error occurred" in m["Subject"]]  # Superset tells the owner
        assert notices and all(m["To"].endswith("@olist-bi.local") and not m["Bcc"] for m in notices)
    finally:
        reports.provision(settings, client, ids)

"""The reports of platform/notify/reports.yaml as Metabase dashboard subscriptions, provisioned
against the stand-in (tests/metabase/standin.py), which checks every request against the
contract and keeps subscriptions as Metabase's pulses do, renaming them whenever their
dashboard is saved. And the crontab to Metabase schedule conversion on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from olist_bi.bi.metabase.assets import ASSETS_DIR
from olist_bi.notify import reports
from olist_bi.bi.metabase.provision import provision
from olist_bi.bi.metabase.subscriptions import MARKER, Schedule, SubscriptionError, schedule
from tests.conftest import make_settings
from tests.metabase.standin import MetabaseStandIn
from tests.test_postgres import free_port

ASSETS = ASSETS_DIR
SPEC = reports.load()
# reports.yaml reads its crontabs in America/Sao_Paulo (UTC-3 all year); the stand-in's
# Metabase runs in UTC, as the image does without TZ.
IN_UTC = {"Executive overview, weekly": Schedule("weekly", 11, schedule_day="mon"), "Platform health, daily": Schedule("daily", 10)}


def ours(standin: MetabaseStandIn, archived: bool = False) -> dict[str, dict]:
    """The platform's subscriptions, as GET /api/pulse answers them, by report name."""
    found = {}
    for pulse in requests.get(
        f"{standin.url}/api/pulse/", params={"archived": str(archived).lower()}, headers=_admin(standin), timeout=10
    ).json():
        (channel,) = pulse["channels"]
        if channel["details"].get(MARKER):
            assert channel["details"][MARKER] not in found, "two subscriptions for one report"
            found[channel["details"][MARKER]] = pulse
    return found


def _admin(standin: MetabaseStandIn) -> dict:
    session = next(s for s, u in standin.state.sessions.items() if standin.state.users[u]["is_superuser"])
    return {"X-Metabase-Session": session}


def _schedule(pulse: dict) -> Schedule:
    (channel,) = pulse["channels"]
    return Schedule(channel["schedule_type"], channel["schedule_hour"], channel["schedule_day"], channel["schedule_frame"])


@pytest.fixture
def spec_file(tmp_path, monkeypatch):
    """Write a changed reports.yaml and make provisioning read it: `spec_file(change)` where
    `change` edits the file's dict in place."""
    original = reports.load

    def write(change) -> Path:
        raw = yaml.safe_load(reports.SPEC.read_text(encoding="utf-8"))
        change(raw)
        path = tmp_path / f"reports-{len(list(tmp_path.glob('reports-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        monkeypatch.setattr(reports, "load", lambda: original(path))
        return path

    return write


def test_each_report_becomes_one_subscription_to_its_dashboard_schedule_and_addresses(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    assert standin.violations == []
    assert report.created["subscription"] == len(SPEC.reports) == 2
    found = ours(standin)
    assert set(found) == {r.name for r in SPEC.reports}
    for item in SPEC.reports:
        pulse = found[item.name]
        dashboard = standin.state.dashboards[report.ids[f"dashboard:{item.dashboard}"]]
        assert pulse["id"] == report.ids[f"subscription:{item.name}"]
        assert pulse["dashboard_id"] == dashboard["id"] and pulse["collection_id"] == dashboard["collection_id"]
        assert _schedule(pulse) == IN_UTC[item.name]
        (channel,) = pulse["channels"]
        assert channel["channel_type"] == "email" and channel["enabled"] and not pulse["archived"]
        assert channel["recipients"] == [{"email": "manager@olist-bi.local"}]  # mail.yaml: managers and admins are [manager]
        # a card for each question on the dashboard (the mail draws the whole dashboard; cards set attachments)
        assert sorted((c["id"], c["dashboard_card_id"]) for c in pulse["cards"]) == sorted(
            (d["card_id"], d["id"]) for d in dashboard["dashcards"]
        )
        assert not any(c["include_csv"] or c["include_xls"] for c in pulse["cards"])


def test_in_a_metabase_running_in_the_reports_time_zone_the_hours_are_as_written(settings):
    standin = MetabaseStandIn(initializing=0, sync_polls=0, timezone="America/Sao_Paulo")
    standin.start()
    try:
        provision(settings, standin.url, ASSETS)
        found = ours(standin)
    finally:
        standin.stop()
    assert standin.violations == []
    assert _schedule(found["Executive overview, weekly"]) == Schedule("weekly", 8, schedule_day="mon")  # "0 8 * * 1"
    assert _schedule(found["Platform health, daily"]) == Schedule("daily", 7)  # "0 7 * * *"


def test_a_second_run_finds_them_though_metabase_renamed_them_and_changes_nothing(standin, settings):
    first = provision(settings, standin.url, ASSETS)
    renamed = ours(standin)
    # Saving a dashboard renames its subscriptions after it (every run saves the dashboards):
    # a name cannot find them again, the marker in the channel does.
    assert {p["name"] for p in renamed.values()} == {"Executive overview", "Platform health"}
    mark = len(standin.requests)
    second = provision(settings, standin.url, ASSETS)
    assert standin.violations == []
    assert second.created["subscription"] == second.updated["subscription"] == second.archived["subscription"] == 0
    assert len(standin.state.pulses) == 2
    assert ours(standin) == renamed
    assert {k: v for k, v in second.ids.items() if k.startswith("subscription:")} == {
        k: v for k, v in first.ids.items() if k.startswith("subscription:")
    }
    assert not [r for r in standin.requests[mark:] if r[0] in ("POST", "PUT") and r[1].startswith("/api/pulse")]


def test_a_changed_report_is_updated_in_place_a_dropped_one_archived_and_a_returning_one_revived(standin, settings, spec_file):
    provision(settings, standin.url, ASSETS)
    before = ours(standin)

    def fridays_to_admins(raw):
        raw["reports"][0]["crontab"] = "0 9 * * 5"
        raw["reports"][0]["to"] = "admins"

    spec_file(fridays_to_admins)
    changed = provision(settings, standin.url, ASSETS)
    after = ours(standin)
    assert changed.created["subscription"] == 0 and changed.updated["subscription"] == 1
    weekly = after["Executive overview, weekly"]
    assert weekly["id"] == before["Executive overview, weekly"]["id"]  # the same subscription
    assert weekly["channels"][0]["id"] == before["Executive overview, weekly"]["channels"][0]["id"]  # and channel
    assert _schedule(weekly) == Schedule("weekly", 12, schedule_day="fri")
    assert after["Platform health, daily"] == before["Platform health, daily"]

    spec_file(lambda raw: raw["reports"].pop(1))  # from reports.yaml as it is: the weekly one back to Mondays
    dropped = provision(settings, standin.url, ASSETS)
    assert (dropped.updated["subscription"], dropped.archived["subscription"]) == (1, 1)
    assert set(ours(standin)) == {"Executive overview, weekly"} and set(ours(standin, archived=True)) == {"Platform health, daily"}
    assert ours(standin)["Executive overview, weekly"] == before["Executive overview, weekly"]

    spec_file(lambda raw: None)
    revived = provision(settings, standin.url, ASSETS)
    assert revived.created["subscription"] == 0 and revived.updated["subscription"] == 1
    assert ours(standin)["Platform health, daily"]["id"] == before["Platform health, daily"]["id"]
    assert ours(standin)["Platform health, daily"]["channels"][0]["enabled"]
    assert len(standin.state.pulses) == 2 and standin.violations == []


def test_an_unexpressible_crontab_is_refused_naming_the_report_before_anything_is_written(standin, settings, spec_file):
    def half_past(raw):
        raw["reports"][1]["crontab"] = "30 7 * * *"

    spec_file(half_past)
    with pytest.raises(SubscriptionError, match=r"report 'Platform health, daily': crontab '30 7 \* \* \*' does not send on the hour"):
        provision(settings, standin.url, ASSETS)
    assert standin.state.pulses == {}  # the weekly report, which Metabase could send, was not written either
    assert standin.violations == []


def test_subscriptions_people_make_in_metabase_are_left_alone(standin, settings):
    report = provision(settings, standin.url, ASSETS)
    dashboard = standin.state.dashboards[report.ids["dashboard:executive-overview"]]
    card = dashboard["dashcards"][0]
    theirs = {
        "name": "Mine",
        "dashboard_id": dashboard["id"],
        "cards": [{"id": card["card_id"], "include_csv": True, "include_xls": False, "dashboard_card_id": card["id"]}],
        "channels": [
            {
                "channel_type": "email",
                "enabled": True,
                "schedule_type": "daily",
                "schedule_hour": 6,
                "recipients": [{"email": "someone@example.com"}],
            }
        ],
    }
    made = requests.post(f"{standin.url}/api/pulse/", json=theirs, headers=_admin(standin), timeout=10).json()
    provision(settings, standin.url, ASSETS)
    kept = standin.state.pulses[made["id"]]
    assert not kept["archived"] and kept["cards"][0]["include_csv"] and kept["channels"][0]["schedule_hour"] == 6
    assert standin.violations == []


def test_metabase_mails_through_the_platforms_mail_server(standin, settings, tmp_path):
    from olist_bi.notify import outbox

    port = free_port()
    with_mail = make_settings(
        settings.home,
        settings.database_url,
        olist_warehouse_path=settings.warehouse_path,
        olist_smtp_host="127.0.0.1",
        olist_smtp_port=port,
        olist_mail_from="reports@olist-bi.local",
    )
    sink = outbox.controller(with_mail, say=lambda m: None)
    sink.start()
    try:
        report = provision(with_mail, standin.url, ASSETS)
    finally:
        sink.stop()
    assert standin.violations == [] and report.updated["mail server"] == 1
    saved = standin.state.settings  # saved only because the stand-in reached the sink, as Metabase tests it
    assert (saved["email-smtp-host"], saved["email-smtp-port"], saved["email-smtp-security"]) == ("127.0.0.1", port, "none")
    assert saved["email-from-address"] == "reports@olist-bi.local"
    assert requests.get(f"{standin.url}/api/session/properties", timeout=5).json()["email-configured?"]

    # No mail server answers there now: Metabase refuses it, and provisioning says where and what to set.
    with pytest.raises(
        SubscriptionError, match=rf"Metabase could not use the mail server 127.0.0.1:{port} .*Wrong host or port.*OLIST_SMTP_HOST"
    ):
        provision(with_mail, standin.url, ASSETS)


def test_without_a_mail_server_metabase_s_mail_settings_are_left_alone(standin, settings):
    messages = []
    provision(settings, standin.url, ASSETS, say=messages.append)
    assert not [r for r in standin.requests if r[1].startswith(("/api/email", "/api/setting"))]
    assert any("Metabase has no mail server" in m and "OLIST_SMTP_HOST" in m for m in messages)
    assert any("Executive overview, weekly" in m and "no PDF" in m for m in messages)  # its formats ask for PNG and PDF


@pytest.mark.parametrize(
    "crontab, timezone, metabase, expected",
    [
        ("0 * * * *", "UTC", "UTC", Schedule("hourly")),
        ("0 7 * * *", "UTC", "UTC", Schedule("daily", 7)),
        ("00 07 * * *", "UTC", "UTC", Schedule("daily", 7)),
        ("0 8 * * 1", "UTC", "UTC", Schedule("weekly", 8, schedule_day="mon")),  # cron's 1 is Monday
        ("0 8 * * 0", "UTC", "UTC", Schedule("weekly", 8, schedule_day="sun")),
        ("0 8 * * 7", "UTC", "UTC", Schedule("weekly", 8, schedule_day="sun")),
        ("0 8 * * FRI", "UTC", "UTC", Schedule("weekly", 8, schedule_day="fri")),
        ("0 6 1 * *", "UTC", "UTC", Schedule("monthly", 6, schedule_frame="first")),
        ("0 6 15 * *", "UTC", "UTC", Schedule("monthly", 6, schedule_frame="mid")),
        ("0 8 * * 1", "America/Sao_Paulo", "UTC", Schedule("weekly", 11, schedule_day="mon")),
        ("0 22 * * 0", "America/Sao_Paulo", "UTC", Schedule("weekly", 1, schedule_day="mon")),  # Sunday 22:00 is Monday 01:00 UTC
        ("0 1 * * *", "UTC", "America/Sao_Paulo", Schedule("daily", 22)),
        ("0 * * * *", "America/Sao_Paulo", "Europe/Berlin", Schedule("hourly")),  # summer time moves no hour off the hour
        ("0 9 * * *", "America/Sao_Paulo", "GMT-03:00", Schedule("daily", 9)),  # a Java zone id
    ],
)
def test_crontabs_metabase_can_say(crontab, timezone, metabase, expected):
    assert schedule("r", crontab, timezone, metabase) == expected


@pytest.mark.parametrize(
    "crontab, timezone, metabase, words",
    [
        ("30 7 * * *", "UTC", "UTC", "does not send on the hour"),
        ("*/15 * * * *", "UTC", "UTC", "does not send on the hour"),
        ("0 8,17 * * *", "UTC", "UTC", "several hours"),
        ("0 9-17 * * *", "UTC", "UTC", "several hours"),
        ("0 * * * 1", "UTC", "UTC", "hourly on some days only"),
        ("0 8 * * 1-5", "UTC", "UTC", "several days of the week"),
        ("0 8 1 * 1", "UTC", "UTC", "days of both the month and the week"),
        ("0 8 2 * *", "UTC", "UTC", "other than the 1st or the 15th"),
        ("0 8 1 1 *", "UTC", "UTC", "names months"),
        ("0 8 * *", "UTC", "UTC", "not a five-field crontab"),
        ("0 22 1 * *", "America/Sao_Paulo", "UTC", "another day of the month"),  # the 2nd at 01:00 UTC
        ("0 8 * * *", "Europe/Berlin", "UTC", "summer time"),  # 07:00 UTC in winter, 06:00 in summer
        ("0 8 * * *", "Asia/Kolkata", "UTC", "part-hour"),
        ("0 * * * *", "Asia/Kolkata", "UTC", "a part of an hour apart"),
    ],
)
def test_crontabs_metabase_cannot_say_are_refused_with_the_report_and_the_reason(crontab, timezone, metabase, words):
    with pytest.raises(SubscriptionError) as refused:
        schedule("Weekly digest", crontab, timezone, metabase)
    assert "'Weekly digest'" in str(refused.value) and words in str(refused.value)

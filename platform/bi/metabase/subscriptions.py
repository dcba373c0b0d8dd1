"""The reports of platform/notify/reports.yaml as Metabase dashboard subscriptions, and the
mail server Metabase sends them through.

One subscription per report: the report's dashboard, mailed to the addresses of its recipient
list (platform/notify/mail.yaml) on its crontab, converted to what a Metabase subscription can say
(`schedule`). Alerts get none: Metabase's alerts watch one question, not a SQL number on a
schedule (docs/metabase.md, "Dashboard subscriptions").

Metabase 0.63 keeps dashboard subscriptions as "pulses" (`/api/pulse`, pulse/api/pulse.clj):
a dashboard, its cards (for attachments only: the mail renders the whole dashboard), and
channels, each with a schedule and recipients. Every request is checked by the stand-in
against tests/metabase/contract/metabase-api.yaml.

How they are found again. Metabase renames every subscription of a dashboard to the
dashboard's name whenever the dashboard is saved (pulse/events/dashboard_subscription.clj), and
provisioning saves each dashboard on every run, so a name says nothing. Provisioning marks the
email channel of each of its subscriptions instead: `details: {"olist_bi_report": <report
name>}`, a JSON column Metabase keeps as sent (it adds the raw addresses, which it hides again
when it answers) and returns. A subscription carrying the marker is the platform's: updated in
place when its report changes, archived when no report names it any more. Subscriptions people
make in Metabase's UI carry no marker and are left alone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from olist_bi.notify import mail
from olist_bi.notify import reports
from olist_bi.runtime.cron import DAYS  # cron's day numbers (0 and 7 Sunday) and names, as Metabase's schedule_day
from olist_bi.bi.metabase.client import MetabaseApiError, MetabaseClient
from olist_bi.settings import Settings

if TYPE_CHECKING:
    from olist_bi.bi.metabase.provision import MetabaseProvisioning

MARKER = "olist_bi_report"
# OLIST_SMTP_SECURITY -> Metabase's email-smtp-security. Metabase's "tls" is STARTTLS when the
# server offers it, "ssl" is TLS from the first byte (channel/email.clj add-ssl-settings, and
# postal's support.clj: :tls becomes mail.smtp.starttls.enable, :ssl the smtps protocol).
SECURITY = {"none": "none", "starttls": "starttls", "tls": "ssl"}
EXPRESSIBLE = (
    "Metabase sends a subscription hourly, daily at an hour, weekly on one day at an hour, or monthly on the "
    "1st or the 15th at an hour, always on the hour: crontabs `0 * * * *`, `0 H * * *`, `0 H * * D`, `0 H 1 * *`, `0 H 15 * *`"
)


class SubscriptionError(RuntimeError):
    """A report cannot become a Metabase subscription, or Metabase cannot reach the mail
    server; the message names the report or the setting, and why."""


@dataclass(frozen=True)
class Schedule:
    """A Metabase schedule (pulse_channel.clj `valid-schedule?`), in Metabase's time zone."""

    schedule_type: str  # hourly, daily, weekly, monthly
    schedule_hour: int | None = None
    schedule_day: str | None = None  # weekly: mon..sun
    schedule_frame: str | None = None  # monthly: first (the 1st) or mid (the 15th)

    def fields(self) -> dict:
        return {
            "schedule_type": self.schedule_type,
            "schedule_hour": self.schedule_hour,
            "schedule_day": self.schedule_day,
            "schedule_frame": self.schedule_frame,
        }

    def __str__(self) -> str:
        at = f"at {self.schedule_hour:02d}:00"
        return {
            "hourly": "every hour on the hour",
            "daily": f"every day {at}",
            "weekly": f"every {self.schedule_day} {at}",
            "monthly": f"on the {'1st' if self.schedule_frame == 'first' else '15th'} of every month {at}",
        }[self.schedule_type]


def schedule(name: str, crontab: str, timezone: str, metabase_timezone: str) -> Schedule:
    """The Metabase schedule of a report's crontab (read in `timezone`; Metabase schedules in
    `metabase_timezone`). Raise SubscriptionError naming the report when Metabase cannot say it."""
    fields = crontab.split()

    def refuse(why: str) -> SubscriptionError:
        return SubscriptionError(f"report {name!r}: crontab {crontab!r} {why}. {EXPRESSIBLE}")

    if len(fields) != 5:
        raise refuse("is not a five-field crontab")
    minute, hour, day_of_month, month, day_of_week = (f.lower() for f in fields)
    if _number(minute, 0, 59) != 0:
        raise refuse("does not send on the hour")
    if month != "*":
        raise refuse("names months")
    if hour == "*":
        return _hourly(name, day_of_month, day_of_week, timezone, metabase_timezone, refuse)
    at = _number(hour, 0, 23)
    if at is None:
        raise refuse("sends at several hours or a range of them")
    day = _weekday(day_of_week, day_of_month, refuse)
    if day_of_month not in ("*", "1", "01", "15"):
        raise refuse("sends on a day of the month other than the 1st or the 15th")
    return _at_hour(name, at, day, day_of_month, timezone, metabase_timezone, refuse)


def _hourly(
    name: str, day_of_month: str, day_of_week: str, timezone: str, metabase_timezone: str, refuse: Callable[[str], SubscriptionError]
) -> Schedule:
    """The hourly schedule, for a crontab sending every hour of every day."""
    if (day_of_month, day_of_week) != ("*", "*"):
        raise refuse("sends hourly on some days only")
    _check_whole_hours(name, timezone, metabase_timezone)
    return Schedule("hourly")


def _weekday(day_of_week: str, day_of_month: str, refuse: Callable[[str], SubscriptionError]) -> str | None:
    """The one day of the week (mon..sun) a crontab sends on, or None when it names no day of the week."""
    if day_of_week == "*":
        return None
    number = _number(day_of_week, 0, 7)
    day = DAYS[number % 7] if number is not None else (day_of_week if day_of_week in DAYS else None)
    if day is None or day_of_month != "*":
        raise refuse("sends on several days of the week, or on days of both the month and the week")
    return day


def _at_hour(
    name: str,
    at: int,
    day: str | None,
    day_of_month: str,
    timezone: str,
    metabase_timezone: str,
    refuse: Callable[[str], SubscriptionError],
) -> Schedule:
    """The monthly, weekly or daily schedule at hour `at` of `timezone`, moved into Metabase's time zone."""
    at, shift = _in_metabase_time(name, at, timezone, metabase_timezone)
    if day_of_month != "*":
        if shift:
            raise refuse(f"falls on another day of the month in Metabase's time zone {metabase_timezone}")
        return Schedule("monthly", at, schedule_frame="first" if day_of_month in ("1", "01") else "mid")
    if day is not None:
        return Schedule("weekly", at, schedule_day=DAYS[(DAYS.index(day) + shift) % 7])
    return Schedule("daily", at)


def _number(text: str, low: int, high: int) -> int | None:
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _zone(name: str) -> dt.tzinfo:
    """A time zone from an IANA name or a Java zone id such as "UTC", "GMT" or "GMT+03:00"."""
    fixed = re.fullmatch(r"(?:UTC|GMT|Z)(?:([+-])(\d{1,2})(?::?(\d{2}))?)?", name)
    if fixed:
        sign, hours, minutes = fixed.groups()
        offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        return dt.timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SubscriptionError(
            f"Metabase's time zone {name!r} is not one this machine knows; set Metabase's time zone to an IANA name"
        ) from None


def _times(hour: int, timezone: str, metabase_timezone: str) -> set[tuple[int, int, int]]:
    """(hour, minute, day shift) in Metabase's zone of `hour`:00 in `timezone`, over every day
    of the next 400: each time either zone's clocks change."""
    here, there = _zone(timezone), _zone(metabase_timezone)
    today = dt.date.today()
    seen = set()
    for n in range(400):
        day = today + dt.timedelta(days=n)
        moved = dt.datetime(day.year, day.month, day.day, hour, tzinfo=here).astimezone(there)
        seen.add((moved.hour, moved.minute, (moved.date() - day).days))
    return seen


def _in_metabase_time(name: str, hour: int, timezone: str, metabase_timezone: str) -> tuple[int, int]:
    if timezone == metabase_timezone:
        return hour, 0
    seen = _times(hour, timezone, metabase_timezone)
    if len(seen) > 1 or next(iter(seen))[1]:
        raise SubscriptionError(
            f"report {name!r}: {hour:02d}:00 in {timezone} is not one hour on the hour in Metabase's time zone "
            f"{metabase_timezone} all year (summer time or a part-hour offset): run Metabase in {timezone} "
            f"(its container's TZ, or -Duser.timezone={timezone}) and provision again"
        )
    moved_hour, _, shift = seen.pop()
    return moved_hour, shift


def _check_whole_hours(name: str, timezone: str, metabase_timezone: str) -> None:
    if timezone != metabase_timezone and any(minute for _, minute, _ in _times(0, timezone, metabase_timezone)):
        raise SubscriptionError(
            f"report {name!r}: {timezone} and Metabase's time zone {metabase_timezone} are a part of an hour apart: "
            f"run Metabase in {timezone}"
        )


# --- provisioning ---------------------------------------------------------------------------


def provision(
    settings: Settings,
    client: MetabaseClient,
    report: MetabaseProvisioning,
    say: Callable[[str], None] = lambda m: None,
    spec: reports.Spec | None = None,
) -> None:
    """Make the reports of reports.yaml (or `spec`) Metabase dashboard subscriptions, after
    the dashboards (their ids are in `report.ids`), then set Metabase's mail server from the
    OLIST_SMTP_* settings. Every report is checked before anything is written."""
    spec = spec or reports.load()
    metabase_timezone = client.properties().get("report-timezone-long") or "UTC"
    wanted = _wanted(settings, client, spec, metabase_timezone, report, say)
    ours = _ours(client)
    archived = [p for p in client.get("/api/pulse/", archived="true") if _marker(p)]
    report.updated.setdefault("subscription", 0)  # listed in the summary even when nothing changed
    for name, (when, body) in wanted.items():
        current = _current(client, report, name, body, ours.pop(name, []), archived)
        report.ids[f"subscription:{name}"] = _save(client, report, name, body, current, when, metabase_timezone, say)
    for stale in ours.values():  # ours, and no report names them any more
        for pulse in stale:
            _archive(client, pulse, report)
    mail_server(settings, client, report, say)


def _wanted(
    settings: Settings,
    client: MetabaseClient,
    spec: reports.Spec,
    metabase_timezone: str,
    report: MetabaseProvisioning,
    say: Callable[[str], None],
) -> dict[str, tuple[Schedule, dict]]:
    """Each report's schedule and subscription body, by report name; raise SubscriptionError before anything is written."""
    wanted = {}
    for item in spec.reports:
        dashboard_id = report.ids.get(f"dashboard:{item.dashboard}")
        if dashboard_id is None:
            raise SubscriptionError(
                f"report {item.name!r}: Metabase has no dashboard {item.dashboard!r} "
                "(not in platform/bi/metabase/built/dashboards/: run `olist-bi metabase build`)"
            )
        when = schedule(item.name, item.crontab, spec.timezone, metabase_timezone)
        wanted[item.name] = (when, _body(item, client.get(f"/api/dashboard/{dashboard_id}"), when, mail.recipients(settings, item.to)))
        if "PDF" in item.formats:
            say(
                f"subscription {item.name}: Metabase mails the dashboard drawn in the message "
                "(its charts as PNG images); it attaches no PDF"
            )
    return wanted


def _ours(client: MetabaseClient) -> dict[str, list[dict]]:
    """The platform's subscriptions that are not archived, by the report their marker names."""
    ours: dict[str, list[dict]] = {}
    for pulse in client.get("/api/pulse/"):
        if _marker(pulse):
            ours.setdefault(_marker(pulse), []).append(pulse)
    return ours


def _current(
    client: MetabaseClient, report: MetabaseProvisioning, name: str, body: dict, found: list[dict], archived: list[dict]
) -> dict | None:
    """Report `name`'s subscription on `body`'s dashboard (archiving the others found), else an archived one, else None."""
    current = next((p for p in found if p["dashboard_id"] == body["dashboard_id"]), None)
    for other in found:  # a copy, or one on a dashboard since replaced: its dashboard cannot change
        if other is not current:
            _archive(client, other, report)
    if current is None:
        current = next((p for p in archived if _marker(p) == name and p["dashboard_id"] == body["dashboard_id"]), None)
    return current


def _save(
    client: MetabaseClient,
    report: MetabaseProvisioning,
    name: str,
    body: dict,
    current: dict | None,
    when: Schedule,
    metabase_timezone: str,
    say: Callable[[str], None],
) -> int:
    """Create the subscription, or update `current` when it is archived or differs from `body`; return its id."""
    if current is None:
        pulse_id = client.post("/api/pulse/", body)["id"]
        report.created["subscription"] += 1
        say(f"subscription {name}: created, {when} ({metabase_timezone}) to {', '.join(_emails(body))}")
        return pulse_id
    pulse_id = current["id"]
    if current.get("archived") or _state(current) != _state(body):
        client.put(f"/api/pulse/{pulse_id}", _update(body, current))
        report.updated["subscription"] += 1
        say(f"subscription {name}: updated, {when} ({metabase_timezone}) to {', '.join(_emails(body))}")
    return pulse_id


def _body(item: reports.Report, dashboard: dict, when: Schedule, addresses: list[str]) -> dict:
    # The name Metabase would give it anyway (it renames subscriptions after their dashboard).
    cards = [
        {"id": d["card_id"], "include_csv": False, "include_xls": False, "dashboard_card_id": d["id"]}
        for d in dashboard.get("dashcards", [])
        if d.get("card_id")
    ]
    channel = {
        "channel_type": "email",
        "enabled": True,
        **when.fields(),
        "recipients": [{"email": a} for a in addresses],
        "details": {MARKER: item.name},
    }
    return {
        "name": dashboard["name"],
        "dashboard_id": dashboard["id"],
        "cards": cards,
        "channels": [channel],
        "skip_if_empty": False,
        "parameters": [],
    }


def _update(body: dict, current: dict) -> dict:
    """A PUT body: the channel keeps its id (Metabase replaces the channels as a set), and
    `archived` is sent, since the handler reads a missing one as false anyway."""
    channel_id = next((c["id"] for c in current.get("channels", []) if c.get("channel_type") == "email"), None)
    channels = [{**c, "id": channel_id} if channel_id else c for c in body["channels"]]
    return {**{k: v for k, v in body.items() if k != "dashboard_id"}, "channels": channels, "archived": False}


def _marker(pulse: dict) -> str | None:
    return next(((c.get("details") or {}).get(MARKER) for c in pulse.get("channels", []) if (c.get("details") or {}).get(MARKER)), None)


def _emails(pulse: dict) -> list[str]:
    return sorted(r["email"] for c in pulse["channels"] for r in c.get("recipients", []) if r.get("email"))


def _state(pulse: dict) -> tuple:
    """What provisioning sets, as both a body and Metabase's answer carry it."""
    cards = sorted(
        (c["id"], c.get("dashboard_card_id"), bool(c.get("include_csv")), bool(c.get("include_xls"))) for c in pulse.get("cards", [])
    )
    channels = sorted(
        (
            c.get("channel_type"),
            bool(c.get("enabled")),
            tuple(c.get(k) for k in ("schedule_type", "schedule_hour", "schedule_day", "schedule_frame")),
            tuple(sorted((r.get("id"), r.get("email")) for r in c.get("recipients", []))),
            (c.get("details") or {}).get(MARKER),
        )
        for c in pulse.get("channels", [])
    )
    return pulse.get("name"), cards, channels, bool(pulse.get("skip_if_empty")), list(pulse.get("parameters") or [])


def _archive(client: MetabaseClient, pulse: dict, report: MetabaseProvisioning) -> None:
    client.put(f"/api/pulse/{pulse['id']}", {"archived": True})
    report.archived["subscription"] += 1


# --- the mail server ------------------------------------------------------------------------


def mail_server(
    settings: Settings, client: MetabaseClient, report: MetabaseProvisioning, say: Callable[[str], None] = lambda m: None
) -> None:
    """Point Metabase's mail at OLIST_SMTP_HOST (`PUT /api/email`, which Metabase saves only
    after connecting to the server, and logging in with the user if one is set), and its
    sender at OLIST_MAIL_FROM. With no host set, Metabase's mail settings are left as they are."""
    if not settings.smtp_host:
        if not client.properties().get("email-configured?"):
            say("Metabase has no mail server: its subscriptions send nothing until OLIST_SMTP_HOST is set and provisioning runs again")
        return
    mail.server(settings)  # the platform's rules: no mail in the clear to a remote host outside the demo
    body = {
        "email-smtp-host": settings.smtp_host,
        "email-smtp-port": settings.smtp_port,
        "email-smtp-security": SECURITY[settings.smtp_security],
        "email-smtp-username": settings.smtp_user,
        "email-smtp-password": settings.smtp_password,
    }
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        saved = client.put("/api/email/", body)
    except MetabaseApiError as e:
        if e.status == 400:
            raise SubscriptionError(
                f"Metabase could not use the mail server {where} ({e.detail}). The host is the one Metabase's server "
                "sees (in docker-compose, the mail service's name): check OLIST_SMTP_HOST, OLIST_SMTP_PORT, "
                "OLIST_SMTP_SECURITY, OLIST_SMTP_USER and OLIST_SMTP_PASSWORD"
            ) from None
        raise
    for setting, correction in ((saved or {}).get("with-corrections") or {}).items():
        say(f"Metabase's mail server: {setting}: {correction} (it could not connect as OLIST_SMTP_SECURITY says)")
    client.put("/api/setting/email-from-address", {"value": settings.mail_from})
    report.updated["mail server"] += 1

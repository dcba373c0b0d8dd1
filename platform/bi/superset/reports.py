"""Superset's Alerts & Reports from platform/notify/reports.yaml (`olist-bi superset provision`).

Each report becomes one schedule per format (a Superset schedule has one format), each alert
one schedule with its SQL, an operator validator (`>` its threshold) and its dashboard sent as
a PNG. Superset keeps names unique per type, so provisioning finds each schedule by name and
updates it in place; schedules it made once (their description says so) that no spec names
any more are deleted. Running them is Superset's Celery worker and beat (superset/server.py);
`run_now` queues one at once, as the beat does when its crontab comes round.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from dataclasses import dataclass

from olist_bi.notify import mail
from olist_bi.dashboards import dashboards, stable_uuid
from olist_bi.notify.reports import Spec, load
from olist_bi.settings import Settings
from olist_bi.bi.superset import bundle, server
from olist_bi.bi.superset.client import SupersetClient

MARK = "Scheduled by Olist BI"  # ends the description of every schedule made here (the mail shows it)
DATABASES = {"warehouse": bundle.WAREHOUSE, "operations": bundle.OPERATIONS}
WORKING_TIMEOUT = 600  # s: a report still working after this is marked an error
LOG_RETENTION = 90  # days of execution log kept
FINAL = {"Success", "Error", "Not triggered", "On Grace"}  # an execution's end states (Working before)


class ReportsError(RuntimeError):
    """A schedule could not be provisioned or run; the message says which and why."""


@dataclass
class ScheduleChanges:
    created: int = 0
    updated: int = 0
    deleted: int = 0


def schedules(settings: Settings, spec: Spec, ids: dict[str, int]) -> dict[str, dict]:
    """The schedules the spec asks for, by name, as Superset's POST /api/v1/report/ bodies."""

    titles = {d.slug: d.title for d in dashboards()}

    def common(name: str, dashboard: str, crontab: str, to: str, description: str) -> dict:
        return {
            "name": name,
            "description": f"{description} {MARK}.",
            "crontab": crontab,
            "timezone": spec.timezone,
            "dashboard": ids[stable_uuid("dashboard", dashboard)],
            "recipients": [{"type": "Email", "recipient_config_json": {"target": ", ".join(mail.recipients(settings, to))}}],
            "creation_method": "alerts_reports",
            "active": True,
            "working_timeout": WORKING_TIMEOUT,
            "log_retention": LOG_RETENTION,
        }

    wanted = {}
    for report in spec.reports:
        for fmt in report.formats:
            name = report.name if len(report.formats) == 1 else f"{report.name} ({fmt})"
            wanted[name] = {
                **common(name, report.dashboard, report.crontab, report.to, f"The {titles[report.dashboard]} dashboard as a {fmt}."),
                "type": "Report",
                "report_format": fmt,
            }
    for alert in spec.alerts:
        database = ids[bundle.database_uuid(DATABASES[alert.database])]
        wanted[alert.name] = {
            **common(
                alert.name,
                alert.dashboard,
                alert.crontab,
                alert.to,
                f"Sent when the value is above {alert.above:g}; the {titles[alert.dashboard]} dashboard attached.",
            ),
            "type": "Alert",
            "report_format": "PNG",
            "database": database,
            "sql": alert.sql,
            "validator_type": "operator",
            "validator_config_json": {"op": ">", "threshold": alert.above},
        }
    return wanted


def provision(settings: Settings, client: SupersetClient, ids: dict[str, int], spec: Spec | None = None) -> ScheduleChanges:
    """Create, update and delete schedules until Superset holds exactly the spec's."""
    wanted = schedules(settings, spec or load(), ids)
    existing = {row["name"]: row for row in client.list_all("/api/v1/report/", ["id", "name", "description"], order="name")}
    outcome = ScheduleChanges()
    for name, body in wanted.items():
        if name in existing:
            client.put(f"/api/v1/report/{existing[name]['id']}", body)
            outcome.updated += 1
        else:
            client.post("/api/v1/report/", body)
            outcome.created += 1
    for name, row in existing.items():
        if name not in wanted and MARK in (row.get("description") or ""):
            client.delete(f"/api/v1/report/{row['id']}")
            outcome.deleted += 1
    return outcome


def find(client: SupersetClient, name: str) -> dict:
    rows = client.named("/api/v1/report/", name)
    if not rows:
        known = [r["name"] for r in client.list_all("/api/v1/report/", ["id", "name"], order="name")]
        raise ReportsError(f"no report or alert named {name!r} in Superset; it has: {', '.join(known) or 'none'}")
    return rows[0]


def run_now(settings: Settings, schedule_id: int) -> None:
    """Queue one execution of a schedule now, as the beat queues it on its crontab (Superset's
    `reports.execute` task reads the time it was scheduled for from the task's ETA)."""
    eta = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)).isoformat()
    command = [
        str(server.venv(settings) / "bin" / "celery"),
        "--app=superset.tasks.celery_app:app",
        "call",
        "reports.execute",
        f"--args={json.dumps([schedule_id])}",
        f"--eta={eta}",
    ]
    result = subprocess.run(command, env=server.environment(settings), capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise ReportsError(f"could not queue schedule {schedule_id}: {(result.stderr or result.stdout).strip()[-800:]}")


def run(settings: Settings, client: SupersetClient, name: str, timeout: float = 300) -> dict:
    """Run the schedule named `name` now and wait for its outcome: the new log entry (state
    Success, Error, Not triggered or On Grace; an alert's value)."""
    schedule = find(client, name)
    seen = {entry["id"] for entry in logs(client, schedule["id"])}
    run_now(settings, schedule["id"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [e for e in logs(client, schedule["id"]) if e["id"] not in seen and e["state"] in FINAL]
        if done:
            return done[0]
        time.sleep(1)
    raise ReportsError(
        f"{name!r} did not finish within {timeout:g} s: is Superset's Celery worker running? "
        f"See {settings.superset_dir / 'celery-worker.log'}"
    )


def logs(client: SupersetClient, schedule_id: int) -> list[dict]:
    """The schedule's executions, newest first: state (Success, Error, Working, Not triggered,
    On Grace), times, the alert's value and the error message."""
    return client.get(f"/api/v1/report/{schedule_id}/log/", q="(order_column:start_dttm,order_direction:desc,page_size:100)")["result"]

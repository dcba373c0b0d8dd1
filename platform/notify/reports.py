"""The platform's scheduled mail, as specs: the dashboards sent on a schedule (reports) and the
alerts on a number (alerts) of reports.yaml beside this file, checked against the dashboards,
the recipient lists of mail.yaml and the semantic catalog. Superset's provisioning
(bi/superset/reports.py) and Metabase's (bi/metabase/subscriptions.py) apply them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import yaml

from olist_bi.runtime import cron
from olist_bi.notify import mail
from olist_bi.dashboards import DATABASES, dashboards
from olist_bi.semantic import compiler
from olist_bi.semantic.catalog import load as load_catalog

HERE = Path(__file__).parent
SPEC = HERE / "reports.yaml"
FORMATS = ("PNG", "PDF")


class ReportSpecError(ValueError):
    """reports.yaml names something that does not exist or cannot run; the message says which."""


@dataclass(frozen=True)
class Report:
    name: str
    dashboard: str  # a dashboard slug
    crontab: str
    formats: tuple[str, ...]
    to: str  # a recipient list of mail.yaml


@dataclass(frozen=True)
class Alert:
    name: str
    dashboard: str  # sent with the alert, as a PNG
    database: str  # warehouse or operations
    sql: str  # rendered: one row, one column
    above: float
    crontab: str
    to: str


@dataclass(frozen=True)
class Spec:
    timezone: str
    reports: tuple[Report, ...]
    alerts: tuple[Alert, ...]


@cache
def load(path: Path = SPEC) -> Spec:
    """Read and check a reports file; raise ReportSpecError naming the entry and the rule."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    timezone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportSpecError(f"{path}: timezone {timezone!r} is not an IANA time zone") from None
    slugs = {d.slug for d in dashboards()}
    lists = mail.recipient_lists()
    names: set[str] = set()

    def common(entry: dict, kind: str) -> tuple[str, str, str]:
        return _common(entry, kind, path, slugs, lists, names)

    reports = [_report(entry, common, path) for entry in raw.get("reports", [])]
    alerts = [_alert(entry, common, path) for entry in raw.get("alerts", [])]
    return Spec(timezone, tuple(reports), tuple(alerts))


def _common(entry: dict, kind: str, path: Path, slugs: set[str], lists: list[str], names: set[str]) -> tuple[str, str, str]:
    """Check what reports and alerts share (a new name, crontab, dashboard, recipient list); return name, crontab and list."""
    name = str(entry.get("name", "")).strip()
    where = f"{path}: {kind} {name or '(no name)'!r}"
    if not name:
        raise ReportSpecError(f"{where}: every {kind} needs a name (provisioning finds it by name)")
    if name in names:
        raise ReportSpecError(f"{where}: the name is used twice")
    names.add(name)
    crontab = str(entry.get("crontab", ""))
    try:
        cron.trigger(crontab)
    except ValueError as e:
        raise ReportSpecError(f"{where}: crontab {crontab!r} is not a five-field crontab ({e})") from None
    if entry.get("dashboard") not in slugs:
        raise ReportSpecError(f"{where}: dashboard {entry.get('dashboard')!r} is not one of {', '.join(sorted(slugs))}")
    if entry.get("to") not in lists:
        raise ReportSpecError(f"{where}: to {entry.get('to')!r} is not a recipient list of {mail.RECIPIENTS} ({', '.join(lists)})")
    return name, crontab, entry["to"]


def _report(entry: dict, common: Callable[[dict, str], tuple[str, str, str]], path: Path) -> Report:
    """One checked entry of `reports`."""
    name, crontab, to = common(entry, "report")
    formats = tuple(entry.get("formats", ["PNG"]))
    if not formats or set(formats) - set(FORMATS):
        raise ReportSpecError(f"{path}: report {name!r}: formats {list(formats)} must be some of {', '.join(FORMATS)}")
    return Report(name, entry["dashboard"], crontab, formats, to)


def _alert(entry: dict, common: Callable[[dict, str], tuple[str, str, str]], path: Path) -> Alert:
    """One checked entry of `alerts`, its SQL rendered."""
    name, crontab, to = common(entry, "alert")
    where = f"{path}: alert {name!r}"
    if entry.get("database") not in DATABASES:
        raise ReportSpecError(f"{where}: database {entry.get('database')!r} is not one of {', '.join(sorted(DATABASES))}")
    if not isinstance(entry.get("above"), (int, float)):
        raise ReportSpecError(f"{where}: `above` must be a number (the alert fires when the query's value is above it)")
    sql = render(HERE / str(entry.get("sql")), dict(entry.get("params") or {}), where)
    return Alert(name, entry["dashboard"], entry["database"], sql, float(entry["above"]), crontab, to)


def render(path: Path, params: dict, where: str) -> str:
    """An alert's SQL file with its params and `metric(name)`, the aggregate expression of a
    semantic-layer metric over its model (aliased `m`)."""
    if not path.is_file():
        raise ReportSpecError(f"{where}: no SQL file {path}")
    catalog = load_catalog()

    def metric(name: str) -> str:
        return compiler.metric_sql(catalog, catalog.metric(name))

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return environment.from_string(path.read_text(encoding="utf-8")).render(metric=metric, **params).strip()
    except jinja2.TemplateError as e:
        raise ReportSpecError(f"{where}: {path.name}: {e}") from None

"""Standard five-field crontabs as APScheduler triggers.

APScheduler 3's `CronTrigger.from_crontab` counts days of the week from Monday = 0, not cron's
Sunday = 0: "0 2 * * 1" would run on Tuesdays. Here the day-of-week field is read as cron
reads it (0 or 7 Sunday, 1 Monday ... 6 Saturday; ranges, lists, steps and names) and handed
to APScheduler as day names, so a crontab means in the ETL scheduler what it means in
Superset's reports and in every cron.

APScheduler also requires every field to match, while cron fires on a day that matches the
day of the month OR the day of the week when both are restricted: "0 2 1 * 1" runs on the 1st
and on every Monday, not only on Mondays that are the 1st. Such a crontab becomes an OR of two
triggers, one per day field. A field that starts with `*` ("*", "*/2") counts as unrestricted,
as in Vixie cron (Debian's).
"""

from __future__ import annotations

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def trigger(crontab: str, timezone=None) -> BaseTrigger:
    """The APScheduler trigger of a five-field crontab; ValueError names what is wrong."""
    fields = crontab.split()
    if len(fields) != 5:
        raise ValueError(f"{crontab!r} has {len(fields)} fields; a crontab has five: minute hour day month day-of-week")
    minute, hour, day, month, day_of_week = fields
    days = day_names(day_of_week)

    def on(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=timezone)

    if day.startswith("*") or day_of_week.startswith("*"):
        return on(day, days)
    return OrTrigger([on(day, "*"), on("*", days)])


def day_names(field: str) -> str:
    """Cron's day-of-week field as APScheduler day names ("1-5" -> "mon,tue,wed,thu,fri")."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step_text and (not step_text.isdigit() or step < 1):
            raise ValueError(f"day of week {field!r}: bad step {step_text!r}")
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = _day(low, field)
            last = _day(high, field) if high else (6 if step_text else first)
            if high.strip() in ("7", "sun", "sunday"):
                last = 7  # "5-7", "mon-sun": up to Sunday, the end of cron's week
        if last < first:
            raise ValueError(f"day of week {field!r}: range {span!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(DAYS[d] for d in sorted(days))


def _day(text: str, field: str) -> int:
    text = text.strip()
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    if text[:3] in DAYS:
        return DAYS.index(text[:3])
    raise ValueError(f"day of week {field!r}: {text!r} is not 0-7 or a day name")

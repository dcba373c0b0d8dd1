"""Crontabs mean what cron means: APScheduler 3 alone would run "0 2 * * 1" on Tuesdays."""

import datetime as dt

import pytest

from olist_bi import cron

MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)  # a Monday, 00:00


def fire_days(crontab: str, count: int = 7) -> list[str]:
    trigger, when, days = cron.trigger(crontab, timezone="UTC"), MONDAY - dt.timedelta(seconds=1), []
    for _ in range(count):
        when = trigger.get_next_fire_time(None, when + dt.timedelta(seconds=1))
        days.append(when.strftime("%a"))
    return days


@pytest.mark.parametrize(
    ("crontab", "days"),
    [
        ("0 8 * * 1", ["Mon", "Mon"]),
        ("0 8 * * 0", ["Sun", "Sun"]),
        ("0 8 * * 7", ["Sun", "Sun"]),
        ("0 8 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),
        ("0 8 * * 5-7", ["Fri", "Sat", "Sun", "Fri"]),
        ("0 8 * * */2", ["Tue", "Thu", "Sat", "Sun", "Tue"]),
        ("0 8 * * 1,3", ["Mon", "Wed", "Mon"]),
        ("0 8 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),
        ("0 2 * * *", ["Mon", "Tue", "Wed"]),
    ],
)
def test_days_of_the_week_as_cron_counts_them(crontab, days):
    assert fire_days(crontab, len(days)) == days


@pytest.mark.parametrize(("crontab", "message"), [("0 8 * *", "has 4 fields"), ("0 8 * * 8", "not 0-7"), ("0 8 * * 5-1", "backwards"), ("0 25 * * *", "maximum")])
def test_a_wrong_crontab_is_refused(crontab, message):
    with pytest.raises(ValueError, match=message):
        cron.trigger(crontab)

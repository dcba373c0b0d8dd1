"""Crontabs mean what cron means: APScheduler 3 alone would run "0 2 * * 1" on Tuesdays."""

import datetime as dt

import pytest

from olist_bi.runtime import cron

MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)  # a Monday, 00:00


def fire_dates(crontab: str, after: dt.datetime, count: int) -> list[str]:
    """The next `count` times the crontab fires after `after`, as "2026-12-01 Tue 02:00"."""
    trigger, when, dates = cron.trigger(crontab, timezone="UTC"), after, []
    for _ in range(count):
        when = trigger.get_next_fire_time(None, when + dt.timedelta(seconds=1))
        dates.append(when.strftime("%Y-%m-%d %a %H:%M"))
    return dates


def fire_days(crontab: str, count: int = 7) -> list[str]:
    return [date.split()[1] for date in fire_dates(crontab, MONDAY - dt.timedelta(seconds=1), count)]


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


@pytest.mark.parametrize(
    ("crontab", "message"), [("0 8 * *", "has 4 fields"), ("0 8 * * 8", "not 0-7"), ("0 8 * * 5-1", "backwards"), ("0 25 * * *", "maximum")]
)
def test_a_wrong_crontab_is_refused(crontab, message):
    with pytest.raises(ValueError, match=message):
        cron.trigger(crontab)


@pytest.mark.parametrize(
    ("crontab", "dates"),
    [
        # Both day fields restricted: the 1st OR any Monday (APScheduler alone: Mondays that are the 1st,
        # next on 2027-02-01).
        (
            "0 2 1 * 1",
            [
                "2026-11-30 Mon 02:00",
                "2026-12-01 Tue 02:00",
                "2026-12-07 Mon 02:00",
                "2026-12-14 Mon 02:00",
                "2026-12-21 Mon 02:00",
                "2026-12-28 Mon 02:00",
                "2027-01-01 Fri 02:00",
            ],
        ),
        # Names and ranges in both fields, and month names.
        ("30 6 1-2 jan-feb sat-sun", ["2027-01-01 Fri 06:30", "2027-01-02 Sat 06:30", "2027-01-03 Sun 06:30", "2027-01-09 Sat 06:30"]),
        ("0 2 15 * mon-sun", ["2026-11-30 Mon 02:00", "2026-12-01 Tue 02:00", "2026-12-02 Wed 02:00"]),
        # A day field starting with `*` is unrestricted, as in Vixie cron: then both must match.
        ("0 2 */2 * 1", ["2026-12-07 Mon 02:00", "2026-12-21 Mon 02:00", "2027-01-11 Mon 02:00"]),
        ("0 2 1 * *", ["2026-12-01 Tue 02:00", "2027-01-01 Fri 02:00"]),
    ],
)
def test_either_day_field_fires_when_both_are_restricted(crontab, dates):
    assert fire_dates(crontab, MONDAY - dt.timedelta(seconds=1), len(dates)) == dates


def test_mon_to_sun_is_every_day():
    assert fire_days("0 8 * * mon-sun", 7) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert cron.day_names("mon-sun") == cron.day_names("0-6") == "sun,mon,tue,wed,thu,fri,sat"

"""Triggers: cron's meaning on top of APScheduler (weekdays, daylight saving), `every` from the
epoch."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from chatops.triggers import (
    TriggerError,
    cron_day_of_week,
    cron_trigger,
    every_trigger,
    parse_duration,
)

OSLO = ZoneInfo("Europe/Oslo")


def utc(*fields: int) -> float:
    return datetime(*fields, tzinfo=UTC).timestamp()


def at(ts: float, zone: ZoneInfo = OSLO) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%a %Y-%m-%d %H:%M %Z")


def test_a_numeric_day_of_week_means_what_it_means_to_cron() -> None:
    assert cron_day_of_week("1-5") == "mon,tue,wed,thu,fri"
    assert cron_day_of_week("0") == cron_day_of_week("7") == "sun"
    assert cron_day_of_week("5-7") == "sun,fri,sat"
    assert cron_day_of_week("0-2") == "sun,mon,tue"  # APScheduler has no Sunday-first range
    assert cron_day_of_week("*/2") == "sun,tue,thu,sat"
    assert cron_day_of_week("sat,sun") == "sun,sat"


def test_weekdays_at_seven_fire_monday_to_friday_only() -> None:
    trigger = cron_trigger("0 7 * * 1-5", "Europe/Oslo")
    friday_noon = datetime(2025, 6, 6, 12, tzinfo=OSLO).timestamp()
    assert [at(t) for t in trigger.next_times(friday_noon, 6)] == [
        "Mon 2025-06-09 07:00 CEST", "Tue 2025-06-10 07:00 CEST", "Wed 2025-06-11 07:00 CEST",
        "Thu 2025-06-12 07:00 CEST", "Fri 2025-06-13 07:00 CEST", "Mon 2025-06-16 07:00 CEST"]
    sundays = cron_trigger("0 9 * * 0", "Europe/Oslo")
    assert at(sundays.next_after(friday_noon)) == "Sun 2025-06-08 09:00 CEST"


def test_day_of_month_or_day_of_week_as_in_cron() -> None:
    trigger = cron_trigger("0 0 13 * 5", "UTC")  # the 13th, and every Friday
    times = trigger.next_times(utc(2025, 6, 1), 4)
    assert [at(t, ZoneInfo("UTC")) for t in times] == [
        "Fri 2025-06-06 00:00 UTC", "Fri 2025-06-13 00:00 UTC", "Fri 2025-06-20 00:00 UTC",
        "Fri 2025-06-27 00:00 UTC"]
    assert at(trigger.next_after(utc(2025, 7, 5)), ZoneInfo("UTC")) == "Fri 2025-07-11 00:00 UTC"
    assert at(trigger.next_after(utc(2025, 7, 11, 1)), ZoneInfo("UTC")) == (
        "Sun 2025-07-13 00:00 UTC")


def test_spring_forward_a_skipped_time_fires_right_after_the_jump() -> None:
    trigger = cron_trigger("30 2 * * *", "Europe/Oslo")  # 02:30 does not exist on 30 March
    times = trigger.next_times(utc(2025, 3, 28, 12), 4)
    assert [at(t) for t in times] == [
        "Sat 2025-03-29 02:30 CET", "Sun 2025-03-30 03:00 CEST", "Mon 2025-03-31 02:30 CEST",
        "Tue 2025-04-01 02:30 CEST"]
    assert times[1] == utc(2025, 3, 30, 1, 0)  # the instant of the jump


def test_fall_back_a_repeated_time_fires_once() -> None:
    trigger = cron_trigger("30 2 * * *", "Europe/Oslo")  # 02:30 happens twice on 26 October
    times = trigger.next_times(utc(2025, 10, 25, 12), 3)
    assert [at(t) for t in times] == [
        "Sun 2025-10-26 02:30 CEST", "Mon 2025-10-27 02:30 CET", "Tue 2025-10-28 02:30 CET"]


def test_a_wildcard_hour_follows_the_clock_through_both_autumn_passes() -> None:
    trigger = cron_trigger("*/30 * * * *", "Europe/Oslo")
    times = trigger.next_times(utc(2025, 10, 25, 23, 45), 4)
    assert [at(t) for t in times] == [
        "Sun 2025-10-26 02:00 CEST", "Sun 2025-10-26 02:30 CEST", "Sun 2025-10-26 02:00 CET",
        "Sun 2025-10-26 02:30 CET"]


def test_every_counts_from_the_epoch_whenever_asked() -> None:
    trigger = every_trigger("15m")
    assert trigger.next_after(utc(2025, 6, 1, 10, 7, 13)) == utc(2025, 6, 1, 10, 15)
    assert trigger.next_after(utc(2025, 6, 1, 10, 15)) == utc(2025, 6, 1, 10, 30)
    assert every_trigger("7m").next_after(0.0) == 420.0
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800


@pytest.mark.parametrize(("expression", "message"), [
    ("0 7 * *", "cron '0 7 * *' has 4 fields; it needs five: minute hour day-of-month month "
                "day-of-week (e.g. '0 7 * * 1-5')"),
    ("61 7 * * *", "cron '61 7 * * *' is not valid: Error validating expression '61': the last "
                   "value (61) is higher than the maximum value (59)"),
    ("0 7 * * 8", "cron '0 7 * * 8': day of week '8' is not 0-7 (0 and 7 are Sunday) or "
                  "sun..sat"),
    ("0 7 * * 5-2", "cron '0 7 * * 5-2': day of week '5-2': the range runs backwards"),
    ("0 0 30 2 *", "cron '0 0 30 2 *' never fires (no such date)"),
])
def test_a_bad_cron_says_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(TriggerError) as caught:
        cron_trigger(expression, "UTC")
    assert str(caught.value) == message


def test_bad_durations_and_zones_say_what_is_wrong() -> None:
    with pytest.raises(TriggerError, match="'soon' is not a duration; write it like 30s, 15m"):
        parse_duration("soon")
    with pytest.raises(TriggerError, match="must be longer than 0 s"):
        parse_duration("0m")
    with pytest.raises(TriggerError, match="unknown time zone 'Europe/Olso'"):
        cron_trigger("0 7 * * *", "Europe/Olso")

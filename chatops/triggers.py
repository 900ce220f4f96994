"""When a schedule fires: APScheduler 3's trigger classes, with cron's meaning restored.

APScheduler computes the instants; three things are corrected so that a crontab line means
what it means to cron:

* Day of week: APScheduler numbers Monday 0; cron numbers Sunday 0 (and 7). A numeric
  day-of-week is converted (``1-5`` is Monday to Friday). When both day of month and day of
  week are restricted, cron fires when *either* matches; APScheduler wants both.
* Daylight saving, as Vixie cron does it for a line with a fixed hour and minute: a time in the
  skipped spring hour fires right after the jump, a time in the repeated autumn hour fires once.
  A line whose minute or hour starts with ``*`` follows the clock (fires in both autumn passes).
* ``every`` (``15m``) counts from 1970-01-01 00:00 UTC, so every process computes the same
  instants whenever it started.

Instants are UNIX seconds (floats), like every time in the queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:  # imported when a trigger is made: a config without schedules never pays it
    from apscheduler.triggers.base import BaseTrigger

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@hourly": "0 * * * *"}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's order: Sunday is 0
_DAY_ITEM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class TriggerError(ValueError):
    """A trigger that cannot be used; the message says why."""


def parse_duration(text: object) -> float:
    """``15m``, ``1h30m``, ``2d``, ``45s`` (or a number of seconds) as seconds."""
    compact = text.replace(" ", "") if isinstance(text, str) else ""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    elif re.fullmatch(r"(\d+[smhd])+", compact):
        seconds = float(sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(compact)))
    else:
        raise TriggerError(f"{text!r} is not a duration; write it like 30s, 15m, 1h30m or 1d")
    if seconds <= 0:
        raise TriggerError(f"{text!r} is not a duration: it must be longer than 0 s")
    return seconds


def cron_day_of_week(field_text: str) -> str:
    """A cron day-of-week field (Sunday 0 or 7) as APScheduler's names (``1-5`` -> mon,...)."""
    if field_text == "*":
        return "*"
    days: set[int] = set()
    for item in field_text.lower().split(","):
        match = _DAY_ITEM.match(item)
        if not match:
            raise TriggerError(f"day of week {item!r} is not a day, a range or a step")
        first, last, step = match.groups()
        if first == "*":
            start, end = 0, 6
        else:
            start = _day_number(first)
            end = _day_number(last) if last else (6 if step else start)
        if last and end == 0 and start > 0:
            end = 7  # 5-0 is not a range, but 5-7 (Friday to Sunday) is
        if end < start:
            raise TriggerError(f"day of week {item!r}: the range runs backwards")
        days.update(n % 7 for n in range(start, end + 1, int(step or 1)))
    return ",".join(DAY_NAMES[n] for n in sorted(days))


def _day_number(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text[:3] in DAY_NAMES and len(text) == 3:
        return DAY_NAMES.index(text)
    raise TriggerError(f"day of week {text!r} is not 0-7 (0 and 7 are Sunday) or sun..sat")


def time_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise TriggerError(f"time zone {name!r} is not a name like Europe/Oslo or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TriggerError(f"unknown time zone {name!r} (use an IANA name like Europe/Oslo, "
                           "or UTC)") from None


@dataclass(frozen=True)
class Trigger:
    """A schedule's instants: ``next_after(t)`` is the first fire time after ``t``."""

    text: str  # as written: "cron 0 7 * * 1-5 (Europe/Oslo)" or "every 15m"
    zone: ZoneInfo
    aps: BaseTrigger = field(compare=False)  # APScheduler's trigger
    fixed_time: bool = False  # cron with a fixed hour and minute: DST corrections apply

    def next_after(self, after: float) -> float:
        moment = after
        while True:
            # (in UTC, then converted: arithmetic on local times would lose the autumn fold)
            start = (datetime.fromtimestamp(moment, UTC) + timedelta(microseconds=1)
                     ).astimezone(self.zone)
            fire = self.aps.get_next_fire_time(None, start)
            if fire is None:
                raise TriggerError(f"{self.text} never fires again")
            if self.fixed_time:
                if _wall(datetime.fromtimestamp(fire.timestamp(), self.zone)) != _wall(fire):
                    jump = _jump(fire)  # a time the spring jump skipped: fire right after it
                    if jump > after:
                        return jump
                    moment = fire.timestamp()
                    continue
                if fire.fold == 1 and fire.replace(fold=0).utcoffset() != fire.utcoffset():
                    moment = fire.timestamp()  # the autumn hour's second pass: fired already
                    continue
            return fire.timestamp()

    def next_times(self, after: float, count: int) -> list[float]:
        times = []
        for _ in range(count):
            after = self.next_after(after)
            times.append(after)
        return times

    def local(self, ts: float) -> str:
        """An instant in the schedule's time zone, as users read it."""
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _wall(moment: datetime) -> tuple:
    return moment.replace(tzinfo=None, fold=0).timetuple()[:6]


def _jump(fire: datetime) -> float:
    """The instant the clock jumped over ``fire``'s (non-existent) wall time."""
    low = int(fire.replace(fold=1).timestamp())  # read with the offset after the jump
    high = int(fire.replace(fold=0).timestamp())  # with the one before: the jump is between
    after = fire.replace(fold=1).utcoffset()
    while low + 1 < high:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, fire.tzinfo).utcoffset() == after:
            high = middle
        else:
            low = middle
    return float(high)


def cron_trigger(expression: str, zone_name: str = "UTC") -> Trigger:
    """A five-field crontab line (or @daily, @hourly, ...) in a time zone."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    zone = time_zone(zone_name)
    if not isinstance(expression, str):
        raise TriggerError(f"cron {expression!r} is not text like '0 7 * * 1-5'")
    fields = MACROS.get(expression.strip().lower(), expression).split()
    if len(fields) != 5:
        raise TriggerError(f"cron {expression!r} has {len(fields)} fields; it needs five: "
                           "minute hour day-of-month month day-of-week (e.g. '0 7 * * 1-5')")
    minute, hour, day, month, weekday = fields
    try:
        weekday = cron_day_of_week(weekday)
        if day.startswith("*") or weekday.startswith("*"):
            aps: Any = CronTrigger(minute=minute, hour=hour, day=day, month=month,
                                           day_of_week=weekday, timezone=zone)
        else:  # both restricted: cron fires on either
            aps = OrTrigger([
                CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=zone),
                CronTrigger(minute=minute, hour=hour, month=month, day_of_week=weekday,
                            timezone=zone)])
    except TriggerError as exc:
        raise TriggerError(f"cron {expression!r}: {exc}") from None
    except ValueError as exc:
        raise TriggerError(f"cron {expression!r} is not valid: {exc}") from None
    fixed = not (minute.startswith("*") or hour.startswith("*"))
    trigger = Trigger(f"cron {expression} ({zone.key})", zone, aps, fixed)
    try:
        trigger.next_after(0.0)
    except TriggerError:  # e.g. '0 0 30 2 *': 30 February
        raise TriggerError(f"cron {expression!r} never fires (no such date)") from None
    return trigger


def every_trigger(duration: object, zone_name: str = "UTC") -> Trigger:
    """Every ``duration``, at the multiples of it since the epoch."""
    from apscheduler.triggers.interval import IntervalTrigger

    seconds = parse_duration(duration)
    aps = IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)
    return Trigger(f"every {duration}", time_zone(zone_name), aps)

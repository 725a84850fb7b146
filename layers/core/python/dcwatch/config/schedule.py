"""EventBridge Scheduler expressions, the subset a scheduled drill accepts: `rate(N unit)` and `cron(...)` with
six fields (minutes hours day-of-month month day-of-week year) made of `*`, `?`, numbers, names, `a-b`, `a,b`
and `/step`. Parsed here so that a typo is refused by the config check, naming the field, instead of by
CloudFormation at deploy time; and read forwards (`next_fire`) so `dcwatch drill --schedule-status` can say
when the next drill runs without asking AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]  # EventBridge numbers them 1 (SUN) to 7 (SAT)
# (name, lowest, highest, names) of the six cron fields, in their order.
CRON_FIELDS: list[tuple[str, int, int, list[str]]] = [
    ("minutes", 0, 59, []),
    ("hours", 0, 23, []),
    ("day-of-month", 1, 31, []),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 1, 7, DAYS),
    ("year", 1970, 2199, []),
]
SEARCH_DAYS = 366 * 5  # a cron that matches no day within five years is treated as never firing again


class ScheduleError(ValueError):
    """An expression this module does not accept, in one sentence naming the part at fault."""


@dataclass(frozen=True)
class Rate:
    """`rate(N unit)`: every N units from the schedule's start (AWS counts from when it was created)."""

    every_s: int


@dataclass(frozen=True)
class Cron:
    """`cron(...)`: the set of values each field allows; `?` and `*` allow all (day-of-month with
    day-of-week: exactly one of them is `?`, the other says which days)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: `?`, the day-of-week field decides
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = SUN .. 7 = SAT; None: `?`
    years: frozenset[int]

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months or day.year not in self.years:
            return False
        if self.days is not None:
            return day.day in self.days
        assert self.weekdays is not None
        return (day.isoweekday() % 7) + 1 in self.weekdays


Expression = Rate | Cron


def parse_expression(text: str) -> Expression:
    """The expression, or ScheduleError saying what is wrong with it."""
    text = text.strip()
    if m := re.fullmatch(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)", text):
        count, unit = int(m.group(1)), m.group(2)
        base = unit[:-1] if unit.endswith("s") else unit
        if base not in RATE_UNITS:
            raise ScheduleError(f"{text}: the unit is minute(s), hour(s) or day(s), not {unit!r}")
        if count < 1:
            raise ScheduleError(f"{text}: the rate must be at least 1")
        if (count == 1) != (unit == base):
            raise ScheduleError(f"{text}: EventBridge wants `1 {base}` and `{count} {base}s` (singular for 1 only)")
        return Rate(count * RATE_UNITS[base])
    if m := re.fullmatch(r"cron\((.*)\)", text):
        return _cron(text, m.group(1).split())
    raise ScheduleError(f"{text!r}: an EventBridge Scheduler expression is `cron(...)` or `rate(...)`")


def _cron(text: str, fields: list[str]) -> Cron:
    if len(fields) != len(CRON_FIELDS):
        names = " ".join(name for name, *_ in CRON_FIELDS)
        raise ScheduleError(f"{text}: a cron has {len(CRON_FIELDS)} fields ({names}), not {len(fields)}")
    values = [_field(text, field, *spec) for field, spec in zip(fields, CRON_FIELDS, strict=True)]
    if (values[2] is None) == (values[4] is None):
        raise ScheduleError(f"{text}: exactly one of day-of-month and day-of-week must be `?`")
    minutes, hours, days, months, weekdays, years = values
    for name, allowed in (("minutes", minutes), ("hours", hours), ("month", months), ("year", years)):
        if allowed is None:
            raise ScheduleError(f"{text}: `?` is for day-of-month or day-of-week only, not {name}")
    assert minutes is not None and hours is not None and months is not None and years is not None
    return Cron(minutes, hours, days, months, weekdays, years)


def _field(text: str, field: str, name: str, low: int, high: int, names: list[str]) -> frozenset[int] | None:
    if field == "?":
        if name not in ("day-of-month", "day-of-week"):
            raise ScheduleError(f"{text}: `?` is for day-of-month or day-of-week only, not {name}")
        return None
    allowed: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        if step_text and (not step_text.isdigit() or int(step_text) == 0):
            raise ScheduleError(f"{text}: {name}: {part!r} has a step that is not a positive number")
        step = int(step_text or 1)
        if base == "*":
            first, last = low, high
        else:
            first_text, dash, last_text = base.partition("-")
            first = _value(text, name, first_text, low, high, names)
            last = _value(text, name, last_text, low, high, names) if dash else (high if step_text else first)
            if last < first:
                raise ScheduleError(f"{text}: {name}: the range {base!r} runs backwards")
        allowed.update(range(first, last + 1, step))
    return frozenset(allowed)


def _value(text: str, name: str, word: str, low: int, high: int, names: list[str]) -> int:
    if word.upper() in names:
        return names.index(word.upper()) + low
    if not word.isdigit() or not low <= int(word) <= high:
        spelled = f" or {names[0]}-{names[-1]}" if names else ""
        raise ScheduleError(
            f"{text}: {name}: {word!r} is not a value from {low} to {high}{spelled} "
            "(this check accepts *, ?, numbers, names, a-b, a,b and /step; not L, W or #)"
        )
    return int(word)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone, or ScheduleError naming it."""
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ScheduleError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from exc


def next_fire(
    expression: Expression, time_zone: str, after: datetime, since: datetime | None = None
) -> datetime | None:
    """The first time (UTC) after `after` that the schedule fires; None when a cron matches nothing in the next
    five years. A rate fires every period from `since` (its start, or a run it is known to have fired at);
    without one, a period after `after` is the best guess."""
    if isinstance(expression, Rate):
        period = timedelta(seconds=expression.every_s)
        if since is None:
            return (after + period).astimezone(UTC)
        passed = max(0, int((after - since) // period) + 1)
        return (since + passed * period).astimezone(UTC)
    tz = zone(time_zone)
    local = after.astimezone(tz)
    day = local.date()
    for _ in range(SEARCH_DAYS):
        if expression.matches_day(day):
            for hour in sorted(expression.hours):
                for minute in sorted(expression.minutes):
                    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    if at.astimezone(UTC) > after.astimezone(UTC):
                        return at.astimezone(UTC)
        day += timedelta(days=1)
    return None

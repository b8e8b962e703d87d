"""Cron triggers: the workflow file's schedule syntax, as EventBridge Scheduler expressions.

A cron trigger's ``schedule`` may be written as

* standard cron, five fields ``min hour dom mon dow`` (``0 9 * * 1-5``);
* the six-field form with seconds first, ``sec min hour dom mon dow`` (seconds must be ``0``);
* a nickname: ``@hourly``, ``@daily`` / ``@midnight``, ``@weekly``, ``@monthly``,
  ``@yearly`` / ``@annually``;
* plain words: ``every minute``, ``every 15 minutes``, ``hourly``, ``every 2 hours``, ``daily``,
  ``every 3 days``, ``every day at 09:30``;
* an EventBridge expression as is: ``cron(0 9 ? * MON-FRI *)`` or ``rate(5 minutes)``.

:func:`to_scheduler_expression` turns any of these into the expression EventBridge Scheduler
takes; the schedule's ``timezone`` goes to Scheduler separately (``ScheduleExpressionTimezone``).
The differences from standard cron that the translation deals with:

* AWS cron has six fields, the sixth a year; we always emit ``*`` for it.
* AWS numbers the days of the week 1-7 from Sunday; standard cron 0-6 from Sunday (and 7 is
  Sunday again). We emit day names (``MON-FRI``) so the output cannot be misread.
* AWS needs ``?`` in one of day-of-month / day-of-week. Standard cron fires when *either*
  matches when both are restricted (``0 9 1 * 1`` = the 1st and every Monday); AWS cannot say
  that, so such a schedule is refused (``cron_unsupported``) rather than silently changed.
* AWS has no ``/`` in day-of-week and no ``*/n``; steps are expanded or written ``0/n``.
* The Quartz extensions EventBridge takes are accepted in both forms and passed on as they are
  (day-of-week numbers moved to AWS's 1-7): ``L`` (the last day of the month), ``LW`` (its last
  weekday), ``15W`` (the weekday nearest the 15th, never leaving the month) in day-of-month;
  ``5L`` (the month's last Friday in standard numbering, ``6L`` in AWS's), ``5#3`` (its third
  Friday) and ``L`` alone (Saturday, the last day of the week) in day-of-week. Each stands alone
  in its field, as EventBridge requires for ``#``.

:func:`next_fire_times` evaluates the resulting expression. The local runtime's cron loop uses
it (moto's Scheduler never fires anything), and the tests use it to prove what a schedule means.

Stdlib only.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from boternity.errors import WorkflowError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ACCEPTED_FORMS", "next_fire_times", "to_scheduler_expression", "validate_timezone"]

ACCEPTED_FORMS = (
    "a cron expression with 5 fields 'min hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5'), "
    "or 6 fields with seconds first, seconds 0 (e.g. '0 0 9 * * 1-5'); "
    "@hourly, @daily, @weekly, @monthly, @yearly; "
    "'every minute', 'every N minutes', 'every hour' / 'hourly', 'every N hours', "
    "'every day' / 'daily', 'every N days', 'every day at HH:MM'; "
    "or an EventBridge 'cron(...)' or 'rate(...)' expression"
)

# A schedule on 29 February may not fire for 8 years (2096 -> 2104); searching that far costs
# only one cheap date test per day, and anything further away is effectively "never".
_SEARCH_DAYS = 8 * 366

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class _Field:
    label: str
    lo: int
    hi: int
    names: Mapping[str, int] = field(default_factory=dict)

    @property
    def all(self) -> frozenset[int]:
        return frozenset(range(self.lo, self.hi + 1))


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, {n: i + 1 for i, n in enumerate(_MONTH_NAMES)})
# Standard cron: 0-7, Sunday = 0 and 7.
_DOW_STD = _Field("day-of-week", 0, 7, {n: i for i, n in enumerate(_DAY_NAMES)})
# AWS: 1-7, Sunday = 1.
_DOW_AWS = _Field("day-of-week", 1, 7, {n: i + 1 for i, n in enumerate(_DAY_NAMES)})
_YEAR = _Field("year", 1970, 2199)

_ALL_WEEKDAYS = frozenset(range(7))


def _invalid(message: str) -> WorkflowError:
    return WorkflowError(message, code="invalid_schedule", field="schedule")


def _unsupported(message: str) -> WorkflowError:
    return WorkflowError(message, code="cron_unsupported", field="schedule")


# --------------------------------------------------------------------------- parsed forms


@dataclass(frozen=True)
class _Rate:
    value: int
    unit: str  # "minute" | "hour" | "day"

    def expression(self) -> str:
        # AWS insists on the singular for 1 ("rate(1 minute)") and the plural otherwise.
        return f"rate({self.value} {self.unit}{'' if self.value == 1 else 's'})"

    @property
    def seconds(self) -> int:
        return self.value * _UNIT_SECONDS[self.unit]


@dataclass(frozen=True)
class _Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None is '?'
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 0-6, Sunday = 0; None is '?'
    years: frozenset[int]
    # A day named by its place in the month (L, W, #) instead of a set; its field's set is None.
    day_rule: _DayRule | None = None
    weekday_rule: _DayRule | None = None

    def expression(self) -> str:
        if self.day_rule is not None:
            dom = self.day_rule.aws()
        else:
            dom = "?" if self.days is None else _compact(self.days, _DOM)
        if self.weekday_rule is not None:
            dow = self.weekday_rule.aws()
        else:
            dow = "?" if self.weekdays is None else _compact_weekdays(self.weekdays)
        return (
            f"cron({_compact(self.minutes, _MINUTE)} {_compact(self.hours, _HOUR)} {dom} "
            f"{_compact(self.months, _MONTH)} {dow} {_compact(self.years, _YEAR)})"
        )

    def matches_date(self, d: date) -> bool:
        if d.month not in self.months or d.year not in self.years:
            return False
        if self.days is not None and d.day not in self.days:
            return False
        for rule in (self.day_rule, self.weekday_rule):
            if rule is not None and not rule.matches(d):
                return False
        return self.weekdays is None or _cron_weekday(d) in self.weekdays


def _cron_weekday(d: date) -> int:
    # date.weekday() is Monday = 0; cron counts from Sunday = 0.
    return (d.weekday() + 1) % 7


@dataclass(frozen=True)
class _DayRule:
    """A day picked by its place in the month: EventBridge's (Quartz's) L, W and #."""

    kind: str  # "last" | "last_weekday" | "nearest_weekday" | "last_of" | "nth_of"
    day: int = 0  # nearest_weekday: the day of the month; last_of / nth_of: weekday 0-6, Sunday = 0
    nth: int = 0  # nth_of: 1-5

    def aws(self) -> str:
        if self.kind == "last":
            return "L"
        if self.kind == "last_weekday":
            return "LW"
        if self.kind == "nearest_weekday":
            return f"{self.day}W"
        if self.kind == "last_of":
            return f"{self.day + 1}L"
        return f"{self.day + 1}#{self.nth}"

    def matches(self, d: date) -> bool:
        last = calendar.monthrange(d.year, d.month)[1]
        if self.kind == "last":
            return d.day == last
        if self.kind == "last_weekday":
            return d.day == _nearest_weekday(d.year, d.month, last, last)
        if self.kind == "nearest_weekday":
            # A day past the month's end means its last day (croniter and Quartz agree).
            return d.day == _nearest_weekday(d.year, d.month, min(self.day, last), last)
        if _cron_weekday(d) != self.day:
            return False
        if self.kind == "last_of":
            return d.day + 7 > last
        return (d.day - 1) // 7 + 1 == self.nth


def _nearest_weekday(year: int, month: int, day: int, last: int) -> int:
    """The Monday-Friday nearest ``day``, staying inside the month (Quartz's W)."""
    weekday = date(year, month, day).weekday()  # Monday = 0
    if weekday == 5:  # Saturday: the Friday before, unless that is in the previous month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, unless that is in the next month
        return day + 1 if day < last else day - 2
    return day


# --------------------------------------------------------------------------- field parsing


_NUMBER = re.compile(r"[0-9]{1,4}")


def _value(token: str, spec: _Field, source: str) -> int:
    upper = token.upper()
    if upper in spec.names:
        return spec.names[upper]
    if _NUMBER.fullmatch(token):
        n = int(token)
        if spec.lo <= n <= spec.hi:
            return n
        raise _invalid(f"{spec.label} {n} is out of range {spec.lo}-{spec.hi} in '{source}'")
    if re.search(r"[LW#]", upper):
        raise _invalid(
            f"'{token}' in '{source}': L, W and # stand alone in their field: L, LW or 15W in "
            "day-of-month; L, 5L or 5#3 in day-of-week"
        )
    raise _invalid(f"'{token}' is not a valid {spec.label} in '{source}'")


def _parse_field(text: str, spec: _Field, source: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
                raise _invalid(f"the step in {spec.label} '{item}' must be a positive number in '{source}'")
            step = int(step_text)
        if base == "*":
            lo, hi = spec.lo, spec.hi
        elif "-" in base:
            first, _, last = base.partition("-")
            lo, hi = _value(first, spec, source), _value(last, spec, source)
            if lo > hi:
                raise _invalid(f"the {spec.label} range '{base}' runs backwards in '{source}'")
        elif base:
            lo = _value(base, spec, source)
            # "5/15" is "from 5, every 15" (croner and AWS agree); a bare "5" is just 5.
            hi = spec.hi if slash else lo
        else:
            raise _invalid(f"empty {spec.label} in '{source}'")
        values.update(range(lo, hi + 1, step))
    return frozenset(values)


def _weekdays_from_standard(text: str, source: str) -> frozenset[int]:
    return frozenset(v % 7 for v in _parse_field(text, _DOW_STD, source))  # 7 is Sunday too


_NEAREST_WEEKDAY = re.compile(r"([0-9]{1,2})W")
_LAST_OF = re.compile(r"([0-9A-Z]{1,3})L")
_NTH_OF = re.compile(r"([0-9A-Z]{1,3})#([0-9]{1,2})")


def _day_rule(text: str, source: str) -> _DayRule | None:
    """The L / LW / nW forms of day-of-month, or None for a plain field."""
    upper = text.upper()
    if upper == "L":
        return _DayRule("last")
    if upper == "LW":
        return _DayRule("last_weekday")
    if m := _NEAREST_WEEKDAY.fullmatch(upper):
        return _DayRule("nearest_weekday", day=_value(m.group(1), _DOM, source))
    return None


def _weekday_rule(text: str, spec: _Field, source: str) -> _DayRule | frozenset[int] | None:
    """The L / nL / n#k forms of day-of-week (``spec`` says how its days are numbered)."""
    upper = text.upper()

    def weekday(token: str) -> int:
        v = _value(token, spec, source)
        return v % 7 if spec is _DOW_STD else v - 1

    if upper == "L":
        return frozenset({6})  # the last day of the week: Saturday
    if m := _LAST_OF.fullmatch(upper):
        return _DayRule("last_of", day=weekday(m.group(1)))
    if m := _NTH_OF.fullmatch(upper):
        nth = int(m.group(2))
        if not 1 <= nth <= 5:
            raise _invalid(f"'{text}' in '{source}': a month has a 1st to a 5th of each weekday, not a {nth}th")
        return _DayRule("nth_of", day=weekday(m.group(1)), nth=nth)
    return None


def _days(dom: str, source: str) -> tuple[frozenset[int] | None, _DayRule | None]:
    if dom == "?":
        return None, None
    rule = _day_rule(dom, source)
    return (None, rule) if rule else (_parse_field(dom.replace("?", "*"), _DOM, source), None)


def _weekdays(dow: str, spec: _Field, source: str) -> tuple[frozenset[int] | None, _DayRule | None]:
    if dow == "?":
        return None, None
    rule = _weekday_rule(dow, spec, source)
    if isinstance(rule, _DayRule):
        return None, rule
    if rule is not None:
        return rule, None
    if spec is _DOW_STD:
        return _weekdays_from_standard(dow, source), None
    return frozenset(v - 1 for v in _parse_field(dow, _DOW_AWS, source)), None


def _from_standard(fields: list[str], source: str) -> _Cron:
    minute, hour, dom, month, dow = fields
    # Standard cron treats day-of-month and day-of-week as "either matches" when both are
    # restricted; a field written '*' (croner also takes '?') is unrestricted.
    dom_any, dow_any = dom in ("*", "?"), dow in ("*", "?")
    if not dom_any and not dow_any:
        raise _unsupported(
            f"'{source}' restricts both day-of-month ('{dom}') and day-of-week ('{dow}'); cron runs it "
            "when either matches, which EventBridge Scheduler cannot express (one of the two must be "
            "'*'). Use two cron triggers, one for each."
        )
    days, day_rule = _days("?" if dom_any and not dow_any else dom, source)
    weekdays, weekday_rule = _weekdays("?" if dow_any else dow, _DOW_STD, source)
    return _Cron(
        minutes=_parse_field(minute, _MINUTE, source),
        hours=_parse_field(hour, _HOUR, source),
        days=days,
        months=_parse_field(month, _MONTH, source),
        weekdays=weekdays,
        years=_YEAR.all,
        day_rule=day_rule,
        weekday_rule=weekday_rule,
    )


def _from_aws(fields: list[str], source: str) -> _Cron:
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise _invalid(
            f"'{source}': exactly one of day-of-month and day-of-week must be '?' in an EventBridge "
            "cron expression"
        )
    days, day_rule = _days(dom, source)
    weekdays, weekday_rule = _weekdays(dow, _DOW_AWS, source)
    return _Cron(
        minutes=_parse_field(minute, _MINUTE, source),
        hours=_parse_field(hour, _HOUR, source),
        days=days,
        months=_parse_field(month, _MONTH, source),
        weekdays=weekdays,
        years=_parse_field(year, _YEAR, source),
        day_rule=day_rule,
        weekday_rule=weekday_rule,
    )


# --------------------------------------------------------------------------- emitting


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v - 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def _join_runs(values: list[int], show: dict[int, str] | None = None) -> str:
    def s(v: int) -> str:
        return show[v] if show else str(v)

    parts: list[str] = []
    for a, b in _runs(values):
        if b - a >= 2:
            parts.append(f"{s(a)}-{s(b)}")
        else:
            parts.extend(s(v) for v in range(a, b + 1))
    return ",".join(parts)


def _compact(values: frozenset[int], spec: _Field) -> str:
    """The shortest plain AWS text for a set: '*', 'a/n' (every n to the end), or runs and values."""
    if values == spec.all:
        return "*"
    ordered = sorted(values)
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if (
            step > 1
            and ordered[-1] + step > spec.hi
            and all(b - a == step for a, b in zip(ordered, ordered[1:], strict=False))
        ):
            return f"{ordered[0]}/{step}"
    return _join_runs(ordered)


def _compact_weekdays(values: frozenset[int]) -> str:
    # AWS allows no '/' here, and names avoid the 0-6 / 1-7 numbering mix-up entirely.
    if values == _ALL_WEEKDAYS:
        return "*"
    return _join_runs(sorted(values), dict(enumerate(_DAY_NAMES)))


# --------------------------------------------------------------------------- the front door


_RATE = re.compile(r"rate\((\d{1,6}) (minute|minutes|hour|hours|day|days)\)")
_EVERY_N = re.compile(r"every (\d{1,6}) (second|seconds|minute|minutes|hour|hours|day|days)")
_EVERY_DAY_AT = re.compile(r"(?:every day|daily) at (\d{1,2}):(\d{2})")
_SIMPLE = {
    "every minute": _Rate(1, "minute"),
    "minutely": _Rate(1, "minute"),
    "every hour": _Rate(1, "hour"),
    "hourly": _Rate(1, "hour"),
}


def _daily_at(hour: int, minute: int) -> _Cron:
    return _Cron(frozenset({minute}), frozenset({hour}), _DOM.all, _MONTH.all, None, _YEAR.all)


def _rate(value: int, unit: str, source: str) -> _Rate:
    unit = unit.rstrip("s")
    if value < 1:
        raise _invalid(f"'{source}': the interval must be at least 1")
    if unit == "second":
        raise _invalid(f"'{source}': EventBridge Scheduler runs at most once a minute; use 'every N minutes'")
    return _Rate(value, unit)


def _parse(schedule: str) -> _Rate | _Cron:
    if not isinstance(schedule, str) or not schedule.strip():
        raise _invalid(f"the schedule is empty; use {ACCEPTED_FORMS}")
    source = " ".join(schedule.split())
    lower = source.lower()
    # Tolerate spaces just inside the parentheses of an EventBridge expression.
    lower_tight = re.sub(r"\(\s*", "(", re.sub(r"\s*\)", ")", lower))

    if lower in _SIMPLE:
        return _SIMPLE[lower]
    if lower in ("every second", "secondly"):
        return _rate(1, "second", source)
    if lower in ("every day", "daily"):
        return _daily_at(0, 0)
    if m := _EVERY_N.fullmatch(lower):
        return _rate(int(m.group(1)), m.group(2), source)
    if m := _EVERY_DAY_AT.fullmatch(lower):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise _invalid(f"'{source}': {m.group(1)}:{m.group(2)} is not a time of day (00:00-23:59)")
        return _daily_at(hour, minute)
    if m := _RATE.fullmatch(lower_tight):
        return _rate(int(m.group(1)), m.group(2), source)
    if lower_tight.startswith("cron(") and lower_tight.endswith(")"):
        fields = lower_tight[5:-1].split()
        if len(fields) != 6:
            raise _invalid(
                f"'{source}': an EventBridge cron() expression has 6 fields "
                "(minutes hours day-of-month month day-of-week year)"
            )
        return _from_aws(fields, source)
    if lower in _NICKNAMES:
        return _from_standard(_NICKNAMES[lower].split(), source)

    fields = source.split(" ")
    if len(fields) == 5 and not lower.startswith("every"):
        return _from_standard(fields, source)
    if len(fields) == 6 and not lower.startswith("every"):
        # croner's form: seconds first. Scheduler's granularity is a minute, so only second 0.
        if not re.fullmatch(r"0{1,2}", fields[0]):
            raise _unsupported(
                f"'{source}': the seconds field is '{fields[0]}', but EventBridge Scheduler runs at "
                "most once a minute, at second 0; set seconds to 0 or use 5 fields"
            )
        try:
            return _from_standard(fields[1:], source)
        except WorkflowError as exc:
            # "0 9 ? * MON-FRI *" is EventBridge's own form without its wrapper; say so.
            if "?" not in (fields[2], fields[4]):
                raise
            hint = f"{exc.message}; for EventBridge's six-field form, write it inside cron(...)"
            raise WorkflowError(hint, code=exc.code, field=exc.field) from None
    raise _invalid(f"'{source}' is not a schedule; use {ACCEPTED_FORMS}")


def to_scheduler_expression(schedule: str) -> str:
    """The EventBridge Scheduler expression (``cron(...)`` or ``rate(...)``) for ``schedule``.

    Raises ``WorkflowError`` with code ``invalid_schedule`` (not a schedule) or
    ``cron_unsupported`` (valid cron that EventBridge Scheduler cannot run as written).
    """
    return _parse(schedule).expression()


def validate_timezone(tz: str) -> None:
    """Raise ``WorkflowError`` (``invalid_timezone``) unless ``tz`` is an IANA zone name."""
    if not isinstance(tz, str) or not tz or tz != tz.strip():
        raise WorkflowError(
            f"'{tz}' is not a time zone; use an IANA name such as 'UTC' or 'America/New_York'",
            code="invalid_timezone",
            field="timezone",
        )
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WorkflowError(
            f"'{tz}' is not a time zone; use an IANA name such as 'UTC' or 'America/New_York'",
            code="invalid_timezone",
            field="timezone",
        ) from None


# --------------------------------------------------------------------------- evaluating


def next_fire_times(schedule: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` times (aware, UTC, strictly after ``after``) that ``schedule`` fires.

    ``after`` may be naive, meaning UTC. Cron fields are matched against the wall clock in
    ``timezone``, the way Scheduler evaluates them: a time that does not exist on the day the
    clocks go forward is skipped, and a time that happens twice when they go back fires once
    (the first time). Rates are fixed durations counted from the Unix epoch; Scheduler counts
    them from the schedule's creation instead, which a local evaluator cannot know. Fewer than
    ``count`` times come back when the schedule stops firing (a past year, 30 February).
    """
    parsed = _parse(schedule)
    validate_timezone(timezone)
    if count <= 0:
        return []
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    if isinstance(parsed, _Rate):
        step = parsed.seconds
        first = (math.floor(after.timestamp()) // step + 1) * step
        return [datetime.fromtimestamp(first + i * step, UTC) for i in range(count)]
    return _cron_times(parsed, ZoneInfo(timezone), after, count)


def _cron_times(spec: _Cron, tz: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    hours, minutes = sorted(spec.hours), sorted(spec.minutes)
    last_year = max(spec.years)
    # Start a day early: around a fall-back transition at midnight the local date can step back.
    day = after.astimezone(tz).date() - timedelta(days=1)
    give_up = day + timedelta(days=_SEARCH_DAYS)
    found: list[datetime] = []
    while len(found) < count and day <= give_up and day.year <= last_year:
        if spec.matches_date(day):
            for hour in hours:
                for minute in minutes:
                    # fold=0 (the default) picks the first of a repeated wall time: fires once.
                    local = datetime.combine(day, time(hour, minute), tzinfo=tz)
                    utc = local.astimezone(UTC)
                    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
                        continue  # in the gap when the clocks go forward: this time never happens
                    if utc > after:
                        found.append(utc)
                        give_up = day + timedelta(days=_SEARCH_DAYS)
                        if len(found) == count:
                            return found
        day += timedelta(days=1)
    return found

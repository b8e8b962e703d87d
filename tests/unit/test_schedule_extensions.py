"""L, W and # cron days mean what two independent cron libraries say they mean.

croniter and cronsim (both well kept, both implementing the Quartz extensions EventBridge
documents) are the oracles: for many schedules and start dates, our next fire times equal theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from croniter import croniter
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from boternity.triggers.schedule import next_fire_times

# (our schedule, croniter's spelling or None, cronsim's spelling or None): standard numbering.
SCHEDULES = [
    ("0 9 L * *", "0 9 L * *", "0 9 L * *"),
    ("30 17 LW * *", None, "30 17 LW * *"),
    ("0 9 1W * *", "0 9 1W * *", None),
    ("0 9 15W * *", "0 9 15W * *", None),
    ("0 9 30W * *", "0 9 30W * *", None),
    ("0 9 31W * *", "0 9 31W * *", None),
    ("0 9 * * 5L", "0 9 * * L5", "0 9 * * 5L"),
    ("0 9 * * 0L", "0 9 * * L0", "0 9 * * 0L"),
    ("0 9 * * 5#3", "0 9 * * 5#3", "0 9 * * 5#3"),
    ("0 9 * * 1#1", "0 9 * * 1#1", "0 9 * * 1#1"),
    ("0 9 * * 4#5", "0 9 * * 4#5", "0 9 * * 4#5"),
    ("15 8 L 2 *", "15 8 L 2 *", "15 8 L 2 *"),
    ("0 9 * 3,6,9,12 6L", "0 9 * 3,6,9,12 L6", "0 9 * 3,6,9,12 6L"),
]
COUNT = 24


def _croniter_times(expr: str, start: datetime) -> list[datetime]:
    it = croniter(expr, start)
    return [it.get_next(datetime).replace(tzinfo=UTC) for _ in range(COUNT)]


def _cronsim_times(expr: str, start: datetime) -> list[datetime]:
    it = CronSim(expr, start)
    return [next(it).replace(tzinfo=UTC) for _ in range(COUNT)]


@settings(max_examples=25, deadline=None)
@given(start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)))
@pytest.mark.parametrize(("ours", "croniter_form", "cronsim_form"), SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_next_fire_times_agree_with_croniter_and_cronsim(ours, croniter_form, cronsim_form, start):
    start = start.replace(second=0, microsecond=0)
    mine = next_fire_times(ours, "UTC", start, COUNT)
    assert len(mine) == COUNT
    if croniter_form:
        assert mine == _croniter_times(croniter_form, start)
    if cronsim_form:
        assert mine == _cronsim_times(cronsim_form, start)


@pytest.mark.parametrize(
    ("aws", "standard"),
    [
        ("cron(0 9 L * ? *)", "0 9 L * *"),
        ("cron(0 9 LW * ? *)", "0 9 LW * *"),
        ("cron(0 9 15W * ? *)", "0 9 15W * *"),
        ("cron(0 9 ? * 6L *)", "0 9 * * 5L"),
        ("cron(0 9 ? * 6#3 *)", "0 9 * * 5#3"),
        ("cron(0 9 ? * FRI#3 *)", "0 9 * * 5#3"),
        ("cron(0 9 ? * L *)", "0 9 * * 6"),
    ],
)
def test_the_eventbridge_form_means_the_same_days(aws, standard):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_fire_times(aws, "UTC", start, COUNT) == next_fire_times(standard, "UTC", start, COUNT)


def test_last_day_of_the_month_in_a_time_zone_is_local():
    # 23:30 on 31 December in New York is already 1 January in UTC.
    times = next_fire_times("30 23 L * *", "America/New_York", datetime(2026, 1, 1, tzinfo=UTC), 2)
    assert [t.isoformat() for t in times] == ["2026-01-01T04:30:00+00:00", "2026-02-01T04:30:00+00:00"]

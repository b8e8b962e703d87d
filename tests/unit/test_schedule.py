"""Cron triggers: the schedule syntax becomes the EventBridge Scheduler expression it means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from boternity.errors import WorkflowError
from boternity.triggers.schedule import next_fire_times, to_scheduler_expression, validate_timezone

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def error_of(schedule: str) -> WorkflowError:
    with pytest.raises(WorkflowError) as info:
        to_scheduler_expression(schedule)
    return info.value


# --------------------------------------------------------------------------- translation


@pytest.mark.parametrize(
    ("schedule", "expression"),
    [
        # The reference example: 09:00 on weekdays (with America/New_York as the trigger's timezone).
        ("0 9 * * 1-5", "cron(0 9 ? * MON-FRI *)"),
        ("*/15 * * * *", "cron(0/15 * * * ? *)"),
        ("* * * * *", "cron(* * * * ? *)"),
        ("30 2 * * *", "cron(30 2 * * ? *)"),
        ("0 0 1 * *", "cron(0 0 1 * ? *)"),
        ("0 0 1,15 * *", "cron(0 0 1,15 * ? *)"),
        ("0 0 */5 * *", "cron(0 0 1/5 * ? *)"),
        ("0 */6 * * *", "cron(0 0/6 * * ? *)"),
        ("5/10 * * * *", "cron(5/10 * * * ? *)"),
        ("0 9-17 * * *", "cron(0 9-17 * * ? *)"),
        ("0 9-17/2 * * *", "cron(0 9,11,13,15,17 * * ? *)"),
        ("0,30 8 * * *", "cron(0,30 8 * * ? *)"),
        ("0 0 1 1 *", "cron(0 0 1 1 ? *)"),
        ("0 0 1 jan-mar *", "cron(0 0 1 1-3 ? *)"),
        ("0 0 1 JAN,JUL *", "cron(0 0 1 1,7 ? *)"),
        # Day of week: standard 0-6 from Sunday (7 = Sunday too) -> AWS names.
        ("0 9 * * 0", "cron(0 9 ? * SUN *)"),
        ("0 9 * * 7", "cron(0 9 ? * SUN *)"),
        ("0 9 * * 1", "cron(0 9 ? * MON *)"),
        ("0 9 * * 6", "cron(0 9 ? * SAT *)"),
        ("0 9 * * 6,7", "cron(0 9 ? * SUN,SAT *)"),
        ("0 9 * * 5-7", "cron(0 9 ? * SUN,FRI,SAT *)"),
        ("0 9 * * 1,3,5", "cron(0 9 ? * MON,WED,FRI *)"),
        ("0 9 * * */2", "cron(0 9 ? * SUN,TUE,THU,SAT *)"),
        ("0 9 * * mon-fri", "cron(0 9 ? * MON-FRI *)"),
        ("0 9 * * SAT,SUN", "cron(0 9 ? * SUN,SAT *)"),
        ("0 9 * * 0-6", "cron(0 9 ? * * *)"),
        # '?' is croner's alias for '*'.
        ("0 9 ? * 1-5", "cron(0 9 ? * MON-FRI *)"),
        ("0 9 1 * ?", "cron(0 9 1 * ? *)"),
        # Six fields, croner's form: seconds first, and they must be 0.
        ("0 0 9 * * 1-5", "cron(0 9 ? * MON-FRI *)"),
        ("00 */15 * * * *", "cron(0/15 * * * ? *)"),
        # Nicknames.
        ("@hourly", "cron(0 * * * ? *)"),
        ("@daily", "cron(0 0 * * ? *)"),
        ("@midnight", "cron(0 0 * * ? *)"),
        ("@weekly", "cron(0 0 ? * SUN *)"),
        ("@monthly", "cron(0 0 1 * ? *)"),
        ("@yearly", "cron(0 0 1 1 ? *)"),
        ("@annually", "cron(0 0 1 1 ? *)"),
        # Extra whitespace is not meaningful.
        ("  0  9 *   * 1-5 ", "cron(0 9 ? * MON-FRI *)"),
    ],
)
def test_cron_translates_to_eventbridge_cron(schedule, expression):
    assert to_scheduler_expression(schedule) == expression


@pytest.mark.parametrize(
    ("schedule", "expression"),
    [
        ("every minute", "rate(1 minute)"),
        ("minutely", "rate(1 minute)"),
        ("Every Minute", "rate(1 minute)"),
        ("every hour", "rate(1 hour)"),
        ("hourly", "rate(1 hour)"),
        ("HOURLY", "rate(1 hour)"),
        ("every day", "cron(0 0 * * ? *)"),
        ("daily", "cron(0 0 * * ? *)"),
        ("every 1 minute", "rate(1 minute)"),
        ("every 1 minutes", "rate(1 minute)"),
        ("every 5 minutes", "rate(5 minutes)"),
        ("every 15 minute", "rate(15 minutes)"),
        ("every 1 hour", "rate(1 hour)"),
        ("every 2 hours", "rate(2 hours)"),
        ("every 1 day", "rate(1 day)"),
        ("every 3 days", "rate(3 days)"),
        ("every day at 09:30", "cron(30 9 * * ? *)"),
        ("every day at 9:05", "cron(5 9 * * ? *)"),
        ("Every Day At 23:59", "cron(59 23 * * ? *)"),
        ("daily at 00:00", "cron(0 0 * * ? *)"),
        ("every  5   minutes", "rate(5 minutes)"),
    ],
)
def test_plain_words_translate(schedule, expression):
    assert to_scheduler_expression(schedule) == expression


@pytest.mark.parametrize(
    ("schedule", "expression"),
    [
        ("cron(0 9 ? * MON-FRI *)", "cron(0 9 ? * MON-FRI *)"),
        ("cron(0/15 * * * ? *)", "cron(0/15 * * * ? *)"),
        ("cron(0 9 ? * 2-6 *)", "cron(0 9 ? * MON-FRI *)"),  # AWS numbering: 2 = MON
        ("cron(0 9 ? * 1,7 *)", "cron(0 9 ? * SUN,SAT *)"),
        ("cron(0 12 1 * ? 2026-2028)", "cron(0 12 1 * ? 2026-2028)"),
        ("cron(0 12 1 * ? 2026-2027)", "cron(0 12 1 * ? 2026,2027)"),  # two values read better listed
        ("cron( 0 9 * * ? * )", "cron(0 9 * * ? *)"),
        ("rate(5 minutes)", "rate(5 minutes)"),
        ("rate(1 hour)", "rate(1 hour)"),
        ("rate(1 days)", "rate(1 day)"),
    ],
)
def test_eventbridge_expressions_pass_through_in_canonical_form(schedule, expression):
    assert to_scheduler_expression(schedule) == expression


def test_translation_is_stable():
    # Feeding an output back in gives the same output: the deployer may translate twice.
    for schedule in ("0 9 * * 1-5", "*/15 * * * *", "0 0 */5 * *", "every 5 minutes", "0 9 * * 5-7"):
        once = to_scheduler_expression(schedule)
        assert to_scheduler_expression(once) == once


# --------------------------------------------------------------------------- refusals


def test_both_day_fields_restricted_is_unsupported_and_says_why():
    error = error_of("0 9 1 * 1")
    assert error.code == "cron_unsupported"
    assert "either" in error.message and "day-of-month" in error.message and "day-of-week" in error.message
    assert error.field == "schedule"


@pytest.mark.parametrize("schedule", ["0 9 1-31 * 0-6", "0 9 */2 * 1"])
def test_restricting_both_day_fields_is_unsupported_even_when_it_looks_harmless(schedule):
    assert error_of(schedule).code == "cron_unsupported"


@pytest.mark.parametrize("seconds", ["30", "*", "*/10", "0,30", "1"])
def test_six_field_cron_needs_second_zero(seconds):
    error = error_of(f"{seconds} 0 9 * * 1-5")
    assert error.code == "cron_unsupported"
    assert "once a minute" in error.message


@pytest.mark.parametrize(
    ("schedule", "expression"),
    [
        ("0 9 L * *", "cron(0 9 L * ? *)"),
        ("0 9 LW * *", "cron(0 9 LW * ? *)"),
        ("0 9 15W * *", "cron(0 9 15W * ? *)"),
        # Standard numbering (Friday = 5) becomes AWS's (Friday = 6).
        ("0 9 * * 5L", "cron(0 9 ? * 6L *)"),
        ("0 9 * * 5#3", "cron(0 9 ? * 6#3 *)"),
        ("0 9 * * MON#2", "cron(0 9 ? * 2#2 *)"),
        # EventBridge's own form passes through as written.
        ("cron(0 9 L * ? *)", "cron(0 9 L * ? *)"),
        ("cron(0 9 ? * 6#3 *)", "cron(0 9 ? * 6#3 *)"),
        ("cron(0 9 15W * ? *)", "cron(0 9 15W * ? *)"),
        ("cron(0 9 ? * 6L *)", "cron(0 9 ? * 6L *)"),
        ("cron(0 9 ? * L *)", "cron(0 9 ? * SAT *)"),
    ],
)
def test_l_w_and_hash_extensions_pass_to_scheduler(schedule, expression):
    assert to_scheduler_expression(schedule) == expression


@pytest.mark.parametrize(
    ("schedule", "mentions"),
    [
        ("0 9 L,1 * *", "stand alone"),
        ("0 9 1-L * *", "stand alone"),
        ("0 9 * * 5#6", "1st to a 5th"),
        ("0 9 * * 5#0", "1st to a 5th"),
        ("0 9 0W * *", "out of range"),
        ("0 9 32W * *", "out of range"),
        ("cron(0 9 ? * 0#1 *)", "out of range"),
        ("0 9 * * 8L", "out of range"),
        ("0 9 15L * *", "stand alone"),
    ],
)
def test_malformed_extensions_are_invalid_and_say_why(schedule, mentions):
    error = error_of(schedule)
    assert error.code == "invalid_schedule"
    assert mentions in error.message


def test_an_extension_in_both_day_fields_is_still_either_or():
    assert error_of("0 9 L * 5").code == "cron_unsupported"


@pytest.mark.parametrize(
    ("schedule", "mentions"),
    [
        ("60 * * * *", "out of range"),
        ("0 24 * * *", "out of range"),
        ("0 0 0 * *", "out of range"),
        ("0 0 32 * *", "out of range"),
        ("0 0 1 13 *", "out of range"),
        ("0 0 * * 8", "out of range"),
        ("5-1 * * * *", "backwards"),
        ("*/0 * * * *", "step"),
        ("*/x * * * *", "step"),
        ("a * * * *", "not a valid minute"),
        ("0 9 * * FUNDAY", "not a valid day-of-week"),
        ("0 9 * FOO *", "not a valid month"),
        ("0 9 , * *", "empty"),
        ("cron(0 9 * * * *)", "exactly one"),
        ("cron(0 9 ? * ? *)", "exactly one"),
        ("cron(0 9 * * ?)", "6 fields"),
        ("cron(0 9 ? * MON-FRI 1969)", "out of range"),
        ("every 30 seconds", "once a minute"),
        ("every 1 second", "once a minute"),
        ("every second", "once a minute"),
        ("every 0 minutes", "at least 1"),
        ("rate(0 minutes)", "at least 1"),
        ("every day at 24:00", "time of day"),
        ("every day at 9:60", "time of day"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(schedule, mentions):
    error = error_of(schedule)
    assert error.code == "invalid_schedule"
    assert mentions in error.message


@pytest.mark.parametrize(
    "schedule",
    [
        "",
        "   ",
        "sometimes",
        "every week",
        "every fortnight",
        "0 9 * *",
        "0 0 9 * * 1 2026 x",
        "at noon",
        "every 5 weeks",
        "every -5 minutes",
        "rate(5 seconds)",
        "@reboot",
    ],
)
def test_unrecognised_schedules_list_the_accepted_forms(schedule):
    error = error_of(schedule)
    assert error.code == "invalid_schedule"
    assert "every N minutes" in error.message and "0 9 * * 1-5" in error.message


def test_eventbridge_form_without_its_wrapper_gets_a_hint():
    error = error_of("0 9 ? * MON-FRI *")
    assert error.code == "invalid_schedule"
    assert "cron(...)" in error.message
    assert to_scheduler_expression("cron(0 9 ? * MON-FRI *)") == "cron(0 9 ? * MON-FRI *)"


def test_non_string_schedule_is_invalid():
    with pytest.raises(WorkflowError) as info:
        to_scheduler_expression(None)  # type: ignore[arg-type]
    assert info.value.code == "invalid_schedule"


# --------------------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    "tz", ["UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe"]
)
def test_iana_time_zones_are_valid(tz):
    validate_timezone(tz)


@pytest.mark.parametrize(
    "tz", ["", " UTC", "Mars/Olympus_Mons", "America", "utc", "../../etc/passwd", "/etc/localtime", "EST+5"]
)
def test_other_time_zones_are_refused(tz):
    with pytest.raises(WorkflowError) as info:
        validate_timezone(tz)
    assert info.value.code == "invalid_timezone"
    assert info.value.field == "timezone"


# --------------------------------------------------------------------------- evaluation


def test_reference_example_fires_at_nine_new_york_time_on_weekdays():
    # Friday 2026-01-02 10:00 New York: next are Mon-Fri of the following week at 09:00 EST (14:00Z).
    times = next_fire_times("0 9 * * 1-5", "America/New_York", utc(2026, 1, 2, 15, 0), 6)
    assert times == [utc(2026, 1, d, 14, 0) for d in (5, 6, 7, 8, 9, 12)]
    assert all(t.astimezone(NY).hour == 9 and t.astimezone(NY).weekday() < 5 for t in times)


def test_wall_clock_time_is_kept_across_the_spring_dst_change():
    # Clocks go forward in New York on Sunday 2026-03-08: 09:00 is 14:00Z before and 13:00Z after.
    times = next_fire_times("0 9 * * *", "America/New_York", utc(2026, 3, 6, 0, 0), 4)
    assert times == [utc(2026, 3, 6, 14), utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]


def test_wall_clock_time_is_kept_across_the_autumn_dst_change():
    # Clocks go back in New York on Sunday 2026-11-01: 09:00 is 13:00Z before and 14:00Z after.
    times = next_fire_times("0 9 * * *", "America/New_York", utc(2026, 10, 31, 0, 0), 3)
    assert times == [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)]


def test_a_time_skipped_by_spring_forward_does_not_fire_that_day():
    # 02:30 does not exist in New York on 2026-03-08 (02:00 -> 03:00); Scheduler skips it.
    times = next_fire_times("30 2 * * *", "America/New_York", utc(2026, 3, 7, 0, 0), 3)
    assert [t.astimezone(NY).date().day for t in times] == [7, 9, 10]
    assert all(t.astimezone(NY).strftime("%H:%M") == "02:30" for t in times)


def test_a_time_repeated_by_fall_back_fires_once():
    # 01:30 happens twice in New York on 2026-11-01 (EDT, then EST); Scheduler fires only the first.
    times = next_fire_times("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12, 0), 3)
    assert times == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]


def test_every_15_minutes_through_the_repeated_hour_does_not_double_fire():
    start = utc(2026, 11, 1, 4, 50)  # 00:50 EDT
    times = next_fire_times("*/15 * * * *", "America/New_York", start, 12)
    local = [t.astimezone(NY).strftime("%H:%M") for t in times]
    assert local[:4] == ["01:00", "01:15", "01:30", "01:45"]
    assert local[4] == "02:00"  # not 01:00 a second time
    assert times == sorted(set(times))


def test_results_are_strictly_after_and_in_utc():
    times = next_fire_times("0 9 * * *", "UTC", utc(2026, 1, 1, 9, 0), 2)
    assert times == [utc(2026, 1, 2, 9), utc(2026, 1, 3, 9)]
    assert all(t.tzinfo is UTC for t in times)


def test_naive_after_means_utc():
    assert next_fire_times("0 9 * * *", "UTC", datetime(2026, 1, 1, 8, 0), 1) == [utc(2026, 1, 1, 9)]


def test_after_in_another_zone_is_the_same_instant():
    after = datetime(2026, 1, 1, 3, 0, tzinfo=NY)  # 08:00Z
    assert next_fire_times("0 9 * * *", "UTC", after, 1) == [utc(2026, 1, 1, 9)]


def test_seconds_in_after_are_respected():
    assert next_fire_times("* * * * *", "UTC", utc(2026, 1, 1, 9, 0, 30), 2) == [
        utc(2026, 1, 1, 9, 1),
        utc(2026, 1, 1, 9, 2),
    ]


def test_day_of_month_and_month_fields():
    times = next_fire_times("0 0 1 JAN,JUL *", "UTC", utc(2026, 2, 1), 3)
    assert times == [utc(2026, 7, 1), utc(2027, 1, 1), utc(2027, 7, 1)]


def test_leap_day_is_found_years_ahead():
    assert next_fire_times("0 12 29 2 *", "UTC", utc(2026, 3, 1), 2) == [
        utc(2028, 2, 29, 12),
        utc(2032, 2, 29, 12),
    ]


def test_a_schedule_that_never_fires_returns_nothing():
    assert next_fire_times("0 0 30 2 *", "UTC", utc(2026, 1, 1), 3) == []
    assert next_fire_times("cron(0 0 1 1 ? 1999)", "UTC", utc(2026, 1, 1), 3) == []


def test_year_field_limits_the_results():
    times = next_fire_times("cron(0 0 1 * ? 2026)", "UTC", utc(2026, 10, 15), 5)
    assert times == [utc(2026, 11, 1), utc(2026, 12, 1)]


def test_eventbridge_day_numbers_are_evaluated_from_sunday():
    # cron(... 2 ...) is Monday in AWS numbering. 2026-01-05 is a Monday.
    assert next_fire_times("cron(0 9 ? * 2 *)", "UTC", utc(2026, 1, 1), 1) == [utc(2026, 1, 5, 9)]


def test_plain_words_and_their_expression_evaluate_the_same():
    after = utc(2026, 5, 5, 5, 5)
    for words in ("every day at 09:30", "0 9 * * 1-5", "every 15 minutes"):
        expression = to_scheduler_expression(words)
        assert next_fire_times(words, "Europe/Paris", after, 5) == next_fire_times(
            expression, "Europe/Paris", after, 5
        )


def test_every_day_at_is_local_time():
    # Kolkata is UTC+05:30 all year.
    assert next_fire_times("every day at 09:30", "Asia/Kolkata", utc(2026, 1, 1), 1) == [
        utc(2026, 1, 1, 4, 0)
    ]


@pytest.mark.parametrize(
    ("schedule", "step"),
    [
        ("every minute", timedelta(minutes=1)),
        ("every 5 minutes", timedelta(minutes=5)),
        ("every 2 hours", timedelta(hours=2)),
        ("rate(3 days)", timedelta(days=3)),
    ],
)
def test_rates_are_fixed_durations_on_an_epoch_aligned_grid(schedule, step):
    after = utc(2026, 3, 8, 6, 7, 8)
    times = next_fire_times(schedule, "America/New_York", after, 4)
    assert times[0] > after and times[0] - after <= step
    assert all(b - a == step for a, b in zip(times, times[1:], strict=False))
    assert all(t.timestamp() % step.total_seconds() == 0 for t in times)


def test_rate_starts_after_an_exact_boundary():
    assert next_fire_times("every 5 minutes", "UTC", utc(2026, 1, 1, 9, 0), 1) == [utc(2026, 1, 1, 9, 5)]


def test_count_zero_gives_nothing():
    assert next_fire_times("every minute", "UTC", utc(2026, 1, 1), 0) == []


def test_evaluation_checks_schedule_and_time_zone():
    with pytest.raises(WorkflowError) as bad_schedule:
        next_fire_times("0 9 1 * 1", "UTC", utc(2026, 1, 1), 1)
    assert bad_schedule.value.code == "cron_unsupported"
    with pytest.raises(WorkflowError) as bad_zone:
        next_fire_times("0 9 * * *", "Nowhere/Special", utc(2026, 1, 1), 1)
    assert bad_zone.value.code == "invalid_timezone"

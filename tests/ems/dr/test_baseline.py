"""The customer baseline: same hours of the most recent similar days, same-day adjustment, DST, gaps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ems.costs import ReadingArrays
from ems.dr.baseline import (
    WEEKDAY,
    WEEKEND_OR_HOLIDAY,
    NetEnergy,
    SameDayAdjustment,
    estimate_baseline,
    slot_bounds,
)
from ems.model import IntervalReading

TZ = "America/Los_Angeles"
LA = ZoneInfo(TZ)
EVENT_DAY = date(2024, 8, 15)  # a Thursday
FIRST_DAY = date(2024, 6, 20)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), LA).astimezone(UTC)


def weekday_kw(at: datetime) -> float:
    """Weekdays climb through the day and drift up 0.01 kW a day; weekends are flat 3 kW."""
    t = at.astimezone(LA)
    if t.weekday() >= 5:
        return 3.0
    return 1.0 + t.hour / 10 + 0.01 * (t.date() - FIRST_DAY).days


def history(
    first: date = FIRST_DAY,
    last: date = EVENT_DAY,
    kw: Callable[[datetime], float] = weekday_kw,
    missing: Callable[[datetime], bool] = lambda at: False,
    generated_kw: float = 0.0,
) -> ReadingArrays:
    """15-minute readings from local midnight of ``first`` to the end of ``last``."""
    t = local(first, 0)
    end = local(last + timedelta(days=1), 0)
    rows = []
    while t < end:
        if not missing(t):
            rows.append(IntervalReading("m1", t, 900, kw(t) * 0.25, generated_kw * 0.25))
        t += timedelta(minutes=15)
    return ReadingArrays.from_readings(rows)


def event_slots(start: datetime, end: datetime) -> tuple[np.ndarray, np.ndarray]:
    return slot_bounds(int(start.timestamp()), int(end.timestamp()), 900, TZ)


def expected(days: list[date], a: np.ndarray, b: np.ndarray, kw: Callable[[datetime], float] = weekday_kw) -> np.ndarray:
    """The mean over ``days`` of each slot's kWh at the same local wall-clock time."""
    event_day = datetime.fromtimestamp(int(a[0]), LA).date()
    result = np.zeros(len(a))
    for day in days:
        for i, (s, e) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            wall = datetime.fromtimestamp(s, LA).replace(tzinfo=None) - timedelta(days=(event_day - day).days)
            at = wall.replace(tzinfo=LA)
            result[i] += kw(at) * (e - s) / 3600
    return result / len(days)


def weekdays_before(day: date, count: int, skip: set[date] = frozenset()) -> list[date]:  # type: ignore[assignment]
    found = []
    while len(found) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5 and day not in skip:
            found.append(day)
    return found


def test_the_baseline_is_the_mean_of_the_same_hours_on_the_ten_most_recent_similar_days() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))

    baseline = estimate_baseline(history(), a, b, event_start=local(EVENT_DAY, 16), timezone=TZ,
                                 event_days=set(), adjustment=None)

    days = weekdays_before(EVENT_DAY, 10)
    assert baseline.days == tuple(days) and baseline.day_kind == WEEKDAY
    assert baseline.kwh is not None and len(baseline.kwh) == 20
    np.testing.assert_allclose(baseline.kwh, expected(days, a, b), rtol=1e-12)


def test_event_days_holidays_and_weekends_are_not_similar_days() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))
    event_days = {date(2024, 8, 14), date(2024, 8, 8)}
    holidays = {date(2024, 8, 12)}

    baseline = estimate_baseline(history(), a, b, event_start=local(EVENT_DAY, 16), timezone=TZ,
                                 event_days=event_days, holidays=holidays, adjustment=None)

    days = weekdays_before(EVENT_DAY, 10, skip=event_days | holidays)
    assert baseline.days == tuple(days)
    assert all(d.weekday() < 5 for d in baseline.days)
    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, expected(days, a, b), rtol=1e-12)


def test_a_weekend_event_compares_with_weekends_and_holidays() -> None:
    saturday = date(2024, 8, 17)
    a, b = event_slots(local(saturday, 16), local(saturday, 18))

    baseline = estimate_baseline(history(last=saturday), a, b, event_start=local(saturday, 16), timezone=TZ,
                                 event_days=set(), holidays={date(2024, 8, 14)}, adjustment=None)

    assert baseline.day_kind == WEEKEND_OR_HOLIDAY
    assert date(2024, 8, 14) in baseline.days and len(baseline.days) == 10
    assert all(d.weekday() >= 5 or d == date(2024, 8, 14) for d in baseline.days)


def test_the_same_day_adjustment_scales_the_baseline_to_the_morning_of_the_event() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))

    def busier_event_day(at: datetime) -> float:
        return weekday_kw(at) * (1.1 if at.astimezone(LA).date() == EVENT_DAY else 1.0)

    adjusted = estimate_baseline(history(kw=busier_event_day), a, b, event_start=local(EVENT_DAY, 16),
                                 timezone=TZ, event_days=set())

    days = weekdays_before(EVENT_DAY, 10)
    adjust_a, adjust_b = event_slots(local(EVENT_DAY, 12), local(EVENT_DAY, 15))  # 3 h ending 1 h before
    ratio = 1.1 * expected([EVENT_DAY], adjust_a, adjust_b).sum() / expected(days, adjust_a, adjust_b).sum()
    assert adjusted.factor == pytest.approx(ratio) and adjusted.adjustment.startswith("applied")
    assert adjusted.kwh is not None and adjusted.unadjusted_kwh is not None
    np.testing.assert_allclose(adjusted.kwh, expected(days, a, b) * ratio, rtol=1e-12)


@pytest.mark.parametrize(("scale", "factor"), [(1.6, 1.2), (0.5, 0.8)])
def test_the_same_day_adjustment_is_capped_at_20_percent(scale: float, factor: float) -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))

    def odd_event_day(at: datetime) -> float:
        return weekday_kw(at) * (scale if at.astimezone(LA).date() == EVENT_DAY else 1.0)

    baseline = estimate_baseline(history(kw=odd_event_day), a, b, event_start=local(EVENT_DAY, 16),
                                 timezone=TZ, event_days=set(), adjustment=SameDayAdjustment(cap=0.2))

    assert baseline.factor == pytest.approx(factor) and baseline.adjustment.startswith("capped")
    assert baseline.kwh is not None and baseline.unadjusted_kwh is not None
    np.testing.assert_allclose(baseline.kwh, baseline.unadjusted_kwh * factor)


def test_no_adjustment_when_the_hours_before_the_event_are_not_read() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))
    readings = history(missing=lambda at: at.astimezone(LA).date() == EVENT_DAY and at.astimezone(LA).hour == 13)

    baseline = estimate_baseline(readings, a, b, event_start=local(EVENT_DAY, 16), timezone=TZ, event_days=set())

    assert baseline.factor == 1.0 and "not fully read" in baseline.adjustment
    assert baseline.kwh is not None


def test_too_little_history_gives_no_number_and_says_why() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))

    baseline = estimate_baseline(history(first=date(2024, 8, 13)), a, b, event_start=local(EVENT_DAY, 16),
                                 timezone=TZ, event_days=set())

    assert not baseline.sufficient and baseline.kwh is None
    assert baseline.days == (date(2024, 8, 14), date(2024, 8, 13))
    assert "only 2 similar weekday days" in str(baseline.reason) and "at least 3 needed" in str(baseline.reason)


def test_three_similar_days_are_enough() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))

    baseline = estimate_baseline(history(first=date(2024, 8, 12)), a, b, event_start=local(EVENT_DAY, 16),
                                 timezone=TZ, event_days=set())

    assert baseline.sufficient and len(baseline.days) == 3


def test_a_day_with_a_gap_in_the_hours_needed_is_skipped_but_a_gap_elsewhere_is_not() -> None:
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 21))
    gap_in_hours = date(2024, 8, 13)
    gap_elsewhere = date(2024, 8, 12)

    def missing(at: datetime) -> bool:
        t = at.astimezone(LA)
        return (t.date() == gap_in_hours and t.hour == 18) or (t.date() == gap_elsewhere and t.hour == 3)

    baseline = estimate_baseline(history(missing=missing), a, b, event_start=local(EVENT_DAY, 16),
                                 timezone=TZ, event_days=set(), adjustment=None)

    assert gap_in_hours not in baseline.days and gap_elsewhere in baseline.days
    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, expected(list(baseline.days), a, b), rtol=1e-12)


def test_on_the_autumn_dst_day_each_slot_takes_its_local_hour_and_the_repeated_hour_counts_twice() -> None:
    sunday = date(2024, 11, 3)  # 01:00-02:00 happens twice in Los Angeles
    start, end = local(sunday, 0), local(sunday, 3)
    a, b = event_slots(start, end)

    def by_hour(at: datetime) -> float:
        return 1.0 + at.astimezone(LA).hour

    baseline = estimate_baseline(history(first=date(2024, 9, 1), last=sunday, kw=by_hour), a, b,
                                 event_start=start, timezone=TZ, event_days=set(), adjustment=None)

    assert len(a) == 16  # four hours of UTC time
    hours = [datetime.fromtimestamp(int(s), LA).hour for s in a]
    assert hours == [0] * 4 + [1] * 8 + [2] * 4
    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, [(1.0 + h) * 0.25 for h in hours])


def test_on_the_spring_dst_day_the_evening_matches_the_same_local_hours() -> None:
    sunday = date(2024, 3, 10)  # the clocks go forward at 02:00; similar days were on standard time
    start, end = local(sunday, 16), local(sunday, 21)
    a, b = event_slots(start, end)

    def by_hour(at: datetime) -> float:
        return 1.0 + at.astimezone(LA).hour

    baseline = estimate_baseline(history(first=date(2024, 1, 1), last=sunday, kw=by_hour), a, b,
                                 event_start=start, timezone=TZ, event_days=set(), adjustment=None)

    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, [(1.0 + datetime.fromtimestamp(int(s), LA).hour) * 0.25 for s in a])


def test_the_baseline_is_of_net_load_consumed_minus_generated() -> None:
    a, b = event_slots(local(EVENT_DAY, 12), local(EVENT_DAY, 13))

    baseline = estimate_baseline(history(kw=lambda at: 1.0, generated_kw=3.0), a, b,
                                 event_start=local(EVENT_DAY, 12), timezone=TZ, event_days=set())

    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, [-0.5] * 4)  # exporting 2 kW
    assert baseline.factor == 1.0 and "not positive" in baseline.adjustment


def test_a_slot_cut_by_the_event_start_gets_its_share() -> None:
    start = local(EVENT_DAY, 16, 7)
    a, b = event_slots(start, local(EVENT_DAY, 17))

    baseline = estimate_baseline(history(), a, b, event_start=start, timezone=TZ, event_days=set(), adjustment=None)

    assert int(b[0] - a[0]) == 8 * 60
    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, expected(list(baseline.days), a, b), rtol=1e-12)
    assert baseline.kwh[0] == pytest.approx(baseline.kwh[1] * 8 / 15)


def test_hourly_history_serves_fifteen_minute_slots() -> None:
    rows = []
    t = local(FIRST_DAY, 0)
    while t < local(EVENT_DAY + timedelta(days=1), 0):
        rows.append(IntervalReading("m1", t, 3600, 2.0))
        t += timedelta(hours=1)
    a, b = event_slots(local(EVENT_DAY, 16), local(EVENT_DAY, 17))

    baseline = estimate_baseline(rows, a, b, event_start=local(EVENT_DAY, 16), timezone=TZ, event_days=set())

    assert baseline.kwh is not None
    np.testing.assert_allclose(baseline.kwh, [0.5] * 4)


def test_measured_energy_is_nan_where_a_span_is_not_fully_read() -> None:
    readings = history(first=EVENT_DAY, missing=lambda at: at.astimezone(LA).hour == 17 and at.minute == 15)
    a, b = event_slots(local(EVENT_DAY, 17), local(EVENT_DAY, 18))

    measured = NetEnergy.of(readings).measured_kwh(a, b)

    assert np.isnan(measured[1]) and not np.isnan(measured[[0, 2, 3]]).any()

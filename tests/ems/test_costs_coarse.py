"""Coarse readings (a day's, a month's, as Green Button files hold them): their energy is spread as
a flat share over the time they span, by the time in each time-of-use period and day type, and the
cost says it is estimated. Not priced at the rate of their first minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ems.config import default_config_dir
from ems.costs import (
    COARSE_S,
    ReadingArrays,
    price_cycles,
    price_intervals,
    spread_coarse,
    summarize,
)
from ems.tariff import load_rates

LA = ZoneInfo("America/Los_Angeles")
TZ = "America/Los_Angeles"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LA).astimezone(UTC)


def one(start: datetime, end: datetime, kwh: float) -> ReadingArrays:
    return ReadingArrays.from_columns([int(start.timestamp())], [int((end - start).total_seconds())], [kwh], [0.0])


@pytest.fixture(scope="module")
def tou():
    return load_rates(default_config_dir() / "rates.yaml").plans["TOU-D-4-9PM"]


def test_a_month_long_reading_costs_its_flat_share_of_each_period(tou):
    # June 2026 on the 4-9 PM plan (summer), 720 hours: 22 weekdays and 8 weekend days, no holiday
    # (Juneteenth, Friday 19 June, is not one of the plan's). 783 kWh read for the month, so
    # 783 / 720 = 1.0875 kWh an hour:
    #   weekday on-peak 16-21:  22 x 5 = 110 h x 0.55 = 60.50 per kWh-an-hour
    #   weekend mid-peak 16-21:  8 x 5 =  40 h x 0.41 = 16.40
    #   off-peak the rest:        720 - 150 = 570 h x 0.31 = 176.70
    #   253.60 x 783 / 720 = 275.79 (at the first minute's off-peak price it was 783 x 0.31 = 242.73)
    priced = price_intervals(tou, one(at(2026, 6, 1), at(2026, 7, 1), 783.0), timezone=TZ)
    bill = summarize(priced, at(2026, 6, 1), at(2026, 7, 1), include_fixed=False)
    assert round(bill.energy_cost, 2) == 275.79
    assert {p.period: round(p.energy_kwh, 4) for p in bill.periods} == {
        "on-peak": 119.625, "mid-peak": 43.5, "off-peak": 619.875}  # 110, 40 and 570 h x 1.0875
    assert bill.estimated and bill.estimated_kwh == pytest.approx(783.0)
    assert bill.intervals_read == 1 and bill.missing_intervals == 0 and round(bill.energy_kwh, 6) == 783.0


def test_a_daily_reading_on_the_spring_change_spreads_over_its_23_hours(tou):
    # Sunday 8 March 2026 (winter; the weekend keeps the weekday periods), 23 hours, 23 kWh:
    # super-off-peak 08-16 8 h x 0.27 = 2.16, mid-peak 16-21 5 h x 0.49 = 2.45, off-peak 21-08
    # less the hour skipped 10 h x 0.30 = 3.00: 7.61.
    priced = price_intervals(tou, one(at(2026, 3, 8), at(2026, 3, 9), 23.0), timezone=TZ)
    assert int(priced.readings.duration_s.sum()) == 23 * 3600
    bill = summarize(priced, at(2026, 3, 8), at(2026, 3, 9), include_fixed=False)
    assert round(bill.energy_cost, 2) == 7.61


def test_readings_of_an_hour_or_less_are_priced_as_read(tou):
    readings = ReadingArrays.from_columns([int(at(2026, 6, 1, 16).timestamp())], [COARSE_S], [2.0], [0.0])
    assert spread_coarse(readings, timezone=TZ, plan=tou) is readings
    bill = summarize(price_intervals(tou, readings, timezone=TZ), at(2026, 6, 1), at(2026, 6, 2), include_fixed=False)
    assert not bill.estimated and round(bill.energy_cost, 2) == 1.10


def test_a_reading_across_two_billing_cycles_is_shared_between_them(tou):
    # 15 June to 15 July 2026 (cycles start on the 1st): 16 days in June's cycle, 14 in July's.
    readings = one(at(2026, 6, 15), at(2026, 7, 15), 300.0)
    whole = price_intervals(tou, readings, timezone=TZ)
    cycles = list(price_cycles(tou, [readings], timezone=TZ))
    assert [c.cycles for c in cycles] == [((at(2026, 6, 1).astimezone(LA).date(), at(2026, 7, 1).astimezone(LA).date()),),
                                          ((at(2026, 7, 1).astimezone(LA).date(), at(2026, 8, 1).astimezone(LA).date()),)]
    assert [round(float(c.readings.consumed_kwh.sum()), 6) for c in cycles] == [160.0, 140.0]
    assert float(sum(c.energy_cost.sum() for c in cycles)) == pytest.approx(float(whole.energy_cost.sum()), abs=1e-9)


def test_shares_cut_at_a_period_boundary_off_the_quarter_hour():
    from datetime import date

    from ems.tariff import parse_plan

    plan = parse_plan("ODD", {"currency": "USD", "billing_cycle": {"start_day": 1}, "versions": [{
        "effective_from": date(2024, 1, 1),
        "time_of_use": {"all-year": {"weekday": [
            {"period": "off-peak", "start": "00:00", "end": "16:10", "price_per_kwh": 0.10},
            {"period": "on-peak", "start": "16:10", "end": "24:00", "price_per_kwh": 1.00}]}}}]})
    # One day, 24 kWh: 16 h 10 min off-peak (16.1667 kWh x 0.10) + 7 h 50 min on-peak (7.8333 x 1.00).
    priced = price_intervals(plan, one(at(2026, 6, 2), at(2026, 6, 3), 24.0), timezone=TZ)
    cost = float(priced.energy_cost.sum())
    assert cost == pytest.approx((16 + 10 / 60) * 0.10 + (7 + 50 / 60) * 1.00)
    assert np.all(priced.readings.duration_s <= 900)


def test_readings_overlapping_a_monthly_one_fed_later_are_still_priced(tou):
    """A store holding a month read as one reading and days of the same month (the importer keeps
    them apart; an older store may hold both), read 30 days at a time: the day after the first chunk
    starts before the month's last share. Both are priced (the overlap counts twice), nothing fails."""
    month = one(at(2026, 6, 1), at(2026, 7, 1), 300.0)
    days = ReadingArrays.from_columns([int(at(2026, 6, d).timestamp()) for d in range(1, 31)], [86400] * 30,
                                      [10.0] * 30, [0.0] * 30)
    both = month + days
    cut = int(at(2026, 6, 30).timestamp())
    chunks = [both.between(0, cut), both.between(cut, 2**40)]
    cycles = list(price_cycles(tou, chunks, timezone=TZ))
    assert len(cycles) == 1 and float(cycles[0].readings.consumed_kwh.sum()) == pytest.approx(600.0)
    assert float(cycles[0].energy_cost.sum()) == pytest.approx(
        float(price_intervals(tou, both, timezone=TZ).energy_cost.sum()))


@pytest.mark.parametrize("zone", ["Africa/Monrovia", "Asia/Kathmandu"])
def test_shares_follow_the_local_clock_in_a_zone_off_the_quarter_hour(zone):
    """Monrovia kept UTC-0:44:30 until 1972 (its quarter hours are not UTC's); Kathmandu is UTC+5:45.
    A local day of 24 kWh on a 16-21 on-peak plan: 5 kWh on-peak, 19 off-peak."""
    from datetime import date

    from ems.tariff import parse_plan

    plan = parse_plan("LOCAL", {"currency": "USD", "billing_cycle": {"start_day": 1}, "versions": [{
        "effective_from": date(1970, 1, 1),
        "time_of_use": {"all-year": {"weekday": [
            {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.10},
            {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 1.00}]}}}]})
    tz = ZoneInfo(zone)
    day = date(1971, 6, 1) if zone == "Africa/Monrovia" else date(2026, 6, 1)
    start = datetime.combine(day, datetime.min.time(), tz)
    priced = price_intervals(plan, one(start, start + timedelta(days=1), 24.0), timezone=zone)  # no DST then
    assert float(priced.energy_cost.sum()) == pytest.approx(19 * 0.10 + 5 * 1.00)
    local_starts = {datetime.fromtimestamp(int(s), tz).minute % 15 for s in priced.readings.start_s}
    assert local_starts == {0}  # every share starts on a local quarter hour


def test_the_cost_so_far_takes_a_daily_reading_whole_as_the_last_interval(tou):
    """Days read as one reading each: the last interval is the last day (not its last quarter hour),
    and the projection's typical day is the days' flat shares (24 kWh a day, not all at midnight)."""
    from ems.costs import cost_report

    days = [at(2026, 6, d) for d in range(1, 16)]
    readings = ReadingArrays.from_columns([int(d.timestamp()) for d in days], [86400] * 15, [24.0] * 15, [0.0] * 15)
    report = cost_report(tou, readings, now=at(2026, 6, 16, 12), timezone=TZ, typical_days=7)
    last = report.last_interval
    assert last is not None and (last.start, last.end) == (at(2026, 6, 15), at(2026, 6, 16))
    assert last.intervals_read == 1 and last.estimated and round(last.energy_kwh, 6) == 24.0
    assert report.cycle.intervals_read == 15 and report.cycle.estimated_kwh == pytest.approx(360.0)
    projection = report.projection
    assert projection is not None and projection.basis == "typical days"
    # 15 days read, then from now (noon on the 16th) to 1 July as typical days of 24 kWh: 14.5 days
    # (the morning of the 16th was not read: a gap, not an estimate).
    assert projection.energy_kwh == pytest.approx(15 * 24 + 14.5 * 24, rel=1e-9)

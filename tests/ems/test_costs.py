"""The cost engine: hand-computed bills to the cent, and equality with a plain reference loop."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.costs import ReadingArrays, cost_report, price_intervals, summarize, usage_warnings
from ems.model import IntervalReading, MessageOrigin
from ems.tariff import RatePlan, parse_plan

LA = "America/Los_Angeles"


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def reading(start: datetime, duration_s: int, consumed: float, generated: float = 0.0) -> IntervalReading:
    return IntervalReading("m1", start, duration_s, consumed, generated)


# --- The reference: one interval at a time, straight from the rate sheet's words ------------


def reference_bounds(plan: RatePlan, cycle: tuple[date, date], tz: ZoneInfo, zone: str | None) -> list[float]:
    """Cumulative tier upper bounds for one cycle, adding each day's allowance."""
    tiers = plan.number_of_tiers
    totals = [0.0] * max(tiers - 1, 0)
    day = cycle[0]
    while day < cycle[1]:
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        version = plan.version_at(midnight, tz)
        for k in range(tiers - 1):
            allowance = version.tiers[k].allowance
            if allowance.per_day or day == cycle[0]:
                totals[k] += allowance.kwh_for(version.season_of(day), zone)
        day += timedelta(days=1)
    bounds, running = [], 0.0
    for t in totals:
        running += t
        bounds.append(running)
    return bounds


def reference_costs(plan: RatePlan, readings: list[IntervalReading], tz_name: str, zone: str | None = None) -> list[dict]:
    """Price each interval in a plain loop: version, season, day type, period, tier, credit."""
    tz = ZoneInfo(tz_name)
    used_in_cycle: dict[tuple[date, date], float] = {}
    rows = []
    for r in sorted(readings, key=lambda r: r.start):
        wall = r.start.astimezone(tz)
        day, minute = wall.date(), wall.hour * 60 + wall.minute
        version = plan.versions[0]
        for v in plan.versions:
            if v.effective_from.replace(tzinfo=tz) <= r.start:
                version = v
        season = version.season_of(day)
        if day in plan.holidays.dates(range(day.year, day.year + 1)):
            day_type = "holiday"
        elif day.weekday() >= 5:
            day_type = "weekend"
        else:
            day_type = "weekday"
        price, period = version.energy_price_per_kwh, None
        if version.time_of_use:
            for p in version.time_of_use[season].periods(day_type):
                if p.covers(minute):
                    price, period = p.price_per_kwh, (season, p.name)
        if day in version.hourly_prices:
            price = version.hourly_prices[day][wall.hour]
        # Overlapping events on a day still make one critical peak: the adder applies once.
        if any(e.day == day and e.start_min <= minute < e.end_min for e in plan.critical_peak_events):
            price += version.critical_peak_adder_per_kwh
        cycle = plan.billing_cycle.cycle_of(day)
        bounds = reference_bounds(plan, cycle, tz, zone)
        before = used_in_cycle.get(cycle, 0.0)
        after = before + r.consumed_kwh
        used_in_cycle[cycle] = after
        tier_kwh, cost = [], 0.0
        if not version.tiers:
            cost = r.consumed_kwh * price
        for k, tier in enumerate(version.tiers):
            lower = bounds[k - 1] if k > 0 else 0.0
            upper = bounds[k] if k < len(bounds) else math.inf
            kwh = max(0.0, min(after, upper) - max(before, lower))
            tier_kwh.append(kwh)
            cost += kwh * (price + tier.price_per_kwh)
        credit_price = price if version.generation_same_as_import else version.generation_credit_per_kwh
        rows.append(
            {"cost": cost, "credit": r.generated_kwh * credit_price, "tiers": tier_kwh, "period": period}
        )
    return rows


def priced(plan: RatePlan, readings: list[IntervalReading], tz: str = LA, zone: str | None = None):
    return price_intervals(plan, ReadingArrays.from_readings(readings), timezone=tz, climate_zone=zone)


# --- (a) two-tier baseline over a cycle that crosses the baseline ------------------------------

BASELINE_PLAN = {
    "currency": "USD",
    "billing_cycle": {"start_day": 1},
    "versions": [
        {
            "effective_from": date(2024, 1, 1),
            "tiers": [{"allowance_kwh_per_day": 10, "price_per_kwh": 0.25}, {"price_per_kwh": 0.35}],
            "basic_charge_per_day": 0.03,
            "minimum_bill_per_day": 0.35,
        }
    ],
}


def test_hand_bill_two_tier_baseline():
    plan = parse_plan("BASE", BASELINE_PLAN)
    # April 2024: a 30-day cycle, baseline 30 x 10 = 300 kWh. One 24-hour interval a day of
    # 11 kWh: days 1-27 use 297 kWh (tier 1); day 28 goes 297 -> 308: 3 kWh in tier 1 and
    # 8 kWh in tier 2 (split in proportion); days 29-30 add 22 kWh in tier 2.
    # Tier 1: 300 kWh x 0.25 = 75.00.  Tier 2: 30 kWh x 0.35 = 10.50.  Energy 85.50.
    # Basic charge 30 days x 0.03 = 0.90.  Total 86.40 (above the minimum 30 x 0.35 = 10.50).
    readings = [reading(local(LA, 2024, 4, d), 86400, 11.0) for d in range(1, 31)]
    result = priced(plan, readings)
    bill = summarize(result, local(LA, 2024, 4, 1), local(LA, 2024, 5, 1))
    assert round(bill.energy_kwh, 3) == 330.0
    assert [round(t.energy_kwh, 3) for t in bill.tiers] == [300.0, 30.0]
    assert [round(t.cost, 2) for t in bill.tiers] == [75.00, 10.50]
    assert round(bill.energy_cost, 2) == 85.50
    assert round(bill.fixed_charges, 2) == 0.90
    assert round(bill.total_cost, 2) == 86.40
    assert bill.current_tier == 2 and bill.missing_intervals == 0
    # Daily readings are priced as flat shares over their day, and say so.
    assert bill.intervals_read == 30 and bill.estimated and round(bill.estimated_kwh, 3) == 330.0
    # Day 28's interval: 3 x 0.25 + 8 x 0.35 = 0.75 + 2.80 = 3.55.
    assert round(summarize(result, local(LA, 2024, 4, 28), local(LA, 2024, 4, 29)).energy_cost, 2) == 3.55


# --- (b) time-of-use with summer/winter, weekends and a holiday ---------------------------------

TOU_PLAN = {
    "currency": "USD",
    "holidays": {"country": "US", "names": ["Labor Day"], "observed": "none"},
    "billing_cycle": {"start_day": 1},
    "versions": [
        {
            "effective_from": date(2024, 1, 1),
            "seasons": {"summer": "06-01", "winter": "10-01"},
            "time_of_use": {
                "summer": {
                    "weekday": [
                        {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.30},
                        {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.50},
                    ],
                    "weekend": [
                        {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.30},
                        {"period": "mid-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.40},
                    ],
                },
                "winter": {
                    "weekday": [
                        {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.25},
                        {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.40},
                    ]
                },
            },
        }
    ],
}


def test_hand_bill_time_of_use_seasons_weekend_holiday():
    plan = parse_plan("TOU", TOU_PLAN)
    readings = [
        reading(local(LA, 2024, 9, 2, 17), 3600, 1.0),  # Labor Day (holiday = weekend): mid-peak 0.40 -> 0.40
        reading(local(LA, 2024, 9, 3, 17), 3600, 2.0),  # summer weekday on-peak 2 x 0.50 -> 1.00
        reading(local(LA, 2024, 9, 3, 10), 3600, 1.0),  # summer weekday off-peak 1 x 0.30 -> 0.30
        reading(local(LA, 2024, 9, 7, 17), 3600, 2.0),  # Saturday: mid-peak 2 x 0.40 -> 0.80
        reading(local(LA, 2024, 10, 1, 17), 3600, 3.0),  # winter weekday on-peak 3 x 0.40 -> 1.20
        reading(local(LA, 2024, 10, 1, 3), 3600, 2.0),  # winter off-peak 2 x 0.25 -> 0.50
    ]
    # Total 11 kWh; 0.40 + 1.00 + 0.30 + 0.80 + 1.20 + 0.50 = 4.20.
    result = priced(plan, readings)
    bill = summarize(result, local(LA, 2024, 9, 1), local(LA, 2024, 10, 2), include_fixed=False)
    assert round(bill.energy_kwh, 3) == 11.0
    assert round(bill.energy_cost, 2) == 4.20
    periods = {(p.season, p.period): (round(p.energy_kwh, 3), round(p.cost, 2)) for p in bill.periods}
    assert periods == {
        ("summer", "on-peak"): (2.0, 1.00),
        ("summer", "off-peak"): (1.0, 0.30),
        ("summer", "mid-peak"): (3.0, 1.20),  # holiday 1 kWh + Saturday 2 kWh
        ("winter", "on-peak"): (3.0, 1.20),
        ("winter", "off-peak"): (2.0, 0.50),
    }


# --- (c) solar on a tiered + time-of-use rate --------------------------------------------------

SOLAR_PLAN = {
    "currency": "USD",
    "billing_cycle": {"start_day": 1},
    "versions": [
        {
            "effective_from": date(2024, 1, 1),
            "time_of_use": {
                "all": {
                    "weekday": [
                        {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.30},
                        {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.50},
                    ]
                }
            },
            "tiers": [{"allowance_kwh": 10, "price_per_kwh": 0.0}, {"price_per_kwh": 0.10}],
            "generation_credit_per_kwh": 0.08,
            "basic_charge_per_day": 0.03,
        }
    ],
}


def solar_day() -> list[IntervalReading]:
    return [
        reading(local(LA, 2024, 7, 1, 10), 3600, 1.0, 4.0),  # off-peak 1 x 0.30 = 0.30; credit 4 x 0.08 = 0.32
        reading(local(LA, 2024, 7, 1, 12), 3600, 2.0, 5.0),  # off-peak 2 x 0.30 = 0.60; credit 0.40
        reading(local(LA, 2024, 7, 1, 17), 3600, 6.0, 0.5),  # 3 -> 9 kWh, tier 1 on-peak 6 x 0.50 = 3.00; credit 0.04
        reading(local(LA, 2024, 7, 1, 19), 3600, 4.0),  # 9 -> 13: 1 x 0.50 = 0.50 (tier 1) + 3 x 0.60 = 1.80 (tier 2)
        reading(local(LA, 2024, 7, 1, 22), 3600, 2.0),  # tier 2 off-peak 2 x (0.30 + 0.10) = 0.80
    ]


def test_hand_bill_solar_on_tiered_time_of_use():
    plan = parse_plan("SOLAR", SOLAR_PLAN)
    # Tier 1: 10 kWh, 0.30 + 0.60 + 3.00 + 0.50 = 4.40.  Tier 2: 5 kWh, 1.80 + 0.80 = 2.60.
    # Energy 15 kWh, 7.00.  Generation 9.5 kWh x 0.08 = 0.76 credit.  Basic charge 1 day 0.03.
    # Total 7.00 - 0.76 + 0.03 = 6.27.  Off-peak 5 kWh 1.70; on-peak 10 kWh 5.30.
    result = priced(plan, solar_day())
    bill = summarize(result, local(LA, 2024, 7, 1), local(LA, 2024, 7, 2))
    assert [(round(t.energy_kwh, 3), round(t.cost, 2)) for t in bill.tiers] == [(10.0, 4.40), (5.0, 2.60)]
    assert round(bill.energy_cost, 2) == 7.00
    assert round(bill.generated_kwh, 3) == 9.5
    assert round(bill.generation_credit, 2) == 0.76
    assert round(bill.fixed_charges, 2) == 0.03
    assert round(bill.total_cost, 2) == 6.27
    periods = {p.period: (round(p.energy_kwh, 3), round(p.cost, 2)) for p in bill.periods}
    assert periods == {"off-peak": (5.0, 1.70), "on-peak": (10.0, 5.30)}


def test_gaps_stay_gaps():
    plan = parse_plan("SOLAR", SOLAR_PLAN)
    bill = summarize(priced(plan, solar_day()), local(LA, 2024, 7, 1), local(LA, 2024, 7, 2))
    # 24 hours, 5 read: 00-10, 11-12, 13-17, 18-19, 20-22 and 23-24 are missing (19 hours).
    assert bill.intervals_read == 5
    assert bill.missing_intervals == 19
    assert [g.missing_intervals for g in bill.gaps] == [10, 1, 4, 1, 2, 1]
    assert bill.gaps[0].start == local(LA, 2024, 7, 1) and bill.gaps[0].end == local(LA, 2024, 7, 1, 10)


def test_report_projection_and_tier_warning():
    plan = parse_plan("BASE", BASELINE_PLAN)
    # 12 kWh a day in hourly intervals, April 1-20 read; the cycle's baseline is 300 kWh.
    readings = [
        reading(local(LA, 2024, 4, 1) + timedelta(hours=h), 3600, 0.5) for h in range(24 * 20)
    ]
    now = local(LA, 2024, 4, 21, 0, 30)
    report = cost_report(plan, ReadingArrays.from_readings(readings), now=now, timezone=LA)
    assert round(report.cycle.energy_kwh, 3) == 240.0 and report.cycle.current_tier == 1
    assert round(report.today.energy_kwh, 3) == 0.0
    projection = report.projection
    assert projection is not None and projection.basis == "typical days"
    # 240 read + 12 kWh x 10 remaining days, less the 30 minutes of today already gone (not
    # read, not estimated): 359.75 kWh. April 25 ends at 240 + 5 x 12 - 0.25 = 299.75 kWh, so
    # the baseline (300) is crossed in the first hour of April 26.
    assert projection.energy_kwh == pytest.approx(359.75, abs=0.01)
    assert projection.next_tier == 2 and projection.next_tier_date == date(2024, 4, 26)
    assert usage_warnings(None, report, meter_id="m1", threshold_cost=None, now=now) == []
    later = cost_report(plan, ReadingArrays.from_readings(readings + [
        reading(local(LA, 2024, 4, 21) + timedelta(hours=h), 3600, 10.0) for h in range(8)
    ]), now=local(LA, 2024, 4, 21, 8, 30), timezone=LA)
    (message,) = usage_warnings(report, later, meter_id="m1", threshold_cost=None, now=now)
    assert message.origin is MessageOrigin.LOCAL and "tier 2" in message.text
    threshold = usage_warnings(report, later, meter_id="m1", threshold_cost=100.0, now=now)  # projected 96.81 before, more after
    assert len(threshold) == 2 and "above the $100.00" in threshold[1].text
    assert usage_warnings(report, later, meter_id="m1", threshold_cost=90.0, now=now)[1:] == []  # already above


# --- Property: the numpy engine equals the reference loop ---------------------------------------

_hours = st.lists(st.integers(1, 23), min_size=0, max_size=3, unique=True).map(sorted)
_price = st.floats(0.0, 1.0).map(lambda x: round(x, 4))


@st.composite
def day_periods(draw):
    cuts = draw(_hours)
    if not cuts:
        return [{"period": "all-day", "start": "00:00", "end": "24:00", "price_per_kwh": draw(_price)}]
    bounds = [*cuts, cuts[0] + 24]
    return [
        {"period": f"p{i}", "start": f"{a % 24:02d}:00", "end": f"{b % 24:02d}:00", "price_per_kwh": draw(_price)}
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


@st.composite
def plans(draw, first_day: date):
    seasonal = draw(st.booleans())
    seasons = {"summer": f"{draw(st.integers(1, 6)):02d}-{draw(st.integers(1, 28)):02d}",
               "winter": f"{draw(st.integers(7, 12)):02d}-{draw(st.integers(1, 28)):02d}"}
    names = list(seasons) if seasonal else ["all"]

    def version(effective_from):
        v = {"effective_from": effective_from, "energy_price_per_kwh": draw(_price)}
        if seasonal:
            v["seasons"] = seasons
        if draw(st.booleans()):
            v["time_of_use"] = {
                n: {"weekday": draw(day_periods()), **({"weekend": draw(day_periods())} if draw(st.booleans()) else {}),
                    **({"holiday": draw(day_periods())} if draw(st.booleans()) else {})}
                for n in names
            }
        v["tiers"] = tiers
        v["critical_peak_adder_per_kwh"] = draw(_price)
        v["generation_credit_per_kwh"] = draw(st.one_of(_price, st.just("same_as_import")))
        return v

    count = draw(st.integers(0, 3))
    tiers = []
    for k in range(count):
        tier = {"price_per_kwh": draw(_price)}
        if k < count - 1:
            kwh = draw(st.floats(0.0, 40.0).map(lambda x: round(x, 2)))
            tier["allowance_kwh_per_day" if draw(st.booleans()) else "allowance_kwh"] = (
                {n: kwh + i for i, n in enumerate(seasons)} if seasonal and draw(st.booleans()) else kwh
            )
        tiers.append(tier)
    versions = [version(first_day - timedelta(days=400))]
    if draw(st.booleans()):
        versions.append(version(datetime.combine(first_day, datetime.min.time()) + timedelta(hours=draw(st.integers(0, 24 * 20)))))
    events = [
        {"date": first_day + timedelta(days=draw(st.integers(0, 20))), "start": f"{h:02d}:00", "end": f"{h + draw(st.integers(1, 6)):02d}:00"}
        for h in draw(st.lists(st.integers(0, 17), max_size=2))
    ]
    cycle = {"start_day": draw(st.integers(1, 31))} if draw(st.booleans()) else {
        "start_dates": sorted({first_day + timedelta(days=d) for d in draw(st.lists(st.integers(-5, 25), min_size=1, max_size=3))})
    }
    holidays = {"extra_dates": [first_day + timedelta(days=d) for d in draw(st.lists(st.integers(0, 20), max_size=2))]}
    if draw(st.booleans()):
        holidays.update(country="US", names=[], observed=draw(st.sampled_from(["none", "sunday_to_monday", "nearest_weekday"])))
    return {"currency": "USD", "holidays": holidays, "billing_cycle": cycle,
            "critical_peak_events": events, "versions": versions}


@st.composite
def cases(draw):
    tz = draw(st.sampled_from([LA, "UTC", "Australia/Lord_Howe", "Europe/London"]))
    first_day = draw(st.sampled_from([date(2024, 3, 5), date(2024, 10, 25), date(2024, 6, 20), date(2023, 12, 20)]))
    raw = draw(plans(first_day))
    duration = draw(st.sampled_from([900, 1800, 3600]))
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    count = draw(st.integers(1, 24 * 20 * 3600 // duration))
    kept = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    amounts = draw(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 3)), min_size=count, max_size=count))
    readings = [
        reading(start + timedelta(seconds=i * duration), duration, c, g)
        for i, (keep, (c, g)) in enumerate(zip(kept, amounts, strict=True)) if keep
    ]
    return tz, raw, readings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_engine_equals_reference_loop(case):
    tz, raw, readings = case
    plan = parse_plan("RANDOM", raw)
    expected = reference_costs(plan, readings, tz)
    result = priced(plan, readings, tz)
    assert len(result) == len(expected)
    for i, row in enumerate(expected):
        assert float(result.energy_cost[i]) == pytest.approx(row["cost"], abs=1e-6)
        assert float(result.generation_credit[i]) == pytest.approx(row["credit"], abs=1e-6)
        for k, kwh in enumerate(row["tiers"]):
            assert float(result.tier_energy_kwh[k, i]) == pytest.approx(kwh, abs=1e-6)
        label = result.period_index[i]
        assert (result.period_labels[label] if label >= 0 else None) == row["period"]
    if readings:
        bill = summarize(result, readings[0].start, readings[-1].end, include_fixed=False)
        assert bill.energy_cost == pytest.approx(sum(r["cost"] for r in expected), abs=1e-5)
        assert bill.generation_credit == pytest.approx(sum(r["credit"] for r in expected), abs=1e-5)


def test_float_residue_never_enters_the_next_tier():
    """1-minute readings of 0.01 kWh: 14.4 kWh a day can't reach a 350 kWh baseline today."""
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from ems.config import default_config_dir
    from ems.costs import ReadingArrays, cost_report
    from ems.tariff import load_rates

    plan = load_rates(default_config_dir() / "rates.yaml", climate_zone="10").plans["TOU-D-T"]
    now = datetime(2026, 11, 22, 4, 40, tzinfo=UTC)
    start = int((now - timedelta(days=1)).timestamp()) // 60 * 60
    readings = ReadingArrays.from_columns(start + 60 * np.arange(1440), np.full(1440, 60),
                                          np.full(1440, 0.01), np.zeros(1440))
    report = cost_report(plan, readings, now=now, timezone="America/Los_Angeles", climate_zone="10")
    assert report.projection.energy_kwh < 350
    assert report.projection.next_tier_date is None
    assert report.cycle.current_tier == 1


def test_cycle_totals_equal_bincount_with_empty_cycles_before_between_and_after():
    import numpy as np

    from ems.costs import cycle_totals

    class Priced:  # only what cycle_totals reads
        cycles = tuple(range(5))
        cycle_index = np.array([1, 1, 1, 3, 3])
        energy_cost = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
        generation_credit = np.array([0.5, 0.0, 0.0, 0.0, 0.25])

        class readings:  # noqa: N801 - stands in for ReadingArrays
            consumed_kwh = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
            generated_kwh = np.zeros(5)

    totals = cycle_totals(Priced)
    assert totals["energy_cost"].tolist() == [0.0, 6.0, 0.0, 9.0, 0.0]
    assert totals["energy_kwh"].tolist() == [0.0, 60.0, 0.0, 90.0, 0.0]
    assert totals["generation_credit"].tolist() == [0.0, 0.5, 0.0, 0.25, 0.0]

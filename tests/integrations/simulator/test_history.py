"""The demo's seeded history: whole intervals made from the same household and devices the meter uses,
a home a utility would recognise, and a bill of the order a Californian pays."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.cli import read_config
from ems.clock import FixedClock
from ems.costs import ReadingArrays, price_intervals, summarize
from ems.model import IntervalReading
from integrations.simulator import load_scenario
from integrations.simulator.history import synthesize_intervals
from integrations.simulator.household import Household

CONFIG = Path(__file__).resolve().parents[3] / "config"
DEMO = CONFIG / "scenarios" / "demo.yaml"
LA = ZoneInfo("America/Los_Angeles")
JULY = datetime(2026, 7, 1, tzinfo=LA)  # a Wednesday


def _household() -> Household:
    scenario = load_scenario(DEMO)
    return Household.from_scenario(scenario.household, scenario.timezone)


@pytest.fixture(scope="module")
def four_weeks() -> list[IntervalReading]:
    """The demo home's history for four weeks of July, in 15-minute intervals."""
    scenario = load_scenario(DEMO)
    household = Household.from_scenario(scenario.household, scenario.timezone)
    return synthesize_intervals(household, "main", JULY, JULY + timedelta(days=28), timedelta(minutes=15),
                                scenario.home)


def _daily(readings: list[IntervalReading]) -> dict[date, float]:
    days: dict[date, float] = defaultdict(float)
    for reading in readings:
        days[reading.start.astimezone(LA).date()] += reading.consumed_kwh
    return days


def test_a_day_gives_one_aligned_interval_per_period() -> None:
    start = datetime(2026, 7, 1, 7, 3, tzinfo=UTC)
    readings = synthesize_intervals(_household(), "main", start, start + timedelta(days=1), timedelta(minutes=15))
    assert len(readings) == 96  # from 07:00 to 07:00 next day (an interval must end by 07:03)
    assert readings[0].start == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert all(b.start - a.start == timedelta(minutes=15) for a, b in zip(readings, readings[1:], strict=False))


def test_energy_follows_the_household_model() -> None:
    household = _household()
    start = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)  # 20:00 in Los Angeles: no sun
    (reading,) = synthesize_intervals(household, "main", start, start + timedelta(minutes=15), timedelta(minutes=15))
    expected = household.net_kw(start + timedelta(minutes=7.5)) / 4
    assert abs(reading.consumed_kwh - expected) < 0.25 * expected + 0.05
    assert reading.generated_kwh == 0


def test_the_home_devices_run_on_their_schedules_in_the_history() -> None:
    scenario = load_scenario(DEMO)
    household = Household.from_scenario(scenario.household, scenario.timezone)
    period = timedelta(minutes=15)

    def extra_kwh(local: datetime) -> float:
        (bare,) = synthesize_intervals(household, "main", local, local + period, period)
        (home,) = synthesize_intervals(household, "main", local, local + period, period, scenario.home)
        return home.consumed_kwh - bare.consumed_kwh

    # The EV charges after midnight on weekdays (7.2 kW for a quarter of an hour), not on a Saturday,
    # and nothing of the home's devices runs at 03:00.
    assert extra_kwh(datetime(2026, 7, 1, 0, 15, tzinfo=LA)) == pytest.approx(7.2 / 4, abs=0.05)
    assert extra_kwh(datetime(2026, 7, 4, 0, 15, tzinfo=LA)) == pytest.approx(0, abs=0.05)
    assert extra_kwh(datetime(2026, 7, 1, 3, 0, tzinfo=LA)) == pytest.approx(0, abs=0.01)


def test_the_demo_home_uses_what_a_household_uses_in_a_day(four_weeks) -> None:
    days = _daily(four_weeks)
    assert len(days) == 28
    average = sum(days.values()) / len(days)
    assert 20 <= average <= 35, average  # kWh a day from the grid
    assert all(10 <= kwh <= 40 for kwh in days.values()), days  # days differ (weekends, laundry), none absurd
    assert max(r.consumed_kwh for r in four_weeks) * 4 < 10  # a few kW at most, never 19 kW


def test_the_solar_is_zero_at_night_and_a_few_kw_at_noon(four_weeks) -> None:
    household = _household()
    day = datetime(2026, 7, 15, tzinfo=LA)
    assert household.solar_kw(day.replace(hour=23)) == 0
    assert household.solar_kw(day.replace(hour=4)) == 0
    assert 2.5 < household.solar_kw(day.replace(hour=13)) < 6
    assert household.solar_kw(day.replace(hour=9)) < household.solar_kw(day.replace(hour=12))
    night = [r for r in four_weeks if r.start.astimezone(LA).hour in (22, 23, 0, 1, 2, 3, 4)]
    assert night and all(r.generated_kwh == 0 for r in night)
    exported = sum(r.generated_kwh for r in four_weeks if 8 <= r.start.astimezone(LA).hour < 17)
    assert exported / 28 > 5  # the meter runs backwards on a sunny afternoon


def test_a_month_costs_a_californian_bill_on_the_demo_rate(four_weeks) -> None:
    """Costed by the appliance's own engine, on the demo's rate plan and climate zone."""
    config = read_config(CONFIG)
    tariff = config.tariff
    assert tariff is not None and tariff.active_plan is not None
    plan = tariff.active_plan
    priced = price_intervals(plan, ReadingArrays.from_readings(four_weeks), timezone=config.site.timezone,
                             climate_zone=tariff.climate_zone)
    bill = summarize(priced, JULY, JULY + timedelta(days=28))
    month = bill.total_cost * 30 / 28
    assert 150 <= month <= 350, month
    assert bill.generation_credit > 0  # the solar's exports are credited


def test_live_demand_follows_the_historys_profile_at_the_same_hour(four_weeks) -> None:
    """The live simulated meter, stepped through a weekday evening and night, draws what the seeded
    history shows for the same hours: the same day made by the history's model, and the weekdays before."""
    from integrations.simulator.runner import SimulatedHan

    scenario = load_scenario(DEMO)
    household = Household.from_scenario(scenario.household, scenario.timezone)
    start = datetime(2026, 7, 29, 17, 0, tzinfo=LA)  # a Wednesday, after the four weeks
    clock = FixedClock(start.astimezone(UTC))
    sim = SimulatedHan(scenario, clock=clock)
    sim.tick(start.astimezone(UTC))
    backfilled = list(sim.meter.intervals)  # the day before, what the meter answers GetProfile with
    live: dict[int, list[float]] = defaultdict(list)
    at = start
    while at < start + timedelta(hours=10):
        clock.set(at.astimezone(UTC))
        sim.tick(at.astimezone(UTC))
        live[at.astimezone(LA).hour].append(sim.meter.demand_kw)
        at += timedelta(minutes=1)
    same_day = synthesize_intervals(household, "main", start, start + timedelta(hours=10), timedelta(hours=1),
                                    scenario.home)
    # Hour by hour within what an air conditioner's cycles (a quarter of an hour on, half off) and a
    # battery starting at another charge can move; over the evening and night, close.
    for reading in same_day:
        hour = reading.start.astimezone(LA).hour
        live_kw = sum(live[hour]) / len(live[hour])
        history_kw = reading.consumed_kwh - reading.generated_kwh
        assert abs(live_kw - history_kw) < 0.2 * abs(history_kw) + 0.8, (hour, live_kw, history_kw)
    live_kwh = sum(sum(kws) / len(kws) for kws in live.values())
    history_kwh = sum(r.consumed_kwh - r.generated_kwh for r in same_day)
    assert live_kwh == pytest.approx(history_kwh, rel=0.15)
    past: dict[int, list[float]] = defaultdict(list)
    for reading in four_weeks:
        local = reading.start.astimezone(LA)
        if local.weekday() in (0, 1, 2, 3) and local.hour in (0, 2, 21):  # weeknights, as the live one
            past[local.hour].append((reading.consumed_kwh - reading.generated_kwh) * 4)
    for hour, kws in past.items():
        live_kw = sum(live[hour]) / len(live[hour])
        assert abs(live_kw - sum(kws) / len(kws)) < 0.3 * live_kw + 0.4, (hour, live_kw, sum(kws) / len(kws))
    # and the meter's own backfilled day is the same home: no 19 kW, no cliff
    assert len(backfilled) == 24 * 60
    assert 12 <= sum(i.consumed_kwh for i in backfilled) <= 40
    assert max(i.consumed_kwh * 60 for i in backfilled) < 10

"""The demo's seeded history: whole intervals made from the same household model the meter uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from integrations.simulator import load_scenario
from integrations.simulator.history import synthesize_intervals
from integrations.simulator.household import Household

DEMO = Path(__file__).resolve().parents[3] / "config" / "scenarios" / "demo.yaml"


def _household() -> Household:
    scenario = load_scenario(DEMO)
    return Household.from_scenario(scenario.household, scenario.timezone)


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


def test_the_home_devices_own_load_is_in_the_history() -> None:
    scenario = load_scenario(DEMO)
    household = Household.from_scenario(scenario.household, scenario.timezone)
    start = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 03:00 in Los Angeles
    period = timedelta(minutes=15)
    (bare,) = synthesize_intervals(household, "main", start, start + period, period)
    (home,) = synthesize_intervals(household, "main", start, start + period, period, scenario.home)
    always_on = sum(d["nominal_kw"] for d in scenario.home["devices"] if d["kind"] in ("plug", "load_controller"))
    assert abs((home.consumed_kwh - bare.consumed_kwh) - always_on / 4) < 0.01

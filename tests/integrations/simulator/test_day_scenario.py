"""The day scenario (config/scenarios/day.yaml): the demo home's whole day, its TOU periods, an event,
a critical-peak price and a billing-cycle change, for `ems demo --start ... --speed N`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ems.cli import read_config
from ems.clock import FixedClock
from ems.config import default_config_dir
from integrations.simulator import load_scenario

LA = ZoneInfo("America/Los_Angeles")
START = datetime(2026, 7, 9, 6, 0, tzinfo=LA)  # what README and the scenario's header say to pass as --start


def test_the_day_is_the_demo_home_with_its_own_script():
    day = load_scenario(default_config_dir() / "scenarios" / "day.yaml")
    demo = load_scenario(default_config_dir() / "scenarios" / "demo.yaml")
    assert (day.household, day.home) == (demo.household, demo.home)
    (event,) = day.events
    # Where the script puts its event on the day's clock (a fact of the file, not a timing): it starts
    # at 17:00 and ends inside the plan's on-peak hours (16:00-21:00).
    event_start = START + event["at"] + event["starts_in"]
    assert event_start.hour == 17 and 16 <= (event_start + timedelta(minutes=event["duration_min"])).hour < 21
    (cpp,) = day.price_changes
    assert (START + cpp["at"]).hour == 17  # the critical-peak price is the event's hour
    assert any("billing period" in m["text"] for m in day.messages)


def test_a_simulated_day_goes_through_the_periods_and_into_a_new_billing_period():
    from integrations.simulator.runner import SimulatedHan

    day = load_scenario(default_config_dir() / "scenarios" / "day.yaml")
    clock = FixedClock(START.astimezone(UTC))
    sim = SimulatedHan(day, clock=clock)
    periods, starts, demand = [], set(), []
    at = START
    while at < START + timedelta(hours=24):
        clock.set(at.astimezone(UTC))
        sim.tick(at.astimezone(UTC))
        period = sim.meter.current_price(at.astimezone(UTC)).period
        if not periods or periods[-1] != period:
            periods.append(period)
        starts.add(sim.meter.billing_period_start.astimezone(LA))
        demand.append(sim.meter.demand_kw)
        at += timedelta(minutes=5)
    assert periods == ["off-peak", "on-peak", "off-peak"]
    assert sorted(starts) == [datetime(2026, 6, 10, tzinfo=LA), datetime(2026, 7, 10, tzinfo=LA)]
    assert sim.meter.block_period_kwh < 40  # counted again from midnight
    assert max(demand) < 10 and min(demand) < 0  # a few kW at most, and the solar exports at midday
    # and the appliance's rate plan starts its cycle on the same day
    plan = read_config(default_config_dir()).tariff.active_plan
    assert plan.billing_cycle.cycle_of(START.date())[1] == date(2026, 7, 10)

"""The bill check as intervals arrive one at a time: the warnings it raises are those of the whole
cycle costed afresh each time (the spec), while it reads from the store only what came since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ems import billing, local_text
from ems.bill_watch import BillWatch
from ems.clock import FixedClock
from ems.config import default_config_dir
from ems.costs import ReadingArrays, cost_report, history_start, usage_warnings
from ems.model import IntervalReading
from tests.hubs import started_hub

LA = "America/Los_Angeles"
CYCLE_START = datetime(2026, 5, 10, 7, tzinfo=UTC)  # TOU-D-T's cycle: from 10 May, midnight in Los Angeles
CONFIG = ("site: {name: Test home, timezone: America/Los_Angeles}\n"
          "tariff: {plan: TOU-D-T, climate_zone: '10', warning_threshold_cost: 120.0}\n")
RATES = {"rates.yaml": (default_config_dir() / "rates.yaml").read_text()}


async def test_warnings_as_intervals_arrive_are_those_of_the_cycle_costed_afresh(tmp_path):
    # 12 kWh an hour from the cycle's start: the 350 kWh block is passed on the second day, and the
    # projected bill climbs past the threshold as the heavy hours come in.
    history = [IntervalReading("m1", CYCLE_START - timedelta(hours=h), 3600, 0.5, 0.0) for h in range(1, 24 * 20)]
    arriving = [IntervalReading("m1", CYCLE_START + timedelta(hours=h), 3600, 12.0, 0.0) for h in range(40)]
    clock = FixedClock(CYCLE_START)
    async with started_hub(tmp_path, CONFIG, RATES, clock=clock) as hub:
        await hub.store.add_intervals(history)
        plan = hub.config.tariff.active_plan
        watch = BillWatch(hub)
        raised, expected, previous = [], [], None
        for k, reading in enumerate(arriving):
            clock.set(reading.start + timedelta(hours=1, seconds=20))  # the check after the hour is read
            await hub.store.add_intervals([reading])
            raised += await watch.check("m1")  # published: the state holds them from now on
            now = clock.now()
            stored = [*history, *arriving[: k + 1]]
            whole = [r for r in stored if history_start(plan, now, LA) <= r.start < now]
            report = cost_report(plan, ReadingArrays.from_readings(whole), now=now, timezone=LA, climate_zone="10")
            expected += [w for w in usage_warnings(previous, report, meter_id="m1", threshold_cost=120.0, now=now)
                         if all(w.message_id != e.message_id for e in expected)]
            previous = report
        window = billing.IntervalWindow.of(hub.store)
    assert [(w.message_id, w.template, w.params) for w in raised] == [
        (w.message_id, w.template, w.params) for w in expected]
    assert {w.template for w in raised} == {local_text.TIER_WARNING, local_text.BILL_WARNING}
    assert window.full_reads == 1  # the first check read the window; each later one only the new hour


DEMAND_RATES = {"rates.yaml": """\
plans:
  GS-DEMAND:
    currency: USD
    billing_cycle: {start_day: 1}
    versions:
      - effective_from: 2026-01-01
        time_of_use:
          all-year:
            weekday:
              - {period: off-peak, start: "21:00", end: "16:00", price_per_kwh: 0.12}
              - {period: on-peak, start: "16:00", end: "21:00", price_per_kwh: 0.30}
            weekend:
              - {period: off-peak, start: "00:00", end: "24:00", price_per_kwh: 0.12}
        demand_charges:
          window_minutes: 15
          charges:
            - {label: Facility demand, price_per_kw: 9.0}
            - {label: On-peak demand, price_per_kw: 15.0, periods: [on-peak]}
"""}


async def test_the_level_a_demand_charge_rises_above_reaches_the_rules(tmp_path):
    from ems.dr.cycle import ControlCycle
    from ems.dr.devices import DeviceRegistry
    from ems.dr.dispatch import Dispatcher
    from ems.dr.events import LoadControl, LoadControlSettings
    from ems.model import CycleDemand, Trigger, TriggerKind
    from tests.ems.dr.test_cycle import EventFollower

    # Monday 4 May 2026 in Los Angeles: 15-minute readings of 0.5 kWh (2 kW) from midnight, one of
    # 1.5 kWh (6 kW) at 09:00 (off-peak) and one of 1.0 kWh (4 kW) at 16:15 (on-peak).
    day = datetime(2026, 5, 4, 7, tzinfo=UTC)
    readings = [IntervalReading("m1", day + timedelta(minutes=15 * i), 900,
                                1.5 if i == 36 else 1.0 if i == 65 else 0.5) for i in range(70)]
    clock = FixedClock(day + timedelta(minutes=15 * 70, seconds=30))  # 17:30: on-peak
    config = "site: {name: Shop, timezone: America/Los_Angeles}\ntariff: {plan: GS-DEMAND}\n"
    async with started_hub(tmp_path, config, DEMAND_RATES, clock=clock) as hub:
        await hub.store.add_intervals(readings)
        hub.bus.publish(readings[-1])  # the meter is known to the state
        await BillWatch(hub).check("m1")
        cost = await billing.meter_cost(hub, "m1")
        assert [round(p.peak_kw, 3) for p in cost.report.cycle.demand] == [6.0, 4.0]
        # Now (on-peak) the on-peak charge rises above 4 kW, before the facility one (6 kW) would.
        seen = hub.state.cycle_demand["m1"]
        assert isinstance(seen, CycleDemand) and seen.peak_kw == 4.0 and seen.window_minutes == 15
        registry = DeviceRegistry(hub)
        dispatcher = Dispatcher(hub, registry, clock=clock)
        lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock,
                         dispatch_record=lambda: dispatcher.record()[0])
        cycle = ControlCycle(hub, registry, lc, dispatcher, EventFollower(), clock=clock, tick_s=3600)
        snapshot = cycle.snapshot(Trigger(TriggerKind.TICK))
        assert (snapshot.demand_peak_kw, snapshot.demand_window_min) == (4.0, 15)

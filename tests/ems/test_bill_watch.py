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

"""Issue 11 "Link faults", the whole appliance against the strict meter over a faulty air.

Frames are dropped, duplicated and reordered at seeded rates (the scenario's ``faults:``); the meter
freezes (connection open, nothing answered) and goes away for minutes and hours. The appliance keeps
its readings right (no spike, nothing scaled or invented), marks the data stale within the stale
limit, is back within 10 s of the meter answering again, and owes the utility nothing: every status
reported once (the strict meter's duplicate counters), no SE violation (``running_appliance``).
"""

from __future__ import annotations

from typing import Any

from ems.model import MeterReading
from tests.e2e.conftest import FAST_SCENARIO, local_clock, running_appliance

MAX_DEMAND_KW = 20.0  # far above what the simulated home draws: a reading above it is a spike


def _check_readings(readings: list[MeterReading], meter: Any) -> None:
    demands = [r.demand_kw for r in readings if r.demand_kw is not None]
    assert demands and all(abs(kw) < MAX_DEMAND_KW for kw in demands), max(demands, key=abs)
    delivered = [r.summation_delivered_kwh for r in readings if r.summation_delivered_kwh is not None]
    assert delivered == sorted(delivered), "the delivered total went backwards"
    register = meter.delivered_kwh if hasattr(meter, "delivered_kwh") else None
    if register is not None and delivered:
        assert abs(delivered[-1] - register) < 1.0, (delivered[-1], register)


# A lost request costs the appliance its 8 s request timeout (a real stack's APS retries hide most
# of that), so over this air an answer may take longer than the strict meter's default 5 s.
LOSSY_AIR = {"drop": 0.1, "duplicate": 0.1, "reorder": 0.1, "seed": 5}
LOSSY_GRACE = {"grace": "30s"}


async def test_readings_arrive_without_spikes_or_violations_over_a_lossy_air(tmp_path):
    scenario = {**FAST_SCENARIO, "faults": LOSSY_AIR, "conformance": LOSSY_GRACE}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        readings: list[MeterReading] = []
        unsubscribe = app.hub.bus.listen(MeterReading, readings.append)
        try:
            await app.online()
            await app.wait_until(lambda: len(readings) >= 30, what="30 readings")
            await app.wait_until(lambda: app.simulator.script_done.is_set(), what="the utility's script")
            await app.wait_until(lambda: [v for v in app.hub.control.events()], what="the event")
        finally:
            unsubscribe()
        counters = app.simulator.han.counters
        assert counters["fault_dropped"] and counters["fault_duplicated"] and counters["fault_reordered"]
        _check_readings(readings, app.simulator.meter)
        assert not app.simulator.meter.checker.duplicate_reports

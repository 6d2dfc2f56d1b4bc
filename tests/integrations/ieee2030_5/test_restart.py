"""Across a restart of the appliance: the pinned meter is pinned in the TLS handshake, and the time
it was off becomes one interval of a summation-only meter."""

from __future__ import annotations

import asyncio

from ems.clock import FixedClock
from ems.config import load_config
from ems.hub import Hub
from ems.model import IntervalReading, LinkState, MeterLinkChanged, MeterReading
from integrations.ieee2030_5 import async_setup
from integrations.ieee2030_5.identity import identity_for
from integrations.simulator.ieee2030_5 import Ieee2030Meter
from tests.hubs import new_hub
from tests.integrations.ieee2030_5.conftest import NOON_PDT, demo_scenario

SECTION = {"poll_min_s": 5, "interval_s": 60, "gap_s": 300, "timeout_s": 2, "retries": 1, "first_retry_s": 1,
           "retry_max_s": 10}


async def _until(predicate, what: str, guard_s: float = 20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + guard_s
    while not (value := predicate()):
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)
    return value


async def _run(hub: Hub, meter: Ieee2030Meter, clock: FixedClock, events: list, seconds: float) -> None:
    link = await async_setup(hub, {"url": meter.url, **SECTION})
    try:
        await _until(lambda: any(isinstance(e, MeterReading) for e in events), "a reading")
        for _ in range(int(seconds / 5)):
            clock.advance(seconds=5)
            await asyncio.sleep(0.05)
    finally:
        await link.close()


async def test_the_time_the_appliance_was_off_is_one_interval(tmp_path) -> None:
    clock = FixedClock(NOON_PDT)
    meter = Ieee2030Meter(demo_scenario(), clock, intervals=False)
    meter.register_client(identity_for(tmp_path / "data").cert_path.read_bytes())
    await meter.start()
    try:
        first = new_hub(tmp_path, clock=clock)
        await first.start()
        before: list = []
        first.bus.listen_all(before.append)
        await _run(first, meter, clock, before, 30)
        await first.stop()
        delivered = meter.registers.delivered_kwh
        clock.advance(hours=2)  # the appliance is off; the meter counts on
        second = Hub(load_config(tmp_path / "config"), tmp_path / "data", clock)
        await second.start()
        after: list = []
        second.bus.listen_all(after.append)
        link = await async_setup(second, {"url": meter.url, **SECTION})
        try:
            gap = await _until(lambda: next((e for e in after if isinstance(e, IntervalReading)
                                             and e.duration_s > 3600), None), "the interval of the time off")
        finally:
            await link.close()
            await second.stop()
        assert 2 * 3600 - 120 <= gap.duration_s <= 2 * 3600 + 120
        assert gap.consumed_kwh <= meter.registers.delivered_kwh - delivered + 0.2
    finally:
        await meter.stop()


async def test_after_a_restart_another_meter_is_refused_in_the_handshake(tmp_path) -> None:
    clock = FixedClock(NOON_PDT)
    meter = Ieee2030Meter(demo_scenario(), clock)
    meter.register_client(identity_for(tmp_path / "data").cert_path.read_bytes())
    await meter.start()
    try:
        first = new_hub(tmp_path, clock=clock)
        await first.start()
        events: list = []
        first.bus.listen_all(events.append)
        await _run(first, meter, clock, events, 5)
        await first.stop()
        other = await meter.swap_certificate()
        second = Hub(load_config(tmp_path / "config"), tmp_path / "data", clock)
        await second.start()
        after: list = []
        second.bus.listen_all(after.append)
        link = await async_setup(second, {"url": meter.url, **SECTION})
        try:
            await _until(lambda: link.state is LinkState.OFFLINE, "refused")
            assert link.client.context.pin != other  # pinned from the store before any request
            assert not [e for e in after if isinstance(e, MeterReading)]
            assert "different meter" in [e for e in after if isinstance(e, MeterLinkChanged)][-1].detail
            assert (await second.meter_pins.get("main")).pending_hardware_id == other.lower()
        finally:
            await link.close()
            await second.stop()
    finally:
        await meter.stop()

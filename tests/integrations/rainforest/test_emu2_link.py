"""The appliance reading a meter through a simulated EMU-2 on a real pty, through a real Hub (its
store in SQLite, its bus and state) on a clock the test moves: values reach the state and the bus,
a confirmation goes back through the bridge, and each fault users report is survived."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ems import messages
from ems.clock import FixedClock
from ems.hub import Hub
from ems.model import (
    FrameRejected,
    IntervalReading,
    LinkState,
    MeterInfo,
    MeterLinkChanged,
    MeterRate,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from integrations.rainforest.emu2_link import Emu2Link, Emu2Settings
from integrations.simulator import load_scenario
from integrations.simulator.emu2 import METER_MAC, SimulatedEmu2, running
from tests.hubs import started_hub

SCENARIO = Path(__file__).resolve().parents[3] / "config" / "scenarios" / "demo.yaml"
NOON = datetime(2026, 7, 15, 20, 0, 5, tzinfo=UTC)  # 13:00 in Los Angeles: the panels export
HANG_GUARD_S = 20.0  # real seconds a wait may take before the test fails (never a figure asserted)


class Seen:
    """Every event on the bus, in order; ``wait_for`` one matching (from ``mark`` on)."""

    def __init__(self, hub: Hub) -> None:
        self.events: list[Any] = []
        self._new = asyncio.Event()
        hub.bus.listen_all(self._take)

    def _take(self, event: Any) -> None:
        self.events.append(event)
        self._new.set()

    def mark(self) -> int:
        return len(self.events)

    def of(self, kind: type, since: int = 0, where: Callable[[Any], bool] = lambda e: True) -> list[Any]:
        return [e for e in self.events[since:] if isinstance(e, kind) and where(e)]

    async def wait_for(self, kind: type, where: Callable[[Any], bool] = lambda e: True, since: int = 0) -> Any:
        async with asyncio.timeout(HANG_GUARD_S):
            while not (found := self.of(kind, since, where)):
                self._new.clear()
                await self._new.wait()
        return found[0]


@dataclass
class Home:
    hub: Hub
    bridge: SimulatedEmu2
    link: Emu2Link
    clock: FixedClock
    seen: Seen

    async def advance(self, seconds: float, step_s: float = 5.0) -> None:
        """Move the clock in steps, letting the pty's bytes through between them (real time passes)."""
        left = seconds
        while left > 0:
            self.clock.advance(seconds=min(step_s, left))
            left -= step_s
            await asyncio.sleep(0.02)

    async def state(self, state: LinkState, since: int = 0) -> MeterLinkChanged:
        return await self.seen.wait_for(MeterLinkChanged, lambda e: e.state is state, since)


def online(e: MeterLinkChanged) -> bool:
    return e.state is LinkState.ONLINE


@pytest.fixture
async def home(tmp_path):
    clock = FixedClock(NOON)
    bridge = SimulatedEmu2(load_scenario(SCENARIO), clock)
    async with running(bridge), started_hub(tmp_path, clock=clock) as hub:
        seen = Seen(hub)
        link = Emu2Link(hub, Emu2Settings(port=bridge.path, stale_after_s=60, poll_s=30, max_retry_s=30))
        await link.start()
        try:
            home = Home(hub, bridge, link, clock, seen)
            await home.state(LinkState.ONLINE)
            # What the link asks at the start is answered in order, demand last: the test starts after it.
            await seen.wait_for(MeterReading, lambda e: e.demand_kw is not None)
            yield home
        finally:
            await link.close()


async def test_the_meters_values_reach_the_bus_and_the_state(home):
    demand = await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None)
    assert demand.demand_kw < 0 and demand.demand_kw == pytest.approx(home.bridge.demand_kw, abs=0.001)
    summation = await home.seen.wait_for(MeterReading, lambda e: e.summation_delivered_kwh is not None)
    assert summation.summation_delivered_kwh == pytest.approx(home.bridge.delivered_kwh, abs=0.001)
    assert summation.summation_received_kwh == pytest.approx(home.bridge.received_kwh, abs=0.001)
    price = await home.seen.wait_for(PriceSignal)
    assert (price.price_per_kwh, price.currency, price.tier, price.rate_label) == (0.29, "USD", 1, "TOU-D-T")
    rate = await home.seen.wait_for(MeterRate)
    assert rate.block_thresholds_kwh == (350.0,)
    info = await home.seen.wait_for(MeterInfo)
    assert info.ieee == METER_MAC
    meter = home.hub.state.meter("main")
    assert meter.link is LinkState.ONLINE
    assert meter.value("demand_kw") == demand.demand_kw
    assert home.hub.state.active_price("main", home.clock()).price_per_kwh == 0.29
    assert (await home.hub.meter_pins.get("main")).hardware_id == METER_MAC


async def test_intervals_come_from_the_summation(home):
    start = home.bridge.delivered_kwh, home.bridge.received_kwh
    mark = home.seen.mark()
    await home.advance(150)  # the bridge pushes its summation every 30 s
    intervals = home.seen.of(IntervalReading, mark)
    assert len(intervals) >= 1 and all(i.duration_s == 60 for i in intervals)
    assert intervals[0].start == datetime(2026, 7, 15, 20, 1, tzinfo=UTC)
    made = sum(i.generated_kwh for i in intervals)
    assert 0 < made <= home.bridge.received_kwh - start[1] + 1e-9


async def test_a_message_and_its_confirmation_back_through_the_bridge(home):
    home.bridge.send_message(7, "Peak event 3\u20136 PM today. Please reduce use.", confirmation_required=True)
    message = await home.seen.wait_for(UtilityMessage)
    assert (message.message_id, message.text, message.confirmation_required) == (
        7, "Peak event 3\u20136 PM today. Please reduce use.", True)
    await messages.confirm(home.hub, "main", 7)
    async with asyncio.timeout(HANG_GUARD_S):
        while not home.bridge.confirmed(7):
            await home.bridge.command_heard.wait()
            home.bridge.command_heard.clear()
    assert ("confirm_message", {"MeterMacId": "0x" + METER_MAC.upper(), "Id": "0x00000007"}) in [
        c[1:] for c in home.bridge.commands]


async def test_a_stall_is_stale_then_the_port_is_reopened_and_the_link_back(home, caplog):
    caplog.set_level(logging.INFO, "integrations.rainforest.emu2_link")
    mark = home.seen.mark()
    home.bridge.stall()
    await home.advance(75)
    await home.state(LinkState.STALE, mark)
    await home.advance(120)
    await home.state(LinkState.OFFLINE, mark)
    await home.advance(120)  # reopened and asked again, more than once: still silent
    assert home.link.reopens >= 2
    back = home.seen.mark()
    home.bridge.resume()
    home.bridge.write_demand()
    await home.state(LinkState.ONLINE, back)
    await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, back)
    outage = [r for r in caplog.records if r.levelno >= logging.WARNING and "retrying" in r.getMessage()]
    assert len(outage) == 1  # the outage logged once, however many attempts
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_reboot_costs_one_fragment_and_the_link_goes_on(home):
    mark = home.seen.mark()
    home.bridge.reboot()
    rejected = await home.seen.wait_for(FrameRejected, since=mark)
    assert rejected.kind == "malformed"
    home.bridge.write_demand()
    await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, mark)
    assert home.link.state is LinkState.ONLINE
    assert home.bridge.commands[-1][1] == "get_instantaneous_demand"  # asked everything again after DeviceInfo


async def test_a_field_in_a_new_format_is_refused_and_the_rest_kept(home, caplog):
    caplog.set_level(logging.WARNING, "integrations.rainforest.emu2_link")
    home.bridge.field_formats["SummationDelivered"] = "float"
    mark = home.seen.mark()
    home.bridge.write_summation()
    home.bridge.write_summation()
    reading = await home.seen.wait_for(MeterReading, lambda e: e.summation_received_kwh is not None, mark)
    assert reading.summation_delivered_kwh is None
    await home.seen.wait_for(MeterReading, lambda e: e.summation_received_kwh is not None,
                             home.seen.events.index(reading) + 1)
    rejected = home.seen.of(FrameRejected, mark)
    assert [r.kind for r in rejected] == ["rejected", "rejected"]
    assert "SummationDelivered" in rejected[0].reason
    lines = [r for r in caplog.records if "SummationDelivered" in r.getMessage()]
    assert len(lines) == 1  # one log line for the field, not one per fragment


async def test_hours_without_a_reading_become_one_interval_not_a_spike(home):
    await home.advance(130)  # the baseline: a few intervals
    before = home.bridge.delivered_kwh, home.bridge.received_kwh
    home.bridge.stall()
    await home.advance(3 * 3600, step_s=600)
    mark = home.seen.mark()
    home.bridge.resume()
    home.bridge.write_summation()
    await home.state(LinkState.ONLINE, mark)
    interval = await home.seen.wait_for(IntervalReading, since=mark)
    assert interval.duration_s >= 3 * 3600 - 300
    used = home.bridge.delivered_kwh - before[0]
    assert interval.consumed_kwh == pytest.approx(used, rel=0.1)  # the delta, spread over the gap
    assert interval.consumed_kwh / (interval.duration_s / 3600) < 10  # a few kW at most, never a spike


async def test_a_different_meter_is_refused_until_the_owner_confirms_it(home):
    other = "00135001002a3c4e"
    mark = home.seen.mark()
    home.bridge.move(other)
    home.bridge.write_demand()
    refused = await home.state(LinkState.OFFLINE, mark)
    assert other in refused.detail and "Commissioning page" in refused.detail
    home.bridge.write_demand()
    await home.advance(10)
    assert not home.seen.of(MeterReading, mark)
    pin = await home.hub.meter_pins.get("main")
    assert (pin.hardware_id, pin.pending_hardware_id) == (METER_MAC, other)
    await home.hub.meter_pins.confirm("main", other, "owner")
    home.bridge.write_demand()  # its next value is taken at once
    await home.state(LinkState.ONLINE, mark)
    await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, mark)
    assert home.link.admitted == other


async def test_signed_demand_while_exporting_and_importing(home):
    mark = home.seen.mark()
    home.clock.set(datetime(2026, 7, 16, 3, 0, tzinfo=UTC))  # 20:00 in Los Angeles: no sun, cooking done
    home.bridge.write_demand()
    evening = await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, mark)
    assert evening.demand_kw > 0


async def test_the_time_the_appliance_was_off_is_one_interval_too(home):
    await home.advance(130)
    await home.link.close()  # the appliance stops; the bridge goes on counting
    before = home.bridge.delivered_kwh
    await home.advance(2 * 3600, step_s=600)
    mark = home.seen.mark()
    again = Emu2Link(home.hub, home.link.settings)
    await again.start()
    try:
        interval = await home.seen.wait_for(IntervalReading, since=mark)
        assert interval.duration_s >= 2 * 3600 - 120
        assert interval.consumed_kwh == pytest.approx(home.bridge.delivered_kwh - before, rel=0.1)
    finally:
        await again.close()


async def test_the_same_price_answered_again_is_published_once_a_new_one_at_once(home):
    mark = home.seen.mark()
    home.bridge.write_price()
    home.bridge.write_demand()
    await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, mark)
    assert not home.seen.of(PriceSignal, mark)
    home.clock.set(datetime(2026, 7, 15, 23, 30, tzinfo=UTC))  # 16:30 in Los Angeles: on-peak
    home.bridge.write_price()
    price = await home.seen.wait_for(PriceSignal, since=mark)
    assert (price.price_per_kwh, price.tier) == (0.51, 3)
    assert home.hub.state.active_price("main", home.clock()).price_per_kwh == 0.51


async def test_an_unplugged_bridge_is_offline_and_tried_again_with_backoff(home, caplog):
    caplog.set_level(logging.INFO)
    mark = home.seen.mark()
    await home.bridge.stop()  # the USB cable pulled: the device node goes
    down = await home.state(LinkState.OFFLINE, mark)
    assert home.bridge.path in down.detail
    await home.advance(60)
    assert home.link.reopens >= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_fragments_without_the_meters_mac_are_the_listed_meters(home):
    home.bridge.send_meter_mac = False  # single-meter operation (§1.3 rule 5)
    mark = home.seen.mark()
    home.bridge.write_demand()
    reading = await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, mark)
    assert reading.demand_kw == pytest.approx(home.bridge.demand_kw, abs=0.001)


async def test_the_bridge_losing_the_meter_shows_offline_until_it_rejoins(home):
    mark = home.seen.mark()
    home.bridge.write_connection(status="Rejoining")
    lost = await home.state(LinkState.OFFLINE, mark)
    assert "Rejoining" in lost.detail
    home.bridge.write_connection(status="Connected")
    await home.state(LinkState.ONLINE, mark)


async def test_a_price_keyed_into_the_bridge_is_not_the_utilitys(home):
    mark = home.seen.mark()
    home.bridge._price_now = lambda: (45000, 5, 0, "")  # 0.45 $/kWh keyed into the EMU-2 by its owner
    home.bridge.write_price(label="Set by User")
    home.bridge.write_demand()
    await home.seen.wait_for(MeterReading, lambda e: e.demand_kw is not None, mark)
    assert not home.seen.of(PriceSignal, mark)

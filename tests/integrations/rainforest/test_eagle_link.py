"""The appliance reading a simulated EAGLE over real HTTP on loopback, through a real hub.

The simulated EAGLE (integrations/simulator/eagle.py) bridges a simulated meter of the demo's
scenario; the hub runs on a fixed clock that only the test moves, so a stall, a reboot or a drop
of hours lasts exactly as long as the test says. Each test is one thing users report of real
units (han-bridges.md §2.4) and what the appliance does about it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ems.clock import FixedClock
from ems.model import (
    IntervalReading,
    LinkState,
    MessageCancelled,
    MeterInfo,
    MeterLinkChanged,
    MeterRate,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from integrations.rainforest import eagle
from integrations.simulator.eagle import Message, SimulatedEagle, simulated_meter
from integrations.simulator.scenario import load_scenario
from tests.hubs import started_hub

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 7, 15, 19, 0, 30, tzinfo=UTC)  # 12:00:30 in Los Angeles: the solar exports
POLL_S = 10.0


@dataclass
class Seen:
    events: list[Any] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[LinkState]:
        return [e.state for e in self.of(MeterLinkChanged)]


@dataclass
class Rig:
    clock: FixedClock
    eagle: SimulatedEagle
    hub: Any
    link: Any
    seen: Seen

    async def poll(self, times: int = 1) -> None:
        """Let the link poll ``times`` more times: the clock moves to each next poll (a poll interval,
        or the backoff after a failure)."""
        for _ in range(times):
            before = self.link.attempts
            self.clock.set(max(self.clock(), self.link.next_attempt_at))
            await until(lambda before=before: self.link.attempts > before, "the next poll")


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - it watches the link's counters, which signal nothing
            await asyncio.sleep(0.005)


SECTION = {"poll_interval_s": POLL_S, "stale_after_s": 45, "interval_s": 60, "timeout_s": 5,
           "request_gap_s": 0, "max_backoff_s": 20}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FixedClock(T0)
    meter = simulated_meter(load_scenario(REPO / "config" / "scenarios" / "day.yaml"), clock)
    sim = SimulatedEagle(meter, clock=clock)
    await sim.start()
    try:
        async with started_hub(tmp_path, clock=clock) as hub:
            seen = Seen()
            hub.bus.listen_all(seen.events.append)
            section = {**SECTION, "host": sim.host, "cloud_id": sim.cloud_id, "install_code": sim.install_code}
            link = await eagle.async_setup(hub, section)
            try:
                await until(lambda: link.attempts > 0, "the first poll")
                yield Rig(clock, sim, hub, link, seen)
            finally:
                await link.close()
    finally:
        await sim.stop()


async def test_the_meters_figures_arrive_as_domain_events_and_the_link_is_online(rig: Rig) -> None:
    (reading,) = rig.seen.of(MeterReading)
    meter = rig.eagle.meter
    assert reading.meter_id == "main" and reading.read_at == T0
    assert reading.demand_kw == pytest.approx(meter.demand_kw, abs=1e-6)
    assert reading.summation_delivered_kwh == pytest.approx(meter.delivered_kwh, abs=1e-6)
    assert reading.summation_received_kwh == pytest.approx(meter.received_kwh, abs=1e-6)
    (info,) = rig.seen.of(MeterInfo)
    assert info.ieee == "00:13:50:01:00:aa:3c:e7" and info.unit == "kWh"
    (price,) = rig.seen.of(PriceSignal)
    assert price.currency == "USD" and price.price_per_kwh == pytest.approx(0.36) and price.tier == 1
    assert price.rate_label == "TOU-D-T" and price.end is not None
    (rate,) = rig.seen.of(MeterRate)
    assert rate.block_thresholds_kwh == (350.0,) and rate.billing_period_end is not None
    assert rig.seen.states() == [LinkState.CONNECTING, LinkState.ONLINE]
    assert (await rig.hub.meter_pins.get("main")).hardware_id == "0x0013500100aa3ce7"


async def test_demand_is_signed_while_the_home_exports(rig: Rig) -> None:
    assert rig.eagle.meter.demand_kw < 0  # noon: the solar out-produces the house
    assert rig.seen.of(MeterReading)[0].demand_kw < 0


async def test_successive_summations_become_minute_intervals_with_the_meters_energy(rig: Rig) -> None:
    start = rig.seen.of(MeterReading)[0]
    await rig.poll(18)  # three minutes
    intervals = rig.seen.of(IntervalReading)
    assert [i.duration_s for i in intervals] == [60, 60]
    assert intervals[0].start == datetime(2026, 7, 15, 19, 1, tzinfo=UTC)
    last = rig.seen.of(MeterReading)[-1]
    net_out = sum(i.generated_kwh - i.consumed_kwh for i in intervals)
    total_out = last.summation_received_kwh - start.summation_received_kwh
    assert 0 < net_out < total_out  # two of the three minutes, interpolated at the boundaries
    assert len(rig.seen.of(PriceSignal)) == 1  # the same price is not published again


async def test_a_stalled_eagle_times_out_goes_stale_and_comes_back_when_it_answers(rig: Rig, caplog) -> None:
    caplog.set_level(logging.INFO, "integrations.rainforest")
    rig.link.client.timeout_s = 0.5  # of the clock, which the timeout waits in real time: the test's own wait
    rig.eagle.stall()
    while rig.clock() < T0 + timedelta(seconds=60):  # past the 45 s stale limit
        await rig.poll()
    assert rig.seen.states()[-1] is LinkState.STALE
    assert len([r for r in caplog.records if "does not answer" in r.getMessage()]) == 1  # logged once
    rig.eagle.release()
    for _ in range(4):
        await rig.poll()
        if rig.seen.states()[-1] is LinkState.ONLINE:
            break
    assert rig.seen.states()[-2:] == [LinkState.STALE, LinkState.ONLINE]
    assert [r.getMessage() for r in caplog.records if "again" in r.getMessage()]


async def test_a_rebooting_eagle_shows_offline_then_online_when_it_listens_again(rig: Rig) -> None:
    await rig.eagle.go_down()
    await rig.poll()
    assert rig.seen.states()[-1] is LinkState.OFFLINE
    assert "does not answer" in rig.seen.of(MeterLinkChanged)[-1].detail
    await rig.eagle.come_up()
    for _ in range(4):  # the backoff (2 s, 4 s, ...) is within a poll interval of the clock
        await rig.poll()
        if rig.seen.states()[-1] is LinkState.ONLINE:
            break
    assert rig.seen.states()[-1] is LinkState.ONLINE


async def test_a_drop_of_hours_becomes_one_gap_reading_never_a_spike(rig: Rig, caplog) -> None:
    caplog.set_level(logging.WARNING, "integrations.rainforest")
    await rig.poll(12)
    await rig.eagle.go_down()
    await rig.poll()
    rig.clock.advance(hours=3)  # the EAGLE is away for three hours; the meter keeps counting
    await rig.eagle.come_up()
    for _ in range(3):
        await rig.poll()
    gaps = [i for i in rig.seen.of(IntervalReading) if i.duration_s > 60]
    (gap,) = gaps
    assert gap.duration_s >= 3 * 3600
    before = [r for r in rig.seen.of(MeterReading) if r.read_at <= gap.start][-1]
    after = [r for r in rig.seen.of(MeterReading) if r.read_at >= gap.end][0]
    assert gap.consumed_kwh <= after.summation_delivered_kwh - before.summation_delivered_kwh + 1e-9
    assert gap.generated_kwh <= after.summation_received_kwh - before.summation_received_kwh + 1e-9
    minutes = [i for i in rig.seen.of(IntervalReading) if i.duration_s == 60 and i.start > gap.start]
    assert all(i.consumed_kwh < 0.2 and i.generated_kwh < 0.2 for i in minutes)  # no spike after it
    assert len([r for r in caplog.records if "had no readings" in r.getMessage()]) == 1


async def test_a_field_in_a_new_format_loses_that_value_only_with_one_log_line(rig: Rig, caplog) -> None:
    caplog.set_level(logging.WARNING, "integrations.rainforest")
    rig.eagle.firmware = "hex"
    prices = len(rig.seen.of(PriceSignal))
    await rig.poll(3)
    refused = [r.getMessage() for r in caplog.records if "value refused" in r.getMessage()]
    assert len(refused) == 3 and all("hex" in text for text in refused)  # demand, delivered, received: once each
    assert rig.seen.states()[-1] is LinkState.ONLINE
    assert len(rig.seen.of(PriceSignal)) == prices  # unchanged price, still read
    assert rig.link.counters["refused_values"] == 9


async def test_the_2017_manuals_values_with_units_are_read(rig: Rig) -> None:
    rig.eagle.firmware = "units_in_value"
    await rig.poll()
    reading = rig.seen.of(MeterReading)[-1]
    assert reading.demand_kw == pytest.approx(rig.eagle.meter.demand_kw, abs=1e-3)
    assert rig.link.counters["refused_values"] == 0


async def test_empty_values_are_unknown_never_zero_and_the_data_goes_stale(rig: Rig) -> None:
    rig.eagle.firmware = "empty"
    readings = len(rig.seen.of(MeterReading))
    await rig.poll(6)
    assert len(rig.seen.of(MeterReading)) == readings
    assert rig.seen.states()[-1] is LinkState.STALE


async def test_a_summation_read_as_zero_after_a_reboot_is_refused_and_the_demand_kept(rig: Rig) -> None:
    rig.eagle.firmware = "zero"
    await rig.poll(3)
    zeros = rig.seen.of(MeterReading)[-3:]
    assert all(r.summation_delivered_kwh is None and r.demand_kw is not None for r in zeros)
    assert rig.link.counters["summation_refused"] == 3 and rig.link.counters["resets"] == 0
    assert not [i for i in rig.seen.of(IntervalReading) if i.consumed_kwh > 1]


async def test_an_eagle_answering_from_its_cache_goes_stale(rig: Rig) -> None:
    rig.eagle.freeze_meter()
    await rig.poll(6)
    assert rig.seen.states()[-1] is LinkState.STALE
    rig.eagle.freeze_meter(False)
    await rig.poll()
    assert rig.seen.states()[-1] is LinkState.ONLINE


async def test_a_different_meter_after_a_move_is_refused_until_the_owner_confirms_it(rig: Rig) -> None:
    rig.eagle.move("0x0013500100bb4d12")
    readings = len(rig.seen.of(MeterReading))
    await rig.poll(3)
    assert len(rig.seen.of(MeterReading)) == readings  # nothing of the new meter is taken
    assert rig.seen.states()[-1] is LinkState.OFFLINE
    assert "Commissioning page" in rig.seen.of(MeterLinkChanged)[-1].detail
    pin = await rig.hub.meter_pins.get("main")
    assert pin.pending_hardware_id == "0x0013500100bb4d12"
    await rig.hub.meter_pins.confirm("main", "0x0013500100bb4d12", by="owner")
    await rig.poll()
    assert rig.seen.states()[-1] is LinkState.ONLINE
    assert rig.seen.of(MeterReading)[-1].summation_delivered_kwh == pytest.approx(12.5, abs=0.1)


async def test_the_utilitys_message_comes_and_goes(rig: Rig) -> None:
    rig.eagle.message = Message(7, "Peak event 3&ndash;6 PM today.", "High", int(T0.timestamp()), 120, True)
    await rig.poll()
    (message,) = rig.seen.of(UtilityMessage)
    assert message.message_id == 7 and message.text == "Peak event 3\u20136 PM today."
    assert message.confirmation_required and message.importance == 2
    await rig.poll()
    assert len(rig.seen.of(UtilityMessage)) == 1
    rig.eagle.message = None
    await rig.poll()
    assert [m.message_id for m in rig.seen.of(MessageCancelled)] == [7]


async def test_wrong_credentials_show_offline_with_the_reason(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    sim = SimulatedEagle(simulated_meter(load_scenario(REPO / "config" / "scenarios" / "day.yaml"), clock), clock=clock)
    await sim.start()
    try:
        async with started_hub(tmp_path, clock=clock) as hub:
            seen = Seen()
            hub.bus.listen_all(seen.events.append)
            link = await eagle.async_setup(hub, {**SECTION, "host": sim.host, "cloud_id": sim.cloud_id,
                                                 "install_code": "ffffffffffffffff"})
            try:
                await until(lambda: LinkState.OFFLINE in seen.states(), "offline")
                assert "Install Code" in seen.of(MeterLinkChanged)[-1].detail
                assert not seen.of(MeterReading)
            finally:
                await link.close()
    finally:
        await sim.stop()


async def test_after_a_restart_the_time_the_appliance_was_off_is_one_gap_reading(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    sim = SimulatedEagle(simulated_meter(load_scenario(REPO / "config" / "scenarios" / "day.yaml"), clock), clock=clock)
    await sim.start()
    section = {**SECTION, "host": sim.host, "cloud_id": sim.cloud_id, "install_code": sim.install_code}
    try:
        async with started_hub(tmp_path, clock=clock) as hub:
            link = await eagle.async_setup(hub, section)
            await until(lambda: link.attempts > 0, "the first poll")
            await link.close()
            before = hub.state.meter("main").value("summation_received_kwh")
        clock.advance(hours=2)  # the appliance is off; the meter counts on
        (tmp_path / "config").rename(tmp_path / "config-1")
        (tmp_path / "config-1" / "ems.yaml").rename(tmp_path / "first.yaml")
        async with started_hub(tmp_path, clock=clock) as hub:
            seen = Seen()
            hub.bus.listen_all(seen.events.append)
            assert hub.state.meter("main").value("summation_received_kwh") == before  # restored from the store
            link = await eagle.async_setup(hub, section)
            try:
                await until(lambda: link.attempts > 0, "the first poll")
                (gap,) = seen.of(IntervalReading)
                assert gap.start == T0 and gap.duration_s == 2 * 3600 - 30
                assert 0 < gap.generated_kwh <= seen.of(MeterReading)[-1].summation_received_kwh - before
            finally:
                await link.close()
    finally:
        await sim.stop()


@pytest.mark.parametrize("misread_kwh", [-250.0, 250.0])
async def test_a_register_misread_for_a_poll_or_two_is_refused_and_invents_nothing(rig: Rig, misread_kwh: float) -> None:
    await rig.poll(6)
    listed = rig.eagle.meters[0]
    listed.delivered_offset_kwh += misread_kwh  # lower (a misread) or far higher than any premise draws
    await rig.poll(2)
    listed.delivered_offset_kwh -= misread_kwh
    await rig.poll(12)
    assert rig.link.counters["summation_refused"] == 2 and rig.link.counters["resets"] == 0
    assert all(i.consumed_kwh < 0.2 for i in rig.seen.of(IntervalReading))


async def test_a_register_that_stays_lower_is_a_reset_counted_from_its_new_value(rig: Rig) -> None:
    await rig.poll(6)
    rig.eagle.meters[0].delivered_offset_kwh -= 18000.0  # the meter was reset in place
    await rig.poll(12)
    assert rig.link.counters["resets"] == 1
    assert rig.seen.of(MeterReading)[-1].summation_delivered_kwh < 300
    assert all(i.consumed_kwh < 0.2 for i in rig.seen.of(IntervalReading))


async def test_an_eagle_that_loses_the_meter_goes_stale_and_picks_it_up_again(rig: Rig) -> None:
    await rig.poll(3)
    rig.eagle.unjoin()  # every value empty, "Not joined"
    readings = len(rig.seen.of(MeterReading))
    await rig.poll(6)
    assert len(rig.seen.of(MeterReading)) == readings and rig.seen.states()[-1] is LinkState.STALE
    rig.eagle.join()
    await rig.poll(8)
    assert rig.seen.states()[-1] is LinkState.ONLINE
    assert rig.link.counters["resets"] == 0 and rig.link.counters["summation_refused"] == 0
    intervals = rig.seen.of(IntervalReading)  # a minute's silence is interpolated (shorter than a gap)
    assert all(i.duration_s == 60 for i in intervals)
    assert all(b.start == a.end for a, b in zip(intervals, intervals[1:], strict=False))

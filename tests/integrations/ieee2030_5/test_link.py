"""The 2030.5 meter link through a real hub, over mutual TLS on loopback, against the simulated meter."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ems.model import (
    FrameRejected,
    IntervalReading,
    LinkState,
    MeterInfo,
    MeterLinkChanged,
    MeterReading,
)
from integrations.ieee2030_5.identity import lfdi_grouped
from tests.integrations.ieee2030_5.conftest import rig


def states(r) -> list[LinkState]:
    return [e.state for e in r.of(MeterLinkChanged)]


async def test_readings_arrive_over_mutual_tls(tmp_path) -> None:
    async with rig(tmp_path) as r:
        reading = await r.until(lambda: next(iter(r.of(MeterReading)), None), "a reading")
        registers = r.meter.registers
        assert reading.meter_id == "main"
        assert reading.demand_kw == pytest.approx(round(registers.demand_kw * 1000) / 1000)
        assert reading.summation_delivered_kwh == pytest.approx(round(registers.delivered_kwh * 1000) / 1000)
        assert reading.summation_received_kwh == pytest.approx(round(registers.received_kwh * 1000) / 1000)
        info = r.of(MeterInfo)[0]
        assert info.ieee == r.meter.lfdi  # the meter is known by its certificate's LFDI
        await r.until(lambda: LinkState.ONLINE in states(r), "online")
        assert r.link.client.context.cipher_name == "ECDHE-ECDSA-AES128-CCM8"
        assert await r.hub.meter_pins.get("main") is not None
        assert (await r.hub.meter_pins.get("main")).hardware_id == r.meter.lfdi.lower()


async def test_demand_is_negative_while_the_home_exports(tmp_path) -> None:
    async with rig(tmp_path) as r:
        reading = await r.until(lambda: next(iter(r.of(MeterReading)), None), "a reading")
        assert r.meter.registers.demand_kw < 0  # noon: the panels out-produce the house
        assert reading.demand_kw < 0


async def test_interval_history_is_read_from_the_meters_interval_block(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: len(r.of(IntervalReading)) >= 25, "the last half hour of intervals")
        by_start = {i.start: i for i in r.meter.registers.intervals}
        for interval in r.of(IntervalReading):
            kept = by_start[interval.start]
            assert interval.duration_s == 60
            assert interval.consumed_kwh == pytest.approx(round(kept.consumed_kwh * 1000) / 1000)
            assert interval.generated_kwh == pytest.approx(round(kept.generated_kwh * 1000) / 1000)


async def test_polls_follow_the_clock_and_the_meters_poll_rate(tmp_path) -> None:
    async with rig(tmp_path) as r:
        await r.until(lambda: r.of(MeterReading), "a first reading")
        first = len(r.of(MeterReading))
        await asyncio.sleep(0.2)
        assert len(r.of(MeterReading)) == first  # nothing until the clock moves
        await r.advance(5)
        await r.until(lambda: len(r.of(MeterReading)) == first + 1, "the next reading, 5 s later")


async def test_an_unregistered_appliance_is_told_which_lfdi_to_register(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    async with rig(tmp_path, register=False) as r:
        await r.until(lambda: LinkState.OFFLINE in states(r), "offline")
        change = [e for e in r.of(MeterLinkChanged) if e.state is LinkState.OFFLINE][-1]
        assert lfdi_grouped(r.identity.lfdi) in change.detail
        assert not r.of(MeterReading)


async def test_a_field_in_a_new_format_is_rejected_and_the_rest_kept(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    async with rig(tmp_path) as r:
        r.meter.change_format("demand")
        reading = await r.until(lambda: next(iter(r.of(MeterReading)), None), "a reading")
        assert reading.demand_kw is None
        assert reading.summation_delivered_kwh is not None
        assert r.of(FrameRejected)[0].reason.startswith("Reading.value is not an integer")
        await r.advance(15)
        await r.until(lambda: len(r.of(MeterReading)) >= 3, "more readings")
        assert len(r.of(FrameRejected)) >= 3  # each counted
        logged = [rec for rec in caplog.records if "not an integer" in rec.getMessage()]
        assert len(logged) == 1  # and logged once


async def test_one_connection_at_a_time_with_the_tls_session_resumed(tmp_path) -> None:
    async with rig(tmp_path, section={"idle_s": 0.1}) as r:
        await r.until(lambda: r.of(MeterReading), "a reading")
        for _ in range(3):
            await asyncio.sleep(0.3)  # longer than the client keeps an idle connection
            await r.advance(5)
        await r.until(lambda: r.link.client.context.handshakes >= 3, "new connections")
        context = r.link.client.context
        assert context.resumed >= 2  # every connection after the first resumed the session
        assert r.meter.connections.refused == 0  # never a second connection at once

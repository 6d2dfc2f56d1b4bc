"""The independent check: aioraven's own client (what Home Assistant runs) reads the simulated
EMU-2 over a real pseudo-terminal, every fragment kind it knows, and agrees with our decoding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aioraven.data import ConnectionState, MeterType, ScheduledEvent
from aioraven.serial import RAVEnSerialDevice

from ems.clock import FixedClock
from integrations.rainforest import emu2_xml as xml
from integrations.simulator import load_scenario
from integrations.simulator.emu2 import SimulatedEmu2, running

SCENARIO = Path(__file__).resolve().parents[3] / "config" / "scenarios" / "demo.yaml"
NOON = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)  # 13:00 in Los Angeles: the panels export


@pytest.fixture
async def bridge():
    async with running(SimulatedEmu2(load_scenario(SCENARIO), FixedClock(NOON))) as emu2:
        yield emu2


@pytest.fixture
async def raven(bridge):
    device = RAVEnSerialDevice(bridge.path)
    async with device:
        await device.synchronize()
        yield device


def ours(bridge: SimulatedEmu2, tag: str) -> xml.Value:
    """Our decoding of the last fragment of ``tag`` the bridge wrote."""
    data = next(d for _, d in reversed(bridge.written) if d.startswith(f"<{tag}>".encode()))
    [fragment] = xml.FragmentSplitter().feed(data)
    decoded = xml.decode(fragment)
    assert not decoded.problems
    return decoded.value


async def test_meter_list_device_and_network(raven, bridge):
    meters = await raven.get_meter_list()
    assert meters.meter_mac_ids == [bytes.fromhex(bridge.meter_mac)]
    info = await raven.get_device_info()
    assert info.model_id == "Z105-2-EMU2" and info.device_mac_id == bytes.fromhex(bridge.device_mac)
    assert info.date_code is not None
    network = await raven.get_network_info()
    assert network.status is ConnectionState.CONNECTED and network.link_strength == 100
    assert 11 <= network.channel <= 26
    meter = await raven.get_meter_info(meter=bytes.fromhex(bridge.meter_mac))
    assert meter.meter_type is MeterType.ELECTRIC


async def test_demand_while_exporting_and_summations(raven, bridge):
    meter = bytes.fromhex(bridge.meter_mac)
    demand = await raven.get_instantaneous_demand(meter=meter)
    assert float(demand.demand) < 0  # sign-extended by aioraven: the panels export at noon
    assert float(demand.demand) == pytest.approx(ours(bridge, "InstantaneousDemand").demand_kw, abs=0.001)
    assert demand.time_stamp == NOON
    summation = await raven.get_current_summation_delivered(meter=meter)
    value = ours(bridge, "CurrentSummationDelivered")
    assert float(summation.summation_delivered) == pytest.approx(value.delivered_kwh, abs=0.051)  # aioraven rounds to DigitsRight (1)
    assert float(summation.summation_received) == pytest.approx(value.received_kwh, abs=0.051)  # aioraven rounds to DigitsRight (1)


async def test_price_message_time_and_schedule(raven, bridge):
    meter = bytes.fromhex(bridge.meter_mac)
    price = await raven.get_current_price(meter=meter)
    assert price.currency.code == "USD" and price.rate_label == "TOU-D-T" and price.tier == 1
    assert float(price.price) == float(ours(bridge, "PriceCluster").price) == 0.29
    bridge.send_message(7, "Peak event 3\u20136 PM today", confirmation_required=True)
    message = await raven.get_message(meter=meter)
    assert message.message_id == (7).to_bytes(4, "big") and message.confirmation_required
    assert message.text == "Peak event 3&ndash;6 PM today"  # aioraven leaves the HTML escaped
    assert ours(bridge, "MessageCluster").text == "Peak event 3\u20136 PM today"
    time = await raven.get_time(meter=meter)
    assert time.utc_time == NOON and time.local_time == datetime(2026, 7, 15, 13, 0, tzinfo=UTC).replace(tzinfo=None)
    schedule = await raven.get_schedule(meter=meter, event=ScheduledEvent.DEMAND)
    assert schedule.frequency.total_seconds() == 10 and schedule.enabled


async def test_confirm_message_reaches_the_bridge(raven, bridge):
    bridge.send_message(9, "Please confirm", confirmation_required=True)
    await raven.confirm_message(9, meter=bytes.fromhex(bridge.meter_mac))
    async with asyncio.timeout(5):
        while not bridge.confirmed(9):
            await bridge.command_heard.wait()
            bridge.command_heard.clear()
    assert bridge.commands[-1][1:] == ("confirm_message", {"Id": "0x00000009", "MeterMacId": "0x00135001002A3C4D"})

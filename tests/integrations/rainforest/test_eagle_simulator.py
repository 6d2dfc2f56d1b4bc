"""The simulated EAGLE speaks the local API as the digest and an independent client know it.

Two checks that do not rest on our own parser: the digest's example exchange (han-bridges.md
§2.3) served byte for byte, and Home Assistant's library ``aioeagle``, unchanged, reading the
simulator (device list, full query, its 401 on a wrong Install Code).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aioeagle
import aiohttp
import pytest

from ems.clock import FixedClock
from integrations.simulator.eagle import SimulatedEagle, simulated_meter, with_fixed
from integrations.simulator.scenario import load_scenario

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)

# han-bridges.md §2.3, "Constructed example exchange (meter 0x0013500100aa3ce7)", as printed.
DIGEST_DEVICE_LIST = """<DeviceList>
  <Device>
    <Name>Power Meter</Name>
    <HardwareAddress>0x0013500100aa3ce7</HardwareAddress>
    <Manufacturer>Generic</Manufacturer>
    <ModelId>electric_meter</ModelId>
    <Protocol>Zigbee</Protocol>
    <LastContact>0x68769e28</LastContact>
    <ConnectionStatus>Connected</ConnectionStatus>
    <NetworkAddress>0x0000</NetworkAddress>
  </Device>
</DeviceList>
"""
DIGEST_QUERY = """<Command><Name>device_query</Name>
  <DeviceDetails><HardwareAddress>0x0013500100aa3ce7</HardwareAddress></DeviceDetails>
  <Components><All>Y</All></Components>
</Command>
"""
DIGEST_DEVICE = """<Device>
  <DeviceDetails>
    <Name>Power Meter</Name>
    <HardwareAddress>0x0013500100aa3ce7</HardwareAddress>
    <Protocol>Zigbee</Protocol>
    <Manufacturer>Generic</Manufacturer>
    <ModelId>electric_meter</ModelId>
    <LastContact>0x68769e28</LastContact>
    <ConnectionStatus>Connected</ConnectionStatus>
    <NetworkAddress>0x0000</NetworkAddress>
  </DeviceDetails>
  <Components>
    <Component>
      <Name>Main</Name>
      <Variables>
        <Variable><Name>zigbee:InstantaneousDemand</Name><Value>1.234000</Value><Units>kW</Units><Description>Instantaneous Demand</Description></Variable>
        <Variable><Name>zigbee:CurrentSummationDelivered</Name><Value>12345.678000</Value><Units>kWh</Units><Description>Summation Delivered to Home</Description></Variable>
        <Variable><Name>zigbee:CurrentSummationReceived</Name><Value>250.000000</Value><Units>kWh</Units><Description>Summation Received from Home</Description></Variable>
        <Variable><Name>zigbee:Price</Name><Value>0.1234</Value><Units></Units><Description>Price of electricity</Description></Variable>
        <Variable><Name>zigbee:PriceCurrency</Name><Value>USD</Value><Units></Units><Description>Currency of the price</Description></Variable>
      </Variables>
    </Component>
  </Components>
</Device>
"""
DIGEST_VARIABLES = [
    ("zigbee:InstantaneousDemand", "1.234000", "kW", "Instantaneous Demand"),
    ("zigbee:CurrentSummationDelivered", "12345.678000", "kWh", "Summation Delivered to Home"),
    ("zigbee:CurrentSummationReceived", "250.000000", "kWh", "Summation Received from Home"),
    ("zigbee:Price", "0.1234", "", "Price of electricity"),
    ("zigbee:PriceCurrency", "USD", "", "Currency of the price"),
]


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedEagle]:
    clock = FixedClock(T0)
    eagle = SimulatedEagle(simulated_meter(load_scenario(REPO / "config" / "scenarios" / "day.yaml"), clock),
                           clock=clock)
    await eagle.start()
    yield eagle
    await eagle.stop()


async def post(eagle: SimulatedEagle, body: str) -> tuple[int, str, bytes]:
    """One command as the EAGLE's clients send it: status, content type and the body's bytes."""
    async with aiohttp.ClientSession() as session:
        auth = aiohttp.encode_basic_auth(eagle.cloud_id, eagle.install_code)
        async with session.post(f"http://{eagle.host}/cgi-bin/post_manager", data=body.encode(),
                                headers={"Authorization": auth, "Content-Type": "text/xml"}) as response:
            return response.status, response.content_type, await response.read()


async def test_the_digests_example_exchange_is_served_byte_for_byte(sim: SimulatedEagle) -> None:
    with_fixed(sim, DIGEST_VARIABLES, 0x68769E28)
    assert await post(sim, "<Command><Name>device_list</Name></Command>") == (
        200, "text/html", DIGEST_DEVICE_LIST.encode())
    assert await post(sim, DIGEST_QUERY) == (200, "text/html", DIGEST_DEVICE.encode())


async def test_aioeagle_reads_the_simulated_eagle_unchanged(sim: SimulatedEagle) -> None:
    async with aiohttp.ClientSession() as session:
        hub = aioeagle.EagleHub(session, sim.cloud_id, sim.install_code, host=sim.host)
        (meter,) = await hub.get_device_list()
        assert meter.hardware_address == "0x0013500100aa3ce7" and meter.is_connected
        assert meter.last_contact == f"0x{int(T0.timestamp()):08x}"
        variables = await meter.get_device_query()
    demand = variables["zigbee:InstantaneousDemand"]
    assert float(demand["Value"]) == pytest.approx(sim.meter.demand_kw, abs=1e-6) and demand["Units"] == "kW"
    assert float(variables["zigbee:CurrentSummationDelivered"]["Value"]) == pytest.approx(sim.meter.delivered_kwh)
    assert float(variables["zigbee:CurrentSummationReceived"]["Value"]) == pytest.approx(sim.meter.received_kwh)
    assert variables["zigbee:PriceCurrency"]["Value"] == "USD"
    assert float(variables["zigbee:Price"]["Value"]) == pytest.approx(0.36)
    assert variables["zigbee:Block1Threshold"]["Value"] == "350.000000"


async def test_aioeagle_is_refused_with_a_wrong_install_code(sim: SimulatedEagle) -> None:
    async with aiohttp.ClientSession() as session:
        hub = aioeagle.EagleHub(session, sim.cloud_id, "ffffffffffffffff", host=sim.host)
        with pytest.raises(aioeagle.BadAuth):
            await hub.get_device_list()
    assert sim.counters.unauthorized == 1


async def test_a_query_naming_variables_drops_the_summation_delivered_as_some_firmware_does(sim: SimulatedEagle) -> None:
    async with aiohttp.ClientSession() as session:
        hub = aioeagle.EagleHub(session, sim.cloud_id, sim.install_code, host=sim.host)
        (meter,) = await hub.get_device_list()
        hub.next_request = 0  # aioeagle paces its requests a second apart on the wall clock
        variables = await meter.get_device_query(meter.ENERGY_AND_POWER_VARIABLES)
    assert set(variables) == {"zigbee:InstantaneousDemand", "zigbee:CurrentSummationReceived"}


async def test_after_a_move_the_old_meter_stays_listed_first_and_not_joined(sim: SimulatedEagle) -> None:
    sim.move("0x0013500100bb4d12")
    async with aiohttp.ClientSession() as session:
        hub = aioeagle.EagleHub(session, sim.cloud_id, sim.install_code, host=sim.host)
        old, new = await hub.get_device_list()
    assert (old.hardware_address, old.connection_status, old.last_contact) == (
        "0x0013500100aa3ce7", "Not joined", "0x00000000")
    assert (new.hardware_address, new.connection_status) == ("0x0013500100bb4d12", "Connected")


async def test_a_rebooting_eagle_refuses_connections_then_answers_on_the_same_port(sim: SimulatedEagle) -> None:
    port = sim.port
    await sim.go_down()
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(sim, "<Command><Name>device_list</Name></Command>")
    await sim.come_up()
    assert sim.port == port
    assert (await post(sim, "<Command><Name>device_list</Name></Command>"))[0] == 200

"""The DevicePort: what the dispatcher asks reaches the simulated devices, or says why not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ems.errors import DeviceError
from ems.model import Criticality, DeviceClass, DeviceReading, LoadControlEvent, utcnow

from .conftest import POOL_PUMP, SPA, THERMOSTAT, eventually


def writes_to(node) -> int:
    return len(node.received("Write_Attributes"))


async def test_set_setpoints_changes_the_thermostat(network, sim):
    await network.port.set_setpoints(THERMOSTAT, cooling_c=22.0, heating_c=None)
    sim.tick(sim.clock())
    thermostat = sim.home.device("Living room")
    assert thermostat.logic.cooling_setpoint_c == 22.0
    assert thermostat.logic.heating_setpoint_c == 19.0


async def test_a_lower_cooling_setpoint_cools_the_house(network, sim, clock):
    thermostat = sim.home.device("Living room")
    thermostat.set_by_hand(cooling_c=28.0)
    sim.tick(clock.advance(minutes=30))
    before = thermostat.indoor_c
    await network.port.set_setpoints(THERMOSTAT, cooling_c=20.0, heating_c=None)
    sim.tick(clock.advance(minutes=30))
    assert thermostat.logic.running == "cooling"
    assert thermostat.indoor_c < before - 0.5


async def test_the_new_setpoint_is_reported_back(hub, network):
    since = len(hub.events)
    await network.port.set_setpoints(THERMOSTAT, cooling_c=25.5, heating_c=18.0)
    reading = await hub.wait_for(DeviceReading, lambda r: r.cooling_setpoint_c == 25.5, since=since,
                                 device_id=THERMOSTAT)
    assert reading.device_id == THERMOSTAT


async def test_a_setpoint_above_the_limit_is_refused_before_sending(network, sim):
    node = sim.home.device("Living room").node
    before = writes_to(node)
    with pytest.raises(DeviceError, match="cooling setpoint 35.0 °C is above the thermostat's limit 32.0 °C"):
        await network.port.set_setpoints(THERMOSTAT, cooling_c=35.0, heating_c=None)
    assert writes_to(node) == before


async def test_a_setpoint_below_the_limit_is_refused(network):
    with pytest.raises(DeviceError, match="heating setpoint 5.0 °C is below the thermostat's limit 7.0 °C"):
        await network.port.set_setpoints(THERMOSTAT, cooling_c=None, heating_c=5.0)


async def test_setpoints_closer_than_the_deadband_are_refused(network):
    with pytest.raises(DeviceError, match="at least 2.0 °C above the heating setpoint"):
        await network.port.set_setpoints(THERMOSTAT, cooling_c=21.0, heating_c=20.0)


async def test_switching_off_the_pool_pump_lowers_the_meters_demand(network, sim):
    before = sim.meter.demand_kw
    await network.port.switch(POOL_PUMP, False)
    sim.tick(sim.clock())
    assert sim.meter.demand_kw == pytest.approx(before - 1.5, abs=0.01)
    assert sim.home.device("Pool pump").on is False


async def test_switching_the_pump_off_is_reported_as_off_with_no_power(hub, network):
    since = len(hub.events)
    await network.port.switch(POOL_PUMP, False)
    off = await hub.wait_for(DeviceReading, lambda r: r.on is False, since=since, device_id=POOL_PUMP)
    power = await hub.wait_for(DeviceReading, lambda r: r.power_kw == 0.0, since=since, device_id=POOL_PUMP)
    assert (off.on, power.power_kw) == (False, 0.0)


async def test_switching_off_a_thermostat_turns_its_system_off_and_on_restores_it(network, sim):
    thermostat = sim.home.device("Living room")
    await network.port.switch(THERMOSTAT, False)
    sim.tick(sim.clock())
    assert thermostat.logic.system_mode == "off"
    await network.port.switch(THERMOSTAT, True)
    sim.tick(sim.clock())
    assert thermostat.logic.system_mode == "cool"


def event(**overrides) -> LoadControlEvent:
    now = utcnow()
    fields = dict(meter_id="main", issuer_event_id=4101, device_class=DeviceClass.SMART_APPLIANCE,
                  enrollment_group=0, start=now - timedelta(seconds=1), duration_min=30,
                  criticality=Criticality.LEVEL_2, received_at=now)
    fields.update(overrides)
    return LoadControlEvent(**fields)


async def test_a_relayed_event_makes_the_load_controller_shed(hub, network, sim, clock):
    clock.now = utcnow()  # the device compares the event's start (sent as it is) with its own clock
    sim.tick(clock.now)
    spa = sim.home.device("Spa heater")
    before = sim.meter.demand_kw
    since = len(hub.events)
    await network.port.relay_event(SPA, event())
    assert spa.shedding and spa.load_kw == 0.0
    assert sim.meter.demand_kw == pytest.approx(before - 2.0, abs=0.01)
    reading = await hub.wait_for(DeviceReading, lambda r: r.power_kw == 0.0, since=since, device_id=SPA)
    assert reading.power_kw == 0.0


async def test_the_load_controller_reports_the_event_received_and_started(network, sim, clock):
    clock.now = utcnow()  # the device compares the event's start (sent as it is) with its own clock
    await network.port.relay_event(SPA, event(issuer_event_id=77))
    spa = sim.home.device("Spa heater")
    assert spa.statuses == [(77, 0x01), (77, 0x02)]
    await eventually(lambda: network.devices[SPA].event_statuses.get(77) == 0x02)  # the EMS heard both


async def test_cancelling_a_relayed_event_restores_the_load(network, sim):
    spa = sim.home.device("Spa heater")
    await network.port.relay_event(SPA, event(issuer_event_id=78))
    await network.port.cancel_event(SPA, 78)
    assert not spa.shedding and spa.load_kw == 2.0
    assert spa.statuses[-1] == (78, 0x06)


async def test_cancelling_an_event_the_device_does_not_know_is_not_an_error(network, sim):
    await network.port.cancel_event(SPA, 999)
    assert sim.home.device("Spa heater").statuses[-1] == (999, 0xFD)


async def test_an_event_in_the_future_starts_when_its_time_comes(network, sim, clock):
    spa = sim.home.device("Spa heater")
    clock.now = utcnow()  # the device compares the event's start with its own clock
    start = clock.now + timedelta(minutes=5)
    await network.port.relay_event(SPA, event(issuer_event_id=79, start=start, received_at=clock.now))
    assert not spa.shedding
    sim.tick(clock.advance(minutes=6))
    assert spa.shedding
    sim.tick(clock.advance(minutes=30))
    assert not spa.shedding and spa.statuses[-1] == (79, 0x03)


async def test_a_plug_cannot_take_an_event(network):
    with pytest.raises(DeviceError, match="has no DRLC client"):
        await network.port.relay_event(POOL_PUMP, event())


async def test_a_load_controller_without_a_switch_cannot_be_switched(network):
    with pytest.raises(DeviceError, match="Load controller 'SimLoadController' has no On/Off switch"):
        await network.port.switch(SPA, False)


async def test_an_unknown_device_is_a_device_error(network):
    with pytest.raises(DeviceError, match="not .*set up"):
        await network.port.switch("00:00:00:00:00:00:00:99", True)

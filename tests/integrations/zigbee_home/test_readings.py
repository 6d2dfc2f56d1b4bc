"""What devices report becomes DeviceReadings carrying only what each report said."""

from __future__ import annotations

import pytest
from zigpy.zcl.clusters.hvac import Thermostat

from ems.model import DeviceInfo, DeviceReading

from .conftest import BATTERY, POOL_PUMP, SPA, THERMOSTAT, WATER_HEATER


async def test_the_thermostat_reads_out_its_temperature_setpoints_and_mode(hub, network):
    reading = await hub.wait_for(DeviceReading, lambda r: r.indoor_c is not None, device_id=THERMOSTAT)
    assert reading.indoor_c == pytest.approx(26.0, abs=0.01)
    setpoints = await hub.wait_for(DeviceReading, lambda r: r.cooling_setpoint_c is not None,
                                   device_id=THERMOSTAT)
    assert (setpoints.cooling_setpoint_c, setpoints.heating_setpoint_c) == (24.0, 19.0)
    assert setpoints.system_mode == "cool"
    assert setpoints.on is True


async def test_a_plug_reads_out_on_and_its_power(hub, network):
    on = await hub.wait_for(DeviceReading, lambda r: r.on is not None, device_id=POOL_PUMP)
    power = await hub.wait_for(DeviceReading, lambda r: r.power_kw is not None, device_id=POOL_PUMP)
    assert on.on is True
    assert power.power_kw == pytest.approx(1.5)


async def test_the_battery_reads_out_its_state_of_charge(hub, network):
    reading = await hub.wait_for(DeviceReading, lambda r: r.soc_pct is not None, device_id=BATTERY)
    assert reading.soc_pct == 60.0


async def test_the_load_controller_reads_out_its_demand_from_metering(hub, network):
    reading = await hub.wait_for(DeviceReading, lambda r: r.power_kw is not None, device_id=SPA)
    assert reading.power_kw == pytest.approx(2.0)


async def test_a_change_by_hand_is_reported(hub, network, sim):
    since = len(hub.events)
    sim.home.device("Living room").set_by_hand(cooling_c=26.5)
    reading = await hub.wait_for(DeviceReading, lambda r: r.cooling_setpoint_c is not None,
                                 since=since, device_id=THERMOSTAT)
    assert reading.cooling_setpoint_c == 26.5


async def test_a_reading_carries_only_what_its_report_said(hub, network, sim):
    node = sim.home.device("Living room").node
    since = len(hub.events)
    await node.report_attributes(1, Thermostat, ["occupied_heating_setpoint"])
    reading = await hub.wait_for(DeviceReading, lambda r: r.heating_setpoint_c is not None,
                                 since=since, device_id=THERMOSTAT)
    assert reading == DeviceReading(THERMOSTAT, reading.at, heating_setpoint_c=19.0)


async def test_an_unconfigured_plug_learns_its_nominal_power_while_on(hub, network):
    info = await hub.wait_for(DeviceInfo, lambda i: i.nominal_kw is not None, device_id=WATER_HEATER)
    assert info.nominal_kw == pytest.approx(4.5)


async def test_a_house_that_warms_is_reported(hub, network, sim, clock):
    sim.home.device("Living room").set_by_hand(system_mode="off")
    since = len(hub.events)
    sim.tick(clock.advance(hours=1))  # noon, 30 degC outside, no cooling
    reading = await hub.wait_for(DeviceReading, lambda r: r.indoor_c is not None, since=since,
                                 device_id=THERMOSTAT)
    assert reading.indoor_c > 26.0


async def test_a_malformed_frame_is_dropped_and_later_reports_still_count(hub, network, sim):
    pump = sim.home.device("Pool pump")
    pump.node.send_raw(1, 0x0B04, b"\x18\x01\x0a\x0b\x05\x29")  # a report cut short
    pump.node.send_raw(1, 0x0006, b"\x18")  # not even a header
    since = len(hub.events)
    pump.switch_by_hand(False)
    reading = await hub.wait_for(DeviceReading, lambda r: r.on is False, since=since, device_id=POOL_PUMP)
    assert reading.on is False

"""Devices that join the home network are described once, with what the EMS needs to know."""

from __future__ import annotations

from ems.model import DeviceClass, DeviceInfo, DeviceKind

from .conftest import ALL, BATTERY, EV_CHARGER, POOL_PUMP, SPA, THERMOSTAT, WATER_HEATER


def info(hub, device_id: str) -> DeviceInfo:
    return hub.of(DeviceInfo, device_id=device_id)[-1]


async def test_every_device_is_described_when_it_joins(hub, network):
    assert {i.device_id for i in hub.of(DeviceInfo)} == set(ALL)


async def test_a_thermostat_is_described_with_its_setpoint_limits(hub, network):
    thermostat = info(hub, THERMOSTAT)
    assert (thermostat.name, thermostat.kind, thermostat.device_class) == (
        "Living room", DeviceKind.THERMOSTAT, DeviceClass.HVAC)
    assert (thermostat.min_setpoint_c, thermostat.max_setpoint_c) == (7.0, 32.0)
    assert thermostat.model == "SimThermostat"


async def test_a_plug_takes_its_name_and_class_from_the_configuration(hub, network):
    pump = info(hub, POOL_PUMP)
    assert (pump.name, pump.kind, pump.device_class, pump.nominal_kw) == (
        "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, 1.5)
    assert info(hub, EV_CHARGER).device_class == DeviceClass.ELECTRIC_VEHICLE


async def test_an_unconfigured_plug_is_named_by_its_model_and_is_a_simple_load(hub, network):
    heater = info(hub, WATER_HEATER)
    assert (heater.name, heater.device_class) == ("SimPlug", DeviceClass.SIMPLE_LOAD)


async def test_a_load_controller_takes_its_class_from_its_drlc_client(hub, network):
    spa = info(hub, SPA)
    assert (spa.kind, spa.device_class, spa.enrollment_group) == (
        DeviceKind.LOAD_CONTROLLER, DeviceClass.SMART_APPLIANCE, 0)


async def test_a_battery_is_generation_with_its_capacity(hub, network):
    battery = info(hub, BATTERY)
    assert (battery.kind, battery.device_class, battery.capacity_kwh) == (
        DeviceKind.BATTERY, DeviceClass.GENERATION, 13.5)


async def test_each_device_has_the_port_registered_until_close(hub, network):
    assert set(hub.device_ports) == set(ALL)
    assert all(port is network.port for port in hub.device_ports.values())
    await network.close()
    assert hub.device_ports == {}


async def test_devices_join_only_while_the_network_is_open(hub, sim):
    import asyncio

    from integrations.zigbee_home import async_setup

    from .conftest import eventually, home_section, wait_ready

    network = await async_setup(hub, home_section(sim.home_port, permit_join_s=0))
    try:
        await eventually(lambda: network.connected)
        await asyncio.sleep(0.3)
        assert not hub.of(DeviceInfo)
        await network.permit(30)
        await wait_ready(network, len(ALL))
    finally:
        await network.close()

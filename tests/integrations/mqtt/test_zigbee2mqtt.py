"""zigbee2mqtt's plugs and thermostats as load-control targets, against a real Mosquitto.

zigbee2mqtt is played by ``zigbee2mqtt_sim`` (its own device list format, its ``/set`` answers,
its availability); the appliance side is the real hub, the real demand-response core (rules,
arbiter, dispatcher) and the MQTT integration as ``ems.cli`` starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import rules
from ems.clock import SimulatedClock
from ems.dr.component import DemandResponse
from ems.dr.rulebook import RuleBook
from ems.errors import DeviceError
from ems.hub import Hub
from ems.model import (
    Criticality,
    DeviceClass,
    DeviceCommanded,
    DeviceKind,
    LoadControlEvent,
)
from integrations import mqtt
from integrations.mqtt.bridge import MqttBridge
from tests.conftest import require_tool
from tests.hubs import started_hub
from tests.integrations.mqtt.zigbee2mqtt_sim import PLUG, THERMOSTAT, Zigbee2MqttSim
from tests.mosquitto import MOSQUITTO, Broker, running_broker

T0 = datetime(2026, 7, 14, 17, 0, tzinfo=UTC)
PLUG_ID, THERMOSTAT_ID = "a4:c1:38:00:00:00:00:01", "00:0d:6f:00:00:00:00:02"
PLUG_NAME, THERMOSTAT_NAME = PLUG["friendly_name"], THERMOSTAT["friendly_name"]
RULES = """\
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


@dataclass
class Home:
    hub: Hub
    broker: Broker
    z2m: Zigbee2MqttSim
    bridge: MqttBridge

    @property
    def port(self) -> Any:
        return self.hub.device_ports[PLUG_ID]

    async def until(self, predicate: Callable[[], Any], what: str, guard_s: float = 30.0) -> Any:
        """Wait until ``predicate()`` holds; the bound only guards against a hang."""
        try:
            async with asyncio.timeout(guard_s):
                while True:  # polled: the states it reads live in the hub, the simulator and the broker
                    if result := predicate():
                        return result
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


@contextlib.asynccontextmanager
async def running_home(tmp_path: Path, command_timeout_s: float = 5.0) -> AsyncIterator[Home]:
    require_tool(MOSQUITTO, "the MQTT tests run a real broker")
    async with running_broker(tmp_path / "broker") as broker, Zigbee2MqttSim(broker.port) as z2m, \
            started_hub(tmp_path, files={"rules.yaml": RULES}, clock=SimulatedClock(T0, speed=20)) as hub:
        book = RuleBook(hub.config.config_dir / "rules.yaml", rules.parse_rules, rules.evaluate,
                        rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 0.2})
        await hub.control.start()
        section = mqtt.CONFIG_SCHEMA({
            "host": "127.0.0.1", "port": broker.port, "first_retry_s": 0.1, "max_retry_s": 0.3,
            "zigbee2mqtt": {"enabled": True, "command_timeout_s": command_timeout_s,
                            "devices": {PLUG_NAME: {"device_class": "pool_pump", "name": "Pool pump"}}}})
        bridge = await mqtt.async_setup(hub, mqtt.settings_from_section(section))
        home = Home(hub, broker, z2m, bridge)
        try:
            await home.until(lambda: {PLUG_ID, THERMOSTAT_ID} <= set(hub.control.registry.devices),
                             "both devices described")
            await home.until(lambda: hub.control.device(PLUG_ID).reading is not None, "the plug's state")
            yield home
        finally:
            await bridge.close()
            await hub.control.stop()


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Home]:
    async with running_home(tmp_path) as running:
        yield running


async def test_the_plug_and_the_thermostat_are_described_from_zigbee2mqtts_device_list(home: Home) -> None:
    devices = home.hub.control.registry.devices
    assert set(devices) == {PLUG_ID, THERMOSTAT_ID}  # not the coordinator, not the unsupported sensor
    plug, thermostat = devices[PLUG_ID].info, devices[THERMOSTAT_ID].info
    assert (plug.name, plug.kind, plug.device_class, plug.model) == (
        "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, "Tuya TS011F_plug_1")
    assert (thermostat.name, thermostat.kind, thermostat.device_class) == (
        THERMOSTAT_NAME, DeviceKind.THERMOSTAT, DeviceClass.HVAC)
    assert (thermostat.min_setpoint_c, thermostat.max_setpoint_c) == (10, 30)
    await home.until(lambda: home.hub.control.device(THERMOSTAT_ID).reading is not None, "the thermostat's state")
    reading = home.hub.control.device(PLUG_ID).reading
    assert reading is not None and (reading.on, reading.power_kw) == (True, pytest.approx(1.4805))
    reading = home.hub.control.device(THERMOSTAT_ID).reading
    assert reading is not None and (reading.indoor_c, reading.cooling_setpoint_c, reading.heating_setpoint_c,
                                    reading.system_mode) == (24.6, 24.0, 20.0, "cool")


async def test_a_dr_event_sheds_the_plug_through_the_dispatcher_and_it_runs_again_after(home: Home) -> None:
    commanded: list[DeviceCommanded] = []
    home.hub.bus.listen(DeviceCommanded, commanded.append)
    now = home.hub.clock()
    home.hub.bus.publish(LoadControlEvent("main", 41, DeviceClass.POOL_PUMP, 0, now, 1, Criticality.LEVEL_2, now))
    await home.until(lambda: home.z2m.states[PLUG_NAME]["state"] == "OFF", "the plug switched off")
    assert (PLUG_NAME, {"state": "OFF"}) in home.z2m.sets
    done = await home.until(lambda: [c for c in commanded if c.command.device_id == PLUG_ID], "the command logged")
    assert done[0].ok and done[0].source.startswith("event:")
    await home.until(lambda: home.hub.control.device(PLUG_ID).reading.on is False, "the plug's state read back")
    assert home.hub.control.device(PLUG_ID).reading.power_kw == 0
    # The event (one minute; time runs 20 times faster here) ends: the plug is put back as it was.
    await home.until(lambda: home.z2m.states[PLUG_NAME]["state"] == "ON", "the plug on again")
    assert home.z2m.sets[-1] == (PLUG_NAME, {"state": "ON"})


async def test_the_thermostats_setpoint_is_written_on_its_step_and_within_its_limits(home: Home) -> None:
    port = home.hub.device_ports[THERMOSTAT_ID]
    await port.set_setpoints(THERMOSTAT_ID, cooling_c=26.2, heating_c=None)
    assert home.z2m.sets[-1] == (THERMOSTAT_NAME, {"occupied_cooling_setpoint": 26.0})  # its 0.5 °C step
    await home.until(lambda: home.hub.control.device(THERMOSTAT_ID).reading.cooling_setpoint_c == 26.0,
                     "the new setpoint read back")
    with pytest.raises(DeviceError, match="above .*limit 30.0"):
        await port.set_setpoints(THERMOSTAT_ID, cooling_c=31.0, heating_c=None)
    await port.switch(THERMOSTAT_ID, False)
    assert home.z2m.states[THERMOSTAT_NAME]["system_mode"] == "off"
    await port.switch(THERMOSTAT_ID, True)  # back to the mode it was in
    assert home.z2m.states[THERMOSTAT_NAME]["system_mode"] == "cool"
    with pytest.raises(DeviceError, match="no DRLC client"):
        await port.cancel_event(THERMOSTAT_ID, 1)


async def test_availability_follows_zigbee2mqtt_and_the_broker(home: Home) -> None:
    hub = home.hub
    await home.z2m.set_availability(PLUG_NAME, False)
    await home.until(lambda: not hub.control.device(PLUG_ID).available, "the plug unavailable")
    with pytest.raises(DeviceError, match="unavailable"):
        await home.port.switch(PLUG_ID, False)
    await home.z2m.set_availability(PLUG_NAME, True)
    await home.until(lambda: hub.control.device(PLUG_ID).available, "the plug available again")

    await home.broker.restart()  # a fresh broker: nothing retained, zigbee2mqtt not connected yet
    await home.until(lambda: not hub.control.device(THERMOSTAT_ID).available, "unavailable with the broker gone")
    z2m = home.bridge.zigbee2mqtt
    assert z2m is not None
    await home.until(lambda: z2m.connections >= 2, "the appliance back on the broker")
    async with Zigbee2MqttSim(home.broker.port):  # zigbee2mqtt reconnects and publishes again
        await home.until(lambda: all(hub.control.device(d).available for d in (PLUG_ID, THERMOSTAT_ID)),
                         "both available again")
        await home.port.switch(PLUG_ID, False)


async def test_a_command_zigbee2mqtt_never_confirms_is_a_device_error(tmp_path: Path) -> None:
    async with running_home(tmp_path, command_timeout_s=0.3) as home:
        home.z2m.muted.add(PLUG_NAME)
        with pytest.raises(DeviceError, match="did not confirm off within 0.3 s"):
            await home.port.switch(PLUG_ID, False)
        assert home.z2m.sets[-1] == (PLUG_NAME, {"state": "OFF"})  # sent, never confirmed


async def test_malformed_messages_are_counted_and_the_rest_goes_on(home: Home) -> None:
    z2m = home.bridge.zigbee2mqtt
    assert z2m is not None
    await home.z2m.raw("bridge/devices", b"[{\"ieee_address\": 3}, ")
    await home.z2m.raw(PLUG_NAME, b"\xff\xfe not json")
    await home.z2m.raw(f"{PLUG_NAME}/availability", b"{\"state\": 7}")
    await home.until(lambda: sum(z2m.malformed.values()) == 3, "three malformed messages counted")
    assert z2m.malformed == {"device list": 1, "state": 1, "availability": 1}
    await home.z2m.report(PLUG_NAME, power=900.0)
    await home.until(lambda: home.hub.control.device(PLUG_ID).reading.power_kw == 0.9, "a good state still read")

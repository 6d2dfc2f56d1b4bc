"""A small zigbee2mqtt on a real broker: its retained device list, states, ``/set`` and availability.

What it publishes is zigbee2mqtt's own format (zigbee2mqtt.io "MQTT Topics and Messages",
"Exposes"): the device list with a coordinator and an unsupported sensor beside a plug and a
thermostat, ``bridge/state`` and each device's ``availability`` as ``{"state": ...}`` (retained),
and each device's state as one JSON object, retained (a device's ``retain: true`` option). A
``/set`` is answered as zigbee2mqtt does once the device confirmed it: the new whole state
published. ``mute`` makes a device take commands without ever confirming them; ``offline`` is
zigbee2mqtt's availability check giving up on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any

import aiomqtt

PLUG_IEEE, THERMOSTAT_IEEE, SENSOR_IEEE = "0xa4c1380000000001", "0x000d6f0000000002", "0x00158d0000000003"


def _binary(name: str, prop: str, access: int = 7) -> dict[str, Any]:
    return {"type": "binary", "name": name, "property": prop, "access": access, "value_on": "ON",
            "value_off": "OFF", "value_toggle": "TOGGLE", "description": "On/off state of the switch"}


def _numeric(name: str, unit: str, access: int = 5, **extra: Any) -> dict[str, Any]:
    return {"type": "numeric", "name": name, "property": name, "access": access, "unit": unit, **extra}


PLUG = {
    "ieee_address": PLUG_IEEE, "type": "Router", "network_address": 29159, "supported": True,
    "friendly_name": "garage/pool_pump_plug", "disabled": False, "power_source": "Mains (single phase)",
    "model_id": "TS011F", "manufacturer": "_TZ3000_cphmq0q7", "interviewing": False, "interview_completed": True,
    "endpoints": {"1": {"bindings": [], "configured_reportings": [],
                        "clusters": {"input": ["genBasic", "genOnOff", "haElectricalMeasurement", "seMetering"],
                                     "output": ["genOta"]}}},
    "definition": {
        "model": "TS011F_plug_1", "vendor": "Tuya", "description": "Smart plug (with power monitoring)",
        "supports_ota": True, "options": [],
        "exposes": [
            {"type": "switch", "features": [_binary("state", "state")]},
            {"type": "enum", "name": "power_on_behavior", "property": "power_on_behavior", "access": 7,
             "values": ["off", "on", "previous"]},
            _numeric("power", "W"), _numeric("current", "A"), _numeric("voltage", "V"),
            _numeric("energy", "kWh"),
            {"type": "numeric", "name": "linkquality", "property": "linkquality", "access": 1, "unit": "lqi",
             "value_min": 0, "value_max": 255},
        ],
    },
}

THERMOSTAT = {
    "ieee_address": THERMOSTAT_IEEE, "type": "EndDevice", "network_address": 4101, "supported": True,
    "friendly_name": "hall_thermostat", "disabled": False, "power_source": "Battery", "model_id": "3157100",
    "interviewing": False, "interview_completed": True, "endpoints": {},
    "definition": {
        "model": "3157100", "vendor": "Centralite", "description": "3-Series pearl touch thermostat",
        "supports_ota": True, "options": [],
        "exposes": [
            {"type": "numeric", "name": "battery", "property": "battery", "access": 5, "unit": "%"},
            {"type": "climate", "features": [
                _numeric("occupied_heating_setpoint", "°C", 7, value_min=10, value_max=30, value_step=0.5),
                _numeric("occupied_cooling_setpoint", "°C", 7, value_min=10, value_max=30, value_step=0.5),
                _numeric("local_temperature", "°C", 5),
                {"type": "enum", "name": "system_mode", "property": "system_mode", "access": 7,
                 "values": ["off", "heat", "cool", "emergency_heating"]},
                {"type": "enum", "name": "running_state", "property": "running_state", "access": 5,
                 "values": ["idle", "heat", "cool"]},
            ]},
        ],
    },
}

SENSOR = {  # not supported: definition null, left alone
    "ieee_address": SENSOR_IEEE, "type": "EndDevice", "network_address": 22160, "supported": False,
    "friendly_name": "my_sensor", "definition": None, "power_source": "Battery", "model_id": None,
    "interviewing": False, "interview_completed": True, "endpoints": {},
}

COORDINATOR = {
    "ieee_address": "0x00124b00120144ae", "type": "Coordinator", "network_address": 0, "supported": False,
    "friendly_name": "Coordinator", "definition": None, "interviewing": False, "interview_completed": True,
    "endpoints": {},
}


class Zigbee2MqttSim:
    """zigbee2mqtt with a plug and a thermostat, on the broker at ``port``."""

    def __init__(self, port: int, base: str = "zigbee2mqtt") -> None:
        self.port = port
        self.base = base
        self.devices = [COORDINATOR, PLUG, THERMOSTAT, SENSOR]
        self.states: dict[str, dict[str, Any]] = {
            PLUG["friendly_name"]: {"state": "ON", "power": 1480.5, "current": 6.4, "voltage": 231,
                                    "energy": 12.34, "power_on_behavior": "previous", "linkquality": 120},
            THERMOSTAT["friendly_name"]: {"occupied_heating_setpoint": 20, "occupied_cooling_setpoint": 24,
                                          "local_temperature": 24.6, "system_mode": "cool",
                                          "running_state": "cool", "battery": 87, "linkquality": 80},
        }
        self.muted: set[str] = set()
        self.sets: list[tuple[str, dict[str, Any]]] = []
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Zigbee2MqttSim:
        self._client = aiomqtt.Client("127.0.0.1", self.port, identifier="zigbee2mqtt-sim",
                                      socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])  # Nagle off, as ours
        await self._client.__aenter__()
        await self._client.subscribe(f"{self.base}/#", qos=1)
        self._task = asyncio.get_running_loop().create_task(self._read(), name="z2m-sim")
        await self._publish("bridge/state", {"state": "online"})
        await self._publish("bridge/devices", self.devices)
        for name, state in self.states.items():
            await self._publish(name, state)
            await self._publish(f"{name}/availability", {"state": "online"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(5):  # a broker already gone does not answer the QoS 1 publish
                    await self._publish("bridge/state", {"state": "offline"})
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._client.__aexit__(None, None, None)

    async def _publish(self, sub: str, body: Any, retain: bool = True) -> None:
        assert self._client is not None
        await self._client.publish(f"{self.base}/{sub}", json.dumps(body), qos=1, retain=retain)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            topic = str(message.topic)
            if not topic.endswith("/set"):
                continue
            name = topic[len(self.base) + 1:-len("/set")]
            if name not in self.states:
                continue
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            body = json.loads(payload)
            self.sets.append((name, body))
            if name in self.muted:
                continue  # the device never confirms
            state = self.states[name]
            state.update(body)
            if "state" in body:
                state["power"] = 1480.5 if body["state"] == "ON" else 0.0
            await self._publish(name, state)

    async def set_availability(self, name: str, online: bool) -> None:
        await self._publish(f"{name}/availability", {"state": "online" if online else "offline"})

    async def report(self, name: str, **values: Any) -> None:
        """The device reports by itself (a change by hand, a new power figure)."""
        self.states[name].update(values)
        await self._publish(name, self.states[name])

    async def raw(self, sub: str, payload: bytes) -> None:
        assert self._client is not None
        await self._client.publish(f"{self.base}/{sub}", payload, qos=1)

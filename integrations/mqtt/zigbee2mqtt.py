"""zigbee2mqtt's plugs and thermostats as the appliance's load-control targets.

A home whose Zigbee devices already live on zigbee2mqtt (its own radio, its own network) can shed
them without a second radio: this reads zigbee2mqtt's retained device list, adopts each device
with a settable on/off switch or thermostat setpoint (``zigbee2mqtt_exposes.describe``), publishes
its ``DeviceInfo``, turns its state messages into ``DeviceReading``s and its availability into
``DeviceAvailability``, and registers itself as the device's ``DevicePort`` in ``hub.device_ports``.

A command is a ``/set`` publish; it is done when zigbee2mqtt publishes a state that says so (it
does once the device confirmed it). No such state within ``command_timeout_s`` raises
``DeviceError``, as a Zigbee device that does not answer does. The availability is zigbee2mqtt's
own (``<device>/availability``, and ``bridge/state``), and the broker's: with the broker or
zigbee2mqtt gone, every device is unavailable until it is heard of again.

It keeps its own broker connection (its own client id) beside the Home Assistant bridge's: the
two have nothing to share but the broker, and one's reconnect does not disturb the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

import aiomqtt

from ems.errors import DeviceError
from ems.model import (
    DeviceAvailability,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    LoadControlEvent,
)
from ems.tasks import TaskSet
from integrations.mqtt import connect
from integrations.mqtt.discovery import slug
from integrations.mqtt.settings import MqttSettings
from integrations.mqtt.zigbee2mqtt_exposes import (
    Setpoint,
    Z2mDevice,
    Z2mError,
    parse_availability,
    parse_devices,
    parse_state,
    switch_payload,
)
from integrations.mqtt.zigbee2mqtt_exposes import (
    acknowledged as says,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_CLASSES = {"switch": DeviceClass.SIMPLE_LOAD, "thermostat": DeviceClass.HVAC}
LABELS = {"switch": "Plug", "thermostat": "Thermostat"}


@dataclass(eq=False)
class _Target:
    """The appliance's side of one zigbee2mqtt device."""

    device: Z2mDevice
    info: DeviceInfo
    available: bool | None = None  # None until said (the DeviceInfo says available)
    said_offline: bool = False  # zigbee2mqtt's availability says offline: a cached state is no sign of life
    last: dict[str, Any] = field(default_factory=dict)
    last_active_mode: str = "cool"
    waiters: list[tuple[dict[str, Any], asyncio.Future[None]]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{LABELS[self.device.kind]} '{self.info.name}' (zigbee2mqtt)"


class Zigbee2Mqtt:
    """One per appliance: the zigbee2mqtt devices, their port, and the broker connection."""

    def __init__(self, hub: Any, settings: MqttSettings) -> None:
        self._hub = hub
        self.settings = settings
        self.z2m = settings.zigbee2mqtt
        self.base = self.z2m.base_topic.rstrip("/")
        self.targets: dict[str, _Target] = {}  # device id -> target
        self._by_topic: dict[str, _Target] = {}  # state topic -> target
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._tasks = TaskSet(_LOGGER, "zigbee2mqtt")
        self._down_logged = False
        self.malformed: dict[str, int] = {}  # kind -> count (each kind logged once)
        self.connections = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks.spawn(self._supervise(), "zigbee2mqtt-connection")
        try:
            await asyncio.wait_for(self._connected.wait(), self.settings.connect_timeout_s)
        except TimeoutError:
            _LOGGER.warning("zigbee2mqtt: MQTT broker %s:%d not reachable yet; retrying in the background",
                            self.settings.host, self.settings.port)

    async def close(self) -> None:
        await self._tasks.cancel_all()
        for device_id, port in list(self._hub.device_ports.items()):
            if port is self:
                del self._hub.device_ports[device_id]

    # -- the connection --------------------------------------------------------------------

    async def _supervise(self) -> None:
        s = self.settings
        delay = s.first_retry_s
        while True:
            try:
                async with connect.client(s, f"ems-{slug(s.site_id)}-z2m") as client:
                    await self._session(client)
            except (aiomqtt.MqttError, OSError) as err:
                self._lost(f"the MQTT broker is not reachable ({err})")
                if not self._down_logged:
                    _LOGGER.warning("zigbee2mqtt: MQTT broker %s:%d: %s; retrying", s.host, s.port, err)
                    self._down_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.max_retry_s)
                continue
            delay = s.first_retry_s

    def _lost(self, detail: str) -> None:
        self._client = None
        self._connected.clear()
        for target in self.targets.values():
            self._set_available(target, False, detail)

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(f"{self.base}/bridge/devices", qos=1)
        await client.subscribe(f"{self.base}/bridge/state", qos=1)
        for target in list(self.targets.values()):
            await self._subscribe(client, target.device)
        self._client = client
        self.connections += 1
        if self._down_logged:
            _LOGGER.info("zigbee2mqtt: MQTT broker %s:%d reachable again", self.settings.host, self.settings.port)
            self._down_logged = False
        self._connected.set()
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            await self.handle(str(message.topic), payload, retained=bool(message.retain))

    async def _subscribe(self, client: aiomqtt.Client, device: Z2mDevice) -> None:
        topic = f"{self.base}/{device.friendly_name}"
        await client.subscribe([(topic, 1), (f"{topic}/availability", 1)])

    # -- messages from zigbee2mqtt ---------------------------------------------------------

    def _bad(self, kind: str, detail: str) -> None:
        self.malformed[kind] = self.malformed.get(kind, 0) + 1
        if self.malformed[kind] == 1:
            _LOGGER.warning("zigbee2mqtt: ignored a malformed %s (%s); further ones are counted, not logged",
                            kind, detail)

    async def handle(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """One message from the broker (never raises for what it says).

        ``retained``: the broker's copy, not zigbee2mqtt speaking now (a device's cached state).
        """
        if topic == f"{self.base}/bridge/devices":
            await self._on_devices(payload)
        elif topic == f"{self.base}/bridge/state":
            state = parse_availability(payload)
            if state is None:
                self._bad("bridge state", "neither online nor offline")
            elif not state:
                _LOGGER.warning("zigbee2mqtt says it stopped: its devices are unavailable")
                for target in self.targets.values():
                    self._set_available(target, False, "zigbee2mqtt stopped")
        elif topic.endswith("/availability") and (target := self._by_topic.get(topic[:-len("/availability")])):
            available = parse_availability(payload)
            if available is None:
                self._bad("availability", "neither online nor offline")
                return
            target.said_offline = not available
            self._set_available(target, available, "zigbee2mqtt says it is " + ("online" if available else "offline"))
        elif (target := self._by_topic.get(topic)) is not None:
            self._on_state(target, payload, retained)

    async def _on_devices(self, payload: bytes) -> None:
        try:
            devices, _skipped = parse_devices(payload)
        except Z2mError as err:
            self._bad("device list", str(err))
            return
        listed = {d.ieee for d in devices}
        for device in devices:
            target = self.targets.get(device.ieee)
            info = self._describe(device)
            if target is not None:
                info = replace(info, discovered_at=target.info.discovered_at)
                if target.device == device and target.info == info:
                    continue
            if target is None:
                target = self.targets[device.ieee] = _Target(device, info)
                _LOGGER.info("zigbee2mqtt: %s found (%s %s)", target.label, device.vendor, device.model)
            else:
                old_topic = f"{self.base}/{target.device.friendly_name}"
                if self._by_topic.get(old_topic) is target:
                    del self._by_topic[old_topic]
                target.device, target.info = device, info
            self._by_topic[f"{self.base}/{device.friendly_name}"] = target
            self._hub.device_ports[device.ieee] = self
            self._hub.bus.publish(info)
            if target.available is False:  # a DeviceInfo says available: not so until it is heard of
                self._hub.bus.publish(DeviceAvailability(device.ieee, False, self._hub.clock(), "not heard of yet"))
            client = self._client
            if client is not None:
                try:
                    await self._subscribe(client, device)
                except aiomqtt.MqttError:
                    pass  # the connection is going: the next session subscribes to everything
        for device_id, target in self.targets.items():
            if device_id not in listed:
                self._set_available(target, False, "no longer in zigbee2mqtt's device list")

    def _describe(self, device: Z2mDevice) -> DeviceInfo:
        config = self.z2m.device(device.friendly_name, device.ieee)
        device_class = (DeviceClass[config.device_class.upper()] if config.device_class
                        else DEFAULT_CLASSES[device.kind])
        low, high = device.setpoint_range_c
        model = " ".join(p for p in (device.vendor, device.model) if p)
        return DeviceInfo(
            device_id=device.ieee, name=config.name or device.friendly_name, kind=DeviceKind(device.kind),
            device_class=device_class, enrollment_group=config.enrollment_group or 0,
            nominal_kw=config.nominal_kw, min_setpoint_c=low, max_setpoint_c=high, model=model,
            discovered_at=self._hub.clock())

    def _on_state(self, target: _Target, payload: bytes, retained: bool) -> None:
        try:
            fields = parse_state(target.device, payload)
        except Z2mError as err:
            self._bad("state", str(err))
            return
        if target.said_offline and retained:
            return  # a cached state of a device zigbee2mqtt cannot reach: no sign of life, nor news
        target.said_offline = False  # a live state: zigbee2mqtt heard from the device
        self._set_available(target, True, "heard from")
        if not fields:
            return
        mode = fields.get("system_mode")
        if isinstance(mode, str) and mode != "off":
            target.last_active_mode = mode
        target.last.update(fields)
        self._hub.bus.publish(DeviceReading(target.device.ieee, self._hub.clock(), **fields))
        for wanted, future in list(target.waiters):
            if not future.done() and says(wanted, fields):
                future.set_result(None)

    def _set_available(self, target: _Target, available: bool, detail: str) -> None:
        if target.available is available:
            return
        first = target.available is None
        target.available = available
        if first and available:
            return  # the DeviceInfo said it
        if available:
            _LOGGER.info("zigbee2mqtt: %s is available again", target.label)
        else:
            _LOGGER.warning("zigbee2mqtt: %s is unavailable: %s", target.label, detail)
        self._hub.bus.publish(DeviceAvailability(target.device.ieee, available, self._hub.clock(), detail))

    # -- the DevicePort --------------------------------------------------------------------

    def _target(self, device_id: str) -> _Target:
        target = self.targets.get(device_id)
        if target is None:
            raise DeviceError(f"device {device_id} is not (yet) in zigbee2mqtt's device list")
        return target

    async def switch(self, device_id: str, on: bool) -> None:
        target = self._target(device_id)
        device = target.device
        if device.kind == "thermostat":
            mode = target.last_active_mode if target.last_active_mode in device.modes else next(
                (m for m in device.modes if m != "off"), "cool")
            try:
                payload = switch_payload(device, on, mode)
            except Z2mError as err:
                raise DeviceError(f"{target.label}: {err}") from None
            await self._command(target, payload, {"system_mode": mode if on else "off"},
                                f"system mode {mode if on else 'off'}")
            return
        try:
            payload = switch_payload(device, on)
        except Z2mError as err:
            raise DeviceError(f"{target.label}: {err}") from None
        await self._command(target, payload, {"on": on}, "on" if on else "off")

    async def set_setpoints(self, device_id: str, *, cooling_c: float | None, heating_c: float | None) -> None:
        target = self._target(device_id)
        payload: dict[str, Any] = {}
        wanted: dict[str, Any] = {}
        for what, value, setpoint, key in (("cooling", cooling_c, target.device.cooling, "cooling_setpoint_c"),
                                           ("heating", heating_c, target.device.heating, "heating_setpoint_c")):
            if value is None:
                continue
            if setpoint is None:
                raise DeviceError(f"{target.label} has no {what} setpoint")
            rounded = _checked(target, what, value, setpoint)
            payload[setpoint.property] = rounded
            wanted[key] = float(rounded)
        if payload:
            await self._command(target, payload, wanted, "the setpoint")

    async def relay_event(self, device_id: str, event: LoadControlEvent) -> None:
        raise DeviceError(f"{self._target(device_id).label} has no DRLC client to take event {event.issuer_event_id}")

    async def cancel_event(self, device_id: str, issuer_event_id: int) -> None:
        raise DeviceError(f"{self._target(device_id).label} has no DRLC client (event {issuer_event_id})")

    async def _command(self, target: _Target, payload: dict[str, Any], wanted: dict[str, Any], what: str) -> None:
        client = self._client
        if client is None:
            raise DeviceError(f"{target.label} cannot be reached: the MQTT broker is not connected")
        if target.available is False:
            raise DeviceError(f"{target.label} is unavailable (zigbee2mqtt cannot reach it)")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (wanted, future)
        target.waiters.append(waiter)
        timeout_s = self.z2m.command_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                await client.publish(f"{self.base}/{target.device.friendly_name}/set", json.dumps(payload), qos=1)
                await future
        except TimeoutError:
            raise DeviceError(f"{target.label} did not confirm {what} within {timeout_s:g} s") from None
        except aiomqtt.MqttError as err:
            raise DeviceError(f"{target.label} cannot be reached: {err}") from err
        finally:
            with contextlib.suppress(ValueError):
                target.waiters.remove(waiter)


def _checked(target: _Target, what: str, value: float, setpoint: Setpoint) -> float:
    """The setpoint within the device's limits, on its step (what it would round it to itself)."""
    if not math.isfinite(value):
        raise DeviceError(f"{what} setpoint {value} is not a temperature")
    if setpoint.max_c is not None and value > setpoint.max_c + 1e-9:
        raise DeviceError(f"{what} setpoint {value:.1f} °C is above {target.label}'s limit {setpoint.max_c:.1f} °C")
    if setpoint.min_c is not None and value < setpoint.min_c - 1e-9:
        raise DeviceError(f"{what} setpoint {value:.1f} °C is below {target.label}'s limit {setpoint.min_c:.1f} °C")
    step = setpoint.step_c if setpoint.step_c and setpoint.step_c > 0 else 0.1
    return round(round(value / step) * step, 2)

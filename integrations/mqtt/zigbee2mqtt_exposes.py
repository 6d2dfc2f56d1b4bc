"""zigbee2mqtt's MQTT conventions as data: its device list, a device's state, its availability.

Protocol only (no ``ems`` import), so it is tested on payloads and fuzzed on bytes. What it reads
(zigbee2mqtt.io, "MQTT Topics and Messages" and "Exposes"):

- ``<base>/bridge/devices`` (retained): a JSON list of devices, each with ``ieee_address``
  (``0x00158d00018255df``), ``friendly_name`` (the topic level), ``type`` (``Coordinator``,
  ``Router``, ``EndDevice``), ``supported``, ``interview_completed`` and ``definition``
  (``null`` for an unsupported device; else ``model``, ``vendor``, ``description`` and ``exposes``).
- ``exposes``: specific ones (``switch``, ``climate``, ...) with ``features``, generic ones
  (``binary``, ``numeric``, ``enum``) with ``name``, ``property`` (``name_<endpoint>`` when the
  expose names an ``endpoint``) and ``access``, a bitmask: 1 published in the state, 2 ``/set``,
  4 ``/get``.
- ``<base>/<friendly_name>``: the device's state as one JSON object (``{"state": "ON", "power": 12}``);
  ``<base>/<friendly_name>/set`` takes the same keys; ``<base>/<friendly_name>/availability`` says
  ``{"state": "online"}`` (``online`` alone with ``legacy_availability_payload``);
  ``<base>/bridge/state`` the same for zigbee2mqtt itself.

A device becomes a load-control target when it has a settable on/off switch (a plug, a relay) or a
settable thermostat setpoint (``climate``); anything else is left alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

ACCESS_STATE, ACCESS_SET, ACCESS_GET = 1, 2, 4
MAX_DEVICES_BYTES = 4 * 1024 * 1024  # a big network's device list is some hundreds of kB
MAX_STATE_BYTES = 64 * 1024
MODES = ("off", "cool", "heat", "auto")  # the system modes the appliance's model knows


@dataclass(frozen=True, slots=True)
class Setpoint:
    """A settable setpoint: its state/``/set`` key and the device's own limits."""

    property: str
    min_c: float | None = None
    max_c: float | None = None
    step_c: float | None = None


@dataclass(frozen=True, slots=True)
class Z2mDevice:
    """One device of zigbee2mqtt's list that the appliance can drive.

    ``kind`` is ``switch`` or ``thermostat``. ``switch_property`` and its ``value_on``/``value_off``
    name the on/off switch (a thermostat's is its ``system_mode``); the other properties are None
    when the device does not publish them.
    """

    ieee: str  # "00:15:8d:00:01:82:55:df", as the appliance names devices
    friendly_name: str
    kind: str
    model: str = ""
    vendor: str = ""
    description: str = ""
    switch_property: str | None = None
    value_on: Any = "ON"
    value_off: Any = "OFF"
    power_property: str | None = None
    power_unit: str = "W"
    energy_property: str | None = None
    temperature_property: str | None = None
    mode_property: str | None = None
    modes: tuple[str, ...] = ()
    cooling: Setpoint | None = None
    heating: Setpoint | None = None

    @property
    def setpoint_range_c(self) -> tuple[float | None, float | None]:
        lows = [s.min_c for s in (self.cooling, self.heating) if s is not None and s.min_c is not None]
        highs = [s.max_c for s in (self.cooling, self.heating) if s is not None and s.max_c is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)


class Z2mError(ValueError):
    """A payload that is not what zigbee2mqtt publishes (the caller counts it and goes on)."""


def ieee_of(address: Any) -> str | None:
    """``0x00158d00018255df`` -> ``00:15:8d:00:01:82:55:df`` (None: not an IEEE address)."""
    if not isinstance(address, str):
        return None
    text = address.lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) != 16 or any(c not in "0123456789abcdef" for c in text):
        return None
    return ":".join(text[i:i + 2] for i in range(0, 16, 2))


def _json(payload: bytes, limit: int) -> Any:
    if len(payload) > limit:
        raise Z2mError(f"payload over {limit} bytes")
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise Z2mError(f"not JSON: {err}") from None


def _features(exposes: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """Every generic expose, with the type of the specific expose it sits in (None: top level)."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    if not isinstance(exposes, list):
        return found
    for expose in exposes:
        if not isinstance(expose, dict):
            continue
        features = expose.get("features")
        kind = expose.get("type")
        if isinstance(features, list) and kind in ("switch", "climate", "light", "fan", "lock", "cover"):
            found.extend((str(kind), f) for f in features if isinstance(f, dict))
        elif isinstance(kind, str):
            found.append((None, expose))
    return found


def _access(feature: dict[str, Any]) -> int:
    access = feature.get("access")
    return access if isinstance(access, int) and not isinstance(access, bool) else 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _property(feature: dict[str, Any]) -> str | None:
    prop = feature.get("property")
    return prop if isinstance(prop, str) and prop else None


def describe(entry: Any) -> Z2mDevice | None:
    """One entry of ``bridge/devices`` as a target, or None (not a switch or a thermostat)."""
    if not isinstance(entry, dict) or entry.get("type") == "Coordinator":
        return None
    ieee = ieee_of(entry.get("ieee_address"))
    name = entry.get("friendly_name")
    definition = entry.get("definition")
    if ieee is None or not isinstance(name, str) or not name or not isinstance(definition, dict):
        return None
    if entry.get("supported") is False or entry.get("interview_completed") is False:
        return None
    if any(c in name for c in "+#\0") or name.startswith("bridge/") or name.endswith(("/set", "/get")):
        return None  # not a topic level zigbee2mqtt would use
    fields: dict[str, Any] = {}
    for parent, feature in _features(definition.get("exposes")):
        prop, access, fname = _property(feature), _access(feature), feature.get("name")
        if prop is None:
            continue
        if (parent == "switch" and fname == "state" and feature.get("type") == "binary"
                and access & ACCESS_SET and "switch_property" not in fields):
            fields.update(switch_property=prop, value_on=feature.get("value_on", "ON"),
                          value_off=feature.get("value_off", "OFF"))
        elif parent == "climate":
            if fname in ("occupied_cooling_setpoint", "occupied_heating_setpoint", "current_heating_setpoint") \
                    and access & ACCESS_SET and feature.get("type") == "numeric":
                setpoint = Setpoint(prop, _number(feature.get("value_min")), _number(feature.get("value_max")),
                                    _number(feature.get("value_step")))
                key = "cooling" if fname == "occupied_cooling_setpoint" else "heating"
                fields.setdefault(key, setpoint)
            elif fname == "local_temperature" and access & ACCESS_STATE:
                fields.setdefault("temperature_property", prop)
            elif fname == "system_mode" and feature.get("type") == "enum":
                values = feature.get("values")
                modes = tuple(v for v in values if v in MODES) if isinstance(values, list) else ()
                if access & ACCESS_SET:
                    fields.setdefault("mode_property", prop)
                    fields.setdefault("modes", modes)
        elif parent is None and feature.get("type") == "numeric" and access & ACCESS_STATE:
            if fname == "power" and feature.get("unit", "W") in ("W", "kW"):
                fields.setdefault("power_property", prop)
                fields.setdefault("power_unit", feature.get("unit", "W"))
            elif fname == "energy" and feature.get("unit", "kWh") == "kWh":
                fields.setdefault("energy_property", prop)
    if "cooling" in fields or "heating" in fields:
        kind = "thermostat"
    elif "switch_property" in fields:
        kind = "switch"
    else:
        return None
    if kind == "thermostat":
        fields.pop("switch_property", None)
        fields.pop("value_on", None)
        fields.pop("value_off", None)
    text = {k: definition.get(k) if isinstance(definition.get(k), str) else "" for k in ("model", "vendor",
                                                                                         "description")}
    return Z2mDevice(ieee=ieee, friendly_name=name, kind=kind, **text, **fields)


def parse_devices(payload: bytes) -> tuple[list[Z2mDevice], int]:
    """``bridge/devices``: the devices the appliance can drive, and how many entries were skipped."""
    body = _json(payload, MAX_DEVICES_BYTES)
    if not isinstance(body, list):
        raise Z2mError("the device list is not a JSON list")
    devices: list[Z2mDevice] = []
    seen: set[str] = set()
    skipped = 0
    for entry in body:
        device = describe(entry)
        if device is None or device.ieee in seen or device.friendly_name in {d.friendly_name for d in devices}:
            skipped += 1
            continue
        seen.add(device.ieee)
        devices.append(device)
    return devices, skipped


def parse_state(device: Z2mDevice, payload: bytes) -> dict[str, Any]:
    """A state message as the appliance's reading fields (only those it carried and understood).

    Keys: ``on``, ``power_kw``, ``indoor_c``, ``cooling_setpoint_c``, ``heating_setpoint_c``,
    ``system_mode``. A value of the wrong type is left out, not guessed.
    """
    body = _json(payload, MAX_STATE_BYTES)
    if not isinstance(body, dict):
        raise Z2mError("the state is not a JSON object")
    fields: dict[str, Any] = {}
    if device.switch_property is not None and device.switch_property in body:
        value = body[device.switch_property]
        if value == device.value_on:
            fields["on"] = True
        elif value == device.value_off:
            fields["on"] = False
    if device.power_property is not None:
        power = _number(body.get(device.power_property))
        if power is not None:
            fields["power_kw"] = power / 1000 if device.power_unit == "W" else power
    if device.temperature_property is not None:
        indoor = _number(body.get(device.temperature_property))
        if indoor is not None:
            fields["indoor_c"] = indoor
    for key, setpoint in (("cooling_setpoint_c", device.cooling), ("heating_setpoint_c", device.heating)):
        if setpoint is not None:
            value_c = _number(body.get(setpoint.property))
            if value_c is not None:
                fields[key] = value_c
    if device.mode_property is not None:
        mode = body.get(device.mode_property)
        if isinstance(mode, str) and mode in MODES:
            fields["system_mode"] = mode
            fields["on"] = mode != "off"
    return fields


def parse_availability(payload: bytes) -> bool | None:
    """``{"state": "online"}`` or ``online`` -> True, the offline ones -> False, else None."""
    text = payload.strip()
    if text in (b"online", b"offline"):
        return text == b"online"
    try:
        body = _json(text, 1024)
    except Z2mError:
        return None
    if isinstance(body, dict):
        body = body.get("state")
    if body in ("online", "offline"):
        return body == "online"
    return None


def switch_payload(device: Z2mDevice, on: bool, mode_on: str = "cool") -> dict[str, Any]:
    """What ``/set`` takes to switch a device (a thermostat: its system mode)."""
    if device.kind == "thermostat":
        if device.mode_property is None:
            raise Z2mError("the thermostat's mode cannot be set")
        return {device.mode_property: mode_on if on else "off"}
    if device.switch_property is None:
        raise Z2mError("the device has no switch")
    return {device.switch_property: device.value_on if on else device.value_off}


def acknowledged(wanted: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether a state message says what a command asked (reading fields against reading fields)."""
    for key, value in wanted.items():
        got = fields.get(key)
        if got is None:
            return False
        if isinstance(value, float) and isinstance(got, float):
            if abs(got - value) > 0.051:  # the device's own rounding of a setpoint (0.1 °C)
                return False
        elif got != value:
            return False
    return True

"""Home Assistant's rules for an MQTT sensor and for the Energy dashboard, as data, to check our payloads.

Read from Home Assistant's source (home-assistant/core), not copied:

- ``homeassistant/components/sensor/const.py``: ``DEVICE_CLASS_UNITS`` (the units a device class
  accepts) and ``DEVICE_CLASS_STATE_CLASSES`` (the state classes it accepts: power only
  ``measurement``; energy ``total`` or ``total_increasing``; monetary only ``total``; enum none);
- ``homeassistant/components/mqtt/sensor.py``: ``validate_sensor_state_and_device_class_config``
  (``options`` only for an ``enum`` sensor and never with a state class or a unit; a unit must be
  one the device class accepts) and the platform schema (``state_topic`` is required);
- ``homeassistant/components/energy/validate.py``: a grid energy statistic must be device class
  ``energy`` in an energy unit with state class ``total`` or ``total_increasing``; a price entity's
  unit is a currency per energy unit ("USD/kWh").
Only the device classes our payloads use are listed; any other is reported as unknown here.
"""

from __future__ import annotations

from typing import Any

ENERGY_UNITS = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"}
DEVICE_CLASS_UNITS: dict[str, set[str] | None] = {
    "power": {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"},
    "energy": ENERGY_UNITS,
    "temperature": {"°C", "°F", "K"},
    "battery": {"%"},
    "monetary": None,  # any currency (HA checks none)
    "enum": set(),  # no unit at all
}
DEVICE_CLASS_STATE_CLASSES: dict[str, set[str]] = {
    "power": {"measurement"},
    "energy": {"total", "total_increasing"},
    "temperature": {"measurement"},
    "battery": {"measurement"},
    "monetary": {"total"},
    "enum": set(),
}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
# The Energy dashboard's grid statistics (energy/validate.py) and its price entity.
ENERGY_DASHBOARD_STATE_CLASSES = {"total", "total_increasing"}
ENERGY_PRICE_UNITS = {f"/{unit}" for unit in ("Wh", "kWh", "MWh", "GJ", "MJ")}


def check_sensor_config(config: dict[str, Any]) -> list[str]:
    """Every rule of Home Assistant's that this MQTT sensor discovery payload breaks (empty: none)."""
    problems: list[str] = []
    device_class, state_class = config.get("device_class"), config.get("state_class")
    unit, options = config.get("unit_of_measurement"), config.get("options")
    if not isinstance(config.get("state_topic"), str) or not config["state_topic"]:
        problems.append("state_topic is required")
    if not config.get("unique_id"):
        problems.append("unique_id is needed for the entity and device registries")
    device = config.get("device")
    if not isinstance(device, dict) or not (device.get("identifiers") or device.get("connections")):
        problems.append("device needs identifiers or connections")
    if state_class is not None and state_class not in STATE_CLASSES:
        problems.append(f"unknown state_class {state_class!r}")
    if options is not None:
        if not options:
            problems.append("an empty options list is not allowed")
        if state_class or unit:
            problems.append("options is not allowed together with state_class or unit_of_measurement")
        if device_class != "enum":
            problems.append("options must be used together with device_class enum")
    if device_class is not None:
        if device_class not in DEVICE_CLASS_UNITS:
            problems.append(f"device_class {device_class!r} is not one this check knows")
            return problems
        units = DEVICE_CLASS_UNITS[device_class]
        if unit is not None and units is not None and unit not in units:
            problems.append(f"unit {unit!r} is not valid together with device_class {device_class!r}")
        if state_class is not None and state_class not in DEVICE_CLASS_STATE_CLASSES[device_class]:
            problems.append(f"state_class {state_class!r} is not valid for device_class {device_class!r}")
        if device_class == "monetary" and (not isinstance(unit, str) or len(unit) != 3 or not unit.isupper()):
            problems.append(f"a monetary sensor's unit is an ISO 4217 currency, not {unit!r}")
    if device_class == "energy" and state_class not in ENERGY_DASHBOARD_STATE_CLASSES:
        problems.append("the Energy dashboard takes energy only with state_class total or total_increasing")
    if device_class is None and isinstance(unit, str) and "/" in unit and unit.endswith("Wh"):
        if not any(unit.endswith(u) for u in ENERGY_PRICE_UNITS):
            problems.append(f"the Energy dashboard takes a price per energy unit, not {unit!r}")
    return problems

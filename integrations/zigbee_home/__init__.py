"""The home's own Zigbee devices: thermostats, plugs and relays, SE load controllers, batteries.

The EMS is the coordinator of the home's network. ``network.py`` keeps the radio up and
adopts every device that joins; ``device.py`` sets each one up (bind, reporting, reads),
turns its reports into ``DeviceReading``s and carries the dispatcher's commands through the
``DevicePort`` in ``port.py``; ``catalog.py`` says, as data, what each kind of device is asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from integrations.zigbee.section import import_off_loop, radio_schema, with_overrides

__all__ = ["CONFIG_SCHEMA", "DeviceSettings", "HomeSettings", "async_setup", "with_overrides"]

DEVICE_CLASSES = (
    "hvac", "strip_heater", "water_heater", "pool_pump", "smart_appliance", "irrigation_pump",
    "commercial_load", "simple_load", "exterior_lighting", "interior_lighting", "electric_vehicle",
    "generation",
)
_EUI64 = r"^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$"

_DEVICE = vol.Schema(
    {
        vol.Optional("name"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("device_class"): vol.All(
            str, vol.Lower, vol.In(DEVICE_CLASSES, msg=f"expected one of {', '.join(DEVICE_CLASSES)}")
        ),
        vol.Optional("enrollment_group"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("nominal_kw"): vol.All(vol.Coerce(float), vol.Range(min=0, max=1000)),
        vol.Optional("capacity_kwh"): vol.All(vol.Coerce(float), vol.Range(min=0, max=10_000)),
    }
)


def _devices(value: Any) -> dict[str, dict[str, Any]]:
    """``devices``: IEEE address -> settings; every problem reported with its key path."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise vol.Invalid("expected a mapping of IEEE addresses to device settings")
    result: dict[str, dict[str, Any]] = {}
    errors: list[vol.Invalid] = []
    for key, entry in value.items():
        ieee = str(key).strip().lower()
        if not re.match(_EUI64, ieee):
            errors.append(vol.Invalid("expected an IEEE address such as 00:0d:6f:00:0a:90:69:e7 as the key",
                                      path=[key]))
            continue
        try:
            result[ieee] = _DEVICE(entry or {})
        except vol.MultipleInvalid as err:
            for error in err.errors:
                error.prepend([key])
                errors.append(error)
    if errors:
        raise vol.MultipleInvalid(errors)
    return result


CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("radio", default={}): radio_schema("virtual://127.0.0.1:8812"),
        vol.Optional("devices", default={}): _devices,
        vol.Optional("pcap", default=None): vol.Any(None, str),
        vol.Optional("report_interval_s", default=30): vol.All(vol.Coerce(float), vol.Range(min=1, max=3600)),
        vol.Optional("min_report_interval_s", default=1): vol.All(vol.Coerce(float), vol.Range(min=0, max=600)),
        vol.Optional("command_timeout_s", default=5): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=120)),
        vol.Optional("unavailable_after_s", default=120): vol.All(vol.Coerce(float), vol.Range(min=0.1)),
        vol.Optional("permit_join_s", default=60): vol.All(int, vol.Range(min=0, max=254)),
        vol.Optional("first_retry_s", default=2): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("max_retry_s", default=300): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
    }
)


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """What the configuration says about one device (anything left out is read or learnt)."""

    name: str | None = None
    device_class: str | None = None  # a DEVICE_CLASSES name
    enrollment_group: int | None = None
    nominal_kw: float | None = None
    capacity_kwh: float | None = None


@dataclass(frozen=True, slots=True)
class HomeSettings:
    """The validated ``zigbee_home`` section."""

    radio: dict[str, Any]
    devices: dict[str, DeviceSettings] = field(default_factory=dict)
    pcap: Path | None = None
    report_interval_s: float = 30.0
    min_report_interval_s: float = 1.0
    command_timeout_s: float = 5.0
    unavailable_after_s: float = 120.0
    permit_join_s: int = 60
    first_retry_s: float = 2.0
    max_retry_s: float = 300.0

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> HomeSettings:
        return cls(
            radio=dict(section["radio"]),
            devices={ieee: DeviceSettings(**(entry or {})) for ieee, entry in section["devices"].items()},
            pcap=Path(section["pcap"]) if section["pcap"] else None,
            report_interval_s=section["report_interval_s"],
            min_report_interval_s=section["min_report_interval_s"],
            command_timeout_s=section["command_timeout_s"],
            unavailable_after_s=section["unavailable_after_s"],
            permit_join_s=section["permit_join_s"],
            first_retry_s=section["first_retry_s"],
            max_retry_s=section["max_retry_s"],
        )

    def device(self, ieee: str) -> DeviceSettings:
        return self.devices.get(ieee.lower()) or DeviceSettings()


async def async_setup(hub: Any, section: dict[str, Any]) -> Any:
    """Start the home network; it keeps (re)connecting in the background until closed."""
    module = await import_off_loop("integrations.zigbee_home.network")
    network = module.HomeNetwork(hub, HomeSettings.from_section(section))
    await network.start()
    return network

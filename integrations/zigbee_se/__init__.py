"""HAN client to the utility meter over ZigBee Smart Energy 1.x.

The SE clusters and codec are the protocol library ``integrations.zigbee.se``; ``link.py`` keeps the
link to the meter up, ``frames.py`` turns frames into domain events and answers as SE
requires, and ``upstream.py`` carries the outbox's reports back to the meter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol

from integrations.zigbee.section import import_off_loop, radio_schema, with_overrides

__all__ = ["CONFIG_SCHEMA", "MeterLinkSettings", "async_setup", "with_overrides"]

_EUI64 = r"^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$"

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("radio", default={}): radio_schema("virtual://127.0.0.1:8811"),
        vol.Optional("meter_id", default="main"): vol.All(str, vol.Match(r"^[A-Za-z0-9_.:-]{1,40}$", msg="expected 1-40 letters, digits, '_', '-', '.' or ':'")),
        vol.Optional("pcap", default=None): vol.Any(None, str),
        vol.Optional("report_interval_s", default=5): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("stale_after_s", default=30): vol.All(vol.Coerce(float), vol.Range(min=1)),
        vol.Optional("registration_retry_interval_min", default=15): vol.All(
            vol.Coerce(float), vol.Range(min=0.01, max=24 * 60)
        ),
        vol.Optional("first_retry_s", default=2): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("profile_poll", default=True): bool,
        # Joining the meter's network (SE 1.x §5.4, C6 3.1): after a refusal, try again this often
        # (I1NFR3); only the meter the customer named is accepted (C6 1.4: never a neighbour's).
        vol.Optional("join_retry_s", default=60): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=24 * 3600)),
        # The number printed on this meter (checked against its MeterSerialNumber); without it the
        # Commissioning section's ``meter_number`` is the one checked.
        vol.Optional("meter_number", default=None): vol.Any(None, vol.All(vol.Coerce(str), vol.Length(min=1, max=40))),
        vol.Optional("meter_ieee", default=None): vol.Any(None, vol.All(str, vol.Match(_EUI64, msg="expected an EUI-64 such as 00:0d:6f:00:0a:90:69:e7"), vol.Lower)),
        # Who the appliance is to the meter: by default its identity in the store (ems.identity);
        # "development" is the fixed identity every simulated meter has registered (tests, a
        # separately started `ems simulate-meter`).
        vol.Optional("identity", default=None): vol.Any(None, "development", {
            vol.Required("ieee"): vol.All(str, vol.Match(_EUI64, msg="expected an EUI-64"), vol.Lower),
            vol.Required("install_code"): str,
            vol.Optional("device_type", default="energy_management_system"): str,
        }),
    }
)


@dataclass(frozen=True, slots=True)
class MeterLinkSettings:
    """The validated ``zigbee_se`` section."""

    radio: dict[str, Any]
    meter_id: str
    pcap: Path | None
    report_interval_s: float
    stale_after_s: float
    registration_retry_interval_s: float
    first_retry_s: float
    profile_poll: bool
    join_retry_s: float = 60.0
    meter_ieee: str | None = None
    meter_number: str | None = None
    identity: str | dict[str, str] | None = None

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> MeterLinkSettings:
        return cls(
            radio=dict(section["radio"]),
            meter_id=section["meter_id"],
            pcap=Path(section["pcap"]) if section["pcap"] else None,
            report_interval_s=section["report_interval_s"],
            stale_after_s=section["stale_after_s"],
            registration_retry_interval_s=section["registration_retry_interval_min"] * 60,
            first_retry_s=section["first_retry_s"],
            profile_poll=section["profile_poll"],
            join_retry_s=section.get("join_retry_s", 60.0),
            meter_ieee=section.get("meter_ieee"),
            meter_number=section.get("meter_number"),
            identity=section.get("identity"),
        )


async def async_setup(hub: Any, section: dict[str, Any]) -> Any:
    """Start the meter link; it keeps (re)connecting in the background until closed."""
    module = await import_off_loop("integrations.zigbee_se.link")
    link = module.MeterLink(hub, MeterLinkSettings.from_section(section))
    await link.start()
    return link

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

__all__ = ["CONFIG_SCHEMA", "MeterLinkSettings", "MeterLinks", "async_setup", "meter_ids", "meter_sections",
           "with_overrides"]

_EUI64 = r"^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$"
_METER_ID = vol.All(str, vol.Match(r"^[A-Za-z0-9_.:-]{1,40}$", msg="expected 1-40 letters, digits, '_', '-', '.' or ':'"))
_METER_NUMBER = vol.Any(None, vol.All(vol.Coerce(str), vol.Length(min=1, max=40)))
_METER_IEEE = vol.Any(None, vol.All(str, vol.Match(_EUI64, msg="expected an EUI-64 such as 00:0d:6f:00:0a:90:69:e7"), vol.Lower))


def _distinct_meter_ids(meters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [m["meter_id"] for m in meters]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise vol.Invalid(f"each meter needs its own meter_id; given more than once: {', '.join(twice)}")
    return meters


# Several meters (a commercial account, C6 4.1): each one its own network, radio, number and link,
# registered and commissioned on its own; what an entry leaves out is the section's.
_METER = vol.Schema(
    {
        vol.Required("meter_id"): _METER_ID,
        vol.Optional("radio"): radio_schema("virtual://127.0.0.1:8811"),
        vol.Optional("pcap"): vol.Any(None, str),
        vol.Optional("meter_ieee"): _METER_IEEE,
        vol.Optional("meter_number"): _METER_NUMBER,
        vol.Optional("join_retry_s"): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=24 * 3600)),
    }
)

CONFIG_SCHEMA = vol.Schema(
    {
        # Off when another source reads the meter (a Rainforest bridge, a 2030.5 meter).
        vol.Optional("enabled", default=True): bool,
        vol.Optional("radio", default={}): radio_schema("virtual://127.0.0.1:8811"),
        vol.Optional("meter_id", default="main"): _METER_ID,
        vol.Optional("meters", default=list): vol.All([_METER], _distinct_meter_ids),
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
        vol.Optional("meter_number", default=None): _METER_NUMBER,
        vol.Optional("meter_ieee", default=None): _METER_IEEE,
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


def meter_sections(section: dict[str, Any]) -> list[dict[str, Any]]:
    """One section per meter: the section itself, or each of its ``meters`` over the section's
    settings (a shared capture file gets the meter's id in its name: one network per file)."""
    meters = section.get("meters") or []
    if not meters:
        return [section]
    common = {key: value for key, value in section.items() if key != "meters"}
    sections = []
    for meter in meters:
        one = {**common, **meter}
        if "pcap" not in meter and common.get("pcap"):
            path = Path(common["pcap"])
            one["pcap"] = str(path.with_name(f"{path.stem}-{meter['meter_id']}{path.suffix}"))
        sections.append(one)
    return sections


def meter_ids(section: dict[str, Any]) -> list[str]:
    """The ids of the meters a ``zigbee_se`` section links."""
    return [one["meter_id"] for one in meter_sections(section) if "meter_id" in one]


class MeterLinks:
    """Several meters' links, started and closed together; each keeps its own state and stages."""

    def __init__(self, links: dict[str, Any]) -> None:
        self.links = links

    async def start(self) -> None:
        started = []
        try:
            for link in self.links.values():
                await link.start()
                started.append(link)
        except BaseException:
            for link in reversed(started):
                await link.close()
            raise

    async def close(self) -> None:
        for link in reversed(list(self.links.values())):
            await link.close()


async def async_setup(hub: Any, section: dict[str, Any]) -> Any:
    """Start the meter link (or, with ``meters``, one per meter: ``MeterLinks``); each keeps
    (re)connecting in the background until closed."""
    module = await import_off_loop("integrations.zigbee_se.link")
    if section.get("meters"):
        links = MeterLinks({one["meter_id"]: module.MeterLink(hub, MeterLinkSettings.from_section(one))
                            for one in meter_sections(section)})
        await links.start()
        return links
    link = module.MeterLink(hub, MeterLinkSettings.from_section(section))
    await link.start()
    return link

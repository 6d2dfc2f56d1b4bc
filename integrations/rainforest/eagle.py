"""The Rainforest EAGLE-200 / EAGLE 3 as a meter source: the ``eagle`` section, setup, and the kind.

The EAGLE is a ZigBee SE bridge that has already joined the utility's meter; it re-exposes the
meter's figures on the home network through its local API (han-bridges.md §2). ``eagle_wire``
speaks the API, ``eagle_client`` carries it over HTTP, ``eagle_translate`` turns replies into
domain values, and ``eagle_link`` polls the meter and publishes them. This module holds what the
appliance's composition and the Commissioning page need: ``CONFIG_SCHEMA`` for ``ems.yaml``'s
``eagle`` section, ``async_setup`` and ``EagleSourceKind`` (find EAGLEs on the LAN, test settings
before they are saved).

Finding an EAGLE: the EAGLE answers to ``eagle-<cloudid>.local`` by mDNS, which needs a resolver
on the box (the default ``host`` when only the Cloud ID is given). ``discover`` adds no mDNS
library: it lists the devices in the kernel's neighbour table whose Ethernet address has
Rainforest's prefix D8:D5:B9 (what Home Assistant's DHCP matcher keys on), with the Cloud ID read
from the address's last six digits; an EAGLE the box has not talked to yet is not listed, and the
customer types its IP address (the router's device list shows it) and tests it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from ems.local_text import N_
from ems.model import Text

if TYPE_CHECKING:  # ems.meter_source brings the store (SQLAlchemy): `ems check-config` reads only the schema
    from ems.meter_source import SourceCandidate, SourceField, SourceProbe

__all__ = ["CONFIG_SCHEMA", "EagleSettings", "EagleSourceKind", "async_setup", "enabled"]

_LOGGER = logging.getLogger(__name__)

KIND = "eagle"
RAINFOREST_OUI = "d8:d5:b9"
NEIGHBOURS = Path("/proc/net/arp")

def _or_none(validator: Any) -> Any:
    """None, or what ``validator`` says (``vol.Any`` would hide its message behind "not a valid value")."""
    return lambda value: None if value is None else validator(value)


CONFIG_SCHEMA = vol.Schema(
    {
        # On with ``enabled: true``, or as soon as ``host`` or ``cloud_id`` is set (and not ``enabled: false``).
        vol.Optional("enabled", default=None): vol.Any(None, bool),
        # IP address, host name or host:port; default eagle-<cloud_id>.local (mDNS).
        vol.Optional("host", default=None): _or_none(vol.All(str, vol.Strip, vol.Length(min=1, max=253))),
        vol.Optional("cloud_id", default=None): _or_none(vol.All(
            str, vol.Strip, vol.Lower, vol.Match(r"^[0-9a-f]{6}$", msg="expected the 6 hex digits of the label's Cloud ID"))),
        vol.Optional("install_code", default=None): _or_none(vol.All(
            str, vol.Strip, vol.Lower, vol.Match(r"^[0-9a-f]{16}$", msg="expected the 16 hex digits of the label's Install Code"))),
        vol.Optional("meter_id", default="main"): vol.All(
            str, vol.Match(r"^[A-Za-z0-9_.:-]{1,40}$", msg="expected 1-40 letters, digits, '_', '-', '.' or ':'")),
        # Which meter of the EAGLE's device list (0x + 16 hex); default: the joined one heard last.
        vol.Optional("meter_address", default=None): _or_none(vol.All(
            str, vol.Strip, vol.Lower, vol.Match(r"^0x[0-9a-f]{16}$", msg="expected 0x and 16 hex digits"))),
        # Home Assistant polls every 30 s; the EAGLE hears the meter every ~10 s (§2.4: no faster than 10-30 s).
        vol.Optional("poll_interval_s", default=15): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
        vol.Optional("stale_after_s", default=90): vol.All(vol.Coerce(float), vol.Range(min=1)),
        vol.Optional("interval_s", default=60): vol.All(vol.Coerce(int), vol.Range(min=10, max=3600)),
        vol.Optional("timeout_s", default=15): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=120)),
        vol.Optional("request_gap_s", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=60)),
        vol.Optional("max_backoff_s", default=30): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
    }
)


def enabled(section: dict[str, Any] | None) -> bool:
    """Whether ``ems.yaml``'s ``eagle`` section asks for the EAGLE to be read."""
    if not section:
        return False
    if section.get("enabled") is not None:
        return bool(section["enabled"])
    return bool(section.get("host") or section.get("cloud_id"))


@dataclass(frozen=True, slots=True)
class EagleSettings:
    """The validated ``eagle`` section."""

    host: str
    cloud_id: str
    install_code: str
    meter_id: str = "main"
    meter_address: str | None = None
    poll_interval_s: float = 15.0
    stale_after_s: float = 90.0
    interval_s: int = 60
    timeout_s: float = 15.0
    request_gap_s: float = 1.0
    max_backoff_s: float = 30.0

    @property
    def gap_s(self) -> float:
        """A silence longer than this is a gap, filled by one reading (three missed polls, at least 5 min)."""
        return max(300.0, 3 * self.poll_interval_s, 2 * self.interval_s)

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> EagleSettings:
        """Validate ``section``; ``vol.Invalid`` names the problem (Cloud ID and Install Code are required)."""
        data = CONFIG_SCHEMA(dict(section))
        if not data["cloud_id"]:
            raise vol.Invalid("the Cloud ID (on the EAGLE's label) is required", path=["cloud_id"])
        if not data["install_code"]:
            raise vol.Invalid("the Install Code (on the EAGLE's label) is required", path=["install_code"])
        return cls(
            host=data["host"] or f"eagle-{data['cloud_id']}.local",
            cloud_id=data["cloud_id"],
            install_code=data["install_code"],
            meter_id=data["meter_id"],
            meter_address=data["meter_address"],
            poll_interval_s=data["poll_interval_s"],
            stale_after_s=data["stale_after_s"],
            interval_s=data["interval_s"],
            timeout_s=data["timeout_s"],
            request_gap_s=data["request_gap_s"],
            max_backoff_s=data["max_backoff_s"],
        )


async def async_setup(hub: Any, section: dict[str, Any]) -> Any:
    """Start polling the EAGLE; it keeps retrying in the background until closed."""
    from integrations.rainforest.eagle_link import EagleLink

    link = EagleLink(hub, EagleSettings.from_section(section))
    await link.start()
    return link


# -- the Commissioning page's setup ---------------------------------------------------------

# What a setting the probe refuses means, by its key (the page validated its form first; this is
# for the API's callers); English msgids the page translates.
SETTING_WORDS = {
    "cloud_id": N_("The Cloud ID is the 6 characters on the label under the EAGLE, such as 0a1b2c."),
    "install_code": N_("The Install Code is the 16 characters on the label under the EAGLE."),
    "host": N_("The EAGLE's address is not valid: enter its IP address, as your router lists it."),
}
# The EAGLE's ConnectionStatus of its meter, in words the page translates; another is shown as sent.
CONNECTION_WORDS = {
    "connected": N_("Connected"),
    "disconnected": N_("Not connected"),
    "not joined": N_("Not joined to the meter"),
    "joining": N_("Joining the meter's network"),
    "rejoining": N_("Joining the meter's network again"),
    "": N_("Not known"),
}


def _connection_words(status: str) -> Text:
    """The meter's connection status as the page shows it (a wire value it does not know: as sent)."""
    words = CONNECTION_WORDS.get((status or "").strip().lower())
    return Text.of(words) if words is not None else Text.of("{status}", status=status)



class EagleSourceKind:
    """Finds EAGLEs on the LAN and tests settings with one read (``ems.meter_source.MeterSourceKind``)."""

    kind = KIND
    title = "Rainforest EAGLE-200 / EAGLE 3 (home network)"

    @property
    def fields(self) -> tuple[SourceField, ...]:
        """What the setup form asks for (the rest of the section keeps its defaults)."""
        from ems.meter_source import SourceField

        return (
            SourceField("host", N_("The EAGLE's address"), "address",
                        hint=N_("Its IP address (your router lists it), or leave empty to use "
                                "eagle-<Cloud ID>.local.")),
            SourceField("cloud_id", N_("Cloud ID"), "text", required=True,
                        hint=N_("On the label under the EAGLE: 6 characters, such as 0a1b2c.")),
            SourceField("install_code", N_("Install Code"), "password", required=True,
                        hint=N_("On the same label: 16 characters.")),
            SourceField("poll_interval_s", N_("Seconds between readings"), "number", default="15"),
        )

    def __init__(self, clock: Any, neighbours: Path = NEIGHBOURS, mdns_interfaces: Any = None) -> None:
        self._clock = clock
        self._neighbours = neighbours
        self._mdns_interfaces = mdns_interfaces  # None: every interface (tests: loopback)

    async def discover(self, timeout_s: float) -> list[SourceCandidate]:
        """EAGLEs announced over mDNS and those in the box's neighbour table (Rainforest's Ethernet prefix)."""
        from ems.meter_source import SourceCandidate
        from integrations.rainforest import eagle_mdns

        announced, listed = await asyncio.gather(eagle_mdns.browse(timeout_s, interfaces=self._mdns_interfaces),
                                                 self._from_neighbours(timeout_s))
        found = {c.address: c for c in listed}
        for eagle in announced:
            address = eagle.host if eagle.port == 80 else f"{eagle.host}:{eagle.port}"
            found[address] = SourceCandidate(KIND, address, Text.of(N_("Rainforest EAGLE at {host} (Cloud ID {cloud_id})"),
                                                                     host=address, cloud_id=eagle.cloud_id))
        return list(found.values())

    async def _from_neighbours(self, timeout_s: float) -> list[SourceCandidate]:
        from ems.meter_source import SourceCandidate

        try:
            text = await asyncio.wait_for(asyncio.to_thread(self._neighbours.read_text), max(0.1, timeout_s))
        except (OSError, TimeoutError) as err:
            _LOGGER.info("EAGLE discovery: the neighbour table is not readable (%s): enter the address", err)
            return []
        found: list[SourceCandidate] = []
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or not fields[3].lower().startswith(RAINFOREST_OUI):
                continue
            try:
                address = str(ipaddress.ip_address(fields[0]))
            except ValueError:
                continue
            cloud_id = fields[3].lower().replace(":", "")[-6:]
            found.append(SourceCandidate(KIND, address, Text.of(N_("Rainforest EAGLE at {host} (Cloud ID {cloud_id})"),
                                                                host=address, cloud_id=cloud_id)))
        return found

    async def probe(self, section: dict[str, Any]) -> SourceProbe:
        """Connect with ``section``, list the devices, query the meter once: its address, a reading, the price."""
        import aiohttp

        from ems.meter_source import SourceProbe
        from integrations.rainforest.eagle_client import BadAuth, EagleClient, Stalled, Unreachable
        from integrations.rainforest.eagle_link import choose_meter
        from integrations.rainforest.eagle_translate import translate
        from integrations.rainforest.eagle_wire import BadReply

        try:
            settings = EagleSettings.from_section(section)
        except vol.Invalid as err:
            where = ".".join(str(p) for p in err.path)
            _LOGGER.info("EAGLE test: settings not valid (%s: %s)", where or "eagle", err.msg)
            return SourceProbe(False, Text.of(SETTING_WORDS.get(where, N_("The settings are not valid: check the "
                                                                          "EAGLE's address, Cloud ID and Install Code."))))
        host = settings.host
        async with aiohttp.ClientSession() as session:
            client = EagleClient(session, host, settings.cloud_id, settings.install_code, clock=self._clock,
                                 timeout_s=settings.timeout_s, request_gap_s=0.0)
            try:
                devices = await client.device_list()
                meter = choose_meter(devices, settings.meter_address)
                if meter is None:
                    return SourceProbe(False, N_("The EAGLE answered but lists no electric meter: your utility has "
                                                 "to connect it to your meter first (ask them for HAN access)."),
                                       details=((N_("Devices listed"), str(len(devices))),))
                reply = await client.device_query(meter.hardware_address)
            except BadAuth:
                return SourceProbe(False, N_("The EAGLE refused the Cloud ID and Install Code: check both against "
                                             "the label on the EAGLE."))
            except Stalled:
                return SourceProbe(False, Text.of(N_("The EAGLE at {host} took longer than {wait_num} s to answer: "
                                                     "unplug it for ten seconds, plug it back in and test again."),
                                                  host=host, wait_num=settings.timeout_s))
            except Unreachable as err:
                if any(word in str(err) for word in ("DNSError", "Name or service", "nodename", "getaddrinfo")):
                    return SourceProbe(False, Text.of(N_("No device named {host} was found: enter the EAGLE's IP "
                                                         "address (your router's list of devices shows it)."),
                                                      host=host))
                return SourceProbe(False, Text.of(N_("Nothing answered at {host}: check the address, and that the "
                                                     "EAGLE is powered and on the same network as this appliance."),
                                                  host=host))
            except BadReply as err:
                _LOGGER.info("EAGLE test: %s answered, but not as an EAGLE does (%s)", host, err)
                return SourceProbe(False, Text.of(N_("Something at {host} answered, but not as an EAGLE does: check "
                                                     "the address."), host=host))
        now = self._clock()
        values = translate(reply, settings.meter_id, now)
        status = _connection_words(meter.connection_status)
        details: list[tuple[str, str | Text]] = [(N_("Meter connection"), status)]
        if values.last_contact is not None:  # "{heard_at}": a time, shown in the reader's locale and the site's zone
            details.append((N_("Last heard from the meter"), Text.of("{heard_at}", heard_at=values.last_contact)))
        if values.problems:
            _LOGGER.info("EAGLE test: values refused: %s", "; ".join(f"{n}: {why}" for n, why in values.problems))
            details.append((N_("Values refused"), Text.of(N_("{refused_num} (the appliance's log names them)"),
                                                          refused_num=len(values.problems))))
        if values.block_prices:
            details.append((N_("Block prices"), Text.of(N_("{prices} per kWh"),
                                                        prices=" / ".join(f"{p:g}" for p in values.block_prices))))
        reading = values.reading
        if reading is None or reading.demand_kw is None and reading.summation_delivered_kwh is None:
            return SourceProbe(False, Text.of(N_("The EAGLE has no reading from the meter yet (meter: "
                                                 "{status_phrase}): wait a few minutes after it joins the meter and "
                                                 "test again."), status_phrase=status.msgid,
                                              status=meter.connection_status),
                               hardware_id=meter.hardware_address, details=tuple(details))
        return SourceProbe(True, None, hardware_id=meter.hardware_address, reading=reading,
                           price=values.price, details=tuple(details))


def source_kind(hub: Any) -> EagleSourceKind:
    """The kind cli registers as ``hub.meter_source_kinds["eagle"]`` (``ems.cli.METER_SOURCE_MODULES``)."""
    return EagleSourceKind(hub.clock)

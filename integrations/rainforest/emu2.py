"""The ``emu2:`` section: a Rainforest EMU-2 (or RAVEn) on a USB serial port as the meter source.

    emu2:
      enabled: true            # or just name the port
      port: /dev/ttyACM0       # a device path (/dev/serial/by-id/... survives replugging) or a pyserial URL
      meter_id: main
      stale_after_s: 60        # the EMU-2 pushes demand every 8-11 s; stale after this much silence
      interval_s: 60           # intervals made from the summation (the bridge has no interval data)

``async_setup`` starts the link (``emu2_link.Emu2Link``), which keeps (re)opening the port in the
background. ``Emu2Kind`` is what the Commissioning page's meter setup asks of this kind of
source: the serial ports found (``discover``), and one read with the settings entered, before
they are saved (``probe``), as Home Assistant's config flow for this bridge does.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from ems.clock import REAL, Clock
from ems.model import Text

if TYPE_CHECKING:  # the store's types and the wire: imported when used, not by `ems check-config`
    from ems.meter_source import SourceCandidate, SourceField, SourceProbe
    from integrations.rainforest import emu2_xml as xml

__all__ = ["CONFIG_SCHEMA", "Emu2Kind", "async_setup", "enabled", "settings_from_section", "source_kind"]

KIND = "emu2"
TITLE = "Rainforest EMU-2 (USB)"
# Home Assistant's rainforest_raven matches these USB ids (§1.1).
USB_IDS = {(0x04B4, 0x0003): "Rainforest EMU-2", (0x0403, 0x8A28): "Rainforest RAVEn"}
PROBE_TIMEOUT_S = 8.0
_LOGGER = logging.getLogger(__name__)


def N_(msgid: str) -> str:  # noqa: N802 - gettext's "mark now, translate where shown" (the page translates)
    return msgid

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled", default=None): vol.Any(None, bool),
        vol.Optional("port", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=255))),
        vol.Optional("meter_id", default="main"): vol.All(
            str, vol.Match(r"^[A-Za-z0-9_.:-]{1,40}$", msg="expected 1-40 letters, digits, '_', '-', '.' or ':'")),
        vol.Optional("stale_after_s", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=1, max=3600)),
        vol.Optional("interval_s", default=60): vol.All(int, vol.Range(min=10, max=3600)),
        vol.Optional("gap_s", default=300.0): vol.All(vol.Coerce(float), vol.Range(min=30, max=24 * 3600)),
        vol.Optional("poll_s", default=30.0): vol.All(vol.Coerce(float), vol.Range(min=1, max=3600)),
        vol.Optional("first_retry_s", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=600)),
        vol.Optional("max_retry_s", default=30.0): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=3600)),
    }
)


def enabled(section: dict[str, Any] | None) -> bool:
    """On with ``enabled: true``, or with a port named and ``enabled`` not set to false."""
    if not section:
        return False
    if section.get("enabled") is not None:
        return bool(section["enabled"]) and bool(section.get("port"))
    return bool(section.get("port"))


def settings_from_section(section: dict[str, Any]) -> Any:
    from integrations.rainforest.emu2_link import Emu2Settings

    values = CONFIG_SCHEMA(dict(section))
    if not values["port"]:
        raise vol.Invalid("an EMU-2 needs its serial port", path=["port"])
    return Emu2Settings(port=values["port"], meter_id=values["meter_id"], stale_after_s=values["stale_after_s"],
                        interval_s=values["interval_s"], gap_s=values["gap_s"], poll_s=values["poll_s"],
                        first_retry_s=values["first_retry_s"], max_retry_s=values["max_retry_s"])


async def async_setup(hub: Any, section: dict[str, Any]) -> Any:
    """Start the EMU-2 link; it keeps (re)opening the port in the background until closed."""
    from integrations.rainforest.emu2_link import Emu2Link

    link = Emu2Link(hub, settings_from_section(section))
    await link.start()
    return _Running(link)


# The links this process runs, by the real path of their port: the page's test of a port one of them
# holds answers from it (a second reader of a serial port would take half its fragments).
RUNNING: dict[str, Any] = {}


class _Running:
    """A started link, known by its port until it is closed."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self._key = os.path.realpath(link.settings.port)
        RUNNING[self._key] = link

    def __getattr__(self, name: str) -> Any:
        return getattr(self.link, name)

    async def close(self) -> None:
        if RUNNING.get(self._key) is self.link:
            del RUNNING[self._key]
        await self.link.close()


def source_kind(hub: Any) -> Emu2Kind:
    """The kind for the Commissioning page (``ems.cli`` registers it, whether ``emu2`` is on or not);
    the port ``ems.yaml`` names is among those it finds (a simulated EMU-2's pty in the demo)."""
    section = (getattr(hub.config, "sections", {}) or {}).get(KIND) or {}
    return Emu2Kind([section["port"]] if section.get("port") else [], hub.clock)


# -- the Commissioning page's "find and test" --------------------------------------------------


class Emu2Kind:
    """``ems.meter_source.MeterSourceKind`` for the EMU-2: serial ports, and a one-off read."""

    kind = KIND
    title = TITLE

    @property
    def fields(self) -> tuple[SourceField, ...]:
        from ems.meter_source import SourceField

        return (SourceField("port", N_("Serial port"), kind="address", required=True,
                            hint=N_("The EMU-2's USB port, e.g. /dev/ttyACM0 (Find lists the ports)")),)

    def __init__(self, extra_ports: Sequence[str] = (), clock: Clock = REAL,
                 timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.extra_ports = list(extra_ports)  # ports known otherwise (a simulated EMU-2's pty)
        self.clock = clock
        self.timeout_s = timeout_s

    async def discover(self, timeout_s: float) -> list[SourceCandidate]:
        """The serial ports on this box: pyserial's list (USB ids name an EMU-2 or RAVEn), the stable
        ``/dev/serial/by-id`` names, and the extra ports given. Nothing is opened."""
        from ems.meter_source import SourceCandidate

        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.to_thread(self._ports)
        except TimeoutError:
            return [SourceCandidate(KIND, p, _plain_port(p)) for p in self.extra_ports]

    def _ports(self) -> list[SourceCandidate]:
        from serial.tools import list_ports

        from ems.meter_source import SourceCandidate

        found: dict[str, SourceCandidate] = {}
        by_id = {os.path.realpath(p): p for p in sorted(glob.glob("/dev/serial/by-id/*"))}
        for port in list_ports.comports():
            name = USB_IDS.get((port.vid, port.pid)) if port.vid is not None else None
            path = by_id.get(os.path.realpath(port.device), port.device)
            described = port.description not in (None, "", "n/a") and port.description != os.path.basename(path)
            label = (Text.of(N_("{device} on {port}"), device=name, port=path) if name else
                     Text.of(N_("Serial port {port} ({description})"), port=path, description=port.description)
                     if described else _plain_port(path))
            found[path] = SourceCandidate(KIND, path, label, port.serial_number if name else None)
        for path in by_id.values():
            found.setdefault(path, SourceCandidate(KIND, path, _plain_port(path)))
        for path in self.extra_ports:
            found.setdefault(path, SourceCandidate(KIND, path, _plain_port(path)))
        known = [c for c in found.values() if str(c.label).startswith("Rainforest")]
        return known + [c for c in found.values() if c not in known]

    async def probe(self, section: dict[str, Any]) -> SourceProbe:
        """Open the port, synchronise, read device info, demand and price once; close again.

        Bounded in real time (the customer is waiting on the page); the reasons say what to do."""
        from ems.meter_source import SourceProbe
        from integrations.rainforest import emu2_xml as xml

        try:
            settings = settings_from_section(section)
        except vol.Invalid as err:
            where = ".".join(str(p) for p in err.path) or "emu2"
            _LOGGER.info("EMU-2 test: settings not valid (%s: %s)", where, err.msg)
            return SourceProbe(False, N_("The settings are not valid: name the EMU-2's serial port."))
        running = RUNNING.get(await asyncio.to_thread(os.path.realpath, settings.port))
        if running is not None:
            return _from_running(running)
        try:
            port = await xml.Emu2Port.open(settings.port)
        except xml.PortInUse:
            _LOGGER.info("EMU-2 test: %s is in use by another reader", settings.port)
            return SourceProbe(False, N_("This serial port is in use by another program. Close it, or choose the "
                                         "EMU-2's own port."))
        except OSError as err:
            _LOGGER.info("EMU-2 test: cannot open %s: %s", settings.port, err)
            return SourceProbe(False, N_("Cannot open this serial port. Check that the EMU-2 is plugged in and "
                                         "that this is its port."))
        try:
            async with asyncio.timeout(self.timeout_s):
                return await _read_once(port, settings.meter_id, self.clock)
        except ConnectionError:
            _LOGGER.info("EMU-2 test: %s closed while it was read", settings.port)
            return SourceProbe(False, N_("The serial port closed while it was read. Check the USB cable and try "
                                         "again."))
        except TimeoutError:
            _LOGGER.info("EMU-2 test: the device on %s did not answer within %g s", settings.port, self.timeout_s)
            return SourceProbe(False, N_("The device on this port did not answer as an EMU-2 does. Check that it is "
                                         "an EMU-2 or RAVEn and that its display shows the meter's figures."))
        finally:
            await port.close()


def _plain_port(path: str) -> Text:
    return Text.of(N_("Serial port {port}"), port=path)


# The EMU-2's <Status> of its connection to the meter (the RAVEn XML API's list), in words the page
# translates; another status is shown as the bridge sent it.
CONNECTION_WORDS = {
    "initializing": N_("Starting"),
    "network discovery": N_("Looking for the meter's network"),
    "joining": N_("Joining the meter's network"),
    "join: fail": N_("Could not join the meter's network"),
    "join: success": N_("Joined the meter's network"),
    "authenticating": N_("Being admitted by the meter"),
    "authenticating: success": N_("Admitted by the meter"),
    "authenticating: fail": N_("Not admitted by the meter"),
    "connected": N_("Connected"),
    "disconnected": N_("Not connected"),
    "rejoining": N_("Joining the meter's network again"),
}


def _connection_words(status: str) -> str | Text:
    words = CONNECTION_WORDS.get(status.strip().lower())
    return Text.of(words) if words is not None else status


def _from_running(link: Any) -> SourceProbe:
    """The test of a port this appliance already reads: the link's own latest figures."""
    from ems.meter_source import SourceProbe
    from ems.model import LinkState

    details = _details(link.bridge, link.connection)
    if link.state is not LinkState.ONLINE or link.last_demand is None:
        return SourceProbe(False, N_("The appliance already reads this port, but the EMU-2 on it does not answer "
                                     "now. Check that its display shows the meter's figures."),
                           hardware_id=link.admitted or link.meter_mac, details=details)
    return SourceProbe(True, None, hardware_id=link.admitted, reading=link.last_demand, price=link.last_price,
                       details=details)


def _details(info: Any, connection: Any) -> tuple[tuple[str, str | Text], ...]:
    """Labels are msgids (the page translates them), the status a Text; the meter is shown apart."""
    details: list[tuple[str, str | Text]] = []
    if info is not None:
        details += [(k, v) for k, v in ((N_("Model"), info.model_id), (N_("Firmware"), info.fw_version),
                                         (N_("Bridge"), info.device_mac)) if v]
    if connection is not None:
        if connection.status:
            details.append((N_("Connection to the meter"), _connection_words(connection.status)))
        if connection.link_strength_pct is not None:
            details.append((N_("Link strength"), f"{connection.link_strength_pct} %"))
    return tuple(details)


async def _read_once(port: xml.Emu2Port, meter_id: str, clock: Clock) -> SourceProbe:
    from ems.meter_source import SourceProbe
    from integrations.rainforest import emu2_xml as xml
    from integrations.rainforest.emu2_link import demand_reading, price_signal

    values: dict[type, Any] = {}
    asked = 0
    while xml.MeterList not in values:  # synchronise: stale bytes may be buffered (§1.3)
        if asked < 5:
            port.send("get_meter_list")
            asked += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while xml.MeterList not in values:
                    await _take(port, values)
    meters = values[xml.MeterList].meter_macs
    if not meters:
        return SourceProbe(False, N_("The EMU-2 answers but reads no meter: it has not joined the meter's network "
                                     "yet. Ask the utility to register its install code, then wait for it to join."))
    mac = meters[0]
    meter = {"MeterMacId": xml.mac_arg(mac)}
    port.send("get_device_info")
    port.send("get_network_info")
    port.send("get_instantaneous_demand", meter)
    port.send("get_current_price", meter)
    wanted = (xml.DeviceInfo, xml.Connection, xml.Demand, xml.Price)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3.0):
            while not all(w in values for w in wanted):
                await _take(port, values)
    now = clock()
    demand = values.get(xml.Demand)
    reading = demand_reading(demand, meter_id, now) if demand is not None else None
    price = values.get(xml.Price)
    signal = price_signal(price, meter_id, now) if price is not None else None
    details = _details(values.get(xml.DeviceInfo), values.get(xml.Connection))
    if reading is None:
        return SourceProbe(False, N_("The EMU-2 answers but sent no demand reading; check that it shows the "
                                     "meter's figures on its display."), hardware_id=mac, price=signal,
                           details=details)
    return SourceProbe(True, None, hardware_id=mac, reading=reading, price=signal, details=details)


async def _take(port: xml.Emu2Port, values: dict[type, Any]) -> None:
    from integrations.rainforest import emu2_xml as xml
    event = await port.next()
    if isinstance(event, xml.Closed):
        raise ConnectionError("the port closed")  # nothing more will come
    if isinstance(event, xml.Fragment):
        value = xml.decode(event).value
        values.setdefault(type(value), value)

"""The EAGLE-200 / EAGLE 3 local API on the wire: commands out, replies in (no ``ems`` import).

One XML ``Command`` per HTTP POST to ``/cgi-bin/post_manager``; the reply is one XML fragment
(han-bridges.md §2.2-2.3). This module builds the commands and parses the two replies the
appliance reads, ``DeviceList`` and a ``device_query``'s ``Device``, into plain frozen records of
text: which value means what is ``eagle_translate``'s business. A reply that is not the expected
document raises ``BadReply`` naming what is wrong; values stay text here, so one odd value never
costs the rest of the reply.

Shapes accepted, as the devices and aioeagle show them (§2.3): element names in any case (the
manual says case-insensitive), ``Component`` and ``Variable`` single or repeated, a reply in
UTF-8 or in code page 1252 (the RAVEn family's character set), surrounding whitespace. A DOCTYPE
(entity declarations: the only way XML can make a small body large) is refused outright.

The EAGLE 3 serves the EAGLE-200's API unchanged (Home Assistant sets an EAGLE 3 up as an
EAGLE-200), so one wire module serves both.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

PATH = "/cgi-bin/post_manager"
MAX_REPLY_BYTES = 512 * 1024  # a full query of a meter is ~10 kB; anything near this is not a reply
METER_MODEL = "electric_meter"


class BadReply(ValueError):
    """The body is not the reply asked for (not XML, another root, a device without an address)."""


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One ``Device`` of a ``DeviceList`` (or a query reply's ``DeviceDetails``), as text.

    ``hardware_address`` is normalised to lower case with its ``0x``; the rest is as sent
    ("" where absent).
    """

    hardware_address: str
    name: str = ""
    manufacturer: str = ""
    model_id: str = ""
    protocol: str = ""
    last_contact: str = ""
    connection_status: str = ""
    network_address: str = ""

    @property
    def is_meter(self) -> bool:
        return self.model_id.strip().lower() == METER_MODEL

    @property
    def connected(self) -> bool:
        return self.connection_status.strip().lower() == "connected"


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``Variable`` of a query reply: its value as sent, and the units beside it (may be "")."""

    name: str
    value: str
    units: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class QueryReply:
    """A ``device_query`` reply: the device and its variables by name (every component's)."""

    device: DeviceEntry
    variables: dict[str, Variable]


# -- commands --------------------------------------------------------------------------------


def device_list_command() -> bytes:
    return b"<Command><Name>device_list</Name></Command>"


def device_query_command(hardware_address: str, variables: tuple[str, ...] = ()) -> bytes:
    """Query every variable (``All``: asking for a few drops the summation on some firmware, §2.2),
    or only ``variables`` of component ``Main``."""
    address = escape(hardware_address)
    if variables:
        names = "".join(f"<Variable><Name>{escape(v)}</Name></Variable>" for v in variables)
        components = f"<Component><Name>Main</Name><Variables>{names}</Variables></Component>"
    else:
        components = "<All>Y</All>"
    return (f"<Command><Name>device_query</Name><DeviceDetails><HardwareAddress>{address}</HardwareAddress>"
            f"</DeviceDetails><Components>{components}</Components></Command>").encode("ascii", "xmlcharrefreplace")


# -- replies ---------------------------------------------------------------------------------


def _root(body: bytes) -> ET.Element:
    if len(body) > MAX_REPLY_BYTES:
        raise BadReply(f"reply of {len(body)} bytes (at most {MAX_REPLY_BYTES})")
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise BadReply("reply declares a DOCTYPE or entities")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("cp1252", "replace")
    text = text.lstrip("\ufeff").strip()
    if text.startswith("<?xml"):  # the declaration may name another encoding than the one decoded
        end = text.find("?>")
        text = text[end + 2:] if end >= 0 else text
    if not text:
        raise BadReply("empty reply")
    try:
        return ET.fromstring(text)
    except ET.ParseError as err:
        raise BadReply(f"not XML ({err})") from err


def _tag(element: ET.Element) -> str:
    return element.tag.lower() if isinstance(element.tag, str) else ""


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _tag(child) == name:
            return child
    return None


def _children(element: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if element is None else [c for c in element if _tag(c) == name]


def _text(element: ET.Element, name: str) -> str:
    child = _child(element, name)
    return "" if child is None else "".join(child.itertext()).strip()


def _device(element: ET.Element) -> DeviceEntry:
    address = _text(element, "hardwareaddress").lower()
    if not address:
        raise BadReply("a device without a HardwareAddress")
    if not address.startswith("0x"):
        address = "0x" + address
    return DeviceEntry(
        hardware_address=address,
        name=_text(element, "name"),
        manufacturer=_text(element, "manufacturer"),
        model_id=_text(element, "modelid"),
        protocol=_text(element, "protocol"),
        last_contact=_text(element, "lastcontact"),
        connection_status=_text(element, "connectionstatus"),
        network_address=_text(element, "networkaddress"),
    )


def parse_device_list(body: bytes) -> list[DeviceEntry]:
    """The devices of a ``DeviceList`` reply, in the order sent."""
    root = _root(body)
    if _tag(root) != "devicelist":
        raise BadReply(f"expected DeviceList, got {root.tag!s:.40}")
    return [_device(d) for d in _children(root, "device")]


def parse_device_query(body: bytes) -> QueryReply:
    """A ``device_query`` reply: the device's details and every component's variables by name.

    A variable named twice (two components) keeps its first value; one without a name is skipped.
    """
    root = _root(body)
    if _tag(root) != "device":
        raise BadReply(f"expected Device, got {root.tag!s:.40}")
    details = _child(root, "devicedetails")
    if details is None:
        raise BadReply("a Device without DeviceDetails")
    variables: dict[str, Variable] = {}
    for component in _children(_child(root, "components"), "component"):
        for holder in _children(component, "variables"):
            for element in _children(holder, "variable"):
                name = _text(element, "name")
                if name and name not in variables:
                    variables[name] = Variable(name, _text(element, "value"), _text(element, "units"),
                                               _text(element, "description"))
    return QueryReply(_device(details), variables)


# -- values ----------------------------------------------------------------------------------


class BadValue(ValueError):
    """A value in a format this module does not read as what its variable means (one value lost)."""


UNKNOWN = frozenset({"", "invalid", "none", "null", "n/a", "na", "unknown", "-", "--"})
ZIGBEE_EPOCH = 946_684_800  # 2000-01-01 in Unix seconds: what the EAGLE sends for "not set" (§2.3)
_SCALE = {  # unit (lower case) -> (what it measures, factor to kW / kWh)
    "w": ("power", 0.001), "kw": ("power", 1.0), "mw": ("power", 1000.0),
    "wh": ("energy", 0.001), "kwh": ("energy", 1.0), "mwh": ("energy", 1000.0),
}
_WANTED = {"kW": "power", "kWh": "energy"}


def is_unknown(text: str) -> bool:
    """Empty or a word for "no data": never a 0 (§2.4: empty values read as 0 wreck totals)."""
    return text.strip().lower() in UNKNOWN


def _decimal(text: str, what: str) -> float:
    word = text.strip()
    if word.lower().startswith(("0x", "-0x", "+0x")):
        raise BadValue(f"{what}: hex {word[:24]!r} where a decimal was expected")
    try:
        value = float(word.replace(",", "")) if word and word[-1].isdigit() or word.endswith(".") else None
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        raise BadValue(f"{what}: {word[:24]!r} is not a number")
    return value


def quantity(variable: Variable, unit: str) -> float | None:
    """The value in ``unit`` ("kW" or "kWh"), None when unknown; ``BadValue`` when unreadable.

    Current firmware sends ``2853.662000`` with the unit in ``Units``; the 2017 manual's example
    has it inside the value (``21.499 kW``, §2.3): both are read, and W/Wh or MW/MWh are scaled.
    A unit of another kind (kWh for a demand) or a hex raw count is refused: its scale is unknown.
    """
    text = variable.value.strip()
    if is_unknown(text):
        return None
    units = variable.units.strip()
    number, _space, inline = text.partition(" ")
    if inline.strip():
        text, units = number, inline.strip()
    elif text and text[-1].isalpha() and not text.lower().startswith(("0x", "-0x", "+0x")):
        split = len(text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        if split == 0:
            raise BadValue(f"{variable.name}: {text[:24]!r} is not a number")
        text, units = text[:split], text[split:]
    value = _decimal(text, variable.name)
    if not units:
        return value
    kind, factor = _SCALE.get(units.lower(), (None, 0.0))
    if kind != _WANTED[unit]:
        raise BadValue(f"{variable.name}: unit {units[:12]!r} where {unit} was expected")
    return value * factor


def decimal_number(variable: Variable) -> float | None:
    """A plain number without unit (a price, a multiplier), None when unknown."""
    text = variable.value.strip()
    return None if is_unknown(text) else _decimal(text, variable.name)


def integer(variable: Variable) -> int | None:
    """A whole number sent in decimal or ``0x`` hex (firmware differ), None when unknown."""
    text = variable.value.strip()
    if is_unknown(text):
        return None
    try:
        if text.lower().startswith(("0x", "-0x", "+0x")):
            return int(text, 16)
        value = float(text)
    except ValueError:
        raise BadValue(f"{variable.name}: {text[:24]!r} is not a whole number") from None
    if value != value or value in (float("inf"), float("-inf")) or value != int(value):
        raise BadValue(f"{variable.name}: {text[:24]!r} is not a whole number")
    return int(value)


def unix_seconds(text: str, what: str) -> int | None:
    """Unix seconds sent in decimal or hex (``LastContact`` is hex, §2.3); None for "not set"
    (empty, 0, or ZigBee time 0 = 946684800)."""
    value = integer(Variable(what, text))
    if value is None or value in (0, ZIGBEE_EPOCH, 0xFFFFFFFF):
        return None
    if not 0 < value < 1 << 36:
        raise BadValue(f"{what}: {text.strip()[:24]!r} is not a time")
    return value


def boolean(variable: Variable) -> bool | None:
    text = variable.value.strip().lower()
    if is_unknown(text):
        return None
    if text in ("true", "y", "yes", "1"):
        return True
    if text in ("false", "n", "no", "0"):
        return False
    raise BadValue(f"{variable.name}: {variable.value.strip()[:24]!r} is not true or false")

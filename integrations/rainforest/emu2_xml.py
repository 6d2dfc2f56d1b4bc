"""The EMU-2 / RAVEn serial XML protocol (spec ``han-bridges.md`` §1): framing, fragments, commands.

Protocol only (no ``ems`` import), tested on bytes. The bridge writes a stream of flat XML
fragments (one root element, one level of children, no attributes, code page 1252) at any time:
replies to commands and pushes on its own schedule. This module

* splits the byte stream into fragments (``FragmentSplitter``) and parses each one alone, so a
  broken fragment (a reboot mid-write, line noise) costs that fragment only;
* decodes a fragment's fields into protocol values (``decode``): hex, ``0x``-prefixed, with the
  ZigBee UTCTime epoch of 2000, Multiplier/Divisor scaling (0 read as 1, manual §1.5), signed
  demand (24- or 32-bit two's complement, as exporting meters send it), prices as exact
  ``Decimal``s with their trailing digits. A field that does not parse is left out and named in
  ``Decoded.problems``; the fragment's other fields are kept;
* encodes commands (``command``), as aioraven writes them (compact, ASCII, no declaration).

Why not aioraven's reader (0.7.1, read in full; it stays a dependency: our tests use its own
client as the independent peer that reads the simulated EMU-2's output): it is made for
request/response polling, not for a stream of pushes:

* its catch-all reader (``read_tag(None)``) receives every *child* element as a fragment of its
  own (``{}`` for ``<DeviceMacId>``), and a fragment that arrives while no reader waits is dropped;
* the parser's ``<root>`` keeps every fragment ever received (a months-long stream grows without
  bound), and a parse error drops the rest of the chunk, good fragments with it;
* a ``Warning`` fragment goes through ``warnings.warn``: it is an exception or a printed warning
  depending on the process's warning filters, and never reaches the reader;
* its converters raise on the first bad field (the whole reply is lost), divide by a zero
  Divisor, sign-extend only 32-bit values, return readings as formatted strings and prices as
  floats, do not read ``BlockPriceDetail``, and leave message text HTML-escaped.

So the transport is pyserial-asyncio-fast (what aioraven itself uses), with this framing on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

ZIGBEE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
BAUDRATE = 115200
MAX_FRAGMENT_BYTES = 8192  # the largest a bridge writes is a few hundred bytes (BlockPriceDetail)
MAX_DEMAND_KW = 100_000.0  # beyond any premise: a value misread (unsigned 2^32 / 1000 is 4 294 967 kW)
MAX_ENERGY_KWH = 1e12

# -- framing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment as it came: its root tag and its children's (tag, text) in order."""

    tag: str
    fields: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        """The text of the first child ``name`` (stripped), or None when the fragment has none."""
        for key, value in self.fields:
            if key == name:
                return value.strip()
        return None

    def all(self, name: str) -> list[str]:
        return [value.strip() for key, value in self.fields if key == name]


@dataclass(frozen=True, slots=True)
class Garbled:
    """Bytes that were not a fragment: junk between fragments, or a fragment that does not parse."""

    reason: str
    size: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The port closed (``error`` is why, None for an orderly close)."""

    error: BaseException | None = None


# A tag (open, close or empty), or the start of a CDATA section, comment or processing instruction.
_TOKEN = re.compile(rb"<(/?)([A-Za-z_][A-Za-z0-9_.:-]*)[ \t\r\n]*(/?)>|<!\[CDATA\[|<!--|<\?")
_SKIP_TO = {b"<![CDATA[": b"]]>", b"<!--": b"-->", b"<?": b"?>"}
_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});)")


class FragmentSplitter:
    """Cuts a byte stream into fragments: feed it what the port read, take what it completed.

    It tracks depth by tag alone (fragments are flat: a root and children with text): a root
    closes on its own closing tag; a tag opened inside a child means the fragment before was cut
    off (the bridge rebooted mid-write) and a new one begins there. What is not a fragment comes
    out as ``Garbled`` and the stream carries on at the next root.
    """

    def __init__(self, max_fragment_bytes: int = MAX_FRAGMENT_BYTES) -> None:
        self._buffer = b""
        self._max = max_fragment_bytes

    def feed(self, data: bytes) -> list[Fragment | Garbled]:
        self._buffer += data
        out: list[Fragment | Garbled] = []
        buffer = self._buffer
        done = 0  # bytes fully handled
        depth, root, root_start, child, child_start, child_end = 0, b"", 0, b"", 0, 0
        index = 0
        while True:
            match = _TOKEN.search(buffer, index)
            if match is None:
                break
            opener = match.group(0)
            if opener in _SKIP_TO:  # CDATA, a comment or a declaration: skip it whole
                end = buffer.find(_SKIP_TO[opener], match.end())
                if end < 0:
                    break  # not complete yet
                index = end + len(_SKIP_TO[opener])
                continue
            closing, name, empty = match.group(1) == b"/", match.group(2), match.group(3) == b"/"
            if depth == 0:
                self._junk(buffer[done:match.start()], out)
                if closing or empty:
                    out.append(Garbled(f"a stray <{'/' if closing else ''}{name.decode('ascii', 'replace')}> between fragments",
                                       match.end() - match.start()))
                    done = match.end()
                else:
                    depth, root, root_start, done = 1, name, match.start(), match.start()
            elif depth == 1:
                if closing and name == root:
                    out.append(parse_fragment(buffer[root_start:match.end()]))
                    depth, done = 0, match.end()
                elif closing:
                    out.append(Garbled(f"<{_text(root)}> closed by </{_text(name)}>", match.end() - root_start))
                    depth, done = 0, match.end()
                elif not empty:
                    depth, child, child_start, child_end = 2, name, match.start(), match.end()
            else:  # inside a child
                if closing and name == child:
                    depth = 1
                elif closing:
                    out.append(Garbled(f"<{_text(child)}> in <{_text(root)}> not closed", match.end() - root_start))
                    depth, done = 0, match.end()
                elif not buffer[child_end:match.start()].strip():
                    # A tag right inside the "child": that was the root of a new fragment, and the
                    # one before it was cut off (the bridge rebooted mid-write).
                    out.append(Garbled(f"<{_text(root)}> cut off", child_start - root_start))
                    root, root_start, done = child, child_start, child_start
                    if not empty:
                        child, child_start, child_end = name, match.start(), match.end()
                    else:
                        depth = 1
                else:  # a tag after a child's text: the fragment was cut off; a new one starts here
                    out.append(Garbled(f"<{_text(root)}> cut off", match.start() - root_start))
                    depth, root, root_start, done = 1, name, match.start(), match.start()
                    if empty:
                        out.append(Garbled(f"a stray <{_text(name)}/>", match.end() - match.start()))
                        depth, done = 0, match.end()
            index = match.end()
        rest = buffer[done:]
        if depth == 0:
            start = rest.rfind(b"<")
            keep = rest[start:] if start >= 0 and b">" not in rest[start:] else b""
            self._junk(rest[: len(rest) - len(keep)], out)
            rest = keep
        if len(rest) > self._max:
            out.append(Garbled(f"a fragment longer than {self._max} bytes", len(rest)))
            rest = b""
        self._buffer = rest
        return out

    @staticmethod
    def _junk(data: bytes, out: list[Fragment | Garbled]) -> None:
        if data.strip(b" \t\r\n\x00"):
            out.append(Garbled("bytes between fragments", len(data)))


def _text(name: bytes) -> str:
    return name.decode("ascii", "replace")


def parse_fragment(data: bytes) -> Fragment | Garbled:
    """One fragment's bytes (code page 1252) as a ``Fragment``, or ``Garbled`` naming what is wrong.

    A bare ``&`` (the bridge passing the utility's ``&ndash;`` on unescaped) is read as text, not
    an error: the message's HTML entities are resolved later (``html.unescape``), once.
    """
    text = _BARE_AMPERSAND.sub("&amp;", data.decode("cp1252", "replace"))
    try:
        element = ET.fromstring(text)
    except ET.ParseError as err:
        return Garbled(f"malformed fragment: {err}", len(data))
    fields = []
    for child in element:
        if len(child):
            return Garbled(f"<{element.tag}> has a nested <{child.tag}>", len(data))
        fields.append((child.tag, child.text or ""))
    return Fragment(element.tag, tuple(fields))


def command(name: str, args: dict[str, str] | None = None) -> bytes:
    """A command as the bridge reads it: ``<Command><Name>name</Name>...</Command>`` (§1.4)."""
    element = ET.Element("Command")
    ET.SubElement(element, "Name").text = name
    for key, value in (args or {}).items():
        ET.SubElement(element, key).text = value
    return ET.tostring(element, encoding="ascii", xml_declaration=False)


def hex_arg(value: int, digits: int) -> str:
    return f"0x{value:0{digits}X}"


def mac_arg(mac: str) -> str:
    """A MAC id as a ``MeterMacId`` argument (aioraven's form: 0x and 16 upper-case digits)."""
    return "0x" + mac.upper()


# -- decoded values --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One field that did not decode: its name, what it held, and why it was refused."""

    field: str
    raw: str
    why: str

    def __str__(self) -> str:
        return f"{self.field} {self.raw[:40]!r}: {self.why}"


@dataclass(frozen=True, slots=True)
class Demand:
    """InstantaneousDemand: kW, positive importing, negative exporting."""

    device_mac: str | None
    meter_mac: str | None
    timestamp: datetime | None
    demand_kw: float | None


@dataclass(frozen=True, slots=True)
class Summation:
    """CurrentSummationDelivered: the meter's registers, kWh delivered (imported) and received (exported)."""

    device_mac: str | None
    meter_mac: str | None
    timestamp: datetime | None
    delivered_kwh: float | None
    received_kwh: float | None


@dataclass(frozen=True, slots=True)
class Price:
    """PriceCluster: the price in force (``price`` in the currency's major unit per kWh, exact)."""

    device_mac: str | None
    meter_mac: str | None
    timestamp: datetime | None
    price: Decimal | None
    currency: int | None  # ISO 4217 numeric
    trailing_digits: int | None
    tier: int | None
    tier_label: str | None
    rate_label: str | None
    start: datetime | None = None  # StartTime and Duration: not in the manual, sent by some builds
    duration_min: int | None = None


@dataclass(frozen=True, slots=True)
class BlockPrices:
    """BlockPriceDetail (EMU-2): thresholds (kWh, cumulative; None = unbounded) and prices per block."""

    device_mac: str | None
    meter_mac: str | None
    timestamp: datetime | None
    currency: int | None
    thresholds_kwh: tuple[float | None, ...]
    prices: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class Message:
    """MessageCluster: the utility's text (HTML entities resolved)."""

    device_mac: str | None
    meter_mac: str | None
    timestamp: datetime | None
    message_id: int | None
    text: str
    confirmation_required: bool
    confirmed: bool
    queue: str  # "Active" or "Cancel Pending"


@dataclass(frozen=True, slots=True)
class MeterTime:
    """TimeCluster: the meter's clock (``local`` is wall-clock seconds, naive)."""

    device_mac: str | None
    meter_mac: str | None
    utc: datetime | None
    local: datetime | None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """DeviceInfo: what the bridge is. Its install code and link key are never kept."""

    device_mac: str | None
    fw_version: str | None
    hw_version: str | None
    manufacturer: str | None
    model_id: str | None
    date_code: str | None


@dataclass(frozen=True, slots=True)
class Connection:
    """ConnectionStatus / NetworkInfo: the bridge's link to the meter."""

    device_mac: str | None
    meter_mac: str | None
    coord_mac: str | None
    status: str | None
    description: str | None
    channel: int | None
    link_strength_pct: int | None


@dataclass(frozen=True, slots=True)
class MeterList:
    device_mac: str | None
    meter_macs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MeterDetails:
    """MeterInfo: the meter's type and nickname."""

    device_mac: str | None
    meter_mac: str | None
    meter_type: str | None
    nick_name: str | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """ScheduleInfo: how often the bridge pushes one event."""

    device_mac: str | None
    meter_mac: str | None
    event: str | None
    frequency_s: int | None
    enabled: bool | None


@dataclass(frozen=True, slots=True)
class BridgeWarning:
    """Warning: the bridge refused something (``Unknown command``)."""

    text: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A root tag this module does not read (PeriodUsage, FastPollStatus, a newer firmware's)."""

    tag: str


Value = (Demand | Summation | Price | BlockPrices | Message | MeterTime | DeviceInfo | Connection
         | MeterList | MeterDetails | Schedule | BridgeWarning | Unknown)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A fragment's value and the fields refused on the way (those are None in ``value``)."""

    value: Value
    problems: tuple[Problem, ...] = ()


# -- field readers ---------------------------------------------------------------------------

_HEX = re.compile(r"0[xX][0-9a-fA-F]{1,16}")


@dataclass
class _Fields:
    fragment: Fragment
    problems: list[Problem] = field(default_factory=list)

    def refuse(self, name: str, raw: str, why: str) -> None:
        self.problems.append(Problem(name, raw, why))

    def raw(self, name: str) -> str | None:
        value = self.fragment.get(name)
        return value if value else None

    def hex(self, name: str, *, bits: int = 64) -> int | None:
        """A ``0x`` hex field (§1.5); a value without the prefix or wider than ``bits`` is refused."""
        raw = self.raw(name)
        if raw is None:
            return None
        if not _HEX.fullmatch(raw):
            self.refuse(name, raw, "expected 0x-prefixed hex")
            return None
        value = int(raw, 16)
        if value >> bits:
            self.refuse(name, raw, f"wider than {bits} bits")
            return None
        return value

    def signed(self, name: str) -> int | None:
        """Two's complement by the width the bridge wrote: 8 digits are 32-bit, 6 digits 24-bit (§1.5)."""
        raw = self.raw(name)
        value = self.hex(name)
        if value is None or raw is None:
            return None
        digits = len(raw) - 2
        if digits == 8 and value & 0x80000000:
            return value - (1 << 32)
        if digits == 6 and value & 0x800000:
            return value - (1 << 24)
        return value

    def mac(self, name: str) -> str | None:
        """An EUI-64 as 16 lower-case hex digits."""
        raw = self.raw(name)
        if raw is None:
            return None
        digits = raw[2:] if raw[:2].lower() == "0x" else raw
        if not re.fullmatch(r"[0-9a-fA-F]{16}", digits):
            self.refuse(name, raw, "expected a 64-bit MAC id (16 hex digits)")
            return None
        return digits.lower()

    def time(self, name: str) -> datetime | None:
        """Seconds since 2000-01-01 UTC; 0 and all-ones are "not set"."""
        value = self.hex(name, bits=32)
        if value is None or value in (0, 0xFFFFFFFF):
            return None
        return ZIGBEE_EPOCH + timedelta(seconds=value)

    def flag(self, name: str) -> bool | None:
        raw = self.raw(name)
        if raw is None:
            return None
        if raw not in ("Y", "N"):
            self.refuse(name, raw, "expected Y or N")
            return None
        return raw == "Y"

    def text(self, name: str) -> str | None:
        return self.raw(name)

    def scale(self) -> tuple[int, int] | None:
        """Multiplier and Divisor; a missing or zero one is 1 (the manual's rule, §1.12)."""
        multiplier = self.hex("Multiplier", bits=32) if self.raw("Multiplier") is not None else 1
        divisor = self.hex("Divisor", bits=32) if self.raw("Divisor") is not None else 1
        if multiplier is None or divisor is None:
            return None  # refused above: the values it scales cannot be known
        return (multiplier or 1), (divisor or 1)

    def scaled(self, name: str, scale: tuple[int, int] | None, *, signed: bool, limit: float) -> float | None:
        raw_value = self.signed(name) if signed else self.hex(name)
        if raw_value is None:
            return None
        if scale is None:
            self.refuse(name, self.raw(name) or "", "its Multiplier or Divisor did not decode")
            return None
        value = raw_value * scale[0] / scale[1]
        if abs(value) > limit:
            self.refuse(name, self.raw(name) or "", f"{value:g} is beyond any meter's range")
            return None
        return value


def _price(fields: _Fields, name: str, digits: int | None) -> Decimal | None:
    raw = fields.hex(name, bits=32)
    if raw is None:
        return None
    return Decimal(raw).scaleb(-(digits or 0))


# -- decoders --------------------------------------------------------------------------------


def decode(fragment: Fragment) -> Decoded:
    """The fragment's value; the fields that did not decode are named in ``problems``."""
    decoder = _DECODERS.get(fragment.tag)
    if decoder is None:
        return Decoded(Unknown(fragment.tag))
    fields = _Fields(fragment)
    value = decoder(fields)
    return Decoded(value, tuple(fields.problems))


def _demand(f: _Fields) -> Demand:
    scale = f.scale()
    return Demand(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.time("TimeStamp"),
                  f.scaled("Demand", scale, signed=True, limit=MAX_DEMAND_KW))


def _summation(f: _Fields) -> Summation:
    scale = f.scale()
    # Rainforest's documents show 32-bit summations and aioraven sign-extends them; ZigBee's
    # registers are 48-bit and never negative, so they are read unsigned (§1.12).
    return Summation(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.time("TimeStamp"),
                     f.scaled("SummationDelivered", scale, signed=False, limit=MAX_ENERGY_KWH),
                     f.scaled("SummationReceived", scale, signed=False, limit=MAX_ENERGY_KWH))


def _price_cluster(f: _Fields) -> Price:
    digits = f.hex("TrailingDigits", bits=8)
    if digits is not None and digits > 15:
        f.refuse("TrailingDigits", f.raw("TrailingDigits") or "", "more than 15 decimal places")
        digits = None
    price = None
    if digits is not None or f.raw("TrailingDigits") is None:
        price = _price(f, "Price", digits)
    elif f.raw("Price") is not None:
        f.refuse("Price", f.raw("Price") or "", "its TrailingDigits did not decode")
    duration = f.hex("Duration", bits=16)
    return Price(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.time("TimeStamp"), price,
                 f.hex("Currency", bits=16), digits, f.hex("Tier", bits=8), f.text("TierLabel"),
                 f.text("RateLabel"), f.time("StartTime"), duration)


def _block_prices(f: _Fields) -> BlockPrices:
    scale = f.scale()
    digits = f.hex("TrailingDigits", bits=8)
    count = f.hex("NumberOfBlocks", bits=8)
    thresholds: list[float | None] = []
    prices: list[Decimal] = []
    for n in range(1, min(count if count is not None else 16, 16) + 1):
        threshold = f.hex(f"Threshold{n}", bits=32)
        price = _price(f, f"Price{n}", digits) if digits is not None else None
        if threshold is None or price is None or scale is None:
            continue  # absent, or refused above: the block is left out whole
        thresholds.append(None if threshold == 0xFFFFFFFF else threshold * scale[0] / scale[1])
        prices.append(price)
    return BlockPrices(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.time("TimeStamp"),
                       f.hex("Currency", bits=16), tuple(thresholds), tuple(prices))


def _message(f: _Fields) -> Message:
    return Message(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.time("TimeStamp"), f.hex("Id", bits=32),
                   html.unescape(f.text("Text") or ""), bool(f.flag("ConfirmationRequired")),
                   bool(f.flag("Confirmed")), f.text("Queue") or "Active")


def _time(f: _Fields) -> MeterTime:
    local = f.time("LocalTime")
    return MeterTime(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.time("UTCTime"),
                     None if local is None else local.replace(tzinfo=None))


def _device_info(f: _Fields) -> DeviceInfo:
    date_code = f.text("DateCode")
    if date_code is not None and set(date_code) <= {"\xff", "\x00"}:
        date_code = None  # the filler some firmware sends (§1.5)
    return DeviceInfo(f.mac("DeviceMacId"), f.text("FWVersion"), f.text("HWVersion"),
                      f.text("Manufacturer"), f.text("ModelId"), date_code)


def _connection(f: _Fields) -> Connection:
    channel_raw = f.raw("Channel")
    channel = None
    if channel_raw is not None:
        if channel_raw.isdigit() and 11 <= int(channel_raw) <= 26:
            channel = int(channel_raw)
        else:
            f.refuse("Channel", channel_raw, "expected a channel 11-26")
    strength = f.hex("LinkStrength", bits=8)
    if strength is not None and strength > 100:
        f.refuse("LinkStrength", f.raw("LinkStrength") or "", "above 100 %")
        strength = None
    return Connection(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.mac("CoordMacId"), f.text("Status"),
                      f.text("Description"), channel, strength)


def _meter_list(f: _Fields) -> MeterList:
    macs = []
    for raw in f.fragment.all("MeterMacId"):
        digits = raw[2:] if raw[:2].lower() == "0x" else raw
        if re.fullmatch(r"[0-9a-fA-F]{16}", digits):
            macs.append(digits.lower())
        elif raw:
            f.refuse("MeterMacId", raw, "expected a 64-bit MAC id (16 hex digits)")
    return MeterList(f.mac("DeviceMacId"), tuple(macs))


def _meter_info(f: _Fields) -> MeterDetails:
    meter_type = f.text("MeterType")
    if meter_type is not None and meter_type not in ("electric", "gas", "water", "other"):
        if _HEX.fullmatch(meter_type):  # numeric, seen in the field (aioraven's TODO): SE's 0 is electric
            meter_type = {0: "electric", 1: "gas", 2: "water"}.get(int(meter_type, 16), "other")
        else:
            f.refuse("MeterType", meter_type, "expected electric, gas, water or other")
            meter_type = None
    return MeterDetails(f.mac("DeviceMacId"), f.mac("MeterMacId"), meter_type, f.text("NickName"))


def _schedule(f: _Fields) -> Schedule:
    return Schedule(f.mac("DeviceMacId"), f.mac("MeterMacId"), f.text("Event"), f.hex("Frequency", bits=32),
                    f.flag("Enabled"))


def _warning(f: _Fields) -> BridgeWarning:
    return BridgeWarning(f.text("Text") or "")


_DECODERS: dict[str, Any] = {
    "InstantaneousDemand": _demand,
    "CurrentSummationDelivered": _summation,
    "PriceCluster": _price_cluster,
    "BlockPriceDetail": _block_prices,
    "MessageCluster": _message,
    "TimeCluster": _time,
    "DeviceInfo": _device_info,
    "ConnectionStatus": _connection,
    "NetworkInfo": _connection,
    "MeterList": _meter_list,
    "MeterInfo": _meter_info,
    "ScheduleInfo": _schedule,
    "Warning": _warning,
}
KNOWN_TAGS = frozenset(_DECODERS)


# -- the port --------------------------------------------------------------------------------

Event = Fragment | Garbled | Closed


class FragmentProtocol(asyncio.Protocol):
    """The serial connection's protocol: what the port reads goes through the splitter to ``events``."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._splitter = FragmentSplitter()
        self.transport: asyncio.WriteTransport | None = None
        self.made = asyncio.Event()
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport
        self.made.set()

    def data_received(self, data: bytes) -> None:
        for event in self._splitter.feed(data):
            self.events.put_nowait(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closed.set()
        self.events.put_nowait(Closed(exc))


class PortInUse(OSError):
    """Another reader holds the port (its lock)."""


class Emu2Port:
    """An open serial port to a bridge: ``send`` commands, ``next`` event (fragment, garbled, closed)."""

    def __init__(self, url: str, protocol: FragmentProtocol, transport: asyncio.WriteTransport) -> None:
        self.url = url
        self._protocol = protocol
        self._transport = transport

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 5.0) -> Emu2Port:
        """Open ``url`` (a device path, or any pyserial URL) at 115200 8N1; ``OSError`` when it cannot be.

        The blocking open runs in a thread (pyserial-asyncio-fast's), bounded: a USB device can
        hang on open (§1.12).
        """
        from serial import SerialException
        from serial_asyncio_fast import create_serial_connection

        protocol = FragmentProtocol()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                # Exclusive (an advisory lock): a second reader of the same port would take half the fragments.
                transport, _ = await create_serial_connection(loop, lambda: protocol, url, baudrate=BAUDRATE,
                                                              exclusive=True)
                await protocol.made.wait()  # the transport calls connection_made soon after, not before
        except TimeoutError as err:
            raise OSError(f"opening {url} did not finish within {timeout_s:g} s") from err
        except SerialException as err:
            if "exclusively lock" in str(err):
                raise PortInUse(f"{url} is in use by another reader") from err
            raise OSError(str(err)) from err
        return cls(url, protocol, transport)

    @property
    def is_open(self) -> bool:
        return self._protocol.transport is not None

    def send(self, name: str, args: dict[str, str] | None = None) -> None:
        if self._protocol.transport is None:
            raise ConnectionError(f"{self.url} is closed")
        self._transport.write(command(name, args))

    async def next(self) -> Event:
        return await self._protocol.events.get()

    def pending(self) -> int:
        return self._protocol.events.qsize()

    async def close(self) -> None:
        transport = self._transport
        if transport.is_closing() and self._protocol.closed.is_set():
            return
        transport.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._protocol.closed.wait()

"""Green Button files read into IntervalReadings: ESPI XML and the CSV utilities offer.

Green Button is how North American utilities hand a customer their interval history. Two
shapes exist: the NAESB ESPI (REQ.21) Atom feed, and a CSV from the "Download my data" button.
This module only parses (it reads the byte stream it is given); ``ems.importer`` opens the
file and writes the readings. A file that cannot be read whole is rejected with a
GreenButtonError naming the line (and, for XML, the element) and what is wrong.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import urlsplit
from xml.parsers import expat
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from ems.model import IntervalReading

ESPI_NS = "http://naesb.org/espi"
ATOM_NS = "http://www.w3.org/2005/Atom"

# ESPI enumerations (REQ.21 UomKind, FlowDirectionKind, AccumulationKind).
UOM_WH = 72
FLOW_FORWARD = 1  # delivered to the customer
FLOW_NET = 4  # delivered minus received, signed
FLOW_REVERSE = 19  # received from the customer
ACCUMULATION_NONE = 0
ACCUMULATION_DELTA = 4  # each value is the energy of its own interval
_UOM_NAMES = {
    38: "W (power)",
    42: "m³",
    61: "VA",
    63: "VAr",
    71: "VAh",
    73: "VArh",
    119: "ft³",
    169: "therms",
}

_READING_TYPE_FIELDS = frozenset(
    ("accumulationBehaviour", "flowDirection", "intervalLength", "powerOfTenMultiplier", "uom")
)

CHUNK_BYTES = 1 << 18
CONSUMED, GENERATED = 0, 1

Progress = Callable[[int], None]
"""Called with the number of bytes read and parsed so far."""


class GreenButtonError(ValueError):
    """The file cannot be imported; ``where`` names the line or element, ``problem`` says why."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}" if where else problem)


@dataclass(frozen=True, slots=True)
class GreenButtonData:
    """What a file held: its intervals in time order, and what was left out and why."""

    kind: str  # "ESPI XML" | "CSV"
    readings: tuple[IntervalReading, ...]
    skipped: tuple[str, ...] = ()


def parse(
    stream: BinaryIO, meter_id: str, timezone: str, progress: Progress | None = None
) -> GreenButtonData:
    """Read a Green Button file of either shape (told apart by its first byte).

    ``timezone`` (an IANA name) is the one the CSV's local times are in; ESPI times are UTC.
    """
    chunks = _chunks(stream, progress)
    first = next(chunks, b"")
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GreenButtonError("line 1", "the file is UTF-16 text; save it as UTF-8 and try again")
    head = first.removeprefix(b"\xef\xbb\xbf").lstrip()
    rest = _prepend(first, chunks)
    if head.startswith(b"<"):
        return _EspiReader(meter_id).read(rest)
    return _CsvReader(meter_id, timezone).read(rest)


def parse_espi(
    stream: BinaryIO, meter_id: str, progress: Progress | None = None
) -> GreenButtonData:
    """Read an ESPI XML feed (or a bare ESPI document) streamed in chunks."""
    return _EspiReader(meter_id).read(_chunks(stream, progress))


def parse_csv(
    stream: BinaryIO, meter_id: str, timezone: str, progress: Progress | None = None
) -> GreenButtonData:
    """Read a utility's Green Button CSV; its local times are in ``timezone``."""
    return _CsvReader(meter_id, timezone).read(_chunks(stream, progress))


def _chunks(stream: BinaryIO, progress: Progress | None) -> Iterator[bytes]:
    """The stream in chunks; progress is reported once the previous chunk has been parsed."""
    done = 0
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk
        done += len(chunk)
        if progress is not None:
            progress(done)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


FIRST_EPOCH_S = -62_135_596_800  # 0001-01-01 00:00:00, the first second a datetime holds
LAST_EPOCH_S = 253_402_300_799  # 9999-12-31 23:59:59, the last second a datetime holds


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _kwh(value: float, power_of_ten: int) -> float:
    """value × 10^power_of_ten Wh in kWh, rounded once (value / 1000 stays exact)."""
    exponent = power_of_ten - 3
    return float(value * 10**exponent if exponent >= 0 else value / 10**-exponent)


# --- Both directions of every interval --------------------------------------------------


class _Intervals:
    """Consumed and generated energy per (start epoch s, duration s), with the line each came from.

    The same value twice is a repeated block and is kept once; two different values for the
    same interval and direction, or intervals that overlap, reject the file.
    """

    def __init__(self) -> None:
        self._slots: dict[tuple[int, int], list[Any]] = {}

    def put(self, start_s: int, duration_s: int, direction: int, kwh: float, line: int) -> None:
        if not FIRST_EPOCH_S <= start_s <= LAST_EPOCH_S - max(duration_s, 0):
            raise GreenButtonError(f"line {line}", f"an interval starts at {start_s} s from 1970, "
                                                   "outside the years 1 to 9999")
        slot = self._slots.get((start_s, duration_s))
        if slot is None:
            slot = self._slots[(start_s, duration_s)] = [None, None, 0, 0]
        old = slot[direction]
        if old is None:
            slot[direction] = kwh
            slot[2 + direction] = line
        elif not math.isclose(old, kwh, rel_tol=1e-9, abs_tol=1e-9):
            what = "consumed" if direction == CONSUMED else "generated"
            raise GreenButtonError(
                f"line {line}",
                f"{kwh:g} kWh {what} in the interval from {_iso(start_s)} ({duration_s} s), but "
                f"line {slot[2 + direction]} gave {old:g} kWh for the same interval "
                "(does the file hold more than one meter?)",
            )

    def readings(self, meter_id: str) -> tuple[IntervalReading, ...]:
        result = []
        previous_end, previous_line = None, 0
        for (start_s, duration_s), slot in sorted(self._slots.items()):
            line = slot[2] or slot[3]
            if previous_end is not None and start_s < previous_end:
                raise GreenButtonError(
                    f"line {line}",
                    f"the interval from {_iso(start_s)} ({duration_s} s) overlaps the one on "
                    f"line {previous_line}, which ends at {_iso(previous_end)}",
                )
            if previous_end is None or start_s + duration_s > previous_end:
                previous_end, previous_line = start_s + duration_s, line
            result.append(
                IntervalReading(
                    meter_id=meter_id,
                    start=datetime.fromtimestamp(start_s, UTC),
                    duration_s=duration_s,
                    consumed_kwh=slot[0] or 0.0,
                    generated_kwh=slot[1] or 0.0,
                )
            )
        return tuple(result)


# --- ESPI XML -----------------------------------------------------------------------------


@dataclass(slots=True)
class _ReadingType:
    line: int
    fields: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Block:
    number: int
    line: int
    links: list[tuple[str, str]]
    start_s: int | None = None
    duration_s: int | None = None
    # (start s, duration s, value, line) of each IntervalReading, times None when not given
    readings: list[tuple[int | None, int | None, int, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Entry:
    line: int
    links: list[tuple[str, str]] = field(default_factory=list)
    reading_type: _ReadingType | None = None
    meter_reading: bool = False


def _href_path(href: str) -> str:
    """A link reduced to what names the resource: from its UsagePoint or ReadingType on.

    Feeds spell one resource absolute here and relative there, or under Subscription/N in
    one link and RetailCustomer/N in another.
    """
    try:
        path = urlsplit(href.strip()).path.rstrip("/")
    except ValueError:  # not a URL ("http://[x/UsagePoint/1": an unclosed IPv6 host): compared as written
        path = href.strip().rstrip("/")
    at = max(path.rfind("/UsagePoint/"), path.rfind("/ReadingType/"))
    return path[at:] if at >= 0 else path


def _collection_owner(href: str, collection: str) -> str | None:
    path = _href_path(href)
    at = path.find(f"/{collection}")
    return path[:at] if at >= 0 else None


class _EspiReader:
    """Streams an ESPI document through expat (line numbers for errors, no tree in memory)."""

    def __init__(self, meter_id: str) -> None:
        self.meter_id = meter_id
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._chars
        parser.EntityDeclHandler = self._entity
        self._parser = parser
        self._local: dict[str, str] = {}  # "namespace name" -> name (ESPI is read by local name)
        self._stack: list[str] = []
        self._text: list[str] | None = None
        self._text_depth = 0
        self._text_line = 0
        self._entry: _Entry | None = None
        self._reading_type: _ReadingType | None = None
        self._block: _Block | None = None
        self._reading: list[Any] = []  # [start, duration, value, line, number] of the open one
        self._in_reading = False
        self._reading_number = 0
        self.reading_types: dict[str, _ReadingType] = {}
        self.meter_readings: dict[str, list[str]] = {}
        self.blocks: list[_Block] = []
        self.cost_only = 0

    def read(self, chunks: Iterable[bytes]) -> GreenButtonData:
        parser = self._parser
        try:
            for chunk in chunks:
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except expat.ExpatError as err:
            problem = expat.errors.messages.get(err.code, str(err))
            raise GreenButtonError(
                f"line {err.lineno}, column {err.offset + 1}",
                f"the XML is malformed or ends early ({problem}); was the download cut short?",
            ) from err
        except GreenButtonError:
            raise
        except (LookupError, ValueError) as err:
            # The XML declaration names an encoding Python does not know ("UTF-4") or expat cannot
            # read (multi-byte ones such as "EUC-JP"): expat raises these from Parse itself.
            if "encoding" not in str(err):
                raise
            raise GreenButtonError(
                f"line {parser.CurrentLineNumber}",
                f"the XML's declared encoding cannot be read ({err}); save the file as UTF-8 and try again",
            ) from err
        return self._resolve()

    # -- expat handlers ----------------------------------------------------------------------

    def _entity(self, name: str, *_: object) -> None:
        # Green Button files never declare entities; refusing them also rules out entity bombs.
        raise GreenButtonError(
            f"line {self._parser.CurrentLineNumber}",
            f"the XML declares an entity ({name!r}), which Green Button files never do",
        )

    def _where(self, line: int) -> str:
        if self._in_reading and self._block is not None:
            return f"line {line} (IntervalReading #{self._reading_number} in IntervalBlock #{self._block.number})"
        if self._block is not None:
            return f"line {line} (IntervalBlock #{self._block.number})"
        if self._reading_type is not None:
            return f"line {line} (ReadingType)"
        return f"line {line}"

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = self._local.get(name)
        if local is None:
            local = self._local[name] = name.rpartition(" ")[2]
        stack = self._stack
        parent = stack[-1] if stack else ""
        stack.append(local)
        if self._text is not None:
            return  # inside a captured leaf's children (not expected; ignored)
        line = self._parser.CurrentLineNumber
        if local in ("value", "start", "duration"):
            if (local == "value" and parent == "IntervalReading") or parent in (
                "timePeriod",
                "interval",
            ):
                self._capture(line)
        elif local == "IntervalReading":
            if self._block is None:
                raise GreenButtonError(
                    f"line {line}", "an IntervalReading outside any IntervalBlock"
                )
            self._reading_number += 1
            self._in_reading = True
            self._reading = [None, None, None, line]
        elif local == "IntervalBlock":
            links = self._entry.links if self._entry is not None else []
            self._block = _Block(len(self.blocks) + 1, line, links)
            self._reading_number = 0
        elif (
            parent == "ReadingType"
            and local in _READING_TYPE_FIELDS
            and self._reading_type is not None
        ):
            self._capture(line)
        elif local == "ReadingType":
            self._reading_type = _ReadingType(line)
        elif local == "entry":
            self._entry = _Entry(line)
        elif local == "link" and self._entry is not None:
            self._entry.links.append((attrs.get("rel", ""), attrs.get("href", "")))
        elif local == "MeterReading" and self._entry is not None:
            self._entry.meter_reading = True

    def _capture(self, line: int) -> None:
        self._text = []
        self._text_depth = len(self._stack)
        self._text_line = line

    def _chars(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def _end(self, name: str) -> None:
        stack = self._stack
        depth = len(stack)
        local = stack.pop()
        if self._text is not None:
            if depth == self._text_depth:
                self._leaf(local, stack[-1] if stack else "", "".join(self._text).strip())
                self._text = None
            return
        if local == "IntervalReading" and self._in_reading:
            self._end_reading()
        elif local == "IntervalBlock" and self._block is not None:
            self.blocks.append(self._block)
            self._block = None
        elif local == "ReadingType" and self._reading_type is not None:
            if self._entry is not None:
                self._entry.reading_type = self._reading_type
            else:
                self.reading_types[f"#line{self._reading_type.line}"] = self._reading_type
            self._reading_type = None
        elif local == "entry" and self._entry is not None:
            self._end_entry(self._entry)
            self._entry = None

    def _leaf(self, local: str, parent: str, text: str) -> None:
        try:
            number = int(text)
        except ValueError:
            raise GreenButtonError(
                self._where(self._text_line), f"<{local}> is {text[:40]!r}, expected a whole number"
            ) from None
        if parent == "ReadingType" and self._reading_type is not None:
            self._reading_type.fields[local] = number
        elif self._in_reading:
            if local == "value":
                self._reading[2] = number
            elif number < 0 and local == "duration":
                raise GreenButtonError(
                    self._where(self._text_line), f"<duration> is {number}, expected seconds >= 0"
                )
            else:
                self._reading[0 if local == "start" else 1] = number
        elif self._block is not None and parent == "interval":
            if local == "start":
                self._block.start_s = number
            else:
                self._block.duration_s = number

    def _end_reading(self) -> None:
        self._in_reading = False
        start_s, duration_s, value, line = self._reading
        if value is None:
            self.cost_only += 1  # ESPI allows a reading with only a cost: no energy to import
            return
        assert self._block is not None
        self._block.readings.append((start_s, duration_s, value, line))

    def _end_entry(self, entry: _Entry) -> None:
        self_href = next((_href_path(h) for rel, h in entry.links if rel == "self"), "")
        if entry.reading_type is not None:
            self.reading_types[self_href or f"#line{entry.reading_type.line}"] = entry.reading_type
        if entry.meter_reading and self_href:
            self.meter_readings[self_href] = [
                _href_path(h) for rel, h in entry.links if rel == "related"
            ]

    # -- linking and scaling ------------------------------------------------------------------

    def _reading_type_of(self, block: _Block) -> tuple[str, _ReadingType]:
        meter_reading = None
        for rel in ("self", "up"):
            for link_rel, href in block.links:
                if link_rel == rel and meter_reading is None:
                    meter_reading = _collection_owner(href, "IntervalBlock")
        related = self.meter_readings.get(meter_reading or "", [])
        for href in related:
            if href in self.reading_types:
                return href, self.reading_types[href]
        if len(self.reading_types) == 1:
            return next(iter(self.reading_types.items()))
        where = f"line {block.line} (IntervalBlock #{block.number})"
        if not self.reading_types:
            raise GreenButtonError(
                where, "the file holds no ReadingType, so the units of its readings are unknown"
            )
        raise GreenButtonError(
            where,
            f"cannot tell which ReadingType applies: its links name MeterReading {meter_reading!r}, "
            "which the file does not link to a ReadingType",
        )

    def _resolve(self) -> GreenButtonData:
        if not self.blocks:
            raise GreenButtonError(
                "", "no IntervalBlock found: is this a Green Button (ESPI) file?"
            )
        skipped: list[str] = []
        groups: dict[str, list[tuple[int, int, int, int]]] = {}
        types: dict[str, _ReadingType] = {}
        for block in self.blocks:
            key, reading_type = self._reading_type_of(block)
            types[key] = reading_type
            groups.setdefault(key, []).extend(self._timed(block, reading_type))
        usable: dict[str, tuple[int, list[tuple[int, int, int, int]]]] = {}
        for key, readings in groups.items():
            reason, direction = _usable(types[key])
            if reason:
                skipped.append(
                    f"{len(readings)} readings of the ReadingType on line {types[key].line}: {reason}"
                )
            elif readings:
                usable[key] = (direction, readings)
        usable = _finest(usable, types, skipped)
        intervals = _Intervals()
        for key, (direction, readings) in usable.items():
            power = types[key].fields.get("powerOfTenMultiplier", 0)
            for start_s, duration_s, value, line in readings:
                if direction == FLOW_NET:
                    slot = CONSUMED if value >= 0 else GENERATED
                    intervals.put(start_s, duration_s, slot, _kwh(abs(value), power), line)
                    intervals.put(start_s, duration_s, 1 - slot, 0.0, line)
                elif value < 0:
                    raise GreenButtonError(
                        f"line {line}",
                        f"<value> is {value}; a delivered or received reading cannot be negative",
                    )
                else:
                    slot = CONSUMED if direction == FLOW_FORWARD else GENERATED
                    intervals.put(start_s, duration_s, slot, _kwh(value, power), line)
        if self.cost_only:
            skipped.append(f"{self.cost_only} IntervalReadings with a cost but no <value>")
        result = intervals.readings(self.meter_id)
        if not result:
            raise GreenButtonError(
                "",
                "the file holds no electricity energy readings (uom 72, Wh); " + "; ".join(skipped),
            )
        return GreenButtonData("ESPI XML", result, tuple(skipped))

    def _timed(
        self, block: _Block, reading_type: _ReadingType
    ) -> Iterator[tuple[int, int, int, int]]:
        """Each reading with its times; a reading without timePeriod follows the previous one."""
        length = reading_type.fields.get("intervalLength")
        next_start = block.start_s
        for start_s, duration_s, value, line in block.readings:
            if duration_s is None:
                duration_s = length
            if start_s is None:
                start_s = next_start
            if start_s is None or duration_s is None:
                raise GreenButtonError(
                    f"line {line} (IntervalBlock #{block.number})",
                    "an IntervalReading without <timePeriod>, and neither the block's <interval> "
                    "nor the ReadingType's <intervalLength> says when it was",
                )
            next_start = start_s + duration_s
            yield start_s, duration_s, value, line


def _usable(reading_type: _ReadingType) -> tuple[str, int]:
    """Why readings of this type are not interval energy ("" if they are), and their direction."""
    fields = reading_type.fields
    uom = fields.get("uom")
    if uom is None:
        raise GreenButtonError(
            f"line {reading_type.line} (ReadingType)",
            "no <uom>, so the unit of its readings is unknown",
        )
    if uom != UOM_WH:
        return f"uom {uom} ({_UOM_NAMES.get(uom, 'not energy')}) is not electric energy (72, Wh)", 0
    accumulation = fields.get("accumulationBehaviour", ACCUMULATION_DELTA)
    if accumulation not in (ACCUMULATION_NONE, ACCUMULATION_DELTA):
        return (
            f"accumulationBehaviour {accumulation} is a register reading, not energy per interval (4)",
            0,
        )
    flow = fields.get("flowDirection", FLOW_FORWARD)
    if flow not in (FLOW_FORWARD, FLOW_REVERSE, FLOW_NET):
        return f"flowDirection {flow} is neither delivered (1), received (19) nor net (4)", 0
    return "", flow


def _finest(
    usable: dict[str, tuple[int, list[tuple[int, int, int, int]]]],
    types: dict[str, _ReadingType],
    skipped: list[str],
) -> dict[str, tuple[int, list[tuple[int, int, int, int]]]]:
    """Keep the shortest interval length when a file holds the same energy at several (15 min, daily)."""
    lengths = {
        key: Counter(r[1] for r in readings).most_common(1)[0][0]
        for key, (_, readings) in usable.items()
    }
    if not lengths:
        return usable
    finest = min(lengths.values())
    for key in [k for k, length in lengths.items() if length != finest]:
        skipped.append(
            f"{len(usable[key][1])} readings of {lengths[key]} s (ReadingType on line {types[key].line}): "
            f"the file also holds {finest} s intervals"
        )
        del usable[key]
    return usable


# --- ESPI XML writer (tests, benchmarks, export) ------------------------------------------


def espi_xml(
    readings: Iterable[IntervalReading], *, power_of_ten: int = 0, block_s: int = 86400
) -> str:
    """An ESPI feed of these intervals: a MeterReading per direction, an IntervalBlock per day.

    Values are whole multiples of 10^power_of_ten Wh; generation appears only when some
    interval has any.
    """
    ordered = sorted(readings, key=lambda r: r.start)
    scale = 10**power_of_ten
    length = Counter(r.duration_s for r in ordered).most_common(1)[0][0] if ordered else 900
    base = "https://example.invalid/DataCustodian/espi/1_1/resource"
    usage_point = f"{base}/Subscription/1/UsagePoint/1"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<feed xmlns="{ATOM_NS}" xmlns:espi="{ESPI_NS}">\n<id>urn:uuid:ems-export</id>\n',
        f'<entry><link rel="self" href="{usage_point}"/><content><espi:UsagePoint>'
        "<espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory>"
        "</espi:UsagePoint></content></entry>\n",
    ]
    directions: list[tuple[int, int, Callable[[IntervalReading], float]]] = [
        (1, FLOW_FORWARD, lambda r: r.consumed_kwh)]
    if any(r.generated_kwh for r in ordered):
        directions.append((2, FLOW_REVERSE, lambda r: r.generated_kwh))
    for number, flow, energy in directions:
        meter_reading = f"{usage_point}/MeterReading/{number}"
        reading_type = f"{base}/ReadingType/{number}"
        out.append(
            f'<entry><link rel="self" href="{meter_reading}"/>'
            f'<link rel="up" href="{usage_point}/MeterReading"/>'
            f'<link rel="related" href="{meter_reading}/IntervalBlock"/>'
            f'<link rel="related" href="{reading_type}"/>'
            f"<title>{escape('Delivered' if flow == FLOW_FORWARD else 'Received')}</title>"
            "<content><espi:MeterReading/></content></entry>\n"
            f'<entry><link rel="self" href="{reading_type}"/><content><espi:ReadingType>'
            f"<espi:accumulationBehaviour>{ACCUMULATION_DELTA}</espi:accumulationBehaviour>"
            "<espi:commodity>1</espi:commodity><espi:dataQualifier>12</espi:dataQualifier>"
            f"<espi:flowDirection>{flow}</espi:flowDirection>"
            f"<espi:intervalLength>{length}</espi:intervalLength><espi:kind>12</espi:kind>"
            f"<espi:powerOfTenMultiplier>{power_of_ten}</espi:powerOfTenMultiplier>"
            f"<espi:uom>{UOM_WH}</espi:uom></espi:ReadingType></content></entry>\n"
        )
        blocks: dict[int, list[IntervalReading]] = {}
        for reading in ordered:
            start_s = int(reading.start.timestamp())
            blocks.setdefault(start_s - start_s % block_s, []).append(reading)
        for index, (block_start, block) in enumerate(blocks.items(), start=1):
            block_end = max(int(r.end.timestamp()) for r in block)
            out.append(
                f'<entry><link rel="self" href="{meter_reading}/IntervalBlock/{index}"/>'
                f'<link rel="up" href="{meter_reading}/IntervalBlock"/><content><espi:IntervalBlock>\n'
                f"<espi:interval><espi:duration>{block_end - block_start}</espi:duration>"
                f"<espi:start>{block_start}</espi:start></espi:interval>\n"
            )
            out.extend(
                f"<espi:IntervalReading><espi:timePeriod><espi:duration>{r.duration_s}</espi:duration>"
                f"<espi:start>{int(r.start.timestamp())}</espi:start></espi:timePeriod>"
                f"<espi:value>{round(energy(r) * 1000 / scale)}</espi:value></espi:IntervalReading>\n"
                for r in block
            )
            out.append("</espi:IntervalBlock></content></entry>\n")
    out.append("</feed>\n")
    return "".join(out)


# --- CSV ----------------------------------------------------------------------------------

_ROLES = {
    "type": {"TYPE"},
    "date": {"DATE", "START DATE", "READ DATE", "USAGE DATE", "INTERVAL DATE"},
    "start": {
        "START TIME",
        "START",
        "INTERVAL START",
        "START DATE TIME",
        "STARTTIME",
        "TIME",
        "FROM",
    },
    "end": {"END TIME", "END", "INTERVAL END", "END DATE TIME", "ENDTIME", "TO"},
    "duration": {"DURATION", "DURATION (MIN)", "INTERVAL LENGTH"},
    "consumed": {"IMPORT", "CONSUMPTION", "DELIVERED", "ENERGY DELIVERED", "USAGE DELIVERED"},
    "generated": {"EXPORT", "GENERATION", "RECEIVED", "ENERGY RECEIVED", "USAGE RECEIVED"},
    "net": {"USAGE", "NET", "NET USAGE", "VALUE"},
    "units": {"UNITS", "UNIT", "UOM"},
}
_VALUE_ROLES = ("consumed", "generated", "net")
_ENERGY_UNITS = {"KWH": 1.0, "WH": 0.001, "MWH": 1000.0}
_HEADER_UNIT = re.compile(r"^(.*?)\s*\(\s*([^)]*)\)\s*$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_US_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")
_DAY_S = 86400


@dataclass(frozen=True, slots=True)
class _Header:
    line: int
    width: int
    columns: dict[str, int]  # role -> column index
    names: dict[str, str]  # role -> the column's name as the file spells it
    units: dict[str, float]  # value role -> kWh per unit, from "USAGE (kWh)"


def _read_header(cells: list[str], line: int) -> _Header | None:
    columns: dict[str, int] = {}
    units: dict[str, float] = {}
    for index, cell in enumerate(cells):
        name = " ".join(cell.strip().upper().split())
        unit = None
        match = _HEADER_UNIT.match(name)
        if match:
            name, unit = match.group(1), match.group(2).replace(" ", "")
        for role, spellings in _ROLES.items():
            if name in spellings and role not in columns:
                columns[role] = index
                if unit and role in _VALUE_ROLES:
                    if unit not in _ENERGY_UNITS:
                        raise GreenButtonError(
                            f"line {line}",
                            f"column {cell.strip()!r}: unit {unit!r} is not kWh, Wh or MWh",
                        )
                    units[role] = _ENERGY_UNITS[unit]
                break
    has_time = "date" in columns or "start" in columns
    if not (has_time and any(role in columns for role in _VALUE_ROLES)):
        return None
    if "net" in columns and ("consumed" in columns or "generated" in columns):
        del columns["net"]  # "Consumption, Generation, Net": net is their difference
    names = {role: cells[index].strip() for role, index in columns.items()}
    return _Header(line, len(cells), columns, names, units)


def _clock_s(text: str) -> int | None:
    """Seconds after midnight of "13:45", "1:45 PM", "24:00"; None if it is not a clock time."""
    match = _CLOCK.match(text)
    if not match:
        return None
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    meridiem = (match.group(4) or "").upper()
    if meridiem:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if meridiem == "PM" else 0)
    if minutes > 59 or seconds > 59 or hours > 24 or (hours == 24 and minutes + seconds):
        return None
    return hours * 3600 + minutes * 60 + seconds


def _day(text: str) -> date | None:
    match = _ISO_DAY.match(text)
    try:
        if match:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        match = _US_DAY.match(text)
        if match:
            year = int(match.group(3))
            return date(
                year + 2000 if year < 100 else year, int(match.group(1)), int(match.group(2))
            )
    except ValueError:
        return None
    return None


def _moment(text: str) -> datetime | int | None:
    """A cell that is a full date and time (naive or with offset), or a clock time (seconds)."""
    clock = _clock_s(text)
    if clock is not None:
        return clock
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        day_text, _, clock_text = text.partition(" ")
        day, clock = _day(day_text), _clock_s(clock_text.strip())
        if day is None or clock is None:
            return None
        return _wall(day, clock)
    return moment


def _wall(day: date, seconds: int) -> datetime:
    """A local wall-clock time, deliberately naive until it is placed in the file's time zone."""
    return datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)  # noqa: DTZ001


class _CsvReader:
    """Finds the header row after the utility's preamble, then reads one interval per row."""

    def __init__(self, meter_id: str, timezone: str) -> None:
        self.meter_id = meter_id
        self.tz = ZoneInfo(timezone)
        self.timezone = timezone
        self._seen_ambiguous: dict[datetime, int] = {}
        self._skipped: Counter[str] = Counter()

    def read(self, chunks: Iterable[bytes]) -> GreenButtonData:
        reader = csv.reader(_text_lines(chunks))
        header: _Header | None = None
        intervals = _Intervals()
        try:
            for cells in reader:
                line = reader.line_num
                if header is None:
                    header = _read_header(cells, line)
                elif any(cell.strip() for cell in cells):
                    self._row(header, cells, line, intervals)
        except csv.Error as err:
            raise GreenButtonError(f"line {reader.line_num}", f"not valid CSV: {err}") from err
        if header is None:
            raise GreenButtonError(
                "",
                "no header row found: expected a row such as 'TYPE,DATE,START TIME,END TIME,USAGE,UNITS' "
                "or 'TYPE,DATE,START TIME,END TIME,IMPORT (kWh),EXPORT (kWh)'",
            )
        readings = intervals.readings(self.meter_id)
        skipped = tuple(f"{count} {what}" for what, count in self._skipped.items())
        if not readings:
            raise GreenButtonError(
                f"line {header.line}",
                "no electricity intervals after the header"
                + (f" ({'; '.join(skipped)})" if skipped else ""),
            )
        return GreenButtonData("CSV", readings, skipped)

    def _row(self, header: _Header, cells: list[str], line: int, intervals: _Intervals) -> None:
        columns = header.columns
        if len(cells) <= max(columns.values()):
            raise GreenButtonError(
                f"line {line}",
                f"{len(cells)} columns, but the header on line {header.line} has {header.width}; is the file cut short?",
            )
        kind = cells[columns["type"]].strip().lower() if "type" in columns else ""
        if "gas" in kind or "water" in kind:
            self._skipped[f"rows of {cells[columns['type']].strip()!r} (not electricity)"] += 1
            return
        scale = 1.0
        if "units" in columns and cells[columns["units"]].strip():
            unit = cells[columns["units"]].strip()
            if unit.upper() not in _ENERGY_UNITS:
                self._skipped[f"rows in {unit!r} (not electric energy)"] += 1
                return
            scale = _ENERGY_UNITS[unit.upper()]
        values = {
            role: self._number(cells[columns[role]], header.names[role], line)
            for role in _VALUE_ROLES
            if role in columns
        }
        if all(value is None for value in values.values()):
            self._skipped["rows without a value (missing data)"] += 1
            return
        start_s, duration_s = self._times(header, cells, line)
        if start_s is None:
            if any(values.values()):
                raise GreenButtonError(
                    f"line {line}",
                    f"this local time does not exist in {self.timezone} (the clocks go forward that "
                    "night), yet the row gives energy for it",
                )
            self._skipped["rows in the hour skipped when clocks go forward"] += 1
            return
        for role, value in values.items():
            if value is None:
                continue
            kwh = value * header.units.get(role, scale)
            if role == "net":
                intervals.put(start_s, duration_s, CONSUMED, max(kwh, 0.0), line)
                intervals.put(start_s, duration_s, GENERATED, max(-kwh, 0.0), line)
            elif kwh < 0:
                raise GreenButtonError(
                    f"line {line}", f"{header.names[role]} is {kwh:g} kWh; it cannot be negative"
                )
            else:
                intervals.put(
                    start_s, duration_s, CONSUMED if role == "consumed" else GENERATED, kwh, line
                )

    @staticmethod
    def _number(text: str, name: str, line: int) -> float | None:
        text = text.strip().replace(",", "")
        if not text or text == "-":
            return None
        try:
            value = float(text)
        except ValueError:
            raise GreenButtonError(
                f"line {line}", f"{name} is {text[:40]!r}, expected a number"
            ) from None
        if not math.isfinite(value):
            raise GreenButtonError(f"line {line}", f"{name} is {text!r}, expected a finite number")
        return value

    def _times(self, header: _Header, cells: list[str], line: int) -> tuple[int | None, int]:
        """Start (epoch s, None in the spring gap) and duration (s) of the row's interval."""
        columns = header.columns
        day = None
        if "date" in columns:
            day_text = cells[columns["date"]].strip()
            day = _day(day_text)
            if day is None and "start" not in columns:
                raise GreenButtonError(
                    f"line {line}", f"DATE is {day_text[:40]!r}, expected YYYY-MM-DD or M/D/YYYY"
                )
        start = self._moment(cells, header, "start", line) if "start" in columns else 0
        if isinstance(start, int):
            if day is None:
                text = cells[columns["date"]].strip()[:40] if "date" in columns else ""
                raise GreenButtonError(
                    f"line {line}", f"the date is {text!r}, expected YYYY-MM-DD or M/D/YYYY"
                )
            start = _wall(day, start)
        if "end" in columns:
            end = self._moment(cells, header, "end", line)
            if isinstance(end, int):
                wall = (
                    end - (start.hour * 3600 + start.minute * 60 + start.second)
                ) % _DAY_S or _DAY_S
                duration_s = (
                    wall + 60
                    if wall % 60 == 0 and wall % 300 == 240
                    else wall + (1 if wall % 60 == 59 else 0)
                )
            elif end.tzinfo is not None and start.tzinfo is not None:
                duration_s = int((end - start).total_seconds())
            else:
                duration_s = int(
                    (end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds()
                )
        elif "duration" in columns:
            minutes = self._number(cells[columns["duration"]], header.names["duration"], line)
            if minutes is None:
                raise GreenButtonError(f"line {line}", "no DURATION")
            duration_s = round(minutes * 60)
        elif "start" not in columns:
            start_s = self._utc(start, line)
            end_s = self._utc(start + timedelta(days=1), line)
            if start_s is None or end_s is None:
                raise GreenButtonError(
                    f"line {line}", "a daily row whose midnight does not exist locally"
                )
            return start_s, end_s - start_s  # a day: 23, 24 or 25 hours
        else:
            raise GreenButtonError(
                f"line {header.line}",
                "the header has a start time but no END TIME or DURATION column, so the interval length is unknown",
            )
        if duration_s <= 0:
            raise GreenButtonError(
                f"line {line}", f"the interval ends {-duration_s} s before it starts"
            )
        return self._utc(start, line), duration_s

    @staticmethod
    def _moment(cells: list[str], header: _Header, role: str, line: int) -> datetime | int:
        text = cells[header.columns[role]].strip()
        moment = _moment(text)
        if moment is None:
            raise GreenButtonError(
                f"line {line}",
                f"{header.names[role]} is {text[:40]!r}, expected HH:MM or a date and time",
            )
        return moment

    def _utc(self, wall: datetime, line: int) -> int | None:
        """Local wall time to epoch seconds; a repeated autumn time is the later hour the second time."""
        if wall.tzinfo is not None:
            return int(wall.timestamp())
        first = wall.replace(tzinfo=self.tz)
        second = wall.replace(tzinfo=self.tz, fold=1)
        offset_first, offset_second = first.utcoffset(), second.utcoffset()
        assert offset_first is not None and offset_second is not None
        chosen = first
        if offset_first < offset_second:
            return None  # in the spring gap: this local time never happened
        if offset_first > offset_second:
            seen = self._seen_ambiguous.get(wall, 0)
            if seen >= 2:
                raise GreenButtonError(
                    f"line {line}",
                    f"{wall:%Y-%m-%d %H:%M} appears a third time; it happens only twice when the clocks go back",
                )
            self._seen_ambiguous[wall] = seen + 1
            chosen = second if seen else first
        return int(chosen.timestamp())


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines (UTF-8, else Windows-1252 as spreadsheet programs write), BOM removed."""
    pending = b""
    first = True
    for chunk in chunks:
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        for raw in lines:
            if first:
                raw, first = raw.removeprefix(b"\xef\xbb\xbf"), False
            yield _decode(raw + b"\n")
    if pending:
        yield _decode(pending.removeprefix(b"\xef\xbb\xbf") if first else pending)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")

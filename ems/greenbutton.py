"""Green Button files read into IntervalReadings: ESPI XML and the CSV utilities offer.

Green Button is how North American utilities hand a customer their interval history. Two
shapes exist: the NAESB ESPI (REQ.21) Atom feed, and a CSV from the "Download my data" button.
This module only parses (it reads the byte stream it is given); ``ems.importer`` opens the
file and writes the readings. A file that cannot be read whole is rejected with a
GreenButtonError naming the line (and, for XML, the element) and what is wrong. The untidiness of
real utility exports (daylight-saving duplicates, readings of odd or no length at the clock
changes, repeats, gaps, coarse readings over fine ones) is not a reason to refuse: each is resolved
one stated way and reported as an ImportNote. ``read`` keeps the file's usage points apart;
``GreenButtonFile.select`` says which goes to which meter.
"""

from __future__ import annotations

import csv
import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
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
class ImportNote:
    """One oddity of the file and what was done with it; ``what`` starts with ``count``."""

    action: str  # "kept" | "dropped" | "merged" | "note"
    count: int
    what: str

    def __str__(self) -> str:
        return f"{self.action}: {self.what}"


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """One metering point of the file (a meter, or one service of it), as ``ems import --list`` shows it."""

    id: str  # as the file's links name it ("5446AF3F"); "" when the file names none
    title: str
    kind: str  # "electricity", "gas", ... (ESPI ServiceCategory)
    reading_types: tuple[str, ...]
    count: int  # electricity intervals it holds, once the file's oddities are resolved
    first_start: datetime | None = None
    last_end: datetime | None = None

    def __str__(self) -> str:
        name = self.id or "(not named in the file)"
        span = (
            f"{self.count:,} intervals from {self.first_start:%Y-%m-%d} to {self.last_end:%Y-%m-%d}"
            if self.first_start is not None and self.last_end is not None
            else "no electricity intervals"
        )
        title = f" {self.title!r}" if self.title else ""
        kinds = ", ".join(self.reading_types) or "no readings"
        return f"{name}{title}: {self.kind}; {kinds}; {span}"


@dataclass(frozen=True, slots=True)
class LocalTime:
    """The file's own time zone (ESPI LocalTimeParameters): offsets in seconds, DST rules as given."""

    tz_offset_s: int
    dst_offset_s: int = 0
    dst_start_rule: str = ""
    dst_end_rule: str = ""

    def words(self) -> str:
        """ "UTC-5 with daylight saving (+1 h, March to November)"."""
        text = f"UTC{_offset_words(self.tz_offset_s)}"
        if self.dst_offset_s:
            months = [_rule_month(rule) for rule in (self.dst_start_rule, self.dst_end_rule)]
            when = f", {months[0]} to {months[1]}" if all(months) else ""
            text += f" with daylight saving ({_offset_words(self.dst_offset_s)} h{when})"
        return text

    def differs_from(self, zone: ZoneInfo, year: int) -> bool:
        winter = datetime(year, 1, 15, tzinfo=zone).utcoffset()
        summer = datetime(year, 7, 15, tzinfo=zone).utcoffset()
        assert winter is not None and summer is not None
        standard, daylight = min(winter, summer), max(winter, summer)
        if (int(standard.total_seconds()), int((daylight - standard).total_seconds())) != (
            self.tz_offset_s,
            self.dst_offset_s,
        ):
            return True
        months = (_rule_month(self.dst_start_rule), _rule_month(self.dst_end_rule))
        site = _dst_months(zone, year)
        return bool(self.dst_offset_s and all(months) and site and months != site)


def _dst_months(zone: ZoneInfo, year: int) -> tuple[str, str] | None:
    """The months daylight saving starts and ends in ``zone`` that year; None without it."""
    start = end = ""
    for month in range(1, 13):
        before = datetime(year, month, 1, tzinfo=zone).dst()
        after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone).dst()
        if not before and after:
            start = _MONTHS[month - 1]
        elif before and not after:
            end = _MONTHS[month - 1]
    return (start, end) if start and end else None


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _offset_words(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}" + (f":{rest // 60:02d}" if rest else "")


def _rule_month(rule: str) -> str:
    """The month of an ESPI DST rule (its top four bits), "" when it cannot be read."""
    try:
        month = int(rule, 16) >> 28
    except ValueError:
        return ""
    return _MONTHS[month - 1] if 1 <= month <= 12 else ""


@dataclass(frozen=True, slots=True)
class GreenButtonData:
    """What was taken from a file: its intervals in time order, what was left out, what was odd."""

    kind: str  # "ESPI XML" | "CSV"
    readings: tuple[IntervalReading, ...]
    skipped: tuple[str, ...] = ()
    notes: tuple[ImportNote, ...] = ()
    points: tuple[UsagePoint, ...] = ()
    local_time: LocalTime | None = None


class SeveralUsagePoints(GreenButtonError):
    """The file holds electricity readings of several usage points and none was chosen."""

    def __init__(self, points: tuple[UsagePoint, ...]) -> None:
        self.points = points
        super().__init__(
            "",
            f"the file holds {len(points)} usage points (meters) with electricity readings, so it "
            "cannot tell which one is this meter: "
            + "; ".join(str(point) for point in points),
        )


class UnknownUsagePoint(GreenButtonError):
    """A chosen usage point is not in the file."""

    def __init__(self, wanted: str, points: tuple[UsagePoint, ...]) -> None:
        self.points = points
        names = ", ".join(point.id or "(not named)" for point in points) or "none"
        super().__init__("", f"the file has no usage point {wanted!r}; it has: {names}")


_Series = tuple[tuple[tuple[int, int, float, float], ...], tuple[ImportNote, ...]]


@dataclass(frozen=True, slots=True)
class GreenButtonFile:
    """Everything a file held, per usage point, before choosing which point goes to which meter."""

    kind: str
    points: tuple[UsagePoint, ...]
    series: dict[str, _Series]  # usage point id -> (start s, duration s, consumed, generated), notes
    skipped: tuple[str, ...] = ()
    notes: tuple[ImportNote, ...] = ()  # about the whole file
    local_time: LocalTime | None = None

    def with_readings(self) -> tuple[UsagePoint, ...]:
        return tuple(point for point in self.points if point.count)

    def select(
        self, meter_id: str, choice: Mapping[str, str] | None = None, *, each: bool = False
    ) -> GreenButtonData:
        """The readings of the chosen usage points, each under its meter id.

        No choice: the one point with electricity readings goes to ``meter_id`` (several:
        SeveralUsagePoints). ``choice`` maps point ids to meter ids; ``each`` puts every point
        with readings under a meter named by its id.
        """
        usable = self.with_readings()
        if each:
            chosen = {point.id: point.id or meter_id for point in usable}
        elif choice:
            known = {point.id for point in self.points}
            for wanted in choice:
                if wanted not in known:
                    raise UnknownUsagePoint(wanted, self.points)
                if not self.series.get(wanted, ((),))[0]:
                    raise GreenButtonError("", f"usage point {wanted!r} holds no electricity readings; "
                                               "the ones that do: " + (", ".join(
                                                   point.id or "(not named)" for point in usable) or "none"))
            chosen = dict(choice)
        elif len(usable) > 1:
            raise SeveralUsagePoints(usable)
        else:
            chosen = {point.id: meter_id for point in usable}
        readings: list[IntervalReading] = []
        notes: list[ImportNote] = list(self.notes)
        several = len(chosen) > 1
        for point_id, meter in chosen.items():
            rows, point_notes = self.series.get(point_id, ((), ()))
            readings.extend(
                IntervalReading(meter, datetime.fromtimestamp(start_s, UTC), duration_s, consumed, generated)
                for start_s, duration_s, consumed, generated in rows
            )
            for note in point_notes:
                notes.append(
                    ImportNote(note.action, note.count, f"{note.what} (usage point {point_id})")
                    if several else note
                )
        readings.sort(key=lambda r: (r.start, r.meter_id))
        return GreenButtonData(
            self.kind, tuple(readings), self.skipped, tuple(notes), self.points, self.local_time
        )


def read(
    stream: BinaryIO,
    timezone: str,
    progress: Progress | None = None,
    *,
    name: str = "",
) -> GreenButtonFile:
    """Read a Green Button file of either shape (told apart by its first byte), every usage point.

    ``timezone`` (an IANA name) is the one the CSV's local times are in (ESPI times are UTC) and
    the one notes about the file name times in. ``name`` (the file's name) only words messages.
    """
    chunks = _chunks(stream, progress)
    first = next(chunks, b"")
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise GreenButtonError("line 1", "the file is UTF-16 text; save it as UTF-8 and try again")
    head = first.removeprefix(b"\xef\xbb\xbf").lstrip()
    while not head:  # blank so far: look further before calling the file empty
        more = next(chunks, None)
        if more is None:
            if name.lower().endswith(".xml"):
                raise GreenButtonError(
                    "", "the file is empty: a Green Button XML file starts with '<?xml' or '<feed'"
                    " and holds the readings; download it again"
                )
            raise GreenButtonError("", "the file is empty: no Green Button data (ESPI XML or CSV) in it")
        first += more
        head = first.removeprefix(b"\xef\xbb\xbf").lstrip()
    rest = _prepend(first, chunks)
    if head.startswith(b"<"):
        return _EspiReader(timezone).read(rest)
    return _CsvReader(timezone).read(rest)


def parse(
    stream: BinaryIO, meter_id: str, timezone: str, progress: Progress | None = None
) -> GreenButtonData:
    """Read a Green Button file whose electricity readings are all of one meter (``read`` + ``select``).

    ``timezone`` (an IANA name) is the one the CSV's local times are in; ESPI times are UTC.
    """
    return read(stream, timezone, progress).select(meter_id)


def parse_espi(
    stream: BinaryIO, meter_id: str, progress: Progress | None = None, timezone: str = "UTC"
) -> GreenButtonData:
    """Read an ESPI XML feed (or a bare ESPI document) streamed in chunks."""
    return _EspiReader(timezone).read(_chunks(stream, progress)).select(meter_id)


def parse_csv(
    stream: BinaryIO, meter_id: str, timezone: str, progress: Progress | None = None
) -> GreenButtonData:
    """Read a utility's Green Button CSV; its local times are in ``timezone``."""
    return _CsvReader(timezone).read(_chunks(stream, progress)).select(meter_id)


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


def _length_words(seconds: int) -> str:
    """ "15 minutes", "1 hour", "1 day", "25 hours", "237 days 15 hours", "90 seconds"."""
    if seconds % 86400 and seconds < 2 * 86400:
        units: tuple[tuple[str, int], ...] = (("hour", 3600), ("minute", 60), ("second", 1))
    else:
        units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    parts = []
    for unit, size in units:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


def _local(epoch_s: int, tz: ZoneInfo) -> str:
    """ "2011-11-06 01:00 PST": a moment as the site's clocks showed it, for notes."""
    return datetime.fromtimestamp(epoch_s, tz).strftime("%Y-%m-%d %H:%M %Z")


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


# --- Both directions of every interval --------------------------------------------------


class _Intervals:
    """Consumed and generated energy per (start epoch s, duration s), with the line each came from.

    Real exports are untidy, and each untidiness is resolved and noted (``resolve``), never a
    reason to refuse the file: a reading repeated exactly is kept once; a second, different value
    for the same interval (the daylight-saving duplicate) loses to the first; readings of several
    lengths over the same time keep the finest; a reading of no length carrying energy is merged
    into the one before it; gaps and odd lengths are kept as they are and named.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self._slots: dict[tuple[int, int], list[Any]] = {}
        self._tz = tz
        self._repeats: set[tuple[int, int]] = set()
        self._conflicts: dict[tuple[int, int], tuple[int, int]] = {}  # -> (line, first line)

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
        elif math.isclose(old, kwh, rel_tol=1e-9, abs_tol=1e-9):
            self._repeats.add((start_s, duration_s))
        else:
            self._conflicts.setdefault((start_s, duration_s), (line, slot[2 + direction]))

    def add(self, key: tuple[int, int], energy: list[float]) -> bool:
        """Add energy to the interval ``key`` (put before); False if there is none."""
        slot = self._slots.get(key)
        if slot is None:
            return False
        for direction in (CONSUMED, GENERATED):
            if energy[direction]:
                slot[direction] = (slot[direction] or 0.0) + energy[direction]
        return True

    def _when(self, epoch_s: int) -> str:
        return _local(epoch_s, self._tz)

    def _clock_change(self, start_s: int, end_s: int) -> bool:
        begin = datetime.fromtimestamp(start_s, self._tz).utcoffset()
        end = datetime.fromtimestamp(end_s, self._tz).utcoffset()
        return begin != end

    def resolve(self) -> tuple[tuple[tuple[int, int, float, float], ...], tuple[ImportNote, ...]]:
        """The intervals in time order as (start s, duration s, consumed, generated), and notes."""
        notes: list[ImportNote] = []
        slots = self._slots
        repeats = self._repeats - self._conflicts.keys()
        if repeats:
            notes.append(ImportNote("dropped", len(repeats), (
                f"{_plural(len(repeats), 'reading')} repeated exactly (same time, same energy): "
                "counted once")))
        if self._conflicts:
            (start_s, _), (line, first_line) = min(self._conflicts.items())
            count = len(self._conflicts)
            notes.append(ImportNote("dropped", count, (
                f"{_plural(count, 'reading')} with the same start as an earlier one but other "
                f"energy (a daylight-saving duplicate), the first at {self._when(start_s)} on line "
                f"{line}: kept the earlier one (line {first_line})")))
        zero = {key: slots.pop(key) for key in [key for key in slots if key[1] == 0]}
        dropped: dict[tuple[int, int], tuple[int, int]] = {}  # key -> (kept length, kept start)
        for direction in (CONSUMED, GENERATED):
            self._overlaps(direction, dropped)
        for key in [key for key, slot in slots.items() if slot[0] is None and slot[1] is None]:
            del slots[key]
        notes.extend(self._overlap_notes(dropped))
        ordered = sorted(slots.items())
        if zero:
            notes.extend(self._merge_zero(zero, ordered))
        notes.extend(self._shape_notes(ordered))
        return (
            tuple((s, d, slot[0] or 0.0, slot[1] or 0.0) for (s, d), slot in ordered),
            tuple(notes),
        )

    def _overlaps(self, direction: int, dropped: dict[tuple[int, int], tuple[int, int]]) -> None:
        """Leave out readings of one direction whose time others cover: finer ones win, then earlier."""
        slots = self._slots
        keys = sorted(key for key, slot in slots.items() if slot[direction] is not None)
        previous_end = None
        for start_s, duration_s in keys:
            if previous_end is not None and start_s < previous_end:
                break
            previous_end = start_s + duration_s if previous_end is None else max(
                previous_end, start_s + duration_s)
        else:
            return  # nothing overlaps: the usual file
        kept: dict[int, list[int]] = {}  # length -> kept starts, in order
        keys.sort(key=lambda key: (key[1], key[0]))
        for length, group in groupby(keys, key=lambda key: key[1]):
            starts: list[int] = []
            for start_s, _ in group:
                end_s = start_s + length
                hit = None
                for finer, finer_starts in kept.items():
                    # a kept reading of length L overlaps [start, end) iff it starts in (start - L, end)
                    index = bisect_right(finer_starts, start_s - finer)
                    if index < len(finer_starts) and finer_starts[index] < end_s:
                        hit = (finer, finer_starts[index])
                        break
                if hit is None and starts and start_s < starts[-1] + length:
                    hit = (length, starts[-1])
                if hit is None:
                    starts.append(start_s)
                else:
                    slots[(start_s, length)][direction] = None
                    dropped.setdefault((start_s, length), hit)
            kept[length] = starts

    def _overlap_notes(self, dropped: dict[tuple[int, int], tuple[int, int]]) -> Iterator[ImportNote]:
        coarser: dict[tuple[int, int], int] = {}
        same: list[tuple[int, int, int]] = []
        for (start_s, length), (kept_length, kept_start) in dropped.items():
            if kept_length < length:
                coarser[(length, kept_length)] = coarser.get((length, kept_length), 0) + 1
            else:
                same.append((start_s, length, kept_start))
        for (length, finer), count in sorted(coarser.items()):
            yield ImportNote("dropped", count, (
                f"{_plural(count, 'reading')} of {_length_words(length)}: readings of "
                f"{_length_words(finer)} cover the same time, and counting both would count "
                "that energy twice"))
        if same:
            start_s, length, kept_start = min(same)
            yield ImportNote("dropped", len(same), (
                f"{_plural(len(same), 'reading')} overlapping an earlier one of the same length, "
                f"the first from {self._when(start_s)} ({_length_words(length)}, overlapping the one "
                f"from {self._when(kept_start)}): kept the earlier one"))

    def _merge_zero(
        self, zero: dict[tuple[int, int], list[Any]], ordered: list[tuple[tuple[int, int], list[Any]]]
    ) -> Iterator[ImportNote]:
        """A reading of no length carries energy of a neighbour (utilities put the autumn clock
        change's repeated hour there): add it to the reading that ends, else starts, at its time."""
        ending = {start_s + duration_s: slot for (start_s, duration_s), slot in ordered}
        starting = {start_s: slot for (start_s, _), slot in reversed(ordered)}
        empty = 0
        for (start_s, _), slot in sorted(zero.items()):
            energy = [slot[0] or 0.0, slot[1] or 0.0]
            if not any(energy):
                empty += 1
                continue
            target, where = ending.get(start_s), "before it"
            if target is None:
                target, where = starting.get(start_s), "after it"
            what = " and ".join(
                f"{kwh:g} kWh {name}"
                for kwh, name in zip(energy, ("used", "sent out"), strict=True)
                if kwh
            )
            change = " (the clock change)" if self._clock_change(start_s - 3600, start_s + 3600) else ""
            if target is None:
                yield ImportNote("dropped", 1, (
                    f"1 reading of no length with {what} at {self._when(start_s)}{change}: no "
                    "reading next to it to add it to"))
                continue
            for direction in (CONSUMED, GENERATED):
                if energy[direction]:
                    target[direction] = (target[direction] or 0.0) + energy[direction]
            yield ImportNote("merged", 1, (
                f"1 reading of no length with {what} at {self._when(start_s)}{change}: added to "
                f"the reading {where}"))
        if empty:
            yield ImportNote("dropped", empty, f"{_plural(empty, 'reading')} of no length and no energy")

    def _shape_notes(self, ordered: list[tuple[tuple[int, int], list[Any]]]) -> Iterator[ImportNote]:
        """Gaps and readings of an unusual length, kept as they are (nothing is invented)."""
        if not ordered:
            return
        lengths = Counter(duration_s for (_, duration_s), _ in ordered)
        usual = lengths.most_common(1)[0][0]
        if len(lengths) > 1:
            near = {usual}
            if usual % 86400 == 0:  # local days of 23 and 25 hours are days too
                near.update((usual - 3600, usual + 3600))
            odd = [(s, d) for (s, d), _ in ordered if d not in near]
            odd_lengths = {d for d in lengths if d not in near}
            if odd and len(odd) * 2 < len(ordered) and len(odd_lengths) <= 3:
                start_s, duration_s = odd[0]
                change = " (the clock change)" if self._clock_change(start_s, start_s + duration_s) else ""
                yield ImportNote("kept", len(odd), (
                    f"{_plural(len(odd), 'reading')} of another length than the usual "
                    f"{_length_words(usual)}, the first of {_length_words(duration_s)} from "
                    f"{self._when(start_s)}{change}: kept as {'it is' if len(odd) == 1 else 'they are'}"))
        gaps: list[tuple[int, int]] = []
        previous_end = None
        for (start_s, duration_s), _ in ordered:
            if previous_end is not None and start_s > previous_end:
                gaps.append((previous_end, start_s))
            previous_end = start_s + duration_s if previous_end is None else max(
                previous_end, start_s + duration_s)
        if gaps:
            missing = sum(end - start for start, end in gaps)
            start_s, end_s = gaps[0]
            first = (f"from {self._when(start_s)} to {self._when(end_s)}"
                     f" ({_length_words(end_s - start_s)})")
            yield ImportNote("note", len(gaps), (
                f"1 gap with no readings, {first}: left empty" if len(gaps) == 1 else
                f"{len(gaps):,} gaps with no readings ({_length_words(missing)} in all), the first "
                f"{first}: left empty"))


# --- ESPI XML -----------------------------------------------------------------------------

_SERVICE_KINDS = {
    0: "electricity", 1: "gas", 2: "water", 3: "time", 4: "heat", 5: "refuse", 6: "sewerage",
    7: "rates", 8: "TV licence", 9: "internet",
}
_LOCAL_TIME_FIELDS = frozenset(("tzOffset", "dstOffset", "dstStartRule", "dstEndRule"))
# ESPI documents that are not usage data, and what they are, for the refusal's words.
_NOT_USAGE = {
    "ApplicationInformation": "a third-party application's registration (ApplicationInformation)",
    "Authorization": "an access authorization (Authorization)",
    "Customer": "customer details (Customer)",
    "CustomerAccount": "customer account details (CustomerAccount)",
    "ServiceSupplier": "the utility's details (ServiceSupplier)",
    "UsagePoint": "a usage point's description (UsagePoint)",
    "MeterReading": "a meter reading's description (MeterReading)",
    "ReadingType": "a reading type (ReadingType)",
    "ElectricPowerUsageSummary": "a billing summary (ElectricPowerUsageSummary)",
    "UsageSummary": "a billing summary (UsageSummary)",
    "LocalTimeParameters": "time zone parameters (LocalTimeParameters)",
    "ServiceCategory": "a service category (ServiceCategory)",  # last: every UsagePoint has one
}


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
    usage_point: bool = False
    title: str = ""
    kind: int | None = None


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


def _point_id(href: str) -> str | None:
    """The usage point a link is under ("/UsagePoint/5446AF3F/MeterReading/1" -> "5446AF3F")."""
    path = _href_path(href)
    if not path.startswith("/UsagePoint/"):
        return None
    return path[len("/UsagePoint/"):].partition("/")[0] or None


def _type_words(reading_type: _ReadingType) -> str:
    """ "15-minute electricity delivered", "hourly gas (therms), not imported"."""
    fields = reading_type.fields
    length = fields.get("intervalLength")
    words = {900: "15-minute", 1800: "30-minute", 3600: "hourly", 86400: "daily"}
    if length is None:
        every = ""
    elif length in words:
        every = words[length] + " "
    elif 2_419_200 <= length <= 2_678_400:
        every = "monthly "
    else:
        every = f"{_length_words(length)} "
    uom = fields.get("uom")
    if uom != UOM_WH:
        return f"{every}{_UOM_NAMES.get(uom or -1, f'unit {uom}')} readings, not imported"
    flow = fields.get("flowDirection", FLOW_FORWARD)
    direction = {
        FLOW_FORWARD: "electricity used (delivered)",
        FLOW_REVERSE: "electricity sent out (received)",
        FLOW_NET: "net electricity",
    }.get(flow, f"electricity of direction {flow}, not imported")
    accumulation = fields.get("accumulationBehaviour", ACCUMULATION_DELTA)
    if accumulation not in (ACCUMULATION_NONE, ACCUMULATION_DELTA):
        return f"{every}meter register readings, not imported"
    return every + direction


class _EspiReader:
    """Streams an ESPI document through expat (line numbers for errors, no tree in memory)."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.tz = ZoneInfo(timezone)
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
        self._root = ""
        self.reading_types: dict[str, _ReadingType] = {}
        self.meter_readings: dict[str, list[str]] = {}
        self.usage_points: dict[str, tuple[str, int | None]] = {}  # id -> (title, service kind)
        self.local_time: dict[str, str] = {}
        self.next_page = False
        self.blocks: list[_Block] = []
        self.cost_only = 0
        self.summaries = 0

    def read(self, chunks: Iterable[bytes]) -> GreenButtonFile:
        parser = self._parser
        try:
            for chunk in chunks:
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except expat.ExpatError as err:
            problem = expat.errors.messages.get(err.code, str(err))
            inside = ""
            if self._stack:
                where = self._where(err.lineno).partition(" (")[2].rstrip(")")
                inside = f", in the middle of <{self._stack[-1]}>" + (f" ({where})" if where else "")
            raise GreenButtonError(
                f"line {err.lineno}, column {err.offset + 1}",
                f"the XML is malformed or ends early ({problem}){inside}; was the download cut short?",
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
        if not stack:
            self._root = local
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
        elif local == "link":
            if self._entry is not None:
                self._entry.links.append((attrs.get("rel", ""), attrs.get("href", "")))
            elif parent == "feed" and attrs.get("rel") == "next":
                self.next_page = True  # RFC 5005 paging: the feed continues elsewhere
        elif local == "MeterReading" and self._entry is not None:
            self._entry.meter_reading = True
        elif local == "UsagePoint" and self._entry is not None:
            self._entry.usage_point = True
        elif local in ("ElectricPowerUsageSummary", "UsageSummary"):
            self.summaries += 1
        elif (
            (local == "title" and parent == "entry" and self._entry is not None)
            or (local == "kind" and parent == "ServiceCategory")
            or (local in _LOCAL_TIME_FIELDS and parent == "LocalTimeParameters")
        ):
            self._capture(line)

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
        if local == "title" and self._entry is not None:
            self._entry.title = " ".join(text.split())[:80]
            return
        if parent == "LocalTimeParameters":
            self.local_time[local] = text
            return
        try:
            number = int(text)
        except ValueError:
            if parent == "ServiceCategory":
                return  # an unreadable service kind only words the listing
            raise GreenButtonError(
                self._where(self._text_line), f"<{local}> is {text[:40]!r}, expected a whole number"
            ) from None
        if parent == "ServiceCategory":
            if self._entry is not None:
                self._entry.kind = number
        elif parent == "ReadingType" and self._reading_type is not None:
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
        if entry.usage_point:
            point = _point_id(self_href) if self_href else None
            self.usage_points[point or ""] = (entry.title, entry.kind)

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

    @staticmethod
    def _point_of(block: _Block) -> str:
        for rel in ("self", "up"):
            for link_rel, href in block.links:
                if link_rel == rel and (point := _point_id(href)) is not None:
                    return point
        return ""

    def _not_usage(self) -> GreenButtonError:
        what = _NOT_USAGE.get(self._root)
        if what is None and self._root in ("feed", "entry"):
            found = [
                text for name, text in _NOT_USAGE.items() if name in self._local.values()
            ][:3]
            what = ", ".join(found[:-1]) + " and " + found[-1] if len(found) > 1 else "".join(found)
        if what:
            return GreenButtonError(
                "", f"the file holds {what} but no readings (no IntervalBlock): it is not a "
                "download of usage data"
            )
        return GreenButtonError("", "no IntervalBlock found: is this a Green Button (ESPI) file?")

    def _resolve(self) -> GreenButtonFile:
        if not self.blocks:
            raise self._not_usage()
        skipped: list[str] = []
        file_notes: list[ImportNote] = []
        groups: dict[tuple[str, str], list[tuple[int, int, int, int]]] = {}
        types: dict[str, _ReadingType] = {}
        for block in self.blocks:
            key, reading_type = self._reading_type_of(block)
            types[key] = reading_type
            timed = list(self._timed(block, reading_type))
            groups.setdefault((self._point_of(block), key), []).extend(timed)
            file_notes.extend(self._cut_block(block, timed))
        per_point: dict[str, _Intervals] = {}
        point_types: dict[str, list[str]] = {}
        for (point, key), readings in groups.items():
            words = _type_words(types[key])
            if words not in point_types.setdefault(point, []):
                point_types[point].append(words)
            reason, direction = _usable(types[key])
            if reason:
                skipped.append(
                    f"{len(readings)} readings of the ReadingType on line {types[key].line}: {reason}"
                )
                continue
            intervals = per_point.get(point)
            if intervals is None:
                intervals = per_point[point] = _Intervals(self.tz)
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
        if self.summaries:
            skipped.append(
                f"{_plural(self.summaries, 'billing summary')} (UsageSummary): a bill's totals, "
                "not intervals"
            )
        series = {point: intervals.resolve() for point, intervals in per_point.items()}
        if not any(rows for rows, _ in series.values()):
            raise GreenButtonError(
                "",
                "the file holds no electricity energy readings (uom 72, Wh); " + "; ".join(skipped),
            )
        if self.next_page:
            file_notes.append(ImportNote("note", 1, (
                "1 link to a next page: the feed says it continues in another download, so this "
                "file holds only part of the data")))
        names = list(self.usage_points)
        names += [point for point in point_types if point not in self.usage_points]
        points = []
        for point in names:
            title, kind = self.usage_points.get(point, ("", None))
            rows = series.get(point, ((), ()))[0]
            points.append(UsagePoint(
                point, title,
                _SERVICE_KINDS.get(kind, f"service kind {kind}") if kind is not None else "electricity"
                if rows else "unknown service",
                tuple(point_types.get(point, ())),
                len(rows),
                datetime.fromtimestamp(rows[0][0], UTC) if rows else None,
                datetime.fromtimestamp(max(s + d for s, d, _, _ in rows), UTC) if rows else None,
            ))
        return GreenButtonFile(
            "ESPI XML", tuple(points), series, tuple(skipped), tuple(file_notes), self._local_time()
        )

    def _cut_block(self, block: _Block, timed: list[tuple[int, int, int, int]]) -> Iterator[ImportNote]:
        """A block whose readings stop before the interval it declares: the file was cut short."""
        if block.start_s is None or not block.duration_s:
            return
        declared_end = block.start_s + block.duration_s
        reached = max((s + d for s, d, _, _ in timed), default=block.start_s)
        if reached < declared_end:
            def when(epoch_s: int) -> str:
                return _local(epoch_s, self.tz)

            held = (f"its readings stop at {when(reached)}" if timed else "it holds no readings")
            yield ImportNote("note", 1, (
                f"1 IntervalBlock (#{block.number}, line {block.line}) says it runs from "
                f"{when(block.start_s)} to {when(declared_end)} but {held}: the file looks cut "
                "short (what it holds was imported; download it again for the rest)"))

    def _local_time(self) -> LocalTime | None:
        fields = self.local_time
        try:
            return LocalTime(
                int(fields["tzOffset"]),
                int(fields.get("dstOffset") or 0),
                fields.get("dstStartRule", ""),
                fields.get("dstEndRule", ""),
            )
        except (KeyError, ValueError):
            return None

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


class _ThirdTime(Exception):
    """A local autumn time given a third time (it happens twice)."""

    def __init__(self, wall: datetime) -> None:
        super().__init__(wall)
        self.wall = wall


class _CsvReader:
    """Finds the header row after the utility's preamble, then reads one interval per row."""

    def __init__(self, timezone: str) -> None:
        self.tz = ZoneInfo(timezone)
        self.timezone = timezone
        self._seen_ambiguous: dict[datetime, int] = {}
        self._skipped: Counter[str] = Counter()
        self._previous: tuple[int, int] | None = None  # (start s, duration s) of the last row read
        self._gap_wall = _wall(date.min, 0)  # the last row in the spring gap, as written
        self._gap_rows: list[tuple[datetime, int, list[float], bool]] = []
        self._third: list[tuple[datetime, int]] = []

    def read(self, chunks: Iterable[bytes]) -> GreenButtonFile:
        reader = csv.reader(_text_lines(chunks))
        header: _Header | None = None
        intervals = _Intervals(self.tz)
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
        rows, notes = intervals.resolve()
        notes = (*self._gap_notes(), *notes)
        skipped = tuple(f"{count} {what}" for what, count in self._skipped.items())
        if not rows:
            raise GreenButtonError(
                f"line {header.line}",
                "no electricity intervals after the header"
                + (f" ({'; '.join(skipped)})" if skipped else ""),
            )
        point = UsagePoint(
            "", "", "electricity", ("electricity rows of the CSV",), len(rows),
            datetime.fromtimestamp(rows[0][0], UTC),
            datetime.fromtimestamp(max(start + length for start, length, _, _ in rows), UTC),
        )
        return GreenButtonFile("CSV", (point,), {"": (rows, notes)}, skipped)

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
        try:
            start_s, duration_s = self._times(header, cells, line)
        except _ThirdTime as repeated:
            self._third.append((repeated.wall, line))
            return
        if start_s is None:
            if any(values.values()):
                self._skipped_time(header, values, scale, line, intervals)
            else:
                self._skipped["rows in the hour skipped when clocks go forward"] += 1
            return
        self._previous = (start_s, duration_s)
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

    def _skipped_time(
        self, header: _Header, values: dict[str, float | None], scale: float, line: int,
        intervals: _Intervals,
    ) -> None:
        """A row for a local time the clocks skipped, with energy: the meter counted that energy in
        the hour it really ran, so it is added to the row before it (nothing is lost or invented)."""
        energy = [0.0, 0.0]
        for role, value in values.items():
            if value is None:
                continue
            kwh = value * header.units.get(role, scale)
            if role == "net":
                energy[CONSUMED if kwh >= 0 else GENERATED] += abs(kwh)
            elif kwh < 0:
                raise GreenButtonError(
                    f"line {line}", f"{header.names[role]} is {kwh:g} kWh; it cannot be negative"
                )
            else:
                energy[CONSUMED if role == "consumed" else GENERATED] += kwh
        merged = self._previous is not None and intervals.add(self._previous, energy)
        self._gap_rows.append((self._gap_wall, line, energy, merged))

    def _gap_notes(self) -> Iterator[ImportNote]:
        for merged in (True, False):
            rows = [row for row in self._gap_rows if row[3] == merged]
            if not rows:
                continue
            wall, line, _, _ = rows[0]
            used = sum(row[2][CONSUMED] for row in rows)
            sent = sum(row[2][GENERATED] for row in rows)
            what = " and ".join(
                f"{kwh:g} kWh {name}" for kwh, name in ((used, "used"), (sent, "sent out")) if kwh
            )
            rows_words = _plural(len(rows), "row")
            text = (
                f"{rows_words} for a time the clocks skipped (the first {wall:%Y-%m-%d %H:%M}, "
                f"line {line}) with {what}"
            )
            if merged:
                yield ImportNote("merged", len(rows), f"{text}: added to the row before")
            else:
                yield ImportNote("dropped", len(rows), f"{text}: no row before to add it to")
        if self._third:
            wall, line = self._third[0]
            yield ImportNote("dropped", len(self._third), (
                f"{_plural(len(self._third), 'row')} for a repeated autumn time given a third time "
                f"(the first {wall:%Y-%m-%d %H:%M}, line {line}; that hour happens only twice): "
                "kept the first two"))

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
            self._gap_wall = wall
            return None  # in the spring gap: this local time never happened
        if offset_first > offset_second:
            seen = self._seen_ambiguous.get(wall, 0)
            if seen >= 2:
                raise _ThirdTime(wall)
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

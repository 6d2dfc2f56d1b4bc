"""What every meter source shares: intervals from a summation, the link's state, the meter's pin.

A meter source is whatever brings a meter's figures into the appliance: the ZigBee SE link, a
Rainforest bridge (EMU-2 over serial, EAGLE over the LAN) or an IEEE 2030.5 meter. Each turns its
wire format into the same domain events (``ems.model``); what they all need beyond the wire lives
here, so that a bridge behaves like the meter link the customer already knows:

* ``IntervalsFromSummation``: bridges report a cumulative summation, not interval data. The
  cost engine prices intervals, so a source turns successive summations into intervals on fixed
  boundaries (energy interpolated at each boundary). After a silence (the bridge stalled, the
  appliance was off) the whole delta becomes **one** reading spanning the gap, never a spike of
  invented demand in the interval after it; the cost engine prices a reading longer than an hour
  as flat shares and marks it estimated (``ems.costs.COARSE_S``). A summation that goes backwards
  (a new meter, a reset) restarts the baseline and emits nothing.
* ``LinkStateTracker``: the ``MeterLinkChanged`` a source publishes, only on a real change, and
  "stale" after a silence (connected, but nothing heard).
* ``MeterPins``: the meter a source first reads for a ``meter_id`` is pinned (kept in the store);
  a different one (the customer moved, a neighbour's bridge) is refused until the owner confirms
  it on the Commissioning page (C6 1.4: never a neighbour's meter).
* ``MeterSourceKind``: what the Commissioning page's meter setup asks of a kind of source: its
  settings' fields, find candidates, and read once with the settings the customer entered before
  they are saved (validate before save, as Home Assistant's config flows do).
* ``MeterSources``: the sources set up on that page, kept in the store (``meter_sources``) and
  started at every start over what ``ems.yaml`` says; saving one stops whatever read that meter
  before (the ZigBee SE link included) and starts the new one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.clock import Clock
from ems.model import IntervalReading, LinkState, MeterLinkChanged, MeterReading, PriceSignal, Text
from ems.store import Store, tables
from ems.store.writer import insert

if TYPE_CHECKING:
    from ems.bus import EventBus

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "IntervalsFromSummation",
    "LinkStateTracker",
    "MeterPin",
    "MeterPins",
    "MeterSourceKind",
    "MeterSources",
    "SavedSource",
    "SourceCandidate",
    "SourceField",
    "SourceProbe",
    "SummationGap",
    "SummationResult",
]


# --- Intervals from a cumulative summation -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SummationGap:
    """A silence longer than the source's gap limit, filled by one reading of the summation's delta."""

    start: datetime  # the last interval boundary reached before the silence
    end: datetime  # the last boundary the new summation is known past
    delivered_kwh: float
    received_kwh: float


@dataclass(frozen=True, slots=True)
class SummationResult:
    """What one summation added: the intervals it completed, a filled gap, or a reset."""

    intervals: tuple[IntervalReading, ...] = ()
    gap: SummationGap | None = None
    reset: bool = False  # the summation went backwards: nothing emitted, the baseline restarted


@dataclass(frozen=True, slots=True)
class _Sample:
    at: datetime
    delivered_kwh: float
    received_kwh: float


class IntervalsFromSummation:
    """Turns a meter's successive summations into ``IntervalReading``s on ``interval_s`` boundaries.

    Boundaries are aligned to the Unix epoch (a 15-minute interval starts at :00, :15, ...). The
    energy of an interval is the summation interpolated linearly at its end minus at its start,
    so samples every few seconds and a 60-s interval give each minute what the meter counted in
    it. Only boundaries between two samples at most ``gap_s`` apart are interpolated; across a
    longer silence the delta goes into one reading from the last boundary reached to the last
    boundary before the new sample. A source without a received register passes None.
    """

    def __init__(self, meter_id: str, *, interval_s: int = 60, gap_s: float = 300.0) -> None:
        if interval_s <= 0 or gap_s <= 0:
            raise ValueError("interval_s and gap_s must be positive")
        self.meter_id = meter_id
        self.interval_s = int(interval_s)
        self.gap_s = float(gap_s)
        self._last: _Sample | None = None
        self._boundary: datetime | None = None  # the last boundary an interval was emitted up to
        self._at_boundary: _Sample | None = None  # the summation interpolated at that boundary

    @property
    def last_at(self) -> datetime | None:
        """When the last summation taken was read (None before the first)."""
        return None if self._last is None else self._last.at

    def seed(self, at: datetime, delivered_kwh: float, received_kwh: float | None = None) -> None:
        """Start from a summation known earlier (the store's last one after a restart): the time
        the appliance was off is then filled like any other silence."""
        self._take_first(_Sample(at, float(delivered_kwh), float(received_kwh or 0.0)))

    def add(self, at: datetime, delivered_kwh: float, received_kwh: float | None = None) -> SummationResult:
        """Take one summation read at ``at``; return what it completed."""
        if not (math.isfinite(delivered_kwh) and (received_kwh is None or math.isfinite(received_kwh))):
            raise ValueError("a summation must be a finite number of kWh")
        sample = _Sample(at, float(delivered_kwh), float(received_kwh or 0.0))
        last = self._last
        if last is None:
            self._take_first(sample)
            return SummationResult()
        if at <= last.at:
            return SummationResult()  # a repeat or an older report: nothing new
        if sample.delivered_kwh < last.delivered_kwh - 1e-9 or sample.received_kwh < last.received_kwh - 1e-9:
            self._take_first(sample)
            return SummationResult(reset=True)
        assert self._boundary is not None
        self._last = sample
        silence = (at - last.at).total_seconds() > self.gap_s
        if self._at_boundary is None and self._boundary <= at and not silence:
            self._at_boundary = self._value_at(last, sample, self._boundary)  # the first boundary passed
        last_boundary_before = self._floor(at)
        if last_boundary_before <= self._boundary:
            return SummationResult()
        if silence:
            return self._fill_gap(last, sample, last_boundary_before)
        return SummationResult(intervals=tuple(self._interpolate(last, sample, last_boundary_before)))

    # -- plumbing --------------------------------------------------------------------------

    def _floor(self, at: datetime) -> datetime:
        epoch_s = at.timestamp()
        floored = math.floor(epoch_s / self.interval_s) * self.interval_s
        return at + timedelta(seconds=floored - epoch_s)

    def _take_first(self, sample: _Sample) -> None:
        # The first boundary after the first sample is the first one an interval can start at:
        # the energy before it is not known from its start.
        self._last = sample
        boundary = self._floor(sample.at)
        if boundary < sample.at:
            boundary += timedelta(seconds=self.interval_s)
        self._boundary = boundary
        self._at_boundary = None if boundary != sample.at else sample

    def _value_at(self, a: _Sample, b: _Sample, at: datetime) -> _Sample:
        share = (at - a.at).total_seconds() / (b.at - a.at).total_seconds()
        return _Sample(at, a.delivered_kwh + (b.delivered_kwh - a.delivered_kwh) * share,
                       a.received_kwh + (b.received_kwh - a.received_kwh) * share)

    def _reading(self, start: _Sample, end: _Sample) -> IntervalReading:
        return IntervalReading(
            self.meter_id, start.at, round((end.at - start.at).total_seconds()),
            max(0.0, end.delivered_kwh - start.delivered_kwh), max(0.0, end.received_kwh - start.received_kwh),
        )

    def _interpolate(self, a: _Sample, b: _Sample, until: datetime) -> list[IntervalReading]:
        assert self._boundary is not None
        out: list[IntervalReading] = []
        step = timedelta(seconds=self.interval_s)
        boundary = self._boundary
        assert self._at_boundary is not None
        while boundary + step <= until:
            boundary += step
            value = self._value_at(a, b, boundary)
            out.append(self._reading(self._at_boundary, value))
            self._at_boundary = value
        self._boundary = boundary
        return out

    def _fill_gap(self, a: _Sample, b: _Sample, until: datetime) -> SummationResult:
        assert self._boundary is not None
        # Nothing known at the first boundary yet (a silence right after the first summation):
        # the gap starts at that summation.
        start = self._at_boundary if self._at_boundary is not None else a
        end = self._value_at(a, b, until)
        self._boundary, self._at_boundary = until, end
        if end.at <= start.at:
            return SummationResult()
        reading = self._reading(start, end)
        gap = SummationGap(start.at, end.at, reading.consumed_kwh, reading.generated_kwh)
        return SummationResult(intervals=(reading,), gap=gap)


# --- The link's state -----------------------------------------------------------------------


class LinkStateTracker:
    """A meter source's ``MeterLinkChanged``: published only on a real change, "stale" after silence.

    The source calls ``set`` as it connects and drops, and ``heard`` for every value it takes;
    ``watch`` (a hub task) turns an online link stale after ``stale_after_s`` of hub time without
    one, and ``heard`` turns it back online.
    """

    def __init__(self, bus: EventBus, clock: Clock, meter_id: str, *, stale_after_s: float) -> None:
        self._bus = bus
        self._clock = clock
        self.meter_id = meter_id
        self.stale_after_s = float(stale_after_s)
        self.state = LinkState.CONNECTING
        self.detail = ""
        self.last_heard: datetime | None = None
        self._published = False

    def set(self, state: LinkState, detail: str = "") -> bool:
        """Move to ``state``; publish when it changed (or on the first call). Returns whether it did."""
        if self._published and state is self.state:
            return False
        self.state, self.detail, self._published = state, detail, True
        self._bus.publish(MeterLinkChanged(self.meter_id, state, self._clock(), detail))
        return True

    def heard(self) -> None:
        """A value arrived from the meter."""
        self.last_heard = self._clock()
        if self.state in (LinkState.STALE, LinkState.CONNECTING):
            self.set(LinkState.ONLINE, "reports resumed" if self.state is LinkState.STALE else "")

    def silent_for(self) -> float | None:
        """Seconds of hub time since the last value (None before the first)."""
        if self.last_heard is None:
            return None
        return (self._clock() - self.last_heard).total_seconds()

    async def watch(self, period_s: float | None = None) -> None:
        """Run for as long as the source does: mark the link stale after a silence."""
        period = period_s if period_s is not None else max(0.05, min(5.0, self.stale_after_s / 4))
        while True:
            await self._clock.sleep(period)
            silent = self.silent_for()
            if self.state is LinkState.ONLINE and silent is not None and silent > self.stale_after_s:
                self.set(LinkState.STALE, f"no report for over {self.stale_after_s:g} s")


# --- The meter's pin ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterPin:
    """Which meter a ``meter_id`` reads, and a different one waiting for the owner's word."""

    meter_id: str
    kind: str  # "zigbee", "emu2", "eagle", "ieee2030_5"
    hardware_id: str  # the meter's MAC/EUI-64, or its 2030.5 LFDI
    pinned_at: datetime
    pending_hardware_id: str | None = None  # a different meter answered: refused until confirmed
    pending_at: datetime | None = None


class MeterPins:
    """The meters the appliance reads, one per ``meter_id``, kept in the store (``meter_pins``).

    ``admit`` is what a source asks before it takes a meter's data. The pins are read from the
    store on first use and kept in memory; a change is written before it is acted on.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pins: dict[str, MeterPin] | None = None
        self._refused_logged: set[tuple[str, str]] = set()
        self.listeners: list[Callable[[MeterPin], None]] = []  # told of every change (the web pushes it)

    async def pins(self) -> dict[str, MeterPin]:
        if self._pins is None:
            self._pins = await self._store.read("read the meter pins", _read_pins)
        return self._pins

    async def get(self, meter_id: str) -> MeterPin | None:
        return (await self.pins()).get(meter_id)

    async def admit(self, meter_id: str, kind: str, hardware_id: str) -> bool:
        """Whether data from the meter ``hardware_id`` may be taken as ``meter_id``'s.

        The first meter seen is pinned; the pinned one is admitted; any other is refused and
        recorded as pending until the owner confirms it (``confirm``).
        """
        hardware_id = _normal(hardware_id)
        pins = await self.pins()
        pin = pins.get(meter_id)
        now = self._clock()
        if pin is None:
            pin = MeterPin(meter_id, kind, hardware_id, now)
            await self._save(pin)
            _LOGGER.info("Meter %s is %s %s (pinned: another meter is refused until the owner confirms it)",
                         meter_id, kind, hardware_id)
            return True
        if pin.hardware_id == hardware_id:
            return True
        if pin.pending_hardware_id != hardware_id:
            pin = MeterPin(pin.meter_id, pin.kind, pin.hardware_id, pin.pinned_at, hardware_id, now)
            await self._save(pin)
        if (meter_id, hardware_id) not in self._refused_logged:
            self._refused_logged.add((meter_id, hardware_id))
            _LOGGER.warning(
                "Meter %s: a different meter (%s %s) answered where %s was; its data is refused until the owner "
                "confirms it on the Commissioning page", meter_id, kind, hardware_id, pin.hardware_id)
        return False

    async def confirm(self, meter_id: str, hardware_id: str, by: str) -> MeterPin:
        """The owner says the pending meter is theirs: it becomes the pinned one."""
        hardware_id = _normal(hardware_id)
        pin = (await self.pins()).get(meter_id)
        if pin is None or pin.pending_hardware_id != hardware_id:
            raise LookupError(f"no meter {hardware_id} is waiting to be confirmed for {meter_id}")
        new = MeterPin(meter_id, pin.kind, hardware_id, self._clock())
        await self._save(new)
        _LOGGER.info("Meter %s is now %s (confirmed by %s; was %s)", meter_id, hardware_id, by, pin.hardware_id)
        return new

    async def forget(self, meter_id: str, by: str) -> None:
        """Drop the pin (a new installation): the next meter seen is pinned."""
        pins = await self.pins()
        if pins.pop(meter_id, None) is None:
            return

        async def delete(conn: AsyncConnection) -> None:
            await conn.execute(tables.meter_pins.delete().where(tables.meter_pins.c.meter_id == meter_id))

        await self._store.write("forget a meter pin", delete)
        _LOGGER.info("Meter %s's pin was removed by %s", meter_id, by)

    async def _save(self, pin: MeterPin) -> None:
        values = {"kind": pin.kind, "hardware_id": pin.hardware_id, "pinned_at": pin.pinned_at,
                  "pending_hardware_id": pin.pending_hardware_id, "pending_at": pin.pending_at}

        async def upsert(conn: AsyncConnection) -> None:
            stmt = insert(conn, tables.meter_pins).values(meter_id=pin.meter_id, **values)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["meter_id"], set_=values))

        await self._store.write("pin a meter", upsert)
        (await self.pins())[pin.meter_id] = pin
        for listener in list(self.listeners):
            listener(pin)


def _normal(hardware_id: str) -> str:
    text = str(hardware_id).strip().lower()
    if not text:
        raise ValueError("a meter's hardware id cannot be empty")
    return text


async def _read_pins(conn: AsyncConnection) -> dict[str, MeterPin]:
    table = tables.meter_pins
    rows = (await conn.execute(select(table))).all()
    return {row.meter_id: MeterPin(row.meter_id, row.kind, row.hardware_id, row.pinned_at,
                                   row.pending_hardware_id, row.pending_at) for row in rows}


# --- What the Commissioning page's meter setup asks of a kind of source ---------------------


@dataclass(frozen=True, slots=True)
class SourceCandidate:
    """A meter source found on this box or the LAN, for the customer to choose."""

    kind: str
    address: str  # a serial port's path, a host[:port], or a URL: what the section's address field takes
    # What the customer sees: "Rainforest EMU-2 on /dev/ttyACM0", a Text (rendered in the reader's language).
    label: str | Text
    hardware_id: str | None = None


@dataclass(frozen=True, slots=True)
class SourceProbe:
    """One read with the settings the customer entered, before they are saved."""

    ok: bool
    # Words a customer can act on, when not ok: a Text (its msgid marked with ems.local_text.N_,
    # rendered in the reader's language), or a plain English msgid.
    reason: Text | str | None = None
    hardware_id: str | None = None
    reading: MeterReading | None = None
    price: PriceSignal | None = None
    # (label, value) pairs worth showing: firmware, model, ...; the label a msgid, the value as it is
    # (a model, an address) or a Text when it holds words or a time (rendered for the reader).
    details: tuple[tuple[str, str | Text], ...] = ()


@dataclass(frozen=True, slots=True)
class SourceField:
    """One setting of a kind of source, as the setup form asks for it (its key in the kind's section)."""

    name: str  # the section's key: "port", "host", "cloud_id", ...
    label: str  # English; the page translates it
    kind: str = "text"  # "text", "password" (never shown back), "number", "address" (filled by Find)
    required: bool = False
    hint: str = ""
    default: str = ""


class MeterSourceKind(Protocol):
    """A kind of meter source the Commissioning page can set up (registered in ``hub.meter_source_kinds``)."""

    kind: str
    title: str  # "Rainforest EMU-2 (USB)"
    fields: Sequence[SourceField]  # what the form asks for, besides the meter id

    async def discover(self, timeout_s: float) -> Sequence[SourceCandidate]:
        """The sources of this kind found now (serial ports, devices on the LAN)."""

    async def probe(self, section: dict[str, Any]) -> SourceProbe:
        """Connect with ``section`` (the kind's config section, not yet validated) and read once."""

    # Optional: ``async def registration(self) -> Sequence[tuple[str, str]]``, what the customer gives
    # the utility for this kind (a 2030.5 meter's LFDI and SFDI), as (msgid label, value) pairs.


class SourceStarter(Protocol):
    """How the composition root validates a kind's section and starts it (``ems.cli``)."""

    def validate(self, section: dict[str, Any]) -> dict[str, Any]:
        """The section validated by the kind's schema (raises ``ValueError`` naming the key)."""

    async def start(self, section: dict[str, Any]) -> Closeable:
        """Start the source on this validated section."""


class Closeable(Protocol):
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SavedSource:
    """A meter source the owner or installer set up on the Commissioning page."""

    meter_id: str
    kind: str
    section: dict[str, Any]  # validated; may hold credentials (never shown back, never logged)
    saved_at: datetime
    saved_by: str


class MeterSources:
    """The meter sources set up on the Commissioning page, and the one running for each meter id.

    ``ems.cli`` registers a starter for each kind and adopts what ``ems.yaml`` started (the ZigBee
    SE link); ``start_saved`` runs the saved ones at start; ``save`` replaces what read a meter.
    """

    def __init__(self, store: Store, clock: Clock, kinds: dict[str, MeterSourceKind]) -> None:
        self._store = store
        self._clock = clock
        self.kinds = kinds
        self.starters: dict[str, SourceStarter] = {}
        self.running: dict[str, tuple[str, Closeable]] = {}  # meter id -> (kind, what runs)
        self._adopted: set[str] = set()  # meter ids whose source ems.yaml started (its component stops it)
        # Registers the kinds and starters (ems.cli): their modules are imported only when the setup
        # page asks or a saved source starts, not on every box at every start (2030.5's is ~5 MB).
        self.loader: Callable[[], Awaitable[None]] | None = None
        self._loading: asyncio.Task[None] | None = None
        self._saved: dict[str, SavedSource] | None = None

    async def ensure_kinds(self) -> None:
        """Have every kind registered (once; concurrent callers wait for the same load)."""
        if self.loader is None:
            return
        if self._loading is None:
            self._loading = asyncio.ensure_future(self.loader())
        await asyncio.shield(self._loading)

    async def saved(self) -> dict[str, SavedSource]:
        if self._saved is None:
            self._saved = await self._store.read("read the meter sources", _read_sources)
        return self._saved

    async def saved_for(self, meter_id: str) -> SavedSource | None:
        return (await self.saved()).get(meter_id)

    def adopt(self, meter_id: str, kind: str, running: Closeable) -> None:
        """What ems.yaml started for ``meter_id`` (replaced if a source is saved for it)."""
        self.running[meter_id] = (kind, running)
        self._adopted.add(meter_id)

    def validate(self, kind: str, section: dict[str, Any]) -> dict[str, Any]:
        starter = self.starters.get(kind)
        if starter is None:
            raise ValueError(f"this appliance cannot read a meter through {kind!r}")
        return starter.validate(section)

    async def save(self, kind: str, section: dict[str, Any], by: str) -> SavedSource:
        """Keep ``section`` (validated) for its meter id and start it in place of what ran there."""
        validated = self.validate(kind, section)
        meter_id = str(validated.get("meter_id") or "main")
        saved = SavedSource(meter_id, kind, validated, self._clock(), by)
        values = {"kind": kind, "settings": _jsonable(validated), "saved_at": saved.saved_at, "saved_by": by}

        async def upsert(conn: AsyncConnection) -> None:
            stmt = insert(conn, tables.meter_sources).values(meter_id=meter_id, **values)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["meter_id"], set_=values))

        await self._store.write("save a meter source", upsert, durable=True)
        (await self.saved())[meter_id] = saved
        _LOGGER.info("Meter %s is now read through %s (set up by %s)", meter_id, kind, by)
        await self._replace(saved)
        return saved

    async def start_saved(self) -> None:
        """Start every saved source (at start, after the integrations ems.yaml names)."""
        if await self.saved():
            await self.ensure_kinds()
        for saved in list((await self.saved()).values()):
            try:
                await self._replace(saved)
            except Exception:
                _LOGGER.exception("Meter %s: its %s source did not start; the Commissioning page can set it up again",
                                  saved.meter_id, saved.kind)

    async def close(self) -> None:
        """Stop the sources this started (what ems.yaml started stops with its own component)."""
        for meter_id in list(self.running):
            if meter_id not in self._adopted:
                await self._stop(meter_id)

    async def _replace(self, saved: SavedSource) -> None:
        starter = self.starters.get(saved.kind)
        if starter is None:
            _LOGGER.warning("Meter %s was set up to be read through %s, which this appliance no longer has",
                            saved.meter_id, saved.kind)
            return
        await self._stop(saved.meter_id)
        self.running[saved.meter_id] = (saved.kind, await starter.start(dict(saved.section)))

    async def _stop(self, meter_id: str) -> None:
        entry = self.running.pop(meter_id, None)
        self._adopted.discard(meter_id)
        if entry is not None:
            try:
                await entry[1].close()
            except Exception:
                _LOGGER.exception("Meter %s: its %s source did not stop cleanly", meter_id, entry[0])


def _jsonable(section: dict[str, Any]) -> dict[str, Any]:
    return {key: (value if isinstance(value, str | int | float | bool | type(None) | list | dict) else str(value))
            for key, value in section.items()}


async def _read_sources(conn: AsyncConnection) -> dict[str, SavedSource]:
    table = tables.meter_sources
    rows = (await conn.execute(select(table))).all()
    return {row.meter_id: SavedSource(row.meter_id, row.kind, dict(row.settings), row.saved_at, row.saved_by)
            for row in rows}

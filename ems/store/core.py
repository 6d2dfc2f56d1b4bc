"""The Store: the appliance's durable memory of readings, prices, messages, DR events and reports.

It owns the engine and the one writer task. Bus events reach the writer through ``attach``;
callers await reads (straight from the database) and the few writes that need an answer (run
as jobs by the same writer, so there is only ever one writer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ems.bus import EventBus, Unsubscribe
from ems.clock import REAL, Clock
from ems.config import StoreConfig
from ems.errors import StoreError
from ems.model import (
    EventStatusReport,
    IntervalReading,
    MessageCancelled,
    MessageConfirmed,
    MeterInfo,
    MeterReading,
    PriceSignal,
    StorageChanged,
)
from ems.state import CurrentState
from ems.store import commands, queries
from ems.store.engine import (
    OWNER_ONLY_DIR,
    create_engine,
    database_url,
    describe,
    error_text,
    migrate,
    restrict_data_dir,
    sqlite_path,
)
from ems.store.recent import RecentIntervals
from ems.store.records import IntervalImport, OutboxRecord, PurgeResult, StoredEvent, StoredMessage
from ems.store.retention import Retention, SizeTrim, purge, trim_to_size
from ems.store.writer import MAX_BACKLOG, Outage, Writer

if TYPE_CHECKING:
    from ems.costs import ReadingArrays

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

# What restore_state brings back besides what is current: the state itself keeps a day of
# ended prices for display. (DR events are the DR core's: ems.dr.events reads them at start.)
RESTORE_PRICE_HISTORY = timedelta(days=1)


class Store:
    """SQLite by default (``DATA_DIR/ems.db``), PostgreSQL by URL; migrated to head on open."""

    def __init__(
        self, config: StoreConfig, data_dir: Path, *, max_backlog: int = MAX_BACKLOG,
        clock: Clock = REAL,
    ) -> None:
        self.config = config
        self.clock = clock  # "now" for restore and purge when the caller gives none
        self.data_dir = Path(data_dir)
        self.url = database_url(config.url, Path(data_dir))
        self.name = describe(self.url)
        self.retention = Retention.from_config(config)
        self._max_backlog = max_backlog
        self._engine: AsyncEngine | None = None
        self._writer: Writer | None = None
        self._unsubscribe: list[Unsubscribe] = []
        self._buses: list[EventBus] = []  # those it writes from: each hears StorageChanged
        self.recent = RecentIntervals()  # the last weeks of intervals as read, for interval_columns

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate the schema to head and start the writer."""
        if self._engine is not None:
            raise StoreError(f"{self.name}: the store is already open")
        path = sqlite_path(self.url)
        try:
            if path is not None and path.parent == self.data_dir.resolve():
                await asyncio.to_thread(restrict_data_dir, path.parent)
            elif path is not None:  # a file the configuration placed elsewhere: its folder is not ours
                await asyncio.to_thread(path.parent.mkdir, mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
            engine = create_engine(self.url)
        except (OSError, ImportError, SQLAlchemyError) as err:
            raise StoreError(f"{self.name}: cannot open the database: {err}") from err
        try:
            await migrate(engine)
        except Exception as err:
            await engine.dispose()
            raise StoreError(f"{self.name}: cannot migrate the schema: {error_text(err)}") from err
        self._engine = engine
        self._writer = Writer(engine, self.name, self._max_backlog, clock=self.clock,
                              on_outage=self._on_outage)
        self._writer.start()
        _LOGGER.info("Store open: %s", self.name)

    def attach(self, bus: EventBus) -> None:
        """Write every storable bus event (through the writer's queue); say on ``bus`` when the
        database stops or starts taking writes (StorageChanged), so the pages can say so."""
        writer = self._require_writer("attach to the bus")
        self._buses.append(bus)
        recent = self.recent

        def submit(event: object) -> None:
            if isinstance(event, IntervalReading):
                recent.written(event.meter_id, event.start)  # before its commit: see ems.store.recent
            writer.submit(event)

        self._unsubscribe.append(bus.listen_all(submit))

    def _on_outage(self, outage: Outage | None) -> None:
        changed = StorageChanged(None if outage is None else outage.problem, self.clock(),
                                 None if outage is None else outage.since)
        for bus in self._buses:
            bus.publish(changed)

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._buses.clear()

    async def close(self) -> None:
        """Stop listening, write what is queued, stop the writer and release the engine."""
        self.detach()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.stop()
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
            _LOGGER.info("Store closed: %s", self.name)

    async def flush(self) -> None:
        """Wait until every event queued so far is committed."""
        if self._writer is not None:
            await self._writer.flush()

    @property
    def dropped(self) -> dict[str, int]:
        """Events dropped because the write queue overflowed, by event type."""
        return {} if self._writer is None else dict(self._writer.dropped)

    @property
    def outage(self) -> Outage | None:
        """Why the database cannot be written now (None: it can); events wait in memory meanwhile."""
        return None if self._writer is None else self._writer.outage

    @property
    def backlog(self) -> int:
        return 0 if self._writer is None else self._writer.backlog

    # -- restore ---------------------------------------------------------------------------

    async def restore_state(self, state: CurrentState, now: datetime | None = None) -> None:
        """Replay what the page shows into ``state``, so it has data right after a restart."""
        now = now or self.clock()

        async def load(conn: AsyncConnection) -> tuple[Any, ...]:
            infos = await queries.meters(conn)
            readings: list[MeterReading] = []
            intervals: list[IntervalReading] = []
            for meter_id in await queries.meter_ids(conn):
                for reading in (
                    await queries.latest_demand(conn, meter_id),
                    await queries.latest_register(conn, meter_id),
                ):
                    if reading is not None:
                        readings.append(reading)
                interval = await queries.latest_interval(conn, meter_id)
                if interval is not None:
                    intervals.append(interval)
            prices = await queries.prices(conn, None, now - RESTORE_PRICE_HISTORY)
            messages = await queries.messages(conn, now - self.retention.messages)
            return infos, readings, intervals, prices, messages

        infos, readings, intervals, prices, messages = await self._read(
            "restore the state", load
        )
        replay: list[object] = [*infos, *sorted(readings, key=lambda r: r.read_at), *intervals]
        replay.extend(prices)
        for stored in messages:
            replay.extend(_message_events(stored))
        for event in replay:
            state.apply(event)
        for stored in messages:
            # Being read has no domain event (it never leaves the appliance): set the mark.
            message_state = state.messages.get((stored.message.meter_id, stored.message.message_id))
            if stored.read and message_state is not None:
                message_state.read = True
        _LOGGER.info(
            "Restored %d meters, %d prices and %d messages from %s (the DR core reads its events itself)",
            len(state.meters),
            len(prices),
            len(messages),
            self.name,
        )

    # -- reads -----------------------------------------------------------------------------

    async def intervals(self, meter_id: str, start: datetime, end: datetime) -> list[IntervalReading]:
        """Intervals of one meter starting in [start, end), oldest first."""
        return await self._read_published("read intervals", queries.intervals, meter_id, start, end)

    async def interval_columns(self, meter_id: str, start: datetime, end: datetime) -> ReadingArrays:
        """The same intervals as numpy columns (``ems.costs.ReadingArrays``), read in steps; the last
        weeks from memory where they were read before (ems.store.recent)."""
        await self.flush()

        async def fetch(begin: datetime, until: datetime) -> ReadingArrays:
            return await self._read("read intervals", queries.interval_columns, meter_id, begin, until)

        return await self.recent.read(meter_id, start, end, self.clock(), fetch)

    async def latest_interval(self, meter_id: str, start: datetime, end: datetime) -> IntervalReading | None:
        """The latest interval of one meter starting in [start, end), if any."""
        return await self._read_published("read intervals", queries.latest_interval, meter_id, start, end)

    async def interval_count(self, meter_id: str, start: datetime, end: datetime) -> int:
        """How many intervals of one meter start in [start, end)."""
        return await self._read_published("count intervals", queries.interval_count, meter_id, start, end)

    async def demand_samples(self, meter_id: str, start: datetime, end: datetime) -> list[MeterReading]:
        """Demand samples of one meter taken in [start, end), as MeterReadings."""
        return await self._read_published("read demand", queries.demand_samples, meter_id, start, end)

    async def messages(self, since: datetime) -> list[StoredMessage]:
        """Messages received since ``since``, oldest first, with their marks."""
        return await self._read_published("read messages", queries.messages, since)

    async def events(self, since: datetime) -> list[StoredEvent]:
        """DR events not ended before ``since``, by start, with their cancellation."""
        return await self._read_published("read DR events", queries.events, since)

    async def prices(self, meter_id: str | None, since: datetime) -> list[PriceSignal]:
        """Prices of one meter (None: all) not ended before ``since``, in the order received."""
        return await self._read_published("read prices", queries.prices, meter_id, since)

    async def meter_ids(self) -> list[str]:
        return await self._read_published("list meters", queries.meter_ids)

    async def meters(self) -> list[MeterInfo]:
        return await self._read_published("read meter info", queries.meters)

    async def event_status_history(
        self, issuer_event_id: int, meter_id: str | None = None
    ) -> list[EventStatusReport]:
        """Every status reported for one DR event, oldest first."""
        return await self._read_published(
            "read event status history", queries.event_status_history, issuer_event_id, meter_id
        )

    # -- writes that callers await ---------------------------------------------------------

    def watch_intervals(self, callback: Callable[[str | None, datetime | None], None]) -> Callable[[], None]:
        """Hear of each interval as it is written (meter, start), and of deleted ones (None, None),
        for what keeps figures made of them; returns the undo."""
        return self.recent.listen(callback)

    async def add_intervals(self, readings: Sequence[IntervalReading]) -> int:
        """Insert intervals in one transaction, skipping stored ones; return how many were new."""
        readings = list(readings)
        first: dict[str, datetime] = {}
        for reading in readings:
            if reading.meter_id not in first or reading.start < first[reading.meter_id]:
                first[reading.meter_id] = reading.start
        for meter_id, start in first.items():
            self.recent.written(meter_id, start)
        return await self._job("add intervals", lambda conn: commands.add_intervals(conn, readings))

    async def import_intervals(self, readings: Sequence[IntervalReading]) -> IntervalImport:
        """Write an imported file's intervals in one transaction: new ones added, changed ones
        corrected, none counted twice over readings of another length (``commands.import_intervals``)."""
        readings = list(readings)
        first: dict[str, datetime] = {}
        for reading in readings:
            if reading.meter_id not in first or reading.start < first[reading.meter_id]:
                first[reading.meter_id] = reading.start
        for meter_id, start in first.items():  # coarser stored readings before it may go too
            self.recent.written(meter_id, start - commands.IMPORT_REACH)
        return await self._job("import intervals", lambda conn: commands.import_intervals(conn, readings))

    async def mark_message_read(self, meter_id: str, message_id: int) -> bool:
        """Mark a message read; False if there is no such message."""
        return await self._job(
            "mark a message read",
            lambda conn: commands.mark_message_read(conn, meter_id, message_id),
        )

    async def purge(self, now: datetime | None = None) -> PurgeResult:
        """Delete what is past its retention (run daily)."""
        at = now or self.clock()
        result = await self._job("purge", lambda conn: purge(conn, self.retention, at))
        if result.interval_readings:
            self.recent.clear()
        if result.total:
            _LOGGER.info("Retention purge in %s: %s", self.name, result)
        return result

    async def keep_within_size(self) -> SizeTrim | None:
        """With a size limit, delete the oldest samples and readings until the database is within
        it (run hourly); None without a limit."""
        limit = self.retention.max_bytes
        if limit is None:
            return None
        result = await self._job("keep the database within its size", lambda conn: trim_to_size(conn, limit))
        if result.deleted.get("interval_readings"):
            self.recent.clear()
        if result.total:
            _LOGGER.warning(
                "%s reached its size limit (%.1f of %.1f MB in use): deleted the oldest %s; %.1f MB in use now",
                self.name, result.used_before / 2**20, limit / 2**20,
                ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result.deleted.items()),
                result.used_after / 2**20)
        elif result.used_after > limit:
            _LOGGER.warning("%s is over its size limit (%.1f of %.1f MB) with nothing left it may delete",
                            self.name, result.used_after / 2**20, limit / 2**20)
        return result

    # -- the outbox's rows (used by ems.outbox) --------------------------------------------

    async def outbox_add(
        self, kind: str, payload: dict[str, Any], created_at: datetime, *, meter_id: str | None = None
    ) -> int:
        """Commit one outbox row (synchronously to disk) and return its id.

        ``meter_id`` is the route's meter (None: the premise-wide route), see ``ems.outbox``.
        """
        return await self._job(
            "add to the outbox",
            lambda conn: commands.outbox_add(conn, kind, payload, created_at, meter_id),
            durable=True,
        )

    async def confirm_message_once(
        self, meter_id: str, message_id: int, confirmed_at: datetime, answer: str | None, payload: dict[str, Any]
    ) -> int | None:
        """Mark a message confirmed and queue its MessageConfirmation in one durable transaction, only if it
        was not confirmed yet; the outbox id, or None (confirmed already, or no such message stored)."""
        await self.flush()  # the message itself (written from the bus) is stored first
        return await self._job(
            "confirm a message",
            lambda conn: commands.confirm_message_once(conn, meter_id, message_id, confirmed_at, answer, payload),
            durable=True,
        )

    async def outbox_pending(self) -> list[OutboxRecord]:
        return await self._read("read the outbox", queries.outbox_pending)

    async def outbox_route_pending(self, meter_id: str | None, kind: str) -> list[OutboxRecord]:
        return await self._read("read the outbox", queries.outbox_route_pending, meter_id, kind)

    async def outbox_delivered(self, item_id: int, at: datetime) -> None:
        await self._job(
            "mark an outbox item delivered",
            lambda conn: commands.outbox_delivered(conn, item_id, at),
        )

    async def outbox_wire_id(self, item_id: int, wire_id: int) -> None:
        """Keep the id an item's first attempt goes out under; durable before it leaves."""
        await self._job(
            "keep an outbox item's wire id",
            lambda conn: commands.outbox_wire_id(conn, item_id, wire_id),
            True,
        )

    async def outbox_failed(
        self, item_id: int, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._job(
            "record a failed delivery",
            lambda conn: commands.outbox_failed(conn, item_id, attempts, next_attempt_at, error),
        )

    # -- for services over the store (ems.accounts) ----------------------------------------

    async def read(self, what: str, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a function of ``queries`` on a fresh connection; ``what`` names it in errors."""
        return await self._read(what, query, *args)

    async def write(self, what: str, run: Callable[[AsyncConnection], Awaitable[T]], *,
                    durable: bool = False) -> T:
        """Run a function of ``commands`` in the writer's next transaction; return once committed
        (``durable``: synchronously to disk, as an outbox item is, so it survives a power cut)."""
        return await self._job(what, run, durable)

    # -- plumbing --------------------------------------------------------------------------

    def _require_writer(self, what: str) -> Writer:
        if self._writer is None:
            raise StoreError(f"{self.name}: cannot {what}: the store is not open")
        return self._writer

    async def _job(
        self, what: str, run: Callable[[AsyncConnection], Awaitable[T]], durable: bool = False
    ) -> T:
        return await self._require_writer(what).run_job(what, run, durable)

    async def _read_published(self, what: str, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Read data that reaches the store from bus events, after the writer has committed
        everything published so far: a reader always sees what the appliance has already shown."""
        await self.flush()
        return await self._read(what, query, *args)

    async def _read(self, what: str, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._engine is None:
            raise StoreError(f"{self.name}: cannot {what}: the store is not open")
        try:
            async with self._engine.connect() as conn:
                return await query(conn, *args)
        except SQLAlchemyError as err:
            raise StoreError(f"{self.name}: cannot {what}: {error_text(err)}") from err


def _message_events(stored: StoredMessage) -> list[object]:
    message = stored.message
    replay: list[object] = [message]
    if stored.cancelled_at is not None:
        replay.append(MessageCancelled(message.meter_id, message.message_id, stored.cancelled_at))
    if stored.confirmed_at is not None:
        replay.append(
            MessageConfirmed(
                message.meter_id, message.message_id, stored.confirmed_at, stored.confirmation_answer
            )
        )
    return replay


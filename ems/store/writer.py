"""The store's single writer: one task turns queued bus events and write jobs into transactions.

Events wait in a queue with a capped backlog (when it overflows, the oldest meter readings are
dropped and counted; messages, prices and DR events never are). The task takes everything
queued, writes it in one transaction and commits, so a burst costs one commit and a lone event
is written as soon as the previous commit is done. If a batch fails, its items are written one
by one, so one bad event is logged and skipped and never stops the writer.

When the database cannot be written at all (the disk is full: SQLITE_FULL, PostgreSQL 53100; it
went read-only or away), that is an outage, not a bad event: it is logged once, with its cause,
and once again when writing works again. Meanwhile the events stay queued, in order, within the
same capped backlog (beyond it the oldest readings go first, counted; messages, prices and DR
events are never dropped), and are written when the database takes them again (retried every
``RETRY_S`` of the clock, and at every ``flush``). A job asked for during an outage fails at once
with ``StoreUnavailable`` (the web answers 503), so no caller waits on a full disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, and_, case, or_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ems.clock import REAL, Clock
from ems.errors import StoreError, StoreUnavailable
from ems.model import (
    MESSAGE_IDENTITY,
    EventStatusReport,
    IntervalReading,
    LoadControlEvent,
    MessageCancelled,
    MessageConfirmed,
    MeterInfo,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from ems.store import rows, tables
from ems.store.engine import error_text, set_sqlite_synchronous

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKLOG = 20_000
MAX_BATCH = 5_000
RETRY_S = 10.0  # how often an outage is retried (in the clock's seconds)
# SQLite primary result codes that mean "this database cannot be written now", not "this row is bad".
_SQLITE_UNAVAILABLE = {5: "busy", 6: "locked", 7: "nomem", 8: "readonly", 10: "ioerr", 13: "full",
                       14: "cantopen"}
_SQLITE_FULL = 13
# PostgreSQL SQLSTATE classes (and codes) that mean the same: insufficient resources, connection.
_PG_UNAVAILABLE_CLASSES = ("53", "08", "57P")
_PG_DISK_FULL = "53100"
STORED_EVENTS: tuple[type, ...] = (
    MeterInfo,
    MeterReading,
    IntervalReading,
    PriceSignal,
    UtilityMessage,
    MessageCancelled,
    MessageConfirmed,
    LoadControlEvent,
)
# Not EventStatusReport: a status's history row is written with its outbox item in one transaction by
# the DR core (``ems.store.commands.record_event_status``), durable before it is reported.
# Not EventCancellation: what a cancel does to an event (only to an addressed, live one) is the DR
# core's to decide, and it records it (``ems.dr.events.save_cancel``).
# What may be dropped when the backlog overflows, in order of preference: readings come again
# with the next report; intervals can be read again from the meter's profile.
_DROPPABLE: tuple[type, ...] = (MeterReading, IntervalReading)


@dataclass(frozen=True, slots=True)
class Outage:
    """The database cannot be written since ``since``: ``problem`` is "disk_full" or "unwritable"."""

    since: datetime  # aware UTC
    problem: str
    detail: str  # the database's own words, for the log (never shown to a person on the web)


def unavailable(err: BaseException) -> str | None:
    """"disk_full" or "unwritable" when ``err`` says the database cannot be written now, else None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        for candidate in (current, orig):
            if isinstance(candidate, sqlite3.Error):
                code = getattr(candidate, "sqlite_errorcode", None)
                if code is not None and code & 0xFF in _SQLITE_UNAVAILABLE:
                    return "disk_full" if code & 0xFF == _SQLITE_FULL else "unwritable"
            state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if isinstance(state, str):
                if state == _PG_DISK_FULL:
                    return "disk_full"
                if state.startswith(_PG_UNAVAILABLE_CLASSES):
                    return "unwritable"
            if isinstance(candidate, (ConnectionError, OSError)):
                return "unwritable"
        if getattr(current, "connection_invalidated", False):
            return "unwritable"
        current = current.__cause__ or current.__context__
    return None


OUTAGE_TEXT = {
    "disk_full": "the appliance cannot save data: its disk is full",
    "unwritable": "the appliance cannot save data: its database cannot be written",
}


def insert(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT`` (SQLite and PostgreSQL alike)."""
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if name == "postgresql":  # its dialect (~40 modules) is imported only where PostgreSQL is used
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    raise StoreError(f"unsupported database dialect {name!r} (use SQLite or PostgreSQL)")


@dataclass(eq=False, slots=True)
class Job:
    """A write that a caller awaits: run by the writer inside its transaction."""

    name: str
    run: Callable[[AsyncConnection], Awaitable[Any]]
    future: asyncio.Future[Any]
    durable: bool = False  # commit with synchronous=FULL on SQLite (survives a power cut)


@dataclass(slots=True)
class _Batch:
    """The rows of one transaction: append-only rows go in bulk, the rest in order."""

    conn: AsyncConnection
    demand: list[dict[str, Any]] = field(default_factory=list)
    registers: list[dict[str, Any]] = field(default_factory=list)
    intervals: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)

    async def add(self, event: object) -> None:
        if isinstance(event, MeterReading):
            self._reading(event)
        elif isinstance(event, IntervalReading):
            self.intervals.append(rows.interval_row(event))
            self._seen(event.meter_id, event.end)
        elif isinstance(event, EventStatusReport):
            self.statuses.append(rows.status_row(event))
        else:
            # Rows that replace or update others keep their order (a cancellation after
            # its message), so they go to the database at once.
            await self._ordered(event)

    def _reading(self, reading: MeterReading) -> None:
        if reading.demand_kw is not None:
            self.demand.append(
                {"meter_id": reading.meter_id, "at": reading.read_at, "demand_kw": reading.demand_kw}
            )
        if reading.summation_delivered_kwh is not None or reading.summation_received_kwh is not None:
            self.registers.append(
                {
                    "meter_id": reading.meter_id,
                    "at": reading.read_at,
                    "summation_delivered_kwh": reading.summation_delivered_kwh,
                    "summation_received_kwh": reading.summation_received_kwh,
                }
            )
        self._seen(reading.meter_id, reading.read_at)

    def _seen(self, meter_id: str, at: Any) -> None:
        if meter_id not in self.seen or self.seen[meter_id] < at:
            self.seen[meter_id] = at

    async def _ordered(self, event: object) -> None:
        conn = self.conn
        if isinstance(event, MeterInfo):
            t = tables.meters
            stmt = insert(conn, t).values(rows.meter_row(event))
            newer = stmt.excluded.discovered_at
            columns = {c: stmt.excluded[c] for c in rows.meter_row(event) if c != "meter_id"}
            columns["last_seen"] = case((t.c.last_seen < newer, newer), else_=t.c.last_seen)
            await conn.execute(stmt.on_conflict_do_update(index_elements=["meter_id"], set_=columns))
        elif isinstance(event, PriceSignal):
            await self._replace(tables.prices, rows.price_row(event), ["meter_id", "issuer_event_id"])
        elif isinstance(event, UtilityMessage):
            # A new message under an id replaces the old one and its marks; the same message heard
            # again (``ems.state.is_repeat``) changes nothing, so its confirmation and read mark stay.
            t = tables.messages
            row = rows.message_row(event)
            stmt = insert(conn, t).values(row)
            columns = {c: stmt.excluded[c] for c in row if c not in ("meter_id", "message_id")}
            changed = or_(*(t.c[c].is_distinct_from(stmt.excluded[c]) for c in MESSAGE_IDENTITY))
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["meter_id", "message_id"], set_=columns, where=changed))
        elif isinstance(event, LoadControlEvent):
            # The first one heard is the event: SE says the same id again is the same event (§2.12
            # item 4), and a reused id of an ended one is refused, so a later one replaces nothing.
            stmt = insert(conn, tables.dr_events).values(rows.event_row(event))
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=["meter_id", "issuer_event_id"]))
        elif isinstance(event, MessageCancelled):
            t = tables.messages
            await conn.execute(
                update(t)
                .where(and_(t.c.meter_id == event.meter_id, t.c.message_id == event.message_id))
                .values(cancelled_at=event.at)
            )
        elif isinstance(event, MessageConfirmed):
            t = tables.messages
            await conn.execute(
                update(t)
                .where(and_(t.c.meter_id == event.meter_id, t.c.message_id == event.message_id))
                .values(confirmed_at=event.confirmed_at, confirmation_answer=event.answer, read=True)
            )

    async def _replace(self, table: Table, row: dict[str, Any], key: list[str]) -> None:
        stmt = insert(self.conn, table).values(row)
        columns = {c: stmt.excluded[c] for c in row if c not in key}
        await self.conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=columns))

    async def write_bulk(self) -> None:
        """Write the rows gathered so far (before a job, and at the end of the batch)."""
        conn = self.conn
        if self.intervals:
            stmt = insert(conn, tables.interval_readings).on_conflict_do_nothing(
                index_elements=["meter_id", "start", "duration_s"]
            )
            await conn.execute(stmt, self.intervals)
        for table, pending in (
            (tables.demand_samples, self.demand),
            (tables.register_readings, self.registers),
            (tables.event_status_reports, self.statuses),
        ):
            if pending:
                await conn.execute(table.insert(), pending)
        if self.seen:
            t = tables.meters
            for meter_id, at in self.seen.items():
                await conn.execute(
                    update(t)
                    .where(and_(t.c.meter_id == meter_id, t.c.last_seen < at))
                    .values(last_seen=at)
                )
        self.demand, self.registers, self.intervals, self.statuses = [], [], [], []
        self.seen = {}


class Writer:
    """Owns the write queue and the one task that writes it (start/stop by the store)."""

    def __init__(
        self, engine: AsyncEngine, name: str, max_backlog: int = MAX_BACKLOG, *, clock: Clock = REAL,
        on_outage: Callable[[Outage | None], None] | None = None, retry_s: float = RETRY_S,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._on_outage = on_outage
        self._retry_s = retry_s
        self.outage: Outage | None = None
        self._dropped_before_outage = 0
        self._held_at_outage = 0
        self._kick = asyncio.Event()  # a flush during an outage: try now
        self._name = name
        self._sqlite = engine.dialect.name == "sqlite"
        self._max_backlog = max_backlog
        self._queue: deque[object] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._overflowing = False
        self.dropped: Counter[str] = Counter()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"store writer ({self._name})")

    async def stop(self) -> None:
        """Write what is queued, then end the task."""
        if self._task is None:
            return
        if self.running:
            await self.flush()
        task, self._task = self._task, None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if self.outage is not None:
            lost = Counter(type(i).__name__ for i in self._queue if not isinstance(i, Job))
            if lost:
                _LOGGER.warning("%s stopped with %d items it could not write (%s): %s; intervals are "
                                "read again from the meter at the next start", self._name,
                                sum(lost.values()), self.outage.problem.replace("_", " "),
                                ", ".join(f"{n} {k}" for k, n in sorted(lost.items())))
        self._fail_queued()

    # -- producers -------------------------------------------------------------------------

    def submit(self, event: object) -> None:
        """Queue a bus event for writing (other event types are ignored)."""
        if not isinstance(event, STORED_EVENTS) or self._task is None:
            return
        if len(self._queue) >= self._max_backlog:
            self._make_room()
        self._queue.append(event)
        self._ready.set()

    def _make_room(self) -> bool:
        """Drop the oldest droppable reading; False when only what must be kept is queued."""
        for kind in _DROPPABLE:
            for index, queued in enumerate(self._queue):
                if type(queued) is kind:
                    del self._queue[index]
                    self.dropped[kind.__name__] += 1
                    if not self._overflowing and self.outage is None:  # an outage was said already
                        self._overflowing = True
                        _LOGGER.warning(
                            "The write queue of %s is full (%d items); dropping the oldest readings",
                            self._name,
                            self._max_backlog,
                        )
                    return True
        return False  # only what must never be dropped is queued: the backlog grows past its cap

    async def run_job(
        self, name: str, run: Callable[[AsyncConnection], Awaitable[T]], durable: bool = False
    ) -> T:
        """Run ``run(conn)`` in the writer's next transaction; return once it is committed."""
        if self._task is None:
            raise StoreError(f"{self._name}: cannot {name}: the store is not open")
        if self.outage is not None and run is not _nothing:
            raise self._unavailable_error()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(Job(name, run, future, durable))
        self._ready.set()
        self._kick.set()
        return await future

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (during an outage: until it was tried)."""
        if self._task is None:
            return
        await self.run_job("flush", _nothing)

    # -- the task --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._overflowing:
                    self._overflowing = False
                    _LOGGER.warning(
                        "The write queue of %s has caught up (%d readings dropped in all)",
                        self._name,
                        sum(self.dropped.values()),
                    )
                self._ready.clear()
                await self._ready.wait()
            if self.outage is not None:
                await self._wait_retry()
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for item in batch:
                    if isinstance(item, Job) and not item.future.done():
                        item.future.cancel()
                raise

    async def _wait_retry(self) -> None:
        """During an outage, wait ``retry_s`` of the clock or until a flush asks to try now."""
        if self._kick.is_set():
            self._kick.clear()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._clock.real_seconds(self._retry_s)):
                await self._kick.wait()
        self._kick.clear()

    def _unavailable_error(self) -> StoreUnavailable:
        problem = self.outage.problem if self.outage is not None else "unwritable"
        return StoreUnavailable(f"{OUTAGE_TEXT[problem]}; try again once it is fixed", problem)

    def _hold(self, items: list[object], err: Exception, problem: str) -> None:
        """Writing failed for want of the database: keep the events (in order), fail the jobs."""
        if self.outage is None:
            self.outage = Outage(self._clock(), problem, error_text(err))
            self._dropped_before_outage = sum(self.dropped.values())
            _LOGGER.warning(
                "Cannot write to %s (%s): %s. Readings are kept in memory (up to %d items, the oldest "
                "readings dropped beyond) and written when it works again; devices are still controlled",
                self._name, problem.replace("_", " "), self.outage.detail, self._max_backlog,
            )
            if self._on_outage is not None:
                self._on_outage(self.outage)
        events = [i for i in items if not isinstance(i, Job)]
        error = self._unavailable_error()
        for item in items:
            if isinstance(item, Job) and not item.future.done():
                if item.run is _nothing:
                    item.future.set_result(None)  # a flush: everything before it was tried
                else:
                    item.future.set_exception(error)
        # Queued meanwhile: a write fails at once; a flush waits for the next try, as this one
        # began before it was asked (space may have come back since).
        kept: deque[object] = deque(events)
        for item in self._queue:
            if not isinstance(item, Job) or item.run is _nothing:
                kept.append(item)
            elif not item.future.done():
                item.future.set_exception(error)
        self._queue.clear()
        self._queue.extend(kept)
        while len(self._queue) > self._max_backlog and self._make_room():
            pass  # the failed batch came back: held within the cap, the oldest readings first

    def _written(self) -> None:
        """A transaction committed: an outage, if there was one, is over."""
        if self.outage is None:
            return
        outage, self.outage = self.outage, None
        dropped = sum(self.dropped.values()) - self._dropped_before_outage
        _LOGGER.info(
            "Writing to %s works again (it failed since %s); %d readings were dropped meanwhile",
            self._name, outage.since.isoformat(), dropped,
        )
        if self._on_outage is not None:
            self._on_outage(None)

    async def _write(self, batch: list[object]) -> None:
        try:
            results = await self._transaction(batch)
        except Exception as err:
            problem = unavailable(err)
            if problem is not None:
                self._hold(batch, err, problem)
                return
            if len(batch) == 1:
                self._failed(batch[0], err)
                return
            _LOGGER.warning(
                "Writing %d items to %s failed (%s); writing them one by one",
                len(batch),
                self._name,
                error_text(err),
            )
            for index, item in enumerate(batch):
                try:
                    results = await self._transaction([item])
                except Exception as item_err:
                    problem = unavailable(item_err)
                    if problem is not None:
                        self._hold(batch[index:], item_err, problem)
                        return
                    self._failed(item, item_err)
                else:
                    self._written()
                    self._resolve(results)
            return
        self._written()
        self._resolve(results)

    async def _transaction(self, batch: list[object]) -> list[tuple[Job, Any]]:
        durable = self._sqlite and any(isinstance(i, Job) and i.durable for i in batch)
        results: list[tuple[Job, Any]] = []
        async with self._engine.connect() as conn:
            if durable:
                await set_sqlite_synchronous(conn, "FULL")
            try:
                writes = _Batch(conn)
                for item in batch:
                    if isinstance(item, Job):
                        await writes.write_bulk()
                        results.append((item, await item.run(conn)))
                    else:
                        await writes.add(item)
                await writes.write_bulk()
                await conn.commit()
            finally:
                if durable:
                    await conn.rollback()  # a no-op after the commit; ends a failed one
                    await set_sqlite_synchronous(conn, "NORMAL")
        return results

    @staticmethod
    def _resolve(results: list[tuple[Job, Any]]) -> None:
        for job, result in results:
            if not job.future.done():
                job.future.set_result(result)

    def _failed(self, item: object, err: Exception) -> None:
        if isinstance(item, Job):
            if not item.future.done():
                if isinstance(err, StoreError):
                    item.future.set_exception(err)
                else:
                    wrapped = StoreError(f"{self._name}: {item.name} failed: {error_text(err)}")
                    wrapped.__cause__ = err
                    item.future.set_exception(wrapped)
            return
        _LOGGER.error("Could not store %r in %s: %s", item, self._name, err, exc_info=err)

    def _fail_queued(self) -> None:
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, Job) and not item.future.done():
                item.future.set_exception(
                    StoreError(f"{self._name}: cannot {item.name}: the store was closed")
                )


async def _nothing(_conn: AsyncConnection) -> None:
    return None

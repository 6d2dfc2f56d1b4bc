"""The outbox: upstream reports (event status, message confirmations, ...) delivered at least once.

``enqueue`` commits the report to the store before it returns, so a report survives a crash or
a power cut. A report may be delivered twice (after a crash mid-send), never lost.

Routes. Every item travels on a ``Route``: the meter whose upstream channel carries it and the
item's kind (its class name). The meter is the item's own ``meter_id`` (every report the core
makes carries the meter its event or message came from, and on the HAN each meter is its own
upstream path: that meter's SE link), so a status report goes back the way its event came. An
item that belongs to no meter (device telemetry) takes the premise-wide route, ``meter_id`` None,
unless the producer names a meter. The route is stored with the row, so after a restart every
pending item is routed again as before.

Senders. An integration registers one sender per (meter, kind) it carries: the meter link of
meter "b" registers for ("b", EventStatusReport). A sender registered without a meter is the
premise's channel: it carries the premise-wide route and stands in for every meter that has no
sender of its own for that kind. ``carries(kind, meter_id)`` says whether an item of that kind for
that meter (or, without one, for the premise) would be delivered now, so an optional report
(telemetry) is queued only where a channel takes it.

Delivery. Each route has its own task, queue and backoff: its items go out oldest first, a
failed one is retried with exponential backoff (per item, 1 s doubling up to 5 min) and the
route's later items wait behind it so the utility sees them in order, while every other route
goes on. An item whose route has no sender waits in the store (logged once) until one registers.
``resume(meter_id)`` cuts a route's backoff short when its channel is known to be back.
Times (creation, retry, delivery) are read from the injected ``clock``.

Retries are recognisable. While a sender runs, ``current_delivery()`` is the item being sent: the
id its first attempt went out under (``wire_id``, e.g. a ZCL TSN), or None on a first attempt, when
the sender names one with ``remember`` before the frame leaves. It is durable, so a report sent
just before a power loss, and not yet marked delivered, goes out again after the restart under the
same id, and the receiver can tell the retry from a second report.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import logging
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ems import model
from ems.clock import Clock, as_clock
from ems.errors import StoreError
from ems.store import OutboxRecord, Store
from ems.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 300.0
SEND_TIMEOUT_S = 60.0
STORE_RETRY_S = 5.0

Sender = Callable[[Any], Awaitable[Any]]


@dataclass(slots=True)
class Delivery:
    """The outbox item a sender is sending now: what its first attempt went out as."""

    record_id: int
    wire_id: int | None  # None: this is the first attempt (or no earlier one named an id)
    _keep: Callable[[int, int], Awaitable[None]]

    async def remember(self, wire_id: int) -> None:
        """Name the id this attempt goes out under; returns once it is on disk (before sending)."""
        await self._keep(self.record_id, wire_id)
        self.wire_id = wire_id


_DELIVERY: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar("outbox_delivery", default=None)


def current_delivery() -> Delivery | None:
    """The item the outbox is delivering in this task (None outside a sender)."""
    return _DELIVERY.get()


def retry_delay(attempts: int, first_s: float = FIRST_RETRY_S, max_s: float = MAX_RETRY_S) -> float:
    """Seconds to wait after the ``attempts``-th failed delivery: 1, 2, 4, ... up to 5 min."""
    return float(min(first_s * 2 ** max(attempts - 1, 0), max_s))


@dataclass(frozen=True, slots=True)
class Route:
    """Where an item goes: the meter whose upstream channel carries it (None: the premise's), and its kind."""

    meter_id: str | None
    kind: str

    def __str__(self) -> str:
        return f"{self.kind} for the premise" if self.meter_id is None else f"{self.kind} for meter {self.meter_id}"


def route_of(item: object, meter_id: str | None = None) -> Route:
    """The route of ``item``: its own ``meter_id``, else ``meter_id``, else the premise's."""
    own = getattr(item, "meter_id", None)
    if own is not None and not isinstance(own, str):
        raise TypeError(f"an outbox item's meter_id is a str, not {own!r}")
    if own is not None and meter_id is not None and own != meter_id:
        raise ValueError(f"{type(item).__name__} of meter {own!r} cannot go to meter {meter_id!r}")
    return Route(own if own is not None else meter_id, type(item).__name__)


@dataclass(frozen=True, slots=True)
class PendingItem:
    """An undelivered report: the item (None if it cannot be decoded), its route's meter and retry state."""

    id: int
    kind: str
    item: Any
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    meter_id: str | None = None

    @property
    def route(self) -> Route:
        return Route(self.meter_id, self.kind)


# --- generic codec: frozen dataclass <-> JSON --------------------------------------------


def encode(item: object) -> tuple[str, dict[str, Any]]:
    """``(kind, payload)`` for a dataclass instance: its type name and its fields as JSON."""
    if not dataclasses.is_dataclass(item) or isinstance(item, type):
        raise TypeError(f"the outbox takes dataclass instances, not {type(item).__name__}")
    kind = type(item).__name__
    return kind, {"type": kind, "fields": _encode(item)}


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} in an outbox item; times are aware UTC")
        return value.astimezone(UTC).isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} in an outbox item: {value!r}")


def decode(cls: type[Any], payload: dict[str, Any]) -> Any:
    """Rebuild the dataclass ``cls`` from a payload made by ``encode``."""
    if payload.get("type") != cls.__name__:
        raise ValueError(f"payload of type {payload.get('type')!r} is not a {cls.__name__}")
    return _decode(cls, payload["fields"])


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        errors = []
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            try:
                return _decode(arg, value)
            except (TypeError, ValueError) as err:
                errors.append(str(err))
        raise ValueError(f"{value!r} fits none of {hint}: {'; '.join(errors)}")
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis] or [Any]
        items = [_decode(args[0], v) for v in value]
        return items if origin is list else tuple(items)
    if hint is Any:
        return value
    if hint is datetime:
        return datetime.fromisoformat(value).astimezone(UTC)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint) if f.init}
        return hint(**{k: _decode(hints[k], v) for k, v in value.items() if k in known})
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise TypeError(f"expected {hint.__name__}, found {value!r}")
    return value


# --- the outbox ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Lane:
    """One route's delivery: its wake-up, and what it has logged (an outage, a missing sender)."""

    route: Route
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    failing: bool = False  # the route's outage was logged (log it once, and its recovery once)
    unrouted: bool = False  # "no sender" was logged
    resume: bool = False  # try the head item now, whatever its backoff says
    retry_when_heard: bool = False  # the head failed since the channel was last heard from


class Outbox:
    """At-least-once delivery of upstream reports per route, kept in the store until a sender took them."""

    def __init__(
        self,
        store: Store,
        *,
        first_retry_s: float = FIRST_RETRY_S,
        max_retry_s: float = MAX_RETRY_S,
        send_timeout_s: float = SEND_TIMEOUT_S,
        clock: Clock | Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._first_retry_s = first_retry_s
        self._max_retry_s = max_retry_s
        self._send_timeout_s = send_timeout_s
        self._clock = as_clock(clock)
        self._senders: dict[Route, Sender] = {}  # Route(None, kind): the premise's channel
        self._types: dict[str, type] = {}
        self._lanes: dict[Route, _Lane] = {}
        self._resumed: set[str | None] = set()  # meters resumed before the scan saw their routes
        self._wake = asyncio.Event()  # the scan of the store for routes with pending items
        self._tasks: TaskSet | None = None  # set while running
        self._store_down = False

    # -- producers and consumers ----------------------------------------------------------

    async def enqueue(self, item: object, *, meter_id: str | None = None) -> int:
        """Commit ``item`` to the outbox (durably) and return its id; delivery follows.

        The item goes on its own meter's route; ``meter_id`` names one for an item that has
        none of its own (otherwise it takes the premise-wide route).
        """
        kind, payload = encode(item)
        route = route_of(item, meter_id)
        item_id = await self._store.outbox_add(kind, payload, self._clock(), meter_id=route.meter_id)
        _LOGGER.debug("Queued %s #%d for upstream", route, item_id)
        if self._tasks is not None:
            self._lane(route).wake.set()
        return item_id

    async def enqueue_confirmation(self, item: model.MessageConfirmed) -> int | None:
        """Queue a message's confirmation once per (meter, message id) as the utility sees it.

        The message is marked confirmed and the confirmation queued in one durable transaction that
        does nothing if it was confirmed already (a double click, two pages, a retried request):
        returns the outbox id, or None when nothing was queued.
        """
        kind, payload = encode(item)
        route = route_of(item)
        item_id = await self._store.confirm_message_once(
            item.meter_id, item.message_id, item.confirmed_at, item.answer, payload)
        if item_id is not None:
            _LOGGER.debug("Queued %s #%d for upstream", route, item_id)
            if self._tasks is not None:
                self._lane(route).wake.set()
        return item_id

    def register_sender(
        self, item_type: type, sender: Sender, *, meter_id: str | None = None
    ) -> Callable[[], None]:
        """Deliver items of ``item_type`` for ``meter_id`` with ``sender`` (raise to have it retried later).

        Without ``meter_id`` the sender is the premise's channel: it takes premise-wide items
        and those of every meter without a sender of its own for the kind.
        """
        if not (isinstance(item_type, type) and dataclasses.is_dataclass(item_type)):
            raise TypeError(f"the outbox carries dataclasses, not {item_type!r}")
        route = Route(meter_id, item_type.__name__)
        if route in self._senders:
            raise ValueError(f"a sender for {route} is already registered")
        self._senders[route] = sender
        self._types[route.kind] = item_type
        for lane in self._lanes.values():
            if lane.route.kind == route.kind:
                lane.wake.set()

        def unregister() -> None:
            if self._senders.get(route) is sender:
                del self._senders[route]

        return unregister

    def carries(self, item_type: type, meter_id: str | None = None) -> bool:
        """Whether an item of ``item_type`` for ``meter_id`` (None: the premise) would be delivered."""
        return self._sender_for(Route(meter_id, item_type.__name__)) is not None

    async def pending(self) -> list[PendingItem]:
        """Undelivered items, oldest first."""
        items = []
        for record in await self._store.outbox_pending():
            try:
                item = self._decode(record)
            except (TypeError, ValueError, KeyError):
                item = None
            items.append(
                PendingItem(
                    id=record.id,
                    kind=record.kind,
                    item=item,
                    created_at=record.created_at,
                    attempts=record.attempts,
                    next_attempt_at=record.next_attempt_at,
                    last_error=record.last_error,
                    meter_id=record.meter_id,
                )
            )
        return items

    def wake(self) -> None:
        """Have every route look at the outbox again now (items still backing off keep waiting)."""
        self._wake.set()
        for lane in self._lanes.values():
            lane.wake.set()

    def resume(self, meter_id: str | None) -> None:
        """The channel of ``meter_id`` is back: try each of its routes' head items now."""
        for lane in self._lanes.values():
            if lane.route.meter_id == meter_id:
                lane.resume = True
                lane.wake.set()
        if self._tasks is not None:  # and the routes not seen yet (just after a restart)
            self._resumed.add(meter_id)
            self._wake.set()

    def peer_heard(self, meter_id: str | None) -> None:
        """The channel of ``meter_id`` was just heard from: a route of it whose delivery failed tries now.

        Cheap enough for every frame from the meter: only a route whose head failed since the last
        time is touched, once per failure (a meter that speaks but cannot take the report is not
        sent it at the rate it reports; the backoff holds for the failures after that). A meter that
        was silent for less than the stale limit (so its link never went stale and came back) has
        its reports go out as soon as it speaks again, not after the outbox's backoff.
        """
        for lane in self._lanes.values():
            if lane.retry_when_heard and lane.route.meter_id == meter_id:
                lane.retry_when_heard = False  # once per failure: a meter that hears nothing is not flooded
                lane.resume = True
                lane.wake.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering (the store must be open); pending items from before are routed again."""
        if self._tasks is None:
            self._tasks = TaskSet(_LOGGER, "outbox")
            self._wake.set()
            self._tasks.spawn(self._scan_forever(), "outbox routes")

    async def stop(self) -> None:
        """Stop delivering; what is not delivered stays in the store for the next start."""
        tasks, self._tasks = self._tasks, None
        if tasks is not None:
            await tasks.cancel_all()
        self._lanes.clear()
        self._resumed.clear()

    # -- delivery -------------------------------------------------------------------------

    def _sender_for(self, route: Route) -> Sender | None:
        sender = self._senders.get(route)
        if sender is None and route.meter_id is not None:
            sender = self._senders.get(Route(None, route.kind))
        return sender

    def _lane(self, route: Route) -> _Lane:
        """The route's lane, started on first use (only while running)."""
        lane = self._lanes.get(route)
        if lane is None:
            assert self._tasks is not None
            lane = self._lanes[route] = _Lane(route)
            self._tasks.spawn(self._deliver_forever(lane), f"outbox {route}")
        return lane

    async def _scan_forever(self) -> None:
        """Start a lane for every route with pending items (at start, and when woken)."""
        while True:
            self._wake.clear()
            delay: float | None = None
            try:
                records = await self._store.outbox_pending()
            except StoreError as err:
                self._store_failed(err)
                delay = STORE_RETRY_S
            else:
                self._store_ok()
                resumed, self._resumed = self._resumed, set()
                for route in dict.fromkeys(Route(r.meter_id, r.kind) for r in records):
                    lane = self._lane(route)
                    lane.resume = lane.resume or route.meter_id in resumed
                    lane.wake.set()
            await self._wait(self._wake, delay)

    async def _deliver_forever(self, lane: _Lane) -> None:
        while True:
            lane.wake.clear()
            try:
                delay = await self._deliver_due(lane)
            except StoreError as err:
                self._store_failed(err)
                delay = STORE_RETRY_S
            except Exception:
                _LOGGER.exception("Outbox delivery of %s failed unexpectedly; retrying", lane.route)
                delay = STORE_RETRY_S
            else:
                self._store_ok()
            await self._wait(lane.wake, delay)

    async def _deliver_due(self, lane: _Lane) -> float | None:
        """Deliver the route's items in order while they go out; return seconds until the head is due."""
        resume, lane.resume = lane.resume, False
        route = lane.route
        records = await self._store.outbox_route_pending(route.meter_id, route.kind)
        for index, record in enumerate(records):
            sender = self._sender_for(route)
            if sender is None:
                if not lane.unrouted:
                    _LOGGER.info(
                        "%d %s wait in the outbox: no upstream channel carries them yet",
                        len(records) - index,
                        route,
                    )
                    lane.unrouted = True
                lane.resume = lane.resume or resume  # kept for when a sender registers
                return None
            lane.unrouted = False
            now = self._clock()
            if not resume and record.next_attempt_at is not None and record.next_attempt_at > now:
                wait_s = (record.next_attempt_at - now).total_seconds()
                backoff_s = retry_delay(record.attempts, self._first_retry_s, self._max_retry_s)
                if wait_s <= backoff_s:
                    return wait_s
                # Further off than its own backoff: the clock was set back since (the meter's time
                # went back). Waiting out the difference would hold the report for as long as the
                # clock moved; the item is tried once its backoff has passed.
                lane.resume = True
                return backoff_s
            resume = False
            retry_at = await self._deliver(lane, record, sender)
            if retry_at is not None:
                return max((retry_at - self._clock()).total_seconds(), 0.0)
        return None

    async def _deliver(self, lane: _Lane, record: OutboxRecord, sender: Sender) -> datetime | None:
        """Send one item; None when delivered, else when to try again."""
        token = _DELIVERY.set(Delivery(record.id, record.wire_id, self._store.outbox_wire_id))
        try:
            item = self._decode(record)
            async with asyncio.timeout(self._send_timeout_s):
                await sender(item)
        except Exception as err:
            attempts = record.attempts + 1
            delay = retry_delay(attempts, self._first_retry_s, self._max_retry_s)
            retry_at = self._clock() + timedelta(seconds=delay)
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            await self._store.outbox_failed(record.id, attempts, retry_at, error)
            log = _LOGGER.debug if lane.failing else _LOGGER.warning
            log(
                "Delivering %s #%d upstream failed (attempt %d, next in %.0f s): %s",
                lane.route,
                record.id,
                attempts,
                delay,
                error,
            )
            lane.failing = True
            lane.retry_when_heard = True
            return retry_at
        finally:
            _DELIVERY.reset(token)
        await self._store.outbox_delivered(record.id, self._clock())
        if lane.failing:
            lane.failing = False
            _LOGGER.info("Delivering %s upstream works again", lane.route)
        _LOGGER.debug("Delivered %s #%d upstream", lane.route, record.id)
        return None

    async def _wait(self, wake: asyncio.Event, delay: float | None) -> None:
        """Wait until woken, or for ``delay`` seconds of the clock's time (None: until woken).

        The clock does the waiting, so on a fixed clock a backoff ends when the test moves it.
        """
        if delay is None:
            await wake.wait()
            return
        waits = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self._clock.sleep(delay))}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def _store_failed(self, err: StoreError) -> None:
        if not self._store_down:
            _LOGGER.error("Outbox cannot read or update the store: %s", err)
            self._store_down = True

    def _store_ok(self) -> None:
        if self._store_down:
            _LOGGER.info("Outbox reaches the store again")
            self._store_down = False

    def _decode(self, record: OutboxRecord) -> Any:
        cls = self._types.get(record.kind) or getattr(model, record.kind, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"unknown outbox item kind {record.kind!r}")
        return decode(cls, record.payload)

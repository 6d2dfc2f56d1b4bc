"""The outbox: upstream reports (event status, message confirmations, ...) delivered at least once.

``enqueue`` commits the report to the store before it returns, so a report survives a crash or
a power cut. One task delivers pending reports oldest first through the sender that the
integration carrying that kind registered; a failed delivery is retried with exponential backoff
(per item, 1 s doubling up to 5 min), and later reports of the same kind wait behind it so the
utility sees them in order. A report may be delivered twice (after a crash mid-send), never lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ems import model
from ems.errors import StoreError
from ems.model import utcnow
from ems.store import OutboxRecord, Store

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY_S = 1.0
MAX_RETRY_S = 300.0
SEND_TIMEOUT_S = 60.0
STORE_RETRY_S = 5.0

Sender = Callable[[Any], Awaitable[Any]]


def retry_delay(attempts: int, first_s: float = FIRST_RETRY_S, max_s: float = MAX_RETRY_S) -> float:
    """Seconds to wait after the ``attempts``-th failed delivery: 1, 2, 4, ... up to 5 min."""
    return min(first_s * 2 ** max(attempts - 1, 0), max_s)


@dataclass(frozen=True, slots=True)
class PendingItem:
    """An undelivered report: the item (None if it cannot be decoded) and its retry state."""

    id: int
    kind: str
    item: Any
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


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


class Outbox:
    """At-least-once delivery of upstream reports, kept in the store until a sender took them."""

    def __init__(
        self,
        store: Store,
        *,
        first_retry_s: float = FIRST_RETRY_S,
        max_retry_s: float = MAX_RETRY_S,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._first_retry_s = first_retry_s
        self._max_retry_s = max_retry_s
        self._send_timeout_s = send_timeout_s
        self._senders: dict[str, Sender] = {}
        self._types: dict[str, type] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing: set[str] = set()  # kinds whose outage was logged (log it once)

    # -- producers and consumers ----------------------------------------------------------

    async def enqueue(self, item: object) -> int:
        """Commit ``item`` to the outbox (durably) and return its id; delivery follows."""
        kind, payload = encode(item)
        item_id = await self._store.outbox_add(kind, payload, utcnow())
        _LOGGER.debug("Queued %s #%d for upstream", kind, item_id)
        self.wake()
        return item_id

    def register_sender(self, item_type: type, sender: Sender) -> Callable[[], None]:
        """Deliver items of ``item_type`` with ``sender`` (raise to have it retried later)."""
        if not (isinstance(item_type, type) and dataclasses.is_dataclass(item_type)):
            raise TypeError(f"the outbox carries dataclasses, not {item_type!r}")
        kind = item_type.__name__
        if kind in self._senders:
            raise ValueError(f"a sender for {kind} is already registered")
        self._senders[kind] = sender
        self._types[kind] = item_type
        self.wake()

        def unregister() -> None:
            if self._senders.get(kind) is sender:
                del self._senders[kind]

        return unregister

    def carries(self, item_type: type) -> bool:
        """Whether some upstream channel delivers items of ``item_type`` (telemetry is optional)."""
        return item_type.__name__ in self._senders

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
                )
            )
        return items

    def wake(self) -> None:
        """Have the delivery task look at the outbox again now."""
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering (the store must be open); pending items from before go first."""
        if self._task is None or self._task.done():
            self._wake.set()
            self._task = asyncio.create_task(self._run(), name="outbox delivery")

    async def stop(self) -> None:
        """Stop delivering; what is not delivered stays in the store for the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- delivery -------------------------------------------------------------------------

    async def _run(self) -> None:
        store_down = False
        while True:
            self._wake.clear()
            try:
                delay = await self._deliver_due()
            except StoreError as err:
                if not store_down:
                    _LOGGER.error("Outbox cannot read or update the store: %s", err)
                    store_down = True
                delay = STORE_RETRY_S
            except Exception:
                _LOGGER.exception("Outbox delivery failed unexpectedly; retrying")
                delay = STORE_RETRY_S
            else:
                if store_down:
                    _LOGGER.info("Outbox reaches the store again")
                    store_down = False
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _deliver_due(self) -> float | None:
        """Deliver every item that is due; return seconds until the next one is (or None)."""
        next_due: datetime | None = None
        blocked: set[str] = set()  # kinds whose head item is waiting: the rest waits behind it
        for record in await self._store.outbox_pending():
            if record.kind in blocked:
                continue
            sender = self._senders.get(record.kind)
            if sender is None:
                blocked.add(record.kind)
                continue
            if record.next_attempt_at is not None and record.next_attempt_at > utcnow():
                retry_at: datetime | None = record.next_attempt_at
            else:
                retry_at = await self._deliver(record, sender)
            if retry_at is not None:
                blocked.add(record.kind)
                next_due = retry_at if next_due is None else min(next_due, retry_at)
        if next_due is None:
            return None
        return max((next_due - utcnow()).total_seconds(), 0.0)

    async def _deliver(self, record: OutboxRecord, sender: Sender) -> datetime | None:
        """Send one item; None when delivered, else when to try again."""
        try:
            item = self._decode(record)
            async with asyncio.timeout(self._send_timeout_s):
                await sender(item)
        except Exception as err:
            attempts = record.attempts + 1
            delay = retry_delay(attempts, self._first_retry_s, self._max_retry_s)
            retry_at = utcnow() + timedelta(seconds=delay)
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            await self._store.outbox_failed(record.id, attempts, retry_at, error)
            log = _LOGGER.debug if record.kind in self._failing else _LOGGER.warning
            log(
                "Delivering %s #%d upstream failed (attempt %d, next in %.0f s): %s",
                record.kind,
                record.id,
                attempts,
                delay,
                error,
            )
            self._failing.add(record.kind)
            return retry_at
        await self._store.outbox_delivered(record.id, utcnow())
        if record.kind in self._failing:
            self._failing.discard(record.kind)
            _LOGGER.info("Delivering %s upstream works again", record.kind)
        _LOGGER.debug("Delivered %s #%d upstream", record.kind, record.id)
        return None

    def _decode(self, record: OutboxRecord) -> Any:
        cls = self._types.get(record.kind) or getattr(model, record.kind, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"unknown outbox item kind {record.kind!r}")
        return decode(cls, record.payload)

"""The outbox delivers upstream reports at least once: durably queued, retried, in order per route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ems.config import StoreConfig
from ems.model import (
    Criticality,
    DeviceClass,
    EventStatus,
    EventStatusReport,
    LoadControlEvent,
    MessageConfirmed,
)
from ems.outbox import Outbox, decode, encode, retry_delay
from ems.store import Store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FAST = {"first_retry_s": 0.05, "max_retry_s": 0.2}

OpenStore = Callable[[], Awaitable[Store]]


@pytest.fixture
async def open_store(tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Open a Store on tmp_path; each call is a fresh Store on the same file (a restart)."""
    opened: list[Store] = []

    async def open_() -> Store:
        store = Store(StoreConfig(None, 24.0, 400), tmp_path)
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


@pytest.fixture
async def outbox(store: Store) -> AsyncIterator[Outbox]:
    outbox = Outbox(store, **FAST)
    yield outbox
    await outbox.stop()


def report(issuer_event_id: int = 100, status: EventStatus = EventStatus.RECEIVED) -> EventStatusReport:
    return EventStatusReport("m1", issuer_event_id, status, NOW, criticality_applied=3)


def confirmation(message_id: int = 7) -> MessageConfirmed:
    return MessageConfirmed("m1", message_id, NOW, answer="yes")


class Recorder:
    """A sender that records what it got and fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[float, Any]] = []
        self.delivered: list[Any] = []
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()

    async def __call__(self, item: Any) -> None:
        self.calls.append((self.loop.time(), item))
        async with self._changed:
            self._changed.notify_all()
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("meter did not answer")
        self.delivered.append(item)

    async def wait(self, predicate: Callable[[], bool], store: Store) -> None:
        """Wait until ``predicate()`` holds, then until the outbox's own write is committed.

        The outbox queues its bookkeeping (delivered, failed) as soon as the sender returns,
        before anyone else runs; flushing the store after that makes it visible.
        """
        async with asyncio.timeout(5):
            async with self._changed:
                await self._changed.wait_for(predicate)
        await store.flush()

    async def until_delivered(self, count: int, store: Store) -> None:
        await self.wait(lambda: len(self.delivered) >= count, store)


def test_reports_round_trip_through_the_generic_codec() -> None:
    event = LoadControlEvent(
        "m1", 5, DeviceClass.HVAC | DeviceClass.POOL_PUMP, 2, NOW, 60, Criticality.EMERGENCY, NOW,
        cooling_offset_c=1.5,
    )
    for item in (report(), confirmation(), event):
        kind, payload = encode(item)
        assert kind == type(item).__name__
        assert decode(type(item), payload) == item


def test_encoded_times_are_iso_8601_and_enums_are_values() -> None:
    _, payload = encode(report(status=EventStatus.OPTED_OUT))

    assert payload["fields"]["at"] == "2025-06-01T12:00:00+00:00"
    assert payload["fields"]["status"] == 0x04


def test_retry_delay_doubles_from_1_s_up_to_5_min() -> None:
    assert [retry_delay(n) for n in range(1, 5)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(9) == 256.0
    assert retry_delay(10) == 300.0
    assert retry_delay(50) == 300.0


async def test_enqueued_item_is_pending_until_a_sender_takes_it(outbox: Outbox) -> None:
    await outbox.start()
    await outbox.enqueue(report())
    await asyncio.sleep(0.05)

    [pending] = await outbox.pending()

    assert pending.item == report()
    assert pending.attempts == 0


async def test_registered_sender_delivers_and_empties_the_outbox(
    outbox: Outbox, store: Store
) -> None:
    sender = Recorder()
    outbox.register_sender(EventStatusReport, sender)
    await outbox.start()

    await outbox.enqueue(report())
    await sender.until_delivered(1, store)

    assert sender.delivered == [report()]
    assert await outbox.pending() == []


async def test_enqueued_item_survives_a_restart_and_is_delivered_after_it(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    before = Outbox(store, **FAST)
    await before.start()
    await before.enqueue(confirmation())
    await before.stop()
    await store.close()

    reopened = await open_store()
    after = Outbox(reopened, **FAST)
    sender = Recorder()
    after.register_sender(MessageConfirmed, sender)
    await after.start()
    try:
        await sender.until_delivered(1, reopened)
    finally:
        await after.stop()

    assert sender.delivered == [confirmation()]
    assert await after.pending() == []


async def test_a_failing_sender_is_retried_with_backoff_and_succeeds_later(
    outbox: Outbox, store: Store
) -> None:
    sender = Recorder(failures=3)
    outbox.register_sender(EventStatusReport, sender)
    await outbox.start()

    await outbox.enqueue(report())
    await sender.until_delivered(1, store)

    assert sender.delivered == [report()]
    assert len(sender.calls) == 4
    gaps = [b[0] - a[0] for a, b in zip(sender.calls, sender.calls[1:], strict=False)]
    # 0.05 s, 0.1 s, then 0.2 s (the cap): each wait at least the backoff (one-sided: a busy
    # machine only makes a wait longer; the delays themselves are test_retry_delay_doubles_...'s).
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


async def test_a_failed_attempt_is_recorded_on_the_item(store: Store) -> None:
    outbox = Outbox(store)  # 1 s backoff: the retry does not happen during the test
    sender = Recorder(failures=1)
    outbox.register_sender(EventStatusReport, sender)
    await outbox.start()
    try:
        await outbox.enqueue(report())
        await sender.wait(lambda: len(sender.calls) == 1, store)
        [item] = await outbox.pending()
    finally:
        await outbox.stop()

    assert item.attempts == 1
    assert item.last_error == "ConnectionError: meter did not answer"
    assert item.next_attempt_at is not None
    assert timedelta(0) < item.next_attempt_at - item.created_at <= timedelta(seconds=2)


async def test_items_of_one_kind_are_delivered_in_order_even_after_a_failure(
    outbox: Outbox, store: Store
) -> None:
    sender = Recorder(failures=2)
    outbox.register_sender(EventStatusReport, sender)
    for event_id in (1, 2, 3):
        await outbox.enqueue(report(event_id))

    await outbox.start()
    await sender.until_delivered(3, store)

    assert [r.issuer_event_id for r in sender.delivered] == [1, 2, 3]
    assert {item.issuer_event_id for _, item in sender.calls[:3]} == {1}


async def test_a_failing_kind_does_not_hold_up_another_kind(outbox: Outbox, store: Store) -> None:
    reports = Recorder(failures=1_000)
    confirmations = Recorder()
    outbox.register_sender(EventStatusReport, reports)
    outbox.register_sender(MessageConfirmed, confirmations)
    await outbox.enqueue(report())
    await outbox.enqueue(confirmation())

    await outbox.start()
    await confirmations.until_delivered(1, store)

    assert [p.kind for p in await outbox.pending()] == ["EventStatusReport"]


async def test_items_without_a_sender_stay_pending(outbox: Outbox) -> None:
    outbox.register_sender(MessageConfirmed, Recorder())
    await outbox.start()

    await outbox.enqueue(report())
    await asyncio.sleep(0.1)

    assert [p.item for p in await outbox.pending()] == [report()]


async def test_registering_a_sender_later_delivers_what_waited(
    outbox: Outbox, store: Store
) -> None:
    await outbox.start()
    await outbox.enqueue(report())
    await asyncio.sleep(0.05)

    sender = Recorder()
    outbox.register_sender(EventStatusReport, sender)
    await sender.until_delivered(1, store)

    assert sender.delivered == [report()]


async def test_unregistered_sender_is_no_longer_used(outbox: Outbox) -> None:
    sender = Recorder()
    unregister = outbox.register_sender(EventStatusReport, sender)
    unregister()
    await outbox.start()

    await outbox.enqueue(report())
    await asyncio.sleep(0.1)

    assert sender.calls == []
    assert len(await outbox.pending()) == 1


async def test_a_second_sender_for_the_same_kind_is_refused(outbox: Outbox) -> None:
    outbox.register_sender(EventStatusReport, Recorder())

    with pytest.raises(ValueError, match="EventStatusReport"):
        outbox.register_sender(EventStatusReport, Recorder())


async def test_stop_cancels_a_delivery_in_progress_and_keeps_the_item(outbox: Outbox) -> None:
    started = asyncio.Event()

    async def hangs(item: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    outbox.register_sender(EventStatusReport, hangs)
    await outbox.start()
    await outbox.enqueue(report())
    async with asyncio.timeout(5):
        await started.wait()

    await outbox.stop()

    assert [p.item for p in await outbox.pending()] == [report()]


async def test_enqueue_refuses_what_is_not_a_dataclass(outbox: Outbox) -> None:
    with pytest.raises(TypeError, match="dataclass"):
        await outbox.enqueue({"status": 1})


async def test_a_retry_after_a_restart_goes_out_under_the_id_its_first_attempt_named(
    open_store: OpenStore,
) -> None:
    """Issue 11 finding 3: a report sent just before a power loss, not yet marked delivered, went out
    again after the restart under a new TSN. The first attempt's id is on disk before it leaves."""
    from ems.outbox import current_delivery

    seen: list[int | None] = []
    tried = asyncio.Event()

    async def send_then_lose_power(item: Any) -> None:
        delivery = current_delivery()
        assert delivery is not None
        seen.append(delivery.wire_id)
        if delivery.wire_id is None:
            await delivery.remember(0x2A)
        tried.set()
        raise ConnectionError("the power went before the meter's answer")

    store = await open_store()
    before = Outbox(store, first_retry_s=60.0, max_retry_s=60.0)
    before.register_sender(MessageConfirmed, send_then_lose_power)
    await before.start()
    await before.enqueue(confirmation())
    async with asyncio.timeout(5):
        await tried.wait()
    await before.stop()
    await store.close()

    reopened = await open_store()
    [pending] = await reopened.outbox_route_pending("m1", "MessageConfirmed")
    assert pending.wire_id == 0x2A
    after = Outbox(reopened, **FAST)
    sender = Recorder()
    ids: list[int | None] = []

    async def retry(item: Any) -> None:
        delivery = current_delivery()
        ids.append(delivery.wire_id if delivery is not None else None)
        await sender(item)

    after.register_sender(MessageConfirmed, retry)
    await after.start()
    try:
        await sender.until_delivered(1, reopened)
    finally:
        await after.stop()
    assert seen == [None] and ids == [0x2A]


async def test_outside_a_delivery_there_is_no_current_one() -> None:
    from ems.outbox import current_delivery

    assert current_delivery() is None

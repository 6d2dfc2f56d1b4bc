"""Retention: purge forgets old rows per kind, and keeps messages at least 12 hours (C6 4.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial

from ems.bus import EventBus
from ems.config import StoreConfig
from ems.model import EventStatus, MeterReading
from ems.outbox import Outbox, encode
from ems.store import Store, commands
from tests.ems.store.store_samples import NOW, interval, message, status_report

OpenStore = Callable[..., Awaitable[Store]]


async def test_purge_keeps_messages_12_hours_even_if_configured_shorter(
    open_store: OpenStore,
) -> None:
    store = await open_store(StoreConfig(None, message_retention_hours=1, reading_retention_days=400))
    bus = EventBus()
    store.attach(bus)
    bus.publish(message(1, received_at=NOW - timedelta(hours=11)))
    bus.publish(message(2, received_at=NOW - timedelta(hours=13)))
    await store.flush()

    result = await store.purge(NOW)

    assert result.messages == 1
    assert [m.message.message_id for m in await store.messages(NOW - timedelta(days=1))] == [1]


async def test_purge_keeps_messages_as_long_as_configured(store: Store, bus: EventBus) -> None:
    bus.publish(message(1, received_at=NOW - timedelta(hours=23)))
    bus.publish(message(2, received_at=NOW - timedelta(hours=25)))
    await store.flush()

    await store.purge(NOW)

    assert [m.message.message_id for m in await store.messages(NOW - timedelta(days=2))] == [1]


async def test_purge_keeps_demand_samples_35_days(store: Store, bus: EventBus) -> None:
    bus.publish(MeterReading("m1", NOW - timedelta(days=34), demand_kw=1.0))
    bus.publish(MeterReading("m1", NOW - timedelta(days=36), demand_kw=2.0))
    await store.flush()

    result = await store.purge(NOW)

    assert result.demand_samples == 1
    samples = await store.demand_samples("m1", NOW - timedelta(days=100), NOW)
    assert [s.demand_kw for s in samples] == [1.0]


async def test_purge_keeps_intervals_and_registers_for_the_reading_retention(
    store: Store, bus: EventBus
) -> None:
    kept, old = NOW - timedelta(days=399), NOW - timedelta(days=401)
    await store.add_intervals([interval(kept), interval(old)])
    bus.publish(MeterReading("m1", kept, summation_delivered_kwh=1.0))
    bus.publish(MeterReading("m1", old, summation_delivered_kwh=0.5))
    completed = status_report(100, EventStatus.COMPLETED, old)
    await store.write("record", partial(commands.record_event_status, report=completed,
                                        payload=encode(completed)[1], created_at=old), durable=True)
    await store.flush()

    result = await store.purge(NOW)

    assert (result.interval_readings, result.register_readings, result.event_status_reports) == (1, 1, 1)
    assert [r.start for r in await store.intervals("m1", NOW - timedelta(days=1000), NOW)] == [kept]


async def test_purge_forgets_delivered_outbox_rows_after_30_days_and_never_pending_ones(
    store: Store,
) -> None:
    outbox = Outbox(store)
    delivered = await outbox.enqueue(status_report(100))
    await outbox.enqueue(status_report(101))
    await store.outbox_delivered(delivered, NOW - timedelta(days=31))

    result = await store.purge(NOW + timedelta(days=1000))

    assert result.outbox == 1
    assert [p.item for p in await outbox.pending()] == [status_report(101)]

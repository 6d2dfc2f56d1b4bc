"""A full disk is an outage of the store, not a stream of bad events: said once, held, recovered.

The disk is filled for real on the real SQLite file: ``PRAGMA max_page_count`` (set on every
connection the engine hands out) stops the file at its present size, so SQLite answers
SQLITE_FULL ("database or disk is full") exactly as it does when the filesystem is full.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from ems.bus import EventBus
from ems.errors import NotReady, StoreUnavailable
from ems.model import MeterReading
from ems.store import Store
from tests.disk import full_disk
from tests.ems.store.store_samples import NOW, message

# The full disk is made with SQLite's max_page_count: these are about SQLite itself.
pytestmark = pytest.mark.sqlite_only


def readings(count: int, start: int = 0) -> list[MeterReading]:
    return [MeterReading("m1", NOW + timedelta(seconds=start + i), demand_kw=1.0 + i / 1000)
            for i in range(count)]


async def fill(store: Store, bus: EventBus) -> int:
    """Publish readings until the store says it cannot write; return how many were published."""
    published = 0
    while store.outage is None:
        assert published < 20_000, "the capped database never filled"
        for reading in readings(200, published):
            bus.publish(reading)
        published += 200
        await store.flush()
    return published


async def stored_count(store: Store) -> int:
    return len(await store.demand_samples("m1", NOW - timedelta(days=1), NOW + timedelta(days=1)))


async def test_a_full_disk_is_said_once_and_nothing_published_meanwhile_is_lost(
    store: Store, bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ems.store")
    with full_disk(store):
        published = await fill(store, bus)
        for reading in readings(500, published):  # the disk stays full: these wait in memory too
            bus.publish(reading)
            await store.flush()
        published += 500
        assert store.outage is not None and store.outage.problem == "disk_full"
        assert await stored_count(store) < published  # reads still work while the disk is full

    await store.flush()  # space is back: the writer tries again and writes what it held

    assert store.outage is None
    assert await stored_count(store) == published
    records = [r for r in caplog.records if r.name.startswith("ems.store") and r.levelno >= logging.WARNING]
    assert [r.levelname for r in records] == ["WARNING"], [r.getMessage() for r in records]
    assert "disk full" in records[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    recovered = [r for r in caplog.records if r.getMessage().startswith("Writing to")]
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO


async def test_a_write_asked_for_while_the_disk_is_full_fails_at_once_for_a_person_to_read(
    store: Store, bus: EventBus
) -> None:
    bus.publish(message(1, received_at=NOW))
    await store.flush()
    with full_disk(store):
        await fill(store, bus)

        with pytest.raises(StoreUnavailable) as raised:
            await store.mark_message_read("m1", 1)

    assert isinstance(raised.value, NotReady)  # the web answers 503
    text = str(raised.value)
    assert "disk is full" in text
    assert store.name not in text and "sqlite" not in text.lower() and "/" not in text
    await store.flush()
    assert await store.mark_message_read("m1", 1) is True  # space is back: writes work again


async def test_the_held_events_are_bounded_dropping_the_oldest_readings_first(
    open_store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ems.store.writer")
    store = await open_store(max_backlog=300)
    bus = EventBus()
    store.attach(bus)
    with full_disk(store):
        published = await fill(store, bus)
        for reading in readings(1000, published):
            bus.publish(reading)
        await store.flush()
        assert store.backlog <= 300
        assert store.dropped["MeterReading"] >= 700

    await store.flush()
    assert store.outage is None
    newest = await store.demand_samples("m1", NOW + timedelta(seconds=published + 999), NOW + timedelta(days=1))
    assert [r.demand_kw for r in newest] == [pytest.approx(1.999)]  # the newest are kept, the oldest went
    assert "dropped meanwhile" in caplog.text

"""Every time comes back aware UTC, whatever offset it was written with (also on SQLite)."""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone

import pytest

from ems.bus import EventBus
from ems.errors import StoreError
from ems.model import MeterReading
from ems.store import Store
from tests.ems.store.store_samples import NOW, dr_event, interval, message

PACIFIC = timezone(timedelta(hours=-8))


async def test_times_written_with_an_offset_come_back_aware_utc(store: Store, bus: EventBus) -> None:
    local = NOW.astimezone(PACIFIC)
    bus.publish(message(1, received_at=local))
    bus.publish(dr_event(100, start=local))
    bus.publish(MeterReading("m1", local, demand_kw=1.0))
    await store.add_intervals([interval(local)])
    await store.flush()

    [stored_message] = await store.messages(NOW - timedelta(hours=1))
    [stored_event] = await store.events(NOW - timedelta(hours=1))
    [sample] = await store.demand_samples("m1", NOW, NOW + timedelta(seconds=1))
    [reading] = await store.intervals("m1", NOW, NOW + timedelta(seconds=1))
    times = [
        stored_message.message.received_at,
        stored_message.message.start,
        stored_event.event.start,
        stored_event.event.received_at,
        sample.read_at,
        reading.start,
    ]
    assert all(t.tzinfo is UTC for t in times), times
    assert stored_message.message.received_at == NOW
    assert reading.start == NOW


async def test_a_naive_time_is_refused_with_the_database_named(store: Store) -> None:
    with pytest.raises(StoreError, match=re.escape(store.name) + ".*naive"):
        await store.add_intervals([interval(NOW.replace(tzinfo=None))])

"""The last weeks of intervals come from memory, and what memory holds is always what the database holds.

``Store.interval_columns`` keeps what it read of the last 45 days (ems.store.recent): the dashboard's
cost tiles, its chart and the bill check read the billing cycle again and again. Every read must still
answer exactly what the database holds, whatever was written in between: a live reading, a late one,
an import behind what is kept, a purge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.bus import EventBus
from ems.model import IntervalReading
from ems.store import Store
from ems.store.recent import RecentIntervals

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)


class Clock:
    """The store's "now", moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def quarter(start: datetime, kwh: float = 0.25, meter_id: str = "m1") -> IntervalReading:
    return IntervalReading(meter_id, start, 900, kwh, 0.0)


def quarters(first: datetime, count: int, kwh: float = 0.25) -> list[IntervalReading]:
    return [quarter(first + timedelta(minutes=15 * i), kwh) for i in range(count)]


async def truth(store: Store, start: datetime, end: datetime, meter_id: str = "m1") -> list[tuple[int, float]]:
    return [(int(r.start.timestamp()), r.consumed_kwh) for r in await store.intervals(meter_id, start, end)]


async def columns(store: Store, start: datetime, end: datetime, meter_id: str = "m1") -> list[tuple[int, float]]:
    found = await store.interval_columns(meter_id, start, end)
    return list(zip(found.start_s.tolist(), found.consumed_kwh.tolist(), strict=True))


async def _live_store(open_store: Callable[..., Awaitable[Store]]) -> tuple[Store, Clock, EventBus]:
    """A store on the test's clock, writing what a bus publishes (as the appliance's)."""
    clock = Clock()
    store = await open_store(clock=clock)
    bus = EventBus()
    store.attach(bus)
    return store, clock, bus


async def test_a_cycle_read_again_comes_from_memory_with_only_the_new_intervals_from_the_database(
    open_store: Callable[..., Awaitable[Store]],
) -> None:
    store, clock, bus = await _live_store(open_store)
    await store.add_intervals(quarters(NOW - timedelta(days=30), 30 * 96))
    cycle = NOW - timedelta(days=20)

    assert await columns(store, cycle, NOW) == await truth(store, cycle, NOW)
    assert store.recent.misses == 1 and store.recent.kept_rows == 30 * 96  # the whole span, not just the cycle

    bus.publish(quarter(NOW, 0.5))  # the meter's next interval, live
    clock.now = NOW + timedelta(minutes=16)
    assert await columns(store, cycle, clock.now) == await truth(store, cycle, clock.now)
    assert (store.recent.misses, store.recent.hits) == (1, 1)
    assert store.recent.kept_rows == 30 * 96 + 1


async def test_a_late_reading_behind_what_is_kept_is_read_from_the_database(
    open_store: Callable[..., Awaitable[Store]],
) -> None:
    store, _, bus = await _live_store(open_store)
    day = NOW - timedelta(days=1)
    await store.add_intervals([r for r in quarters(day, 96) if r.start != day + timedelta(hours=5)])
    before = await columns(store, day, NOW)

    bus.publish(quarter(day + timedelta(hours=5), 9.0))  # the gap, backfilled from the meter's profile
    after = await columns(store, day, NOW)

    assert len(after) == len(before) + 1
    assert (int((day + timedelta(hours=5)).timestamp()), 9.0) in after
    assert after == await truth(store, day, NOW)


async def test_an_import_behind_what_is_kept_shows_at_the_next_read(
    open_store: Callable[..., Awaitable[Store]],
) -> None:
    store = await open_store(clock=Clock())
    await store.add_intervals(quarters(NOW - timedelta(days=3), 96))  # three days ago
    week = NOW - timedelta(days=7)
    assert len(await columns(store, week, NOW)) == 96

    await store.add_intervals(quarters(NOW - timedelta(days=6), 96, kwh=0.4))  # an older day, imported

    assert await columns(store, week, NOW) == await truth(store, week, NOW)
    assert len(await columns(store, week, NOW)) == 192


async def test_a_purge_that_deleted_intervals_leaves_nothing_in_memory(
    open_store: Callable[..., Awaitable[Store]],
) -> None:
    clock = Clock()
    store = await open_store(clock=clock)
    await store.add_intervals(quarters(NOW - timedelta(days=40), 40 * 96))
    await columns(store, NOW - timedelta(days=45), NOW)
    clock.now = NOW + timedelta(days=store.retention.readings.days - 35)  # the oldest days now past retention

    await store.purge()

    assert store.recent.kept_rows == 0
    span = (clock.now - timedelta(days=45), clock.now)
    assert await columns(store, *span) == await truth(store, *span)


async def test_history_older_than_the_kept_weeks_is_read_from_the_database_as_before(
    open_store: Callable[..., Awaitable[Store]],
) -> None:
    store = await open_store(clock=Clock())
    await store.add_intervals(quarters(NOW - timedelta(days=100), 100 * 96))
    year = NOW - timedelta(days=365)

    for start, end in ((year, NOW), (year, NOW - timedelta(days=60)), (NOW - timedelta(days=50), NOW)):
        assert await columns(store, start, end) == await truth(store, start, end)
    assert store.recent.kept_rows == 45 * 96  # the span, not the year


async def test_a_read_that_raced_a_late_write_keeps_nothing_of_what_it_read() -> None:
    recent = RecentIntervals()
    from ems.costs import ReadingArrays

    def arrays(starts: list[int]) -> ReadingArrays:
        n = len(starts)
        return ReadingArrays(np.array(starts, dtype=np.int64), np.full(n, 900), np.full(n, 0.25), np.zeros(n))

    now_s = int(NOW.timestamp())

    async def fetch(begin: datetime, until: datetime) -> ReadingArrays:
        recent.written("m1", NOW - timedelta(hours=1))  # a late reading queued while the database answers
        return arrays([s for s in range(now_s - 86400, now_s, 900) if begin.timestamp() <= s < until.timestamp()])

    await recent.read("m1", NOW - timedelta(days=1), NOW, NOW, fetch)

    assert recent.kept_rows == 0  # the next read asks the database again


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["live", "late", "import", "read", "tick"]),
                                st.integers(0, 40 * 96)), min_size=1, max_size=12))
async def test_whatever_is_written_between_reads_every_read_is_what_the_database_holds(tmp_path_factory, steps) -> None:
    from ems.config import StoreConfig

    clock = Clock()
    store = Store(StoreConfig(None, 24.0, 400), tmp_path_factory.mktemp("recent"), clock=clock)
    await store.open()
    try:
        bus = EventBus()
        store.attach(bus)
        await store.add_intervals(quarters(NOW - timedelta(days=40), 40 * 96, kwh=0.1)[::3])
        for kind, n in steps:
            at = NOW - timedelta(days=40) + timedelta(minutes=15 * n)
            if kind == "live":
                bus.publish(quarter(clock.now.replace(minute=0, second=0), 0.2))
            elif kind == "late":
                bus.publish(quarter(min(at, clock.now - timedelta(minutes=15)), 0.3))
            elif kind == "import":
                await store.add_intervals(quarters(at, 8, kwh=0.4))
            elif kind == "tick":
                clock.now += timedelta(minutes=15 * (n % 9 + 1))
            start = clock.now - timedelta(days=(n % 50) + 1)
            assert await columns(store, start, clock.now) == await truth(store, start, clock.now)
    finally:
        await store.close()

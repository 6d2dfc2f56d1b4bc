"""Intervals are stored once: a repeated (meter, start, duration) is a no-op, in bulk or one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.bus import EventBus
from ems.model import IntervalReading
from ems.store import Store
from tests.ems.store.store_samples import NOW, interval

FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


async def test_the_writer_stores_a_repeated_interval_once(store: Store, bus: EventBus) -> None:
    bus.publish(interval(NOW, consumed_kwh=0.25))
    bus.publish(interval(NOW, consumed_kwh=0.99))  # the meter sent the same interval again
    await store.flush()

    assert await store.intervals("m1", FAR_PAST, FAR_FUTURE) == [interval(NOW, consumed_kwh=0.25)]


async def test_add_intervals_returns_how_many_were_new(store: Store) -> None:
    first = [interval(NOW + timedelta(minutes=15 * i)) for i in range(4)]
    second = [interval(NOW + timedelta(minutes=15 * i)) for i in range(2, 6)]

    assert await store.add_intervals(first) == 4
    assert await store.add_intervals(second) == 2
    assert len(await store.intervals("m1", FAR_PAST, FAR_FUTURE)) == 6


async def test_add_intervals_of_nothing_adds_nothing(store: Store) -> None:
    assert await store.add_intervals([]) == 0


async def test_intervals_are_read_back_for_start_in_the_half_open_range(store: Store) -> None:
    await store.add_intervals([interval(NOW + timedelta(minutes=15 * i)) for i in range(4)])

    found = await store.intervals("m1", NOW + timedelta(minutes=15), NOW + timedelta(minutes=45))

    assert [r.start for r in found] == [NOW + timedelta(minutes=15), NOW + timedelta(minutes=30)]


async def test_a_year_of_quarter_hours_imports_in_one_call(store: Store) -> None:
    # Correctness only: how long it takes is bench/import.py's (a timed test fails on a busy machine).
    year = [interval(NOW + timedelta(minutes=15 * i)) for i in range(35_000)]

    added = await store.add_intervals(year)

    assert added == 35_000
    assert await store.intervals("m1", FAR_PAST, FAR_FUTURE) == year


_intervals = st.builds(
    IntervalReading,
    meter_id=st.sampled_from(["m1", "m2"]),
    start=st.integers(0, 20).map(lambda q: NOW + timedelta(minutes=15 * q)),
    duration_s=st.sampled_from([900, 3600]),
    consumed_kwh=st.floats(0, 100, allow_nan=False),
    generated_kwh=st.floats(0, 100, allow_nan=False),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(readings=st.lists(_intervals, max_size=40).flatmap(
    lambda items: st.lists(st.sampled_from(items), max_size=20).map(lambda dup: items + dup)
    if items else st.just(items)
))
async def test_intervals_read_back_equal_the_deduplicated_input(
    store: Store, readings: list[IntervalReading]
) -> None:
    await store.purge(FAR_FUTURE + timedelta(days=10_000))  # each example starts empty

    added = await store.add_intervals(readings)

    first_seen: dict[tuple[str, datetime, int], IntervalReading] = {}
    for reading in readings:
        first_seen.setdefault((reading.meter_id, reading.start, reading.duration_s), reading)
    expected = sorted(first_seen.values(), key=lambda r: (r.meter_id, r.start, r.duration_s))
    stored = [
        *await store.intervals("m1", FAR_PAST, FAR_FUTURE),
        *await store.intervals("m2", FAR_PAST, FAR_FUTURE),
    ]
    assert added == len(expected)
    assert stored == expected

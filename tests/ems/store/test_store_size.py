"""Retention by size (``store: max_size_mb``): the database is kept within its limit, the oldest
samples going first, then the oldest energy history; messages and owed reports are never thinned."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from ems.bus import EventBus
from ems.config import ConfigError, load_config
from ems.model import MeterReading
from ems.store import Store
from tests.ems.store.store_samples import NOW, interval, message

# The limits here are a fraction of what the rows take: SQLite counts the pages in use exactly, while
# an empty PostgreSQL database is already several MB (its catalogs), so only SQLite is thinned here.
pytestmark = pytest.mark.sqlite_only


async def _filled(store: Store, bus: EventBus, samples: int = 6000, hours: int = 48) -> None:
    for i in range(samples):
        bus.publish(MeterReading("m1", NOW - timedelta(seconds=samples - i), demand_kw=1.0 + i / samples))
    for h in range(hours * 4):
        bus.publish(interval(NOW - timedelta(minutes=15 * (hours * 4 - h))))
    bus.publish(message(1, received_at=NOW - timedelta(days=20)))
    await store.flush()


def _limited(store: Store, max_bytes: int) -> None:
    store.retention = dataclasses.replace(store.retention, max_bytes=max_bytes)


async def test_without_a_limit_nothing_is_thinned(store: Store, bus: EventBus) -> None:
    await _filled(store, bus)
    assert await store.keep_within_size() is None


async def test_over_the_limit_the_oldest_demand_samples_go_first(store: Store, bus: EventBus) -> None:
    await _filled(store, bus)
    used = (await _check(store, 10**12)).used_after
    _limited(store, int(used * 0.9))

    trimmed = await store.keep_within_size()

    assert trimmed is not None and trimmed.used_after <= used * 0.9 * 0.9
    assert set(trimmed.deleted) == {"demand_samples"}
    kept = await store.demand_samples("m1", NOW - timedelta(days=1), NOW)
    assert kept and kept[-1].read_at == NOW - timedelta(seconds=1)  # the newest are kept
    assert kept[0].read_at > NOW - timedelta(seconds=6000)  # the oldest went
    assert len(await store.intervals("m1", NOW - timedelta(days=3), NOW)) == 48 * 4
    assert [m.message.message_id for m in await store.messages(NOW - timedelta(days=30))] == [1]


async def test_a_tight_limit_thins_the_energy_history_oldest_first_and_keeps_the_messages(
    store: Store, bus: EventBus
) -> None:
    await _filled(store, bus, samples=500, hours=24 * 30)
    used = (await _check(store, 10**12)).used_after
    _limited(store, int(used * 0.6))

    trimmed = await store.keep_within_size()

    assert trimmed is not None and trimmed.used_after <= used * 0.6
    assert "interval_readings" in trimmed.deleted
    intervals = await store.intervals("m1", NOW - timedelta(days=31), NOW)
    assert intervals and intervals[-1].start == NOW - timedelta(minutes=15)  # the newest are kept
    assert [m.message.message_id for m in await store.messages(NOW - timedelta(days=30))] == [1]
    # Within the limit now: the next check deletes nothing.
    assert (await store.keep_within_size()).deleted == {}


async def _check(store: Store, max_bytes: int):  # noqa: ANN202 - a SizeTrim
    _limited(store, max_bytes)
    result = await store.keep_within_size()
    assert result is not None
    return result


def test_the_limit_is_configured_in_mb_and_refused_below_16(tmp_path) -> None:
    (tmp_path / "ems.yaml").write_text("store: {max_size_mb: 64}\n")
    assert load_config(tmp_path).store.max_size_mb == 64
    (tmp_path / "ems.yaml").write_text("site: {name: Home}\nstore:\n  max_size_mb: 4\n")
    with pytest.raises(ConfigError, match=r"ems.yaml:3.*store.max_size_mb.*at least 16 MB"):
        load_config(tmp_path)

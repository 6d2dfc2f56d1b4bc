"""The usage chart's ended buckets come from memory, and the answer is always the one pricing afresh gives.

A year of 1-minute intervals takes seconds to read and price; web.usage_buckets keeps the buckets
that have ended. Whatever happens between two requests (the clock moves past midnight, a late or
imported interval lands in an ended bucket, the meter publishes a price for a moment already
charged), the answer must equal what a fresh pricing of the whole range says.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ems.clock import FixedClock
from ems.config import default_config_dir, load_config
from ems.hub import Hub
from ems.model import IntervalReading, PriceSignal
from web.usage_api import window
from web.usage_buckets import UsageBuckets

LA = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 5, 12, 19, 20, tzinfo=UTC)  # 12:20 on a Tuesday in Los Angeles


async def _hub(tmp_path: Path, meter_prices: bool = False) -> tuple[Hub, FixedClock]:
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copy(default_config_dir() / "rates.yaml", folder / "rates.yaml")
    extra = ", use_meter_prices: true" if meter_prices else ""
    (folder / "ems.yaml").write_text("site:\n  timezone: America/Los_Angeles\n"
                                     f"tariff: {{plan: TOU-D-T, climate_zone: '10'{extra}}}\n")
    clock = FixedClock(NOW)
    hub = Hub(load_config(folder), tmp_path / "data", clock=clock)
    await hub.store.open()
    start = NOW.replace(minute=0) - timedelta(days=60)
    await hub.store.add_intervals([IntervalReading("m1", start + timedelta(hours=h), 3600, 1.0 + (h % 5) / 10, 0.1)
                                   for h in range(60 * 24)])
    return hub, clock


def _edges(hub: Hub, range_: str) -> list[int]:
    return window(range_, hub.clock(), LA, hub.config.tariff.active_plan, 3600)


async def _same_as_fresh(hub: Hub, buckets: UsageBuckets, range_: str) -> dict:
    edges = _edges(hub, range_)
    kept = await buckets.columns(hub, "m1", range_, edges)
    assert kept == await UsageBuckets().columns(hub, "m1", range_, edges)
    return kept


async def test_asked_again_only_the_bucket_under_way_is_priced(tmp_path):
    hub, _ = await _hub(tmp_path)
    try:
        buckets = UsageBuckets()
        for range_ in ("year", "cycle", "week", "day"):
            first = await _same_as_fresh(hub, buckets, range_)
            priced = buckets.priced_buckets
            assert await buckets.columns(hub, "m1", range_, _edges(hub, range_)) == first
            assert buckets.priced_buckets - priced == 1, range_
    finally:
        await hub.store.close()


async def test_after_midnight_yesterday_is_priced_and_the_rest_comes_from_memory(tmp_path):
    hub, clock = await _hub(tmp_path)
    try:
        buckets = UsageBuckets()
        await _same_as_fresh(hub, buckets, "year")
        clock.set(NOW + timedelta(hours=14))  # 02:20 the next day
        await hub.store.add_intervals([IntervalReading("m1", NOW.replace(minute=0) + timedelta(hours=h), 3600, 2.0, 0.0)
                                       for h in range(13)])
        priced = buckets.priced_buckets
        await _same_as_fresh(hub, buckets, "year")
        assert buckets.priced_buckets - priced == 2  # yesterday (written into) and today
    finally:
        await hub.store.close()


async def test_a_late_interval_in_an_ended_bucket_is_counted_at_the_next_request(tmp_path):
    hub, _ = await _hub(tmp_path)
    try:
        buckets = UsageBuckets()
        hub.store.watch_intervals(buckets.written)
        before = await _same_as_fresh(hub, buckets, "week")
        late = IntervalReading("m1", NOW.replace(minute=0) - timedelta(days=3, minutes=30), 1800, 5.0, 0.0)
        await hub.store.add_intervals([late])
        after = await _same_as_fresh(hub, buckets, "week")
        assert after["intervals_read"] == before["intervals_read"] + 1
    finally:
        await hub.store.close()


async def test_a_meter_price_for_a_moment_already_charged_reprices_from_there(tmp_path):
    hub, _ = await _hub(tmp_path, meter_prices=True)
    try:
        buckets = UsageBuckets()
        hub.store.watch_intervals(buckets.written)
        before = await _same_as_fresh(hub, buckets, "day")
        since = NOW - timedelta(hours=3)
        signal = PriceSignal("m1", 1, 9, "METER", "USD", 0.83, since, None, received_at=since)
        await hub.store.write("a price", lambda conn: _store_price(conn, signal))
        buckets.written(signal.meter_id, signal.start)  # what the app's bus listener does
        after = await _same_as_fresh(hub, buckets, "day")
        assert after["price_per_kwh"] != before["price_per_kwh"]
        assert 0.83 in after["price_per_kwh"]
    finally:
        await hub.store.close()


async def _store_price(conn, signal: PriceSignal) -> None:
    from ems.store import rows, tables

    await conn.execute(tables.prices.insert(), [rows.price_row(signal)])


async def test_a_purge_forgets_every_bucket(tmp_path):
    hub, _ = await _hub(tmp_path)
    try:
        buckets = UsageBuckets()
        hub.store.watch_intervals(buckets.written)
        await _same_as_fresh(hub, buckets, "cycle")
        buckets.written(None, None)
        priced = buckets.priced_buckets
        body = await _same_as_fresh(hub, buckets, "cycle")
        assert buckets.priced_buckets - priced == len(body["t"])
        assert datetime.fromtimestamp(body["t"][0], UTC) < NOW
    finally:
        await hub.store.close()

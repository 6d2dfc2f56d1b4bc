"""The hub's clock: every part of the core reads the one clock it is given, and its daily jobs follow it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from ems.clock import REAL, FixedClock, FollowingClock
from ems.store import Store
from tests.hubs import new_hub, started_hub

T0 = datetime(2026, 7, 15, 9, 0, tzinfo=UTC)


def test_a_hub_runs_on_real_time_that_follows_the_meter_unless_given_a_clock(tmp_path: Path) -> None:
    # On real time the hub's one clock is a FollowingClock (the meter link sets it to the meter's
    # time, SE §7.2); the store and the outbox read the same clock.
    hub = new_hub(tmp_path)
    assert isinstance(hub.clock, FollowingClock) and hub.clock.base is REAL
    assert hub.store.clock is hub.clock and hub.outbox._clock is hub.clock


async def test_the_hub_and_its_store_read_the_clock_they_are_given(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    async with started_hub(tmp_path, clock=clock) as hub:
        assert hub.clock is clock and hub.store.clock is clock
        assert hub.started_at == T0


async def test_a_daily_job_runs_when_the_clock_reaches_its_time_of_day_and_again_a_day_later(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    runs: list[datetime] = []
    ran = asyncio.Event()

    async def job() -> None:
        runs.append(clock())
        ran.set()

    async with started_hub(tmp_path, clock=clock) as hub:
        hub.every_day(time(10, 0), job, "test-job")
        await asyncio.sleep(0)
        clock.advance(minutes=59)
        for _ in range(5):
            await asyncio.sleep(0)
        assert runs == []  # 09:59: not yet
        clock.advance(minutes=1)
        await asyncio.wait_for(ran.wait(), 60)  # the bound only guards against a hang
        assert runs == [T0 + timedelta(hours=1)]
        ran.clear()
        clock.advance(days=1)
        await asyncio.wait_for(ran.wait(), 60)
        assert runs == [T0 + timedelta(hours=1), T0 + timedelta(days=1, hours=1)]


async def test_a_daily_job_that_fails_runs_again_the_next_day(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    calls = 0
    ran = asyncio.Event()

    async def job() -> None:
        nonlocal calls
        calls += 1
        ran.set()
        raise RuntimeError("disk full")

    async with started_hub(tmp_path, clock=clock) as hub:
        hub.every_day(time(9, 30), job, "failing-job")
        await asyncio.sleep(0)
        clock.advance(minutes=30)
        await asyncio.wait_for(ran.wait(), 60)
        ran.clear()
        clock.advance(days=1)
        await asyncio.wait_for(ran.wait(), 60)
        assert calls == 2


async def test_a_periodic_job_runs_at_once_and_then_every_interval_of_the_clock_even_after_a_failure(
    tmp_path: Path,
) -> None:
    clock = FixedClock(T0)
    runs: list[datetime] = []
    ran = asyncio.Event()

    async def job() -> None:
        runs.append(clock())
        ran.set()
        if len(runs) == 1:
            raise RuntimeError("the first check fails")

    async with started_hub(tmp_path, clock=clock) as hub:
        hub.every(timedelta(hours=1), job, "hourly-job")
        await asyncio.wait_for(ran.wait(), 60)  # the bound only guards against a hang
        ran.clear()
        clock.advance(minutes=59)
        for _ in range(5):
            await asyncio.sleep(0)
        assert runs == [T0]
        clock.advance(minutes=1)
        await asyncio.wait_for(ran.wait(), 60)
        assert runs == [T0, T0 + timedelta(hours=1)]


async def test_a_size_limit_is_checked_from_the_start_and_hourly(tmp_path: Path, monkeypatch) -> None:
    """``store: max_size_mb`` set: the hub keeps the database within it (tests/ems/store/test_store_size.py)."""
    clock = FixedClock(T0)
    checks: list[datetime] = []
    checked = asyncio.Event()

    async def check(store: Store) -> None:
        checks.append(clock())
        checked.set()

    monkeypatch.setattr(Store, "keep_within_size", check)
    async with started_hub(tmp_path, clock=clock, config_text="store: {max_size_mb: 16}\n"):
        await asyncio.wait_for(checked.wait(), 60)  # the bound only guards against a hang
        checked.clear()
        clock.advance(hours=1)
        await asyncio.wait_for(checked.wait(), 60)
    assert checks == [T0, T0 + timedelta(hours=1)]
    (tmp_path / "unlimited").mkdir()
    async with started_hub(tmp_path / "unlimited", clock=clock):
        for _ in range(20):
            await asyncio.sleep(0)
    assert len(checks) == 2  # without a limit there is nothing to check

"""The hub's clock: every part of the core reads the one clock it is given, and its daily jobs follow it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from ems.clock import REAL, FixedClock, FollowingClock
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

"""The one clock (ems.clock): real time, a fixed instant the test moves, simulated time N times faster.

Nothing here measures a real duration: a simulated clock is checked by the instants it shows
against a real clock read around them, a fixed clock's sleeps by whether they have woken.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ems.clock import (
    REAL,
    CallableClock,
    Clock,
    FixedClock,
    FollowingClock,
    RealClock,
    SimulatedClock,
    as_clock,
)

T0 = datetime(2026, 7, 15, 21, 0, tzinfo=UTC)  # 14:00 in Los Angeles


@pytest.mark.parametrize("clock", [REAL, FixedClock(T0), SimulatedClock(T0, speed=60)], ids=type)
def test_every_clock_is_a_clock_and_is_called_for_now_in_aware_utc(clock: Clock) -> None:
    assert isinstance(clock, Clock)
    now = clock()
    assert now.tzinfo is UTC
    assert clock.now() >= now  # callable where a Callable[[], datetime] goes, the same time


def test_the_real_clock_reads_the_wall_clock() -> None:
    before = datetime.now(UTC)
    now = RealClock()()
    assert before <= now <= datetime.now(UTC)
    assert REAL.real_seconds(5) == 5 and REAL.real_seconds(-1) == 0


def test_a_fixed_clock_stands_still_until_the_test_moves_it() -> None:
    clock = FixedClock(T0.astimezone(timezone(timedelta(hours=-7))))  # any aware time, kept in UTC
    assert clock() == T0 and clock().tzinfo is UTC
    assert clock() == T0
    assert clock.advance(minutes=90) == T0 + timedelta(minutes=90) == clock.now()
    assert clock.set(T0 - timedelta(days=1)) == T0 - timedelta(days=1) == clock()


def test_clocks_refuse_a_naive_time_and_a_speed_that_is_not_ahead() -> None:
    with pytest.raises(ValueError, match="aware"):
        FixedClock(datetime(2026, 7, 15, 14, 0))  # noqa: DTZ001 - the naive time is the point
    with pytest.raises(ValueError, match="aware"):
        FixedClock(T0).set(datetime(2026, 7, 15, 14, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="aware"):
        SimulatedClock(datetime(2026, 7, 15, 14, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="speed"):
        SimulatedClock(T0, speed=0)


async def test_a_sleep_on_a_fixed_clock_ends_when_the_clock_is_moved_past_it_and_not_before() -> None:
    clock = FixedClock(T0)
    sleeper = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    clock.advance(seconds=59)
    await asyncio.sleep(0)
    assert not sleeper.done()  # a loop sleeping on a fixed clock waits for the test, it does not spin
    clock.advance(seconds=1)
    await asyncio.wait_for(sleeper, 60)  # the bound only guards against a hang
    assert clock.sleepers == 0


async def test_a_fixed_clock_set_forward_wakes_every_sleep_it_passes() -> None:
    clock = FixedClock(T0)
    short, long = asyncio.create_task(clock.sleep(10)), asyncio.create_task(clock.sleep(3600))
    await asyncio.sleep(0)
    clock.set(T0 + timedelta(minutes=5))
    await asyncio.wait_for(short, 60)
    assert not long.done()
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long
    assert clock.sleepers == 0  # a cancelled sleep leaves nothing behind


async def test_a_zero_sleep_on_a_fixed_clock_only_yields() -> None:
    clock = FixedClock(T0)
    await clock.sleep(0)
    await clock.sleep(-5)
    assert clock.sleepers == 0
    assert clock.real_seconds(30) == 30  # a bounded wait for an event is a real wait


def test_a_simulated_clock_starts_at_its_start_and_runs_speed_times_faster() -> None:
    clock = SimulatedClock(T0.astimezone(timezone(timedelta(hours=-7))), speed=3600)
    assert clock.start == T0 and clock.start.tzinfo is UTC and clock.speed == 3600
    first = clock()
    assert T0 <= first < T0 + timedelta(hours=1)  # not an hour of real time since it was made
    later = clock()
    assert later >= first
    assert clock.real_seconds(3600) == 1.0 and clock.real_seconds(-1) == 0


async def test_a_sleep_on_a_fast_simulated_clock_lets_its_time_pass() -> None:
    clock = SimulatedClock(T0, speed=10_000)
    before = clock()
    await clock.sleep(3600)  # an hour of simulated time (0.36 s of real time)
    assert clock() >= before + timedelta(hours=1)


def test_a_plain_callable_becomes_a_clock_whose_waits_are_real() -> None:
    def read() -> datetime:
        return T0

    clock = as_clock(read)
    assert isinstance(clock, CallableClock) and clock() == T0 == clock.now()
    assert clock.real_seconds(7) == 7
    assert as_clock(None) is REAL
    fixed = FixedClock(T0)
    assert as_clock(fixed) is fixed


def test_a_following_clock_shows_its_base_until_it_follows_a_time_source() -> None:
    base = FixedClock(T0.replace(microsecond=400_000))
    clock = FollowingClock(base)
    assert isinstance(clock, Clock) and clock.base is base and clock() == base()
    # The meter reads 30 s ahead (UTCTime: whole seconds): from now on the clock shows its time.
    assert clock.follow(T0 + timedelta(seconds=30)) == timedelta(seconds=30)
    assert clock() == base() + timedelta(seconds=30) == clock.now()
    base.advance(minutes=5)  # and keeps to it as the base moves
    assert clock() == base() + timedelta(seconds=30)
    assert clock.real_seconds(12) == base.real_seconds(12)


def test_a_following_clock_takes_a_difference_within_the_tolerance_as_none() -> None:
    clock = FollowingClock(FixedClock(T0))
    assert clock.follow(T0 - timedelta(seconds=1), tolerance=timedelta(seconds=2)) == timedelta(0)
    assert clock() == T0
    assert clock.follow(T0 - timedelta(seconds=3), tolerance=timedelta(seconds=2)) == timedelta(seconds=-3)
    with pytest.raises(ValueError, match="aware"):
        clock.follow(datetime(2026, 1, 1))  # noqa: DTZ001 - a naive time is refused


async def test_a_following_clocks_sleep_is_its_bases() -> None:
    base = FixedClock(T0)
    clock = FollowingClock(base)
    clock.follow(T0 + timedelta(hours=1))
    sleeper = asyncio.ensure_future(clock.sleep(60))
    for _ in range(3):  # the sleep and the base's sleep it waits on get going
        await asyncio.sleep(0)
    assert not sleeper.done() and base.sleepers == 1
    base.advance(seconds=60)
    await sleeper

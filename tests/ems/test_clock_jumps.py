"""The meter's time jumps (SE §7.2: the ESI is the time master, and the hub's clock follows it).

On real time the hub's clock is a ``FollowingClock``: it steps with the meter's Time, forwards or
back. What the appliance times by that clock must survive the step: a report waiting to be retried
is not held for as long as the clock went back, a daily job runs once a day whichever way the clock
moved, an event that is running neither ends nor starts again when the clock goes back, and ends
at its own end (not at the jump) when the clock leaps past it; status times never go back.

The base clock is a ``FixedClock`` the test moves (standing in for the wall clock); the meter's
steps are ``FollowingClock.follow`` as the meter link calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from ems.clock import FixedClock, FollowingClock
from ems.config import StoreConfig
from ems.dr.events import LoadControl, LoadControlSettings
from ems.model import (
    Criticality,
    DeviceClass,
    EventPhase,
    EventStatus,
    EventStatusReport,
    LoadControlEvent,
)
from ems.outbox import Outbox
from ems.store import Store
from tests.hubs import started_hub

T0 = datetime(2026, 7, 15, 10, 0, tzinfo=UTC)


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``predicate`` holds (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - the predicate is the code under test's state, no event to wait on
            await asyncio.sleep(0.005)
    assert predicate(), what


async def rest() -> None:
    """Let every task that can run, run (a few loop turns and a store round trip)."""
    for _ in range(20):
        await asyncio.sleep(0.005)


@pytest.fixture
def base() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def clock(base: FixedClock) -> FollowingClock:
    return FollowingClock(base)


# -- the outbox ---------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path, clock: FollowingClock) -> AsyncIterator[Store]:
    store = Store(StoreConfig(None, 24.0, 400), tmp_path, clock=clock)
    await store.open()
    yield store
    await store.close()


class FailingOnce:
    def __init__(self) -> None:
        self.calls: list[datetime] = []
        self.delivered: list[Any] = []

    async def __call__(self, item: Any) -> None:
        self.calls.append(item)
        if len(self.calls) == 1:
            raise ConnectionError("meter did not answer")
        self.delivered.append(item)


def report(status: EventStatus = EventStatus.RECEIVED) -> EventStatusReport:
    return EventStatusReport("m1", 100, status, T0, criticality_applied=3)


async def test_a_retry_is_not_held_back_for_as_long_as_the_clock_went_back(
    store: Store, base: FixedClock, clock: FollowingClock
) -> None:
    outbox = Outbox(store, first_retry_s=1.0, max_retry_s=300.0, clock=clock)
    sender = FailingOnce()
    outbox.register_sender(EventStatusReport, sender)
    await outbox.start()
    try:
        await outbox.enqueue(report(), meter_id="m1")
        await until(lambda: len(sender.calls) == 1, "the first attempt")
        await until(lambda: base.sleepers > 0, "the outbox to wait for its retry (1 s)")
        clock.follow(T0 - timedelta(hours=1))  # the meter's time goes back an hour
        for _ in range(5):  # five seconds pass on the wall clock
            base.advance(seconds=1)
            await rest()
        assert sender.delivered == [report()], "the retry waited for the hour the clock went back"
    finally:
        await outbox.stop()


async def test_a_retry_after_a_leap_forward_goes_out_at_once(
    store: Store, base: FixedClock, clock: FollowingClock
) -> None:
    outbox = Outbox(store, first_retry_s=60.0, max_retry_s=300.0, clock=clock)
    sender = FailingOnce()
    outbox.register_sender(EventStatusReport, sender)
    await outbox.start()
    try:
        await outbox.enqueue(report(), meter_id="m1")
        await until(lambda: len(sender.calls) == 1, "the first attempt")
        await until(lambda: base.sleepers > 0, "the outbox to wait for its retry (60 s)")
        clock.follow(T0 + timedelta(hours=2))
        base.advance(seconds=60)  # its backoff, on the wall clock
        await until(lambda: len(sender.delivered) == 1, "the retry")
        assert len(sender.calls) == 2  # once more, not once per skipped backoff
    finally:
        await outbox.stop()


# -- the daily jobs -----------------------------------------------------------------------------


async def test_a_daily_job_runs_once_a_day_whichever_way_the_meters_time_steps(
    tmp_path: Path, base: FixedClock, clock: FollowingClock
) -> None:
    runs: list[datetime] = []

    async def job() -> None:
        runs.append(clock())

    async with started_hub(tmp_path, clock=clock) as hub:
        hub.every_day(time(10, 30), job, "test job")
        await rest()
        base.advance(minutes=30)  # 10:30: today's run
        await until(lambda: len(runs) == 1, "today's run")
        clock.follow(base() - timedelta(hours=1))  # back to 09:30 by the meter
        await rest()
        for _ in range(6):  # 10:30 and 10:45 again by the meter: already run today
            base.advance(minutes=15)
            await rest()
        assert len(runs) == 1, f"ran again after the clock went back: {runs}"
        clock.follow(base() + timedelta(hours=23, minutes=15))  # the meter leaps to tomorrow 10:30
        base.advance(hours=1)  # the job's loop looks at the clock at least once an hour
        await until(lambda: len(runs) == 2, "tomorrow's run after the leap")
        assert runs[1].date() == runs[0].date() + timedelta(days=1)


# -- DR events --------------------------------------------------------------------------------


def event(start: datetime, duration_min: int = 60) -> LoadControlEvent:
    return LoadControlEvent(
        meter_id="main", issuer_event_id=7, device_class=DeviceClass.HVAC, enrollment_group=0,
        start=start, duration_min=duration_min, criticality=Criticality.LEVEL_2, received_at=start - timedelta(minutes=5),
    )


@pytest.fixture
async def control(tmp_path: Path, clock: FollowingClock) -> AsyncIterator[tuple[LoadControl, list[EventStatusReport]]]:
    async with started_hub(tmp_path, clock=clock) as hub:
        seen: list[EventStatusReport] = []
        hub.bus.listen(EventStatusReport, seen.append)
        lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
        await lc.start()
        try:
            yield lc, seen
        finally:
            await lc.stop()


async def test_a_running_event_neither_ends_nor_starts_again_when_the_clock_goes_back(
    control: tuple[LoadControl, list[EventStatusReport]], base: FixedClock, clock: FollowingClock
) -> None:
    lc, seen = control
    start = T0 + timedelta(minutes=5)
    lc._hub.bus.publish(event(start))
    await lc.advance()
    base.advance(minutes=10)  # 10:10: running
    await lc.advance()
    assert lc.views()[0].phase is EventPhase.ACTIVE
    clock.follow(base() - timedelta(hours=1))  # 09:10 by the meter: before the event's start
    await lc.advance()
    await lc._hub.bus.drain()
    assert lc.views()[0].phase is EventPhase.ACTIVE
    assert [r.status for r in seen] == [EventStatus.RECEIVED, EventStatus.STARTED]
    base.advance(minutes=55)  # 10:05 by the meter: the event has 60 minutes of the meter's time
    await lc.advance()
    assert lc.views()[0].phase is EventPhase.ACTIVE
    base.advance(minutes=61)  # 11:06 by the meter: past its end
    await lc.advance()
    await lc._hub.bus.drain()
    statuses = [r.status for r in seen]
    assert statuses == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
    times = [r.at for r in seen]
    assert times == sorted(times), f"status times went back: {times}"


async def test_a_leap_past_an_events_end_completes_it_at_its_end_once(
    control: tuple[LoadControl, list[EventStatusReport]], base: FixedClock, clock: FollowingClock
) -> None:
    lc, seen = control
    start = T0 + timedelta(minutes=5)
    lc._hub.bus.publish(event(start))
    await lc.advance()
    base.advance(minutes=10)
    await lc.advance()
    clock.follow(base() + timedelta(hours=2))  # the meter leaps two hours ahead
    await lc.advance()
    await lc.advance()
    await lc._hub.bus.drain()
    statuses = [r.status for r in seen]
    assert statuses == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
    completed = seen[-1]
    assert completed.at == start + timedelta(minutes=60)  # when it ended, not when the clock got there
    assert [r.at for r in seen] == sorted(r.at for r in seen)


async def test_an_event_scheduled_ahead_starts_once_after_the_clock_goes_back_and_forth(
    control: tuple[LoadControl, list[EventStatusReport]], base: FixedClock, clock: FollowingClock
) -> None:
    lc, seen = control
    start = T0 + timedelta(minutes=30)
    lc._hub.bus.publish(event(start, duration_min=30))
    await lc.advance()
    clock.follow(base() + timedelta(minutes=40))  # 10:40 by the meter: running
    await lc.advance()
    clock.follow(base() - timedelta(minutes=40))  # 09:20: before it again
    await lc.advance()
    clock.follow(base() + timedelta(minutes=45))  # 10:45
    await lc.advance()
    clock.follow(base() + timedelta(minutes=65))  # 11:05: ended
    await lc.advance()
    await lc._hub.bus.drain()
    assert [r.status for r in seen] == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
    assert [r.at for r in seen] == sorted(r.at for r in seen)


# -- the load control's own loop: no advance by hand ---------------------------------------------
# Before, the loop slept up to MAX_SLEEP_S (60 s) of real time whatever the clock did: an event
# ended up to a minute late after the meter's time leapt, or after a suspended process resumed.


async def test_the_loop_ends_an_event_at_once_when_the_meters_time_leaps_past_its_end(
    control: tuple[LoadControl, list[EventStatusReport]], base: FixedClock, clock: FollowingClock
) -> None:
    lc, seen = control
    start = T0 + timedelta(minutes=5)
    lc._hub.bus.publish(event(start))
    base.advance(minutes=10)  # 10:10: running
    await until(lambda: EventStatus.STARTED in [r.status for r in seen], "the start")
    await until(lambda: base.sleepers > 0, "the load control to wait for the event's end")
    clock.follow(base() + timedelta(hours=2))  # the meter leaps to 12:10; the wall clock stands still
    await until(lambda: EventStatus.COMPLETED in [r.status for r in seen], "the end, without the wall clock moving")
    assert seen[-1].at == start + timedelta(minutes=60)


async def test_the_loop_ends_an_event_on_time_by_the_meter_after_its_time_steps_back(
    control: tuple[LoadControl, list[EventStatusReport]], base: FixedClock, clock: FollowingClock
) -> None:
    lc, seen = control
    start = T0 + timedelta(minutes=5)
    end = start + timedelta(minutes=60)
    lc._hub.bus.publish(event(start))
    base.advance(minutes=10)
    await until(lambda: EventStatus.STARTED in [r.status for r in seen], "the start")
    clock.follow(base() - timedelta(hours=1))  # 09:10 by the meter: the event has 115 minutes to run
    base.advance(minutes=110)  # the wall clock runs on: 11:00 by the meter, five minutes before the end
    await rest()
    assert lc.views()[0].phase is EventPhase.ACTIVE
    ended_by_meter = None
    for _ in range(40):  # then 15 s at a time (one control cycle)
        base.advance(seconds=15)
        await rest()
        if lc.views()[0].phase is EventPhase.ENDED:
            ended_by_meter = clock()
            break
    assert ended_by_meter is not None, "the event never ended"
    assert end <= ended_by_meter < end + timedelta(seconds=15), f"ended at {ended_by_meter}, its end is {end}"
    assert [r.status for r in seen] == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
    assert seen[-1].at == end


async def test_a_sleep_on_the_wall_clock_ends_when_the_wall_clock_is_set_past_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An NTP step or a resumed suspend: the monotonic time a plain sleep counts does not see it."""
    import time as real_time

    import ems.clock

    monkeypatch.setattr(ems.clock, "JUMP_CHECK_S", 0.01)
    jumped = {"by": 0.0}
    monkeypatch.setattr(ems.clock.time, "time", lambda: real_time.monotonic() + jumped["by"])
    sleeper = asyncio.ensure_future(ems.clock.RealClock().sleep(3600))
    await asyncio.sleep(0.05)
    assert not sleeper.done()
    jumped["by"] = 3600.0  # the wall clock is set an hour forwards
    async with asyncio.timeout(10):  # a hang guard
        await sleeper

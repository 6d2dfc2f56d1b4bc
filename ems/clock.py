"""The one clock the core and the simulator read: real time, a fixed instant, or time running faster.

Every component reads "now" through a ``Clock`` (aware UTC) and waits through it, so a test can
set the instant, pick a local time of day, or let simulated time run N times faster than real time
(a day of tariff periods, an event and a billing-cycle change in seconds). A clock is also
callable: ``clock()`` is ``clock.now()``, so it goes wherever a ``Callable[[], datetime]`` does.

On a real HAN the meter is the time master (SE §7.2): a ``FollowingClock`` is a clock that keeps
to a time source's offset from its base clock, so that everything the appliance stamps, schedules
and reports (received, acknowledged, started, completed) is on the one time base, the meter's
where it is known. The hub's clock is one when it runs on real time.

A clock that jumps forwards ends the sleeps it has passed the end of: the wall clock stepped (NTP,
a resumed suspend) is noticed within ``JUMP_CHECK_S``, the meter's time followed at once, a fixed
clock when the test moves it. A jump back does not make a sleep longer (it is real time that
passes). ``sleep_or_wake`` is the one way a loop waits for its next moment or an earlier wake-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

JUMP_CHECK_S = 5.0  # real time: how soon a sleep on the wall clock notices the clock set forwards


@runtime_checkable
class Clock(Protocol):
    """What the core needs of time."""

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        ...

    def __call__(self) -> datetime: ...

    def real_seconds(self, seconds: float) -> float:
        """How long ``seconds`` of this clock's time take in real time (for asyncio timeouts)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class RealClock:
    """The wall clock (the appliance in a home)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    __call__ = now

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        """``seconds`` of real time, or less when the wall clock is set forwards past the end (an NTP
        step, a suspend resumed: the monotonic time a plain sleep counts stood still or lags)."""
        seconds = max(0.0, seconds)
        end_wall, end_mono = time.time() + seconds, time.monotonic() + seconds
        while (left := min(end_mono - time.monotonic(), end_wall - time.time())) > 0:  # noqa: ASYNC110 - it polls the wall clock
            await asyncio.sleep(min(left, JUMP_CHECK_S))
        if seconds == 0:
            await asyncio.sleep(0)


class FixedClock:
    """An instant that moves only when the test moves it (``advance``, ``set``).

    ``sleep`` waits until the test has moved the clock past the sleep's end (a loop that sleeps
    on a fixed clock waits for the test instead of spinning); a wait for an event bounded by
    ``real_seconds`` is a real wait, woken by the event.
    """

    def __init__(self, at: datetime) -> None:
        self._at = _utc(at, "a FixedClock")
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._at

    __call__ = now

    def set(self, at: datetime) -> datetime:
        self._at = _utc(at, "a FixedClock")
        self._wake()
        return self._at

    def advance(self, **delta: float) -> datetime:
        self._at += timedelta(**delta)
        self._wake()
        return self._at

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds)  # nothing moves by itself: a wait is a real wait (woken by events)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        entry = (self._at + timedelta(seconds=seconds), asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting for the clock to move (a test can wait for a loop to rest)."""
        return len(self._sleepers)

    def _wake(self) -> None:
        for entry in [e for e in self._sleepers if e[0] <= self._at]:
            self._sleepers.remove(entry)
            if not entry[1].done():
                entry[1].set_result(None)


class SimulatedClock:
    """Time starting at ``start`` and running ``speed`` times faster than real time."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be above 0")
        self._start = _utc(start, "a SimulatedClock")
        self._real0 = time.monotonic()
        self.speed = float(speed)

    @property
    def start(self) -> datetime:
        """The instant it showed when it was made."""
        return self._start

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._real0) * self.speed)

    __call__ = now

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds) / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(seconds))


class CallableClock:
    """The time a plain ``Callable[[], datetime]`` gives (an older test's lambda); waits are real."""

    def __init__(self, read: Callable[[], datetime]) -> None:
        self._read = read

    def now(self) -> datetime:
        return self._read()

    __call__ = now

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FollowingClock:
    """``base``'s time moved by the offset of a time source (the meter's clock, SE §7.2).

    Until ``follow`` is called it shows ``base``'s time. Waits are ``base``'s: the offset is a
    constant shift, so a sleep of N seconds of this clock is N seconds of ``base``.
    """

    def __init__(self, base: Clock) -> None:
        self._base = base
        self._offset = timedelta(0)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self.followed = False  # whether a time source was ever followed (the self-test's clock check)

    @property
    def base(self) -> Clock:
        """The clock this one follows a time source from."""
        return self._base

    @property
    def offset(self) -> timedelta:
        """How far the time source is ahead of ``base`` (negative: behind)."""
        return self._offset

    def follow(self, source_now: datetime, tolerance: timedelta = timedelta(0)) -> timedelta:
        """Keep to a time source that reads ``source_now`` at this moment; returns the offset.

        ``source_now`` is compared with ``base``'s time to the second (a UTCTime has whole
        seconds); a difference within ``tolerance`` counts as none.
        """
        offset = _utc(source_now, "a time source") - self._base.now().replace(microsecond=0)
        before, self._offset = self._offset, offset if abs(offset) > tolerance else timedelta(0)
        self.followed = True
        if self._offset > before:  # forwards: the sleeps whose end it passed end now
            now = self.now()
            for entry in [e for e in self._sleepers if e[0] <= now]:
                self._sleepers.remove(entry)
                if not entry[1].done():
                    entry[1].set_result(None)
        return self._offset

    def now(self) -> datetime:
        return self._base.now() + self._offset

    __call__ = now

    def real_seconds(self, seconds: float) -> float:
        return self._base.real_seconds(seconds)

    async def sleep(self, seconds: float) -> None:
        """``seconds`` of ``base``'s time, or less when the time source jumps forwards past the end."""
        if seconds <= 0:
            await self._base.sleep(seconds)
            return
        entry = (self.now() + timedelta(seconds=seconds), asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        base = asyncio.ensure_future(self._base.sleep(seconds))
        try:
            await asyncio.wait((base, entry[1]), return_when=asyncio.FIRST_COMPLETED)
        finally:
            base.cancel()
            if entry in self._sleepers:
                self._sleepers.remove(entry)


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> bool:
    """Wait ``seconds`` of ``clock``'s time (less if it jumps forwards past them) or until ``wake`` is
    set, whichever comes first; True when ``wake`` is set. The caller clears ``wake`` after this
    returns and before it acts, so a wake-up set while it acts is not lost."""
    if wake.is_set():
        return True
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()
    return wake.is_set()


def as_clock(clock: Clock | Callable[[], datetime] | None) -> Clock:
    """``clock`` as a Clock: None is real time, a bare callable is read for "now" and waits are real."""
    if clock is None:
        return REAL
    if isinstance(clock, Clock):
        return clock
    return CallableClock(clock)


def _utc(at: datetime, who: str) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{who} needs an aware datetime")
    return at.astimezone(UTC)


REAL = RealClock()

"""The one clock the core and the simulator read: real time, a fixed instant, or time running faster.

Every component reads "now" through a ``Clock`` (aware UTC) and waits through it, so a test can
set the instant, pick a local time of day, or let simulated time run N times faster than real time
(a day of tariff periods, an event and a billing-cycle change in seconds). A clock is also
callable: ``clock()`` is ``clock.now()``, so it goes wherever a ``Callable[[], datetime]`` does.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


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
        await asyncio.sleep(max(0.0, seconds))


class FixedClock:
    """An instant that moves only when the test moves it (``advance``, ``set``)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    __call__ = now

    def set(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("a FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)
        return self._at

    def advance(self, **delta: float) -> datetime:
        self._at += timedelta(**delta)
        return self._at

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds)  # nothing moves by itself: a wait is a real wait (woken by events)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)  # time stands still: yield once, the test moves the clock


class SimulatedClock:
    """Time starting at ``start`` and running ``speed`` times faster than real time."""

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("a SimulatedClock needs an aware datetime")
        if speed <= 0:
            raise ValueError("speed must be above 0")
        self._start = start.astimezone(UTC)
        self._real0 = time.monotonic()
        self.speed = float(speed)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._real0) * self.speed)

    __call__ = now

    def real_seconds(self, seconds: float) -> float:
        return max(0.0, seconds) / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(seconds))


REAL = RealClock()

"""A running event leaves the event loop idle: the load control waits for its next boundary.

Before 0d72918 a live event's start, already behind it, made the wait 0, and the load control's
loop spun a whole core for as long as the event ran. Counted here in passes of its loop over a
thousand turns of the event loop, on a clock that stands still: no real duration is measured.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ems.clock import FixedClock
from ems.dr.events import LoadControl, LoadControlSettings
from ems.model import EventPhase

from .conftest import T0, make_event

TURNS = 1000


async def _passes_while_the_loop_turns(control: LoadControl) -> int:
    """How often the load control advanced while the event loop turned TURNS times."""
    passes = 0
    advance = control.advance

    async def counted(now=None) -> None:
        nonlocal passes
        passes += 1
        await advance(now)

    control.advance = counted  # the loop calls self.advance: this instance's, counted
    for _ in range(TURNS):
        await asyncio.sleep(0)
    control.advance = advance
    return passes


async def test_while_an_event_runs_the_load_control_loop_rests_instead_of_spinning(hub):
    clock = FixedClock(T0)
    control = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await control.start()
    try:
        hub.bus.publish(make_event(start=T0 - timedelta(minutes=10), duration_min=60))  # running already
        await control.advance()
        assert control.views()[0].phase is EventPhase.ACTIVE

        passes = await _passes_while_the_loop_turns(control)

        assert passes <= 3, f"the load control advanced {passes} times in {TURNS} turns of the event loop"
        assert control.views()[0].phase is EventPhase.ACTIVE
    finally:
        await control.stop()


async def test_with_no_event_the_load_control_loop_rests_too(hub):
    control = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=FixedClock(T0))
    await control.start()
    try:
        assert await _passes_while_the_loop_turns(control) <= 1
    finally:
        await control.stop()

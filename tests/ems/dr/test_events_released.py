"""An appliance that runs for years does not keep every DR event it ever heard in memory.

The load control picks up, at start, only events that ended within RESTORE_HISTORY (ems.dr.events);
before this fix a running one kept every event for good: every control cycle's snapshot and every
'events' push to every open page carried them all, growing by each event (bench/load.py). Now an
event that ended longer ago than that is let go while running too, as a restart would. The store
keeps its history. Counted in the events it holds on a clock the test moves; no duration is measured.
"""

from __future__ import annotations

from datetime import timedelta

from ems.clock import FixedClock
from ems.dr.events import RESTORE_HISTORY, LoadControl, LoadControlSettings
from ems.model import DeviceClass, EventPhase

from .conftest import T0, make_event


async def test_events_long_over_are_let_go_while_the_appliance_runs(hub):
    clock = FixedClock(T0)
    control = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock,
                          device_classes=lambda: int(DeviceClass.HVAC))
    await control.start()
    try:
        hub.bus.publish(make_event(1, start=T0, duration_min=30))
        await control.advance()
        clock.advance(hours=1)
        await control.advance()
        assert control.views()[0].phase is EventPhase.ENDED  # over, and still shown for a while

        clock.advance(seconds=(RESTORE_HISTORY - timedelta(hours=1)).total_seconds())
        hub.bus.publish(make_event(2, start=clock(), duration_min=30))  # a later one, at the edge
        await control.advance()
        assert [v.event.issuer_event_id for v in control.views()] == [1, 2]  # ended under a day ago

        clock.advance(hours=1)
        await control.advance()

        assert [v.event.issuer_event_id for v in control.views()] == [2]
        assert control.run("main", 1) is None
        assert list(control.runs) == [("main", 2)]
    finally:
        await control.stop()

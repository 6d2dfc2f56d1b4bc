"""The dispatcher's record (``Dispatcher.record``): frozen, current, and not rebuilt while nothing changed.

The cycle reads it three times a cycle (snapshot, achievements, the load control's reports) and
the pages read it at every request; with hundreds of devices held, rebuilding every frozen copy
each time held the loop for milliseconds (issue 12).
"""

from __future__ import annotations

from ems.model import ControlledDevice, LoadHistory

from .conftest import make_event
from .test_cycle import PUMP, THERMOSTAT, add_devices, cycle_at, start_control


async def test_the_record_is_handed_out_again_while_nothing_changed(hub, clock) -> None:
    _registry, _lc, dispatcher, cycle, port, stop = await start_control(hub, clock)
    try:
        add_devices(hub, port, clock)
        hub.bus.publish(make_event(cooling_offset_c=2.0))
        clock.advance(minutes=10)
        await cycle_at(cycle)
        held, history = dispatcher.record()
        assert set(held) == {THERMOSTAT, PUMP}
        assert isinstance(held[PUMP], ControlledDevice) and held[PUMP].sent_on is False

        clock.advance(minutes=1)
        await cycle_at(cycle)  # the same decisions: nothing sent, nothing changed
        again, history_again = dispatcher.record()
        assert again is held
        assert again[PUMP] is held[PUMP]
        assert history_again is history
    finally:
        await stop()


async def test_the_record_follows_what_was_sent_and_what_was_put_back(hub, clock) -> None:
    _registry, lc, dispatcher, cycle, port, stop = await start_control(hub, clock)
    try:
        add_devices(hub, port, clock)
        hub.bus.publish(make_event(cooling_offset_c=2.0))
        clock.advance(minutes=10)
        await cycle_at(cycle)
        held, history = dispatcher.record()
        thermostat_before = held[THERMOSTAT]
        assert history[PUMP] == LoadHistory(off_since=clock.now)

        await lc.set_participation("main", 1, opted_out=True, device_id=PUMP)
        await cycle_at(cycle)  # the pump is put back; the thermostat stays as it was
        now_held, now_history = dispatcher.record()
        assert set(now_held) == {THERMOSTAT}
        assert now_held[THERMOSTAT] is thermostat_before
        assert now_history[PUMP].on_since == clock.now and now_history[PUMP].off_since is None
        assert PUMP in held  # a record handed out earlier is a frozen copy: it does not change under its reader

        await lc.set_participation("main", 1, opted_out=True)
        await cycle_at(cycle)
        assert dict(dispatcher.record()[0]) == {}
    finally:
        await stop()

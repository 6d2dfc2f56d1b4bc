"""An event relayed to a load controller lives in the store: a cancel or an opt-out after a restart
still reaches the device (issue 11, finding 5).

Before ``relayed_events`` the dispatcher kept the relayed event only in memory. After a restart it
knew the load controller was held but not by what: when the event was cancelled or the customer
opted out before the cycle had relayed it again (the home network still coming up, the re-relay
unanswered), the dispatcher found nothing to put back and forgot the device, which shed on until
the event's end.
"""

from __future__ import annotations

from ems.model import DeviceClass, DeviceInfo, DeviceKind, EventCancellation

from .conftest import make_event
from .test_cycle import add_devices, cycle_at, start_control

SPA = "00:00:00:00:00:00:00:03"


def add_spa(hub, port) -> None:
    hub.bus.publish(DeviceInfo(SPA, "Spa heater", DeviceKind.LOAD_CONTROLLER, DeviceClass.HVAC, nominal_kw=2.0))
    hub.device_ports[SPA] = port


async def _relayed_then_restarted(hub, clock):
    """The event relayed to the spa heater, then the appliance gone and back with the spa unreachable."""
    _registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock)
    add_devices(hub, port, clock)
    add_spa(hub, port)
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    assert ("relay", SPA, 1) in port.calls
    await stop()  # killed mid-event
    clock.advance(seconds=20)
    registry, lc, dispatcher, cycle, port, stop = await start_control(hub, clock)
    port.silent.add(SPA)  # the home network is still coming up: the re-relay goes unanswered
    add_devices(hub, port, clock)
    add_spa(hub, port)
    await cycle_at(cycle)
    await cycle.settled()  # the cycles the devices' arrival asked for, too
    assert SPA in dispatcher.controlled
    port.silent.clear()
    port.calls.clear()
    return lc, cycle, port, stop


async def test_a_cancel_just_after_a_restart_reaches_the_load_controller(hub, clock):
    lc, cycle, port, stop = await _relayed_then_restarted(hub, clock)
    try:
        clock.advance(seconds=5)  # within the 30 s the dispatcher waits before trying the spa again
        hub.bus.publish(EventCancellation("main", 1, DeviceClass.HVAC, 0, clock.now, False, clock.now))
        await lc.advance()
        await cycle_at(cycle)
        assert ("cancel", SPA, 1) in port.calls
    finally:
        await stop()


async def test_an_opt_out_just_after_a_restart_reaches_the_load_controller(hub, clock):
    lc, cycle, port, stop = await _relayed_then_restarted(hub, clock)
    try:
        clock.advance(seconds=5)
        await lc.set_participation("main", 1, opted_out=True)
        await cycle_at(cycle)
        assert ("cancel", SPA, 1) in port.calls
    finally:
        await stop()


async def test_a_relayed_event_that_ran_its_course_is_forgotten_without_a_cancel(hub, clock):
    lc, cycle, port, stop = await _relayed_then_restarted(hub, clock)
    try:
        clock.advance(minutes=61)
        await lc.advance()
        await cycle_at(cycle)
        assert [c for c in port.calls if c[1] == SPA] == []
        rows = await hub.store.read("read", _relayed_rows)
        assert rows == []
    finally:
        await stop()


async def _relayed_rows(conn):
    from sqlalchemy import select

    from ems.store import tables

    return list(await conn.execute(select(tables.relayed_events)))


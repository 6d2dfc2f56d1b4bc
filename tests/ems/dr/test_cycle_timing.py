"""When the control cycle runs: at every change of what should be controlled, and on a tick of the
hub's clock (issue 11, finding 5: the spa heater shed on 1 min 49 s after a utility cancel).

On the hub's own clock (a ``FixedClock`` the test moves; nothing here waits for real time): the
tick is ``cycle_tick_s`` of the hub's time, not of real time (on a simulated clock running 30x it
was 30 x 15 s of the appliance's time), and a cancel heard while the load control was busy
advancing (here: as its STARTED report went out) is not lost until the next tick: the device is put
back within the cycle the cancel causes, without the clock moving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from ems.clock import FixedClock
from ems.dr.cycle import ControlCycle
from ems.dr.devices import DeviceRegistry
from ems.dr.dispatch import Dispatcher
from ems.dr.events import LoadControl, LoadControlSettings
from ems.hub import Hub
from ems.model import (
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    EventCancellation,
    EventStatus,
    EventStatusReport,
)
from tests.hubs import started_hub

from .conftest import T0, make_event
from .test_cycle import PUMP, EventFollower, FakePort, add_devices

TICK_S = 15.0


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``predicate`` holds (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - the predicate is the code under test's state
            await asyncio.sleep(0.005)
    assert predicate(), what


class Control:
    def __init__(self, hub: Hub, clock: FixedClock) -> None:
        self.hub, self.clock = hub, clock
        self.registry = DeviceRegistry(hub)
        self.dispatcher = Dispatcher(hub, self.registry, clock=clock)
        self.lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock,
                              dispatch_record=lambda: self.dispatcher.record()[0])
        self.cycle = ControlCycle(hub, self.registry, self.lc, self.dispatcher, EventFollower(), clock=clock,
                                  tick_s=TICK_S)
        self.port = FakePort(hub)

    async def start(self) -> None:
        await self.registry.start()
        await self.lc.start()
        await self.dispatcher.start()
        await self.cycle.start()

    async def stop(self) -> None:
        await self.cycle.stop()
        await self.lc.stop()
        await self.registry.stop()


@pytest.fixture
def fixed() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
async def control(tmp_path: Path, fixed: FixedClock) -> AsyncIterator[Control]:
    async with started_hub(tmp_path, clock=fixed) as hub:
        control = Control(hub, fixed)
        await control.start()
        add_devices(hub, control.port, _Now(fixed))
        try:
            yield control
        finally:
            await control.stop()


class _Now:
    """``add_devices`` reads ``clock.now``."""

    def __init__(self, clock: FixedClock) -> None:
        self.now = clock()


async def test_the_tick_is_the_hubs_time_not_real_time(control: Control, fixed: FixedClock) -> None:
    await control.cycle.settled()
    before = control.cycle.cycles
    fixed.advance(seconds=TICK_S)  # fifteen seconds of the hub's time; no real time needs to pass
    await until(lambda: control.cycle.cycles > before, "a tick after 15 s of the hub's clock")


async def test_a_cancel_heard_while_the_load_control_advances_restores_the_device_at_once(
    control: Control, fixed: FixedClock
) -> None:
    """The cancel of event 1 arrives while the load control writes event 2's end (another meter's):
    the load control used to clear its wake-up after that and sleep up to a minute, and the cycle
    (woken by event 2's end) ran on event 1 as still active, so the pump stayed off until a tick."""
    hub = control.hub

    def cancel_when_two_ends(report: EventStatusReport) -> None:
        if report.issuer_event_id == 2 and report.status is EventStatus.COMPLETED:
            hub.bus.publish(EventCancellation("main", 1, DeviceClass.HVAC, 0, fixed(), False, fixed()))

    hub.bus.listen(EventStatusReport, cancel_when_two_ends)
    hub.bus.publish(make_event(1, start=T0 + timedelta(seconds=1), cooling_offset_c=2.0))
    hub.bus.publish(replace(make_event(2, start=T0 + timedelta(seconds=1), duration_min=1), meter_id="other"))
    fixed.advance(seconds=1)  # both start: the pump goes off
    await until(lambda: ("switch", PUMP, False) in control.port.calls, "the pump off for the events")
    fixed.advance(minutes=1)  # event 2 ends; event 1 is cancelled meanwhile
    await until(lambda: ("switch", PUMP, True) in control.port.calls,
                "the pump back on after the cancel, with the clock standing still")
    assert fixed() == T0 + timedelta(minutes=1, seconds=1)  # within the cycles it caused, not at a tick
    assert control.lc.view("main", 1).outcome is EventStatus.CANCELLED


async def test_an_opt_out_restores_the_devices_and_cancels_the_relayed_event_at_once(
    control: Control, fixed: FixedClock
) -> None:
    hub = control.hub
    spa = "00:00:00:00:00:00:00:03"
    hub.bus.publish(DeviceInfo(spa, "Spa heater", DeviceKind.LOAD_CONTROLLER, DeviceClass.HVAC, nominal_kw=2.0))
    hub.device_ports[spa] = control.port
    hub.bus.publish(make_event(1, start=T0 + timedelta(seconds=1), cooling_offset_c=2.0))
    fixed.advance(seconds=1)
    await until(lambda: {("switch", PUMP, False), ("relay", spa, 1)} <= set(control.port.calls), "the event applied")
    await control.lc.set_participation("main", 1, opted_out=True)  # as the web's Opt out does
    await until(lambda: {("switch", PUMP, True), ("cancel", spa, 1)} <= set(control.port.calls),
                "the pump back on and the spa's event cancelled, with the clock standing still")
    assert fixed() == T0 + timedelta(seconds=1)

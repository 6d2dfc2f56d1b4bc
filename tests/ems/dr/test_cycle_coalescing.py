"""Routine triggers are coalesced, urgent ones are not (issue 12: a cycle ran on every demand report).

A demand or device report within ``routine_gap_s`` of the hub's time after the last cycle began
waits for the gap to pass, and any number of them make one cycle; an event starting, an opt-out or
an override runs a cycle at once (and takes the waiting reports along), so the reaction to the
utility or the customer is never held back by the gap. The hub runs on simulated time at real
speed with a gap of an hour: nothing here waits for the gap to pass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from ems.clock import FixedClock, SimulatedClock
from ems.dr.cycle import ControlCycle
from ems.dr.devices import DeviceRegistry
from ems.dr.dispatch import Dispatcher
from ems.dr.events import LoadControl, LoadControlSettings
from ems.hub import Hub
from ems.model import MeterReading
from tests.hubs import started_hub

from .conftest import T0, make_event
from .test_cycle import PUMP, EventFollower, FakePort, add_devices

GAP_S = 3600.0


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``predicate`` holds (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - the predicate is the code under test's state
            await asyncio.sleep(0.005)
    assert predicate(), what


async def a_few_turns_of_the_loop() -> None:
    for _ in range(20):
        await asyncio.sleep(0.005)


@dataclass
class Control:
    hub: Hub
    lc: LoadControl
    cycle: ControlCycle
    port: FakePort


@contextlib.asynccontextmanager
async def _control(tmp_path: Path, clock: SimulatedClock | FixedClock) -> AsyncIterator[Control]:
    async with started_hub(tmp_path, clock=clock) as hub:
        registry = DeviceRegistry(hub)
        dispatcher = Dispatcher(hub, registry, clock=clock)
        lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock,
                         dispatch_record=lambda: dispatcher.record()[0])
        cycle = ControlCycle(hub, registry, lc, dispatcher, EventFollower(), clock=clock, tick_s=GAP_S * 2,
                             routine_gap_s=GAP_S)
        port = FakePort(hub)
        await registry.start()
        await lc.start()
        await dispatcher.start()
        add_devices(hub, port, type("Now", (), {"now": clock()})())
        await cycle.start()
        try:
            yield Control(hub, lc, cycle, port)
        finally:
            await cycle.stop()
            await lc.stop()
            await registry.stop()


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[Control]:
    async with _control(tmp_path, SimulatedClock(T0, 1.0)) as control:
        yield control


def demand(hub: Hub, kw: float) -> None:
    hub.bus.publish(MeterReading("main", hub.clock(), demand_kw=kw))


async def test_a_burst_of_demand_reports_waits_for_the_gap_as_one_cycle(control: Control) -> None:
    await until(lambda: control.cycle.cycles >= 1, "the first cycle at start")
    before = control.cycle.cycles
    for kw in (1.0, 1.5, 2.0, 2.5, 3.0):
        demand(control.hub, kw)
    await a_few_turns_of_the_loop()
    assert control.cycle.cycles == before  # within the gap after the start's cycle: they wait


async def test_an_event_starting_runs_at_once_and_takes_the_waiting_reports_along(control: Control) -> None:
    await until(lambda: control.cycle.cycles >= 1, "the first cycle at start")
    before = control.cycle.cycles
    demand(control.hub, 4.0)
    demand(control.hub, 4.5)
    control.hub.bus.publish(make_event(start=T0, cooling_offset_c=2.0))  # already started
    await until(lambda: ("switch", PUMP, False) in control.port.calls, "the pump off for the event, in the gap")
    await control.cycle.settled()
    last = control.cycle.last
    assert last is not None and last.snapshot.demand_kw == 4.5  # the waiting reports were in that cycle
    assert control.cycle.cycles <= before + 2  # the event's announcement and start, not one per report


async def test_an_opt_out_in_the_gap_puts_the_devices_back_at_once(control: Control) -> None:
    control.hub.bus.publish(make_event(start=T0, cooling_offset_c=2.0))
    await until(lambda: ("switch", PUMP, False) in control.port.calls, "the pump off for the event")
    demand(control.hub, 3.0)  # a routine trigger waiting for the gap
    await control.lc.set_participation("main", 1, opted_out=True)
    await until(lambda: ("switch", PUMP, True) in control.port.calls, "the pump back on, without the gap passing")


async def test_on_a_test_clock_that_stands_still_nothing_waits_for_a_gap(tmp_path: Path) -> None:
    async with _control(tmp_path, FixedClock(T0)) as control:
        cycle = control.cycle
        await until(lambda: cycle.cycles >= 1, "the first cycle at start")
        before = cycle.cycles
        demand(control.hub, 2.0)
        await until(lambda: cycle.cycles > before, "a cycle for the report: no gap on a fixed clock")
        await cycle.settled()
        assert cycle.last is not None and cycle.last.snapshot.at == T0 + timedelta(0)

"""Issue 11 finding 1 on the wire: nothing is scaled before the meter's formatting is read.

The simulated meter answers the Read Attributes of its Multiplier and Divisor late (a VirtualNode
hold); in that gap it sends a Report Attributes of CurrentSummationDelivered and
InstantaneousDemand. The appliance must never show or store those raw values as kWh and kW.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import tests.e2e.conftest as e2e
from ems.model import MeterReading
from ems.store import tables
from integrations.zigbee.se.clusters import Metering
from integrations.zigbee.virtual_node import ReadHold

# The simulated meter counts in Wh (divisor 1000): a raw value taken as kWh is 1000x too large.
LIMIT = 2.0  # a value more than twice what the meter holds is an unscaled one


def _hold_formatting(monkeypatch: pytest.MonkeyPatch) -> list[ReadHold]:
    """Every simulated meter made from now on answers the formatting read only when released."""
    holds: list[ReadHold] = []
    real = e2e.SimulatedHan

    def han(*args: Any, **kwargs: Any) -> Any:
        simulator = real(*args, **kwargs)
        holds.append(simulator.node.hold_reads(1, Metering, ["multiplier", "divisor"]))
        return simulator

    monkeypatch.setattr(e2e, "SimulatedHan", han)
    return holds


async def _report_in_the_gap(app: e2e.Appliance, hold: ReadHold) -> list[MeterReading]:
    """Report while the formatting read waits; then answer it. Returns every reading published."""
    readings: list[MeterReading] = []
    app.hub.bus.listen(MeterReading, readings.append)
    node = app.simulator.node
    await app.wait_until(hold.requested.is_set, what="the appliance to read the meter's formatting")
    # The report goes out first: frames reach the appliance in order, so it is heard in the gap
    # (before the late Read Attributes response, which the release sends).
    await node.report_attributes(1, Metering, ["current_summ_delivered", "instantaneous_demand"])
    hold.release()
    await app.online()
    await app.wait_until(lambda: any(r.summation_delivered_kwh is not None for r in readings),
                         what="the held report to be published")
    return readings


async def _assert_all_scaled(app: e2e.Appliance, readings: list[MeterReading]) -> None:
    sim = app.simulator.meter
    top_kwh = max(sim.delivered_kwh, sim.scenario.meter["initial_delivered_kwh"]) * LIMIT
    for reading in readings:
        assert reading.summation_delivered_kwh is None or reading.summation_delivered_kwh < top_kwh, reading
        assert reading.demand_kw is None or abs(reading.demand_kw) < 100, reading
    shown = await app.meter()
    assert shown["summation_delivered_kwh"] < top_kwh
    assert abs(shown["summation_delivered_kwh"] - sim.delivered_kwh) < 1.0
    assert abs(shown["demand_kw"]) < 100
    state = app.hub.state.meters["main"]
    assert state.value("summation_delivered_kwh") < top_kwh  # type: ignore[operator]
    await app.hub.store.flush()

    async def stored(conn: Any) -> tuple[list[Any], list[Any]]:
        registers = (await conn.execute(select(tables.register_readings.c.summation_delivered_kwh))).all()
        demand = (await conn.execute(select(tables.demand_samples.c.demand_kw))).all()
        return [r[0] for r in registers], [d[0] for d in demand]

    registers, demand = await app.hub.store.read("read every stored reading", stored)
    assert registers and all(value is None or value < top_kwh for value in registers), max(registers)
    assert demand and all(abs(value) < 100 for value in demand), max(demand, key=abs)


@pytest.fixture
async def late_formatting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    holds = _hold_formatting(monkeypatch)
    async with e2e.running_appliance(tmp_path) as app:
        yield app, holds[-1]


async def test_a_report_before_the_formatting_is_read_is_scaled_once_it_is(late_formatting):
    app, hold = late_formatting
    readings = await _report_in_the_gap(app, hold)
    await _assert_all_scaled(app, readings)


# Without DR events: an event heard again after a restart is another matter (see the report).
NO_EVENTS = {**e2e.FAST_SCENARIO, "events": []}


async def test_a_restart_never_shows_an_unscaled_value(tmp_path, monkeypatch):
    async with e2e.running_appliance(tmp_path, NO_EVENTS) as first:
        await first.online()
        delivered = (await first.meter())["summation_delivered_kwh"]
    holds = _hold_formatting(monkeypatch)
    async with e2e.running_appliance(tmp_path, NO_EVENTS) as again:
        # What the first run stored is shown at once, scaled.
        assert abs((await again.meter())["summation_delivered_kwh"] - delivered) < 1.0
        readings = await _report_in_the_gap(again, holds[-1])
        await _assert_all_scaled(again, readings)


async def test_a_meter_that_comes_back_has_its_formatting_read_again(tmp_path, monkeypatch):
    holds = _hold_formatting(monkeypatch)
    async with e2e.running_appliance(tmp_path) as app:
        hold = holds[-1]
        hold.release()
        await app.online()
        node = app.simulator.node
        # The meter keeps reporting (its reporting stays configured) while the link is down and up again.
        again = node.hold_reads(1, Metering, ["multiplier", "divisor"])
        await app.simulator.han.drop_link()
        await app.wait_until(lambda: app.hub.state.meters["main"].link.value == "offline", what="offline")
        readings = await _report_in_the_gap(app, again)
        await _assert_all_scaled(app, readings)

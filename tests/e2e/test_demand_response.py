"""Demand response end to end (C6 3.3): the utility's event reaches the meter, the EMS moves the home's
devices over their own Zigbee network as the customer's rules say, the shed load shows at the meter,
the customer takes a device out, and when the utility cancels every device is put back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ems.model import EventStatus
from tests.e2e.conftest import (
    HOME_CONFIG,
    HOME_IEEE,
    HOME_RULES,
    HOME_SCENARIO,
    Appliance,
    running_appliance,
)

CANCEL_AT = 9.0  # seconds after the start: the utility cancels event 5101
SCENARIO = {**HOME_SCENARIO, "cancellations": [{"at": CANCEL_AT, "id": 5101, "device_class": 0x0019}]}


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with _home(tmp_path, SCENARIO) as running:
        yield running


@pytest.fixture
async def home_not_cancelled(tmp_path: Path) -> AsyncIterator[Appliance]:
    """The same home and event, which the utility does not cancel (a test that takes longer than
    CANCEL_AT on a busy machine must not find the event over)."""
    async with _home(tmp_path, HOME_SCENARIO) as running:
        yield running


@contextlib.asynccontextmanager
async def _home(tmp_path: Path, scenario: dict[str, Any]) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path, scenario, config_text=HOME_CONFIG, rules_text=HOME_RULES) as running:
        await running.online()
        await running.wait_until(lambda: len(running.hub.control.registry.devices) == 3
                                 and all(d.reading is not None for d in running.hub.control.registry.devices.values()),
                                 timeout_s=15, what="the three home devices set up")
        yield running


def _sim(appliance: Appliance, name: str) -> Any:
    return appliance.simulator.home.device(name)



async def test_an_event_moves_the_devices_and_the_shed_load_shows_at_the_meter(home: Appliance) -> None:
    sim = home.simulator
    thermostat, pump, spa = _sim(home, "Living room"), _sim(home, "Pool pump"), _sim(home, "Spa heater")
    before_kw = sim.home.load_kw
    assert pump.on and thermostat.logic.cooling_setpoint_c == 24

    await home.wait_until(lambda: not pump.on and spa.shedding and thermostat.logic.cooling_setpoint_c == 26,
                          timeout_s=15, what="the event applied to all three devices")

    assert sim.meter.extra_kw <= before_kw - 3.5 + 0.01  # the pump's 1.5 kW and the spa's 2.0 kW are shed
    await home.wait_until(lambda: EventStatus.STARTED in _statuses_now(home), timeout_s=10, what="STARTED at the meter")


def _statuses_now(appliance: Appliance) -> list[int]:
    return [int(f.fields["event_status"]) for f in appliance.simulator.node.log
            if f.command == "report_event_status" and f.fields["issuer_event_id"] == 5101]


async def test_the_customer_takes_the_pump_out_and_it_runs_again(home: Appliance) -> None:
    pump = _sim(home, "Pool pump")
    await home.wait_until(lambda: not pump.on, timeout_s=15, what="the pump shed")
    path = f"/api/v1/events/main/5101/devices/{HOME_IEEE['pump']}/opt-out"
    async with home.http.post(home.url + path) as response:
        assert response.status == 200, await response.text()
    await home.wait_until(lambda: pump.on, timeout_s=10, what="the pump back on")
    assert _sim(home, "Spa heater").shedding  # the other devices stay in the event


async def test_a_setpoint_changed_by_hand_is_the_customers_override(home_not_cancelled: Appliance) -> None:
    home = home_not_cancelled
    thermostat = _sim(home, "Living room")
    await home.wait_until(lambda: thermostat.logic.cooling_setpoint_c == 26, timeout_s=15, what="the offset applied")
    thermostat.set_by_hand(cooling_c=23)
    await home.wait_until(
        lambda: HOME_IEEE["thermostat"] in home.hub.control.load_control.run("main", 5101).excluded,
        timeout_s=15, what="the thermostat taken out of the event")
    events = (await home.get("/api/v1/events"))["events"]
    assert [d["name"] for d in events[0]["excluded_devices"]] == ["Living room"]
    assert thermostat.logic.cooling_setpoint_c == 23  # the customer's choice stays


async def test_when_the_utility_cancels_every_device_is_put_back(home: Appliance) -> None:
    thermostat, pump, spa = _sim(home, "Living room"), _sim(home, "Pool pump"), _sim(home, "Spa heater")
    await home.wait_until(lambda: not pump.on, timeout_s=15, what="the event applied")
    await home.wait_until(lambda: EventStatus.CANCELLED in _statuses_now(home), timeout_s=CANCEL_AT + 10,
                          what="CANCELLED reported to the meter")
    await home.wait_until(lambda: pump.on and not spa.shedding and thermostat.logic.cooling_setpoint_c == 24,
                          timeout_s=10, what="every device put back")
    assert home.hub.control.dispatcher.controlled == {}
    actions = (await home.get("/api/v1/events/main/5101/actions"))["actions"]
    assert {a["device"] for a in actions} == {"Living room", "Pool pump", "Spa heater"}

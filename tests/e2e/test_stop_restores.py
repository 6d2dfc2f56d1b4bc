"""Stopping the appliance (SIGTERM, as systemd stops it) during an event puts the home's devices back
first, while the home network is still up, and says so; the next start has nothing left to put back."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ems.cli import compose, read_config
from integrations.simulator import SimulatedHan, scenario_from_dict
from tests.e2e.conftest import HOME_CONFIG, HOME_RULES, HOME_SCENARIO, Appliance, write_config

# The event runs long enough that the stop falls inside it; the spa heater is not in it (its relayed
# event would stay with it, ended by the device itself), so every device in it is one the EMS must put back.
SCENARIO = {**HOME_SCENARIO, "events": [
    {"at": 1.0, "id": 5201, "starts_in": "2s", "duration_min": 30, "criticality": 3,
     "device_class": 0x0009, "cooling_offset_c": 2.0},
]}


async def _started(tmp_path: Path) -> Appliance:
    folder = write_config(tmp_path / "config", HOME_CONFIG)
    (folder / "rules.yaml").write_text(HOME_RULES)
    simulator = SimulatedHan(scenario_from_dict(SCENARIO))
    hub, web = compose(read_config(folder), tmp_path / "data", simulator=simulator)
    await hub.start()
    return Appliance(hub, web, simulator, None, "")  # type: ignore[arg-type]


def _controlled_rows(data_dir: Path) -> list[Any]:
    with sqlite3.connect(data_dir / "ems.db") as db:
        return db.execute("SELECT device_id FROM controlled_devices").fetchall()


async def test_stopping_during_an_event_puts_every_device_back_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    home = await _started(tmp_path)
    stopped = False
    try:
        thermostat, pump = home.simulator.home.device("Living room"), home.simulator.home.device("Pool pump")
        await home.wait_until(lambda: not pump.on and thermostat.logic.cooling_setpoint_c == 26,
                              timeout_s=30, what="the event applied (pump off, thermostat +2 °C)")
        await home.hub.stop()  # what SIGTERM does (ems.cli)
        stopped = True
        assert pump.on
        assert thermostat.setpoints_centi[0] == 2400  # as the thermostat keeps it (its logic reads it at its next tick)
        assert "Put 2 device(s) back before stopping: Living room, Pool pump" in caplog.text
        assert _controlled_rows(tmp_path / "data") == []  # nothing left for the next start to put back
    finally:
        if not stopped:
            await home.hub.stop()


async def test_a_device_that_does_not_answer_is_named_and_put_back_after_the_next_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    home = await _started(tmp_path)
    stopped = False
    try:
        thermostat, pump = home.simulator.home.device("Living room"), home.simulator.home.device("Pool pump")
        await home.wait_until(lambda: not pump.on and thermostat.logic.cooling_setpoint_c == 26,
                              timeout_s=30, what="the event applied")
        pump.silent = True
        await home.hub.stop()  # bounded: the silent pump does not hold the stop up
        stopped = True
        assert thermostat.setpoints_centi[0] == 2400  # as the thermostat keeps it (its logic reads it at its next tick)
        assert not pump.on
        assert "Put 1 device(s) back before stopping: Living room" in caplog.text
        assert "Could not put Pool pump back before stopping" in caplog.text
        assert [r[0] for r in _controlled_rows(tmp_path / "data")] == [pump.ieee]  # kept for the next start
    finally:
        if not stopped:
            await home.hub.stop()

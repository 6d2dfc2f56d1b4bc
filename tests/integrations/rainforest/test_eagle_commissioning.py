"""The EAGLE set up from the Commissioning page's meter setup (web/meter_setup.py), as a customer does
it: the EAGLE kind offered with its fields, a test read of the simulated EAGLE over real HTTP, then
saved and started, its figures arriving on the bus; the Install Code never shown back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from ems.accounts import Accounts, Role
from ems.cli import METER_SOURCE_MODULES, _SourceStarter
from ems.clock import FixedClock
from ems.hub import Hub
from ems.model import MeterReading
from integrations.rainforest import eagle
from integrations.simulator.eagle import SimulatedEagle, simulated_meter
from integrations.simulator.scenario import load_scenario
from tests.hubs import new_hub
from web.app import create_app
from web.auth import ACCOUNTS

REPO = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedEagle]:
    clock = FixedClock(T0)
    simulated = SimulatedEagle(simulated_meter(load_scenario(REPO / "config" / "scenarios" / "day.yaml"), clock),
                               clock=clock)
    await simulated.start()
    yield simulated
    await simulated.stop()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    hub = new_hub(tmp_path, "site: {name: Test home, timezone: America/Los_Angeles}\n", clock=FixedClock(T0))
    await hub.store.open()
    assert METER_SOURCE_MODULES["eagle"] == "integrations.rainforest.eagle"  # what cli registers at start
    hub.meter_source_kinds["eagle"] = eagle.source_kind(hub)
    hub.meter_sources.starters["eagle"] = _SourceStarter(hub, "eagle", eagle)
    yield hub
    await hub.meter_sources.close()
    await hub.store.close()


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    app = create_app(hub)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    client = await aiohttp_client(app)
    await app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    page = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text()).group(1)
    await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": PASSWORD},
                      allow_redirects=False)
    page = await client.get("/commissioning/meter")
    client.csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text()).group(1)
    return client


async def test_the_eagle_is_tested_then_saved_and_read(client: Any, hub: Hub, sim: SimulatedEagle) -> None:
    headers = {"X-CSRF-Token": client.csrf}
    kinds = await (await client.get("/api/v1/commissioning/meter-sources")).json()
    (kind,) = [k for k in kinds["kinds"] if k["kind"] == "eagle"]
    assert [f["name"] for f in kind["fields"]] == ["host", "cloud_id", "install_code", "poll_interval_s"]
    wrong = await client.post("/api/v1/commissioning/meter-sources/eagle/probe", headers=headers, json={
        "host": sim.host, "cloud_id": sim.cloud_id, "install_code": "ffffffffffffffff"})
    assert not (await wrong.json())["ok"]
    section = {"host": sim.host, "cloud_id": sim.cloud_id, "install_code": sim.install_code,
               "request_gap_s": 0}
    probe = await client.post("/api/v1/commissioning/meter-sources/eagle/probe", headers=headers, json=section)
    body = await probe.json()
    assert probe.status == 200 and body["ok"], body
    assert body["demand_kw"] == pytest.approx(sim.meter.demand_kw, abs=1e-3)
    readings: list[MeterReading] = []
    hub.bus.listen(MeterReading, readings.append)
    saved = await client.post("/api/v1/commissioning/meter-sources/eagle", headers=headers, json=section)
    assert saved.status == 201, await saved.text()
    kind_running, link = hub.meter_sources.running["main"]
    assert kind_running == "eagle"
    async with asyncio.timeout(10):  # the link's first poll, on its own task
        while not readings:  # noqa: ASYNC110 - a bus listener fills it
            await asyncio.sleep(0.01)
    assert readings and readings[0].summation_delivered_kwh == pytest.approx(sim.meter.delivered_kwh, abs=1e-6)
    listed = await (await client.get("/api/v1/commissioning/meter-sources")).json()
    assert sim.install_code not in str(listed)

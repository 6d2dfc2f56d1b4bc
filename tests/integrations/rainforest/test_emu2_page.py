"""The Commissioning page's meter setup (/commissioning/meter) with the real EMU-2 kind and the
simulated EMU-2 on a pty: Find lists its port, Test shows its figures, Save starts the link."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from ems.accounts import Accounts, Role
from ems.cli import _SourceStarter
from ems.clock import FixedClock
from ems.model import LinkState, MeterLinkChanged
from integrations.rainforest import emu2
from integrations.simulator import load_scenario
from integrations.simulator.emu2 import METER_MAC, SimulatedEmu2, running
from tests.hubs import started_hub
from web.app import create_app
from web.auth import ACCOUNTS

SCENARIO = Path(__file__).resolve().parents[3] / "config" / "scenarios" / "demo.yaml"
NOON = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
async def setup(tmp_path: Path, aiohttp_client: Any):
    clock = FixedClock(NOON)
    async with running(SimulatedEmu2(load_scenario(SCENARIO), clock)) as bridge, \
            started_hub(tmp_path, clock=clock) as hub:
        hub.meter_source_kinds["emu2"] = emu2.Emu2Kind([bridge.path], hub.clock)
        hub.meter_sources.starters["emu2"] = _SourceStarter(hub, "emu2", emu2)
        app = create_app(hub)
        app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        client = await aiohttp_client(app)
        await app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
        page = await client.get("/login")
        await client.post("/login", data={"csrf_token": _csrf(await page.text()), "username": "owner",
                                          "password": PASSWORD}, allow_redirects=False)
        try:
            yield client, hub, bridge
        finally:
            await hub.meter_sources.close()


async def test_find_test_and_save_an_emu2(setup):
    client, hub, bridge = setup
    csrf = _csrf(await (await client.get("/commissioning/meter?kind=emu2")).text())
    found = unescape(await (await client.post("/commissioning/meter", data={
        "csrf_token": csrf, "kind": "emu2", "action": "find"})).text())
    assert bridge.path in found
    form = {"csrf_token": csrf, "kind": "emu2", "meter_id": "main", "port": bridge.path}
    tested = unescape(await (await client.post("/commissioning/meter", data={**form, "action": "test"})).text())
    assert "The test read your meter" in tested
    assert METER_MAC in tested and "Z105-2-EMU2" in tested and "per kWh" in tested
    assert "main" not in hub.meter_sources.running  # a test saves nothing
    online = asyncio.Event()
    hub.bus.listen(MeterLinkChanged, lambda e: online.set() if e.state is LinkState.ONLINE else None)
    saved = await client.post("/commissioning/meter", data={**form, "action": "save"}, allow_redirects=False)
    assert saved.status == 303
    async with asyncio.timeout(20):
        await online.wait()
    assert hub.meter_sources.running["main"][0] == "emu2"
    assert (await hub.meter_pins.get("main")).hardware_id == METER_MAC


async def test_a_port_where_no_emu2_answers_is_not_saved(setup, tmp_path):
    client, hub, _bridge = setup
    csrf = _csrf(await (await client.get("/commissioning/meter?kind=emu2")).text())
    refused = await client.post("/commissioning/meter", data={
        "csrf_token": csrf, "kind": "emu2", "meter_id": "main", "port": str(tmp_path / "ttyACM7"), "action": "save"})
    assert refused.status == 400
    assert "Cannot open this serial port" in unescape(await refused.text())
    assert await hub.meter_sources.saved() == {}

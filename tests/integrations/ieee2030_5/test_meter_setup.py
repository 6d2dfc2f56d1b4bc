"""The Commissioning page's meter setup with the real 2030.5 kind: test against the simulated meter,
see its figures, save, and the appliance reads the meter from then on."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

import integrations.ieee2030_5 as ieee2030_5
from ems.accounts import Accounts, Role
from ems.cli import _SourceStarter
from ems.hub import Hub
from ems.model import LinkState
from integrations.ieee2030_5.identity import identity_for, lfdi_grouped
from integrations.simulator.ieee2030_5 import Ieee2030Meter
from tests.hubs import new_hub
from tests.integrations.ieee2030_5.conftest import demo_scenario
from web.app import create_app
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"


@pytest.fixture
async def meter() -> AsyncIterator[Ieee2030Meter]:
    simulated = Ieee2030Meter(demo_scenario())
    await simulated.start()
    yield simulated
    await simulated.stop()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    hub = new_hub(tmp_path, "site: {name: Test home, timezone: America/Los_Angeles}\n")
    await hub.start()
    hub.meter_source_kinds["ieee2030_5"] = ieee2030_5.source_kind(hub)
    hub.meter_sources.starters["ieee2030_5"] = _SourceStarter(hub, "ieee2030_5", ieee2030_5)
    yield hub
    await hub.meter_sources.close()
    await hub.stop()


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    app = create_app(hub)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    client = await aiohttp_client(app)
    await app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    page = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text()).group(1)
    form = {"csrf_token": csrf, "username": "owner", "password": PASSWORD}
    assert (await client.post("/login", data=form, allow_redirects=False)).status == 303
    return client


async def _csrf(client: Any) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', await (await client.get("/commissioning/meter")).text()
                     ).group(1)


async def test_an_unregistered_appliance_is_told_its_lfdi_then_tested_saved_and_read(client, hub, meter) -> None:
    headers = {"X-CSRF-Token": await _csrf(client)}
    kinds = await (await client.get("/api/v1/commissioning/meter-sources")).json()
    assert "ieee2030_5" in [k["kind"] for k in kinds["kinds"]]
    refused = await (await client.post("/api/v1/commissioning/meter-sources/ieee2030_5/probe", headers=headers,
                                       json={"url": meter.url})).json()
    identity = identity_for(hub.data_dir)
    assert not refused["ok"] and lfdi_grouped(identity.lfdi) in refused["reason"]
    meter.register_client(identity.cert_path.read_bytes())  # the customer registered it with the utility
    probe = await client.post("/api/v1/commissioning/meter-sources/ieee2030_5/probe", headers=headers,
                              json={"url": meter.url})
    body = await probe.json()
    assert probe.status == 200 and body["ok"], body
    assert body["hardware_id"] == meter.lfdi and body["demand_kw"] is not None
    assert {"label": "TLS cipher", "value": "ECDHE-ECDSA-AES128-CCM8"} in body["details"]
    saved = await client.post("/api/v1/commissioning/meter-sources/ieee2030_5", headers=headers,
                              json={"url": meter.url, "poll_min_s": 1})
    assert saved.status == 201, await saved.text()
    assert hub.meter_sources.running["main"][0] == "ieee2030_5"
    for _ in range(400):
        state = hub.state.meters.get("main")
        if state is not None and state.link is LinkState.ONLINE and state.last_reading_at is not None:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the saved 2030.5 source did not read the meter")
    assert (await hub.meter_pins.get("main")).hardware_id == meter.lfdi.lower()

"""The cost API against a real SQLite store: tariff, cost by period, what-if, a bad period."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.accounts import Accounts, Role, Scope
from ems.config import default_config_dir, load_config
from ems.hub import Hub
from ems.model import IntervalReading
from web.app import HUB, create_app
from web.costs_api import add_cost_routes


@pytest.fixture
async def hub(tmp_path: Path):
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copy(default_config_dir() / "rates.yaml", folder / "rates.yaml")
    (folder / "ems.yaml").write_text(
        "site:\n  timezone: America/Los_Angeles\ntariff:\n  plan: TOU-D-T\n  climate_zone: '10'\n"
    )
    hub = Hub(load_config(folder), tmp_path / "data")
    await hub.store.open()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    await hub.store.add_intervals(
        [IntervalReading("m1", now - timedelta(hours=h), 3600, 1.0, 0.25) for h in range(1, 24 * 3)]
    )
    yield hub
    await hub.store.close()


@pytest.fixture
async def client(hub, aiohttp_client):
    app = create_app(hub)
    add_cost_routes(app, HUB)
    accounts = Accounts(hub.store)
    owner = await accounts.create_user("owner", "owner-password", Role.OWNER)
    token = (await accounts.create_token(owner, "tests", [Scope.READ])).secret
    return await aiohttp_client(app, headers={"Authorization": f"Bearer {token}"})


async def test_tariff_shows_tiers_periods_and_cycle(client):
    response = await client.get("/api/v1/tariff")
    assert response.status == 200
    body = await response.json()
    assert body["plan"] == "TOU-D-T" and body["currency"] == "USD"
    assert [t["allowance_kwh"] for t in body["tiers"]] == [350.0, None]
    assert {p["period"] for p in body["periods"]["all-year"]["weekday"]} == {"off-peak", "on-peak"}
    assert body["billing_cycle"]["start"] < body["billing_cycle"]["end"]


@pytest.mark.parametrize("period", ["interval", "today", "cycle"])
async def test_cost_by_period(client, period):
    response = await client.get("/api/v1/cost", params={"period": period})
    assert response.status == 200
    body = await response.json()
    assert body["meter_id"] == "m1" and body["period"] == period
    cost = body["cost"]
    if period == "interval":
        assert cost["energy_kwh"] == 1.0 and cost["generated_kwh"] == 0.25
        assert cost["energy_cost"] in (0.29, 0.36, 0.51, 0.58)  # off/on-peak, tier 1 or 2
    assert cost["total_cost"] == pytest.approx(cost["energy_cost"] - cost["generation_credit"] + cost["fixed_charges"], abs=0.02)
    assert body["projection"]["total_cost"] >= 0


async def test_bad_period_is_a_json_400(client):
    response = await client.get("/api/v1/cost", params={"period": "week"})
    assert response.status == 400
    assert "period must be one of interval, today, cycle" in (await response.json())["error"]


async def test_whatif_ranks_every_plan(client):
    response = await client.get("/api/v1/cost/whatif")
    assert response.status == 200
    body = await response.json()
    assert body["active_plan"] == "TOU-D-T"
    assert body["cheapest"] == body["bills"][0]["plan"]
    assert len(body["bills"]) == 5 and body["intervals_read"] > 0

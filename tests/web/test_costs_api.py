"""The cost API against a real SQLite store: tariff, cost by period, what-if, a bad period; the
projected-bill warning and the API give the same figure, also with the meter's own prices in use."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems import local_text
from ems.accounts import Accounts, Role, Scope
from ems.bill_watch import BillWatch
from ems.clock import FixedClock
from ems.config import default_config_dir, load_config
from ems.costs import ReadingArrays, cost_report
from ems.hub import Hub
from ems.model import IntervalReading, PriceSignal
from tests.hubs import started_hub
from web.app import HUB, create_app
from web.costs_api import add_cost_routes

# A Tuesday, noon in Los Angeles; TOU-D-T's cycle began on 10 May, so a projection leans on the
# typical days read before it.
NOW = datetime(2026, 5, 12, 19, 0, tzinfo=UTC)


@pytest.fixture
async def hub(tmp_path: Path):
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copy(default_config_dir() / "rates.yaml", folder / "rates.yaml")
    (folder / "ems.yaml").write_text(
        "site:\n  timezone: America/Los_Angeles\ntariff:\n  plan: TOU-D-T\n  climate_zone: '10'\n"
    )
    hub = Hub(load_config(folder), tmp_path / "data", clock=FixedClock(NOW))
    await hub.store.open()
    await hub.store.add_intervals(
        [IntervalReading("m1", NOW - timedelta(hours=h), 3600, 1.0, 0.25) for h in range(1, 24 * 3)]
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


async def test_whatif_bills_are_to_the_cent_cycle_by_cycle(client):
    """No float residue (331.6999999999998) and no -0.0 in the answer; the year is its cycles' bills."""
    import re
    from decimal import Decimal

    text = await (await client.get("/api/v1/cost/whatif")).text()
    assert not re.search(r"\d\.\d{4,}", text) and "-0.0" not in text
    body = json.loads(text)
    for bill in body["bills"]:
        cycles = bill["cycle_bills"]
        assert len(cycles) == bill["cycles"] == 13  # 12 May to 12 May: two cut cycles at the ends
        assert sum(Decimal(str(c["total_cost"])) for c in cycles) == Decimal(str(bill["total_cost"]))
        for c in cycles:
            lines = [Decimal(str(c[k])) for k in ("energy_cost", "generation_credit", "peak_time_rebate",
                                                   "fixed_charges", "minimum_bill_topup")]
            assert lines[0] - lines[1] - lines[2] + lines[3] + lines[4] == Decimal(str(c["total_cost"]))


def _meter_price(issuer_event_id: int, price_per_kwh: float, start: datetime, end: datetime | None) -> PriceSignal:
    return PriceSignal("m1", 1, issuer_event_id, "METER", "USD", price_per_kwh, start, end,
                       received_at=start)


async def test_bill_warning_and_cost_api_project_the_same_bill_with_the_meters_prices(tmp_path, aiohttp_client):
    config = ("site: {name: Test home, timezone: America/Los_Angeles}\n"
              "tariff: {plan: TOU-D-T, climate_zone: '10', use_meter_prices: true, warning_threshold_cost: 1.0}\n")
    rates = (default_config_dir() / "rates.yaml").read_text()
    async with started_hub(tmp_path, config, {"rates.yaml": rates}, clock=FixedClock(NOW)) as hub:
        readings = [IntervalReading("m1", NOW - timedelta(hours=h), 3600, 1.0, 0.1) for h in range(1, 24 * 20)]
        await hub.store.add_intervals(readings)
        # The meter's prices, far from the rate sheet's 0.29/0.51: two days past, and one from
        # this morning "until changed" (so it prices the rest of the cycle's projection too).
        hub.bus.publish(_meter_price(1, 1.50, NOW - timedelta(days=3), NOW - timedelta(days=1)))
        hub.bus.publish(_meter_price(2, 0.95, NOW - timedelta(hours=6), None))

        (warning,) = [w for w in await BillWatch(hub).check("m1") if w.template == local_text.BILL_WARNING]
        projected = dict(warning.params)["projected_cost"]

        app = create_app(hub)
        accounts = Accounts(hub.store)
        owner = await accounts.create_user("owner", "owner-password", Role.OWNER)
        token = (await accounts.create_token(owner, "tests", [Scope.READ])).secret
        client = await aiohttp_client(app, headers={"Authorization": f"Bearer {token}"})
        response = await client.get("/api/v1/cost", params={"period": "cycle"})
        assert response.status == 200
        body = await response.json()
        assert body["at"] == "2026-05-12T19:00:00Z" and warning.start == NOW
        assert f"{body['projection']['total_cost']:.2f}" == projected

        # The meter's prices matter here: the rate sheet alone projects another bill.
        sheet_only = cost_report(hub.config.tariff.active_plan, ReadingArrays.from_readings(readings), now=NOW,
                                 timezone="America/Los_Angeles", climate_zone="10")
        assert f"{sheet_only.projection.total_cost:.2f}" != projected
        await client.close()


async def test_no_plan_no_meter_and_no_rates_are_json_404s(tmp_path, aiohttp_client):
    async with started_hub(tmp_path, clock=FixedClock(NOW)) as hub:  # no rates file, no plan
        accounts = Accounts(hub.store)
        owner = await accounts.create_user("owner", "owner-password", Role.OWNER)
        token = (await accounts.create_token(owner, "tests", [Scope.READ])).secret
        client = await aiohttp_client(create_app(hub), headers={"Authorization": f"Bearer {token}"})
        for path, error in [("/api/v1/cost", "no rate plan configured: set tariff.plan in ems.yaml"),
                            ("/api/v1/tariff", "no rate plan configured: set tariff.plan in ems.yaml"),
                            ("/api/v1/cost/whatif", "no rates file: see tariff.rates_file in ems.yaml")]:
            response = await client.get(path)
            assert (response.status, await response.json()) == (404, {"error": error, "status": 404})
        await client.close()


async def test_an_unknown_meter_is_a_json_404(client):
    response = await client.get("/api/v1/cost", params={"meter": "m9"})
    assert (response.status, (await response.json())["error"]) == (404, "no meter 'm9'")


async def test_the_cost_api_tells_the_cycle_peak_demand_and_its_charge(tmp_path: Path, aiohttp_client):
    from tests.ems.test_bill_watch import DEMAND_RATES

    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "rates.yaml").write_text(DEMAND_RATES["rates.yaml"])
    (folder / "ems.yaml").write_text("site:\n  timezone: America/Los_Angeles\ntariff:\n  plan: GS-DEMAND\n")
    # Tuesday 12 May 2026 in Los Angeles, 15-minute readings of 0.25 kWh (1 kW) since 1 May, one of
    # 0.75 kWh (3 kW) at 17:00 on Monday 11 May (on-peak).
    start = datetime(2026, 5, 1, 7, tzinfo=UTC)
    peak_at = datetime(2026, 5, 12, 0, 0, tzinfo=UTC)
    readings = [IntervalReading("m1", start + timedelta(minutes=15 * i), 900, 0.25) for i in range(96 * 11 + 40)]
    readings = [IntervalReading("m1", r.start, 900, 0.75 if r.start == peak_at else 0.25) for r in readings]
    hub = Hub(load_config(folder), tmp_path / "data", clock=FixedClock(NOW))
    await hub.store.open()
    try:
        await hub.store.add_intervals(readings)
        app = create_app(hub)
        add_cost_routes(app, HUB)
        accounts = Accounts(hub.store)
        owner = await accounts.create_user("owner", "owner-password", Role.OWNER)
        token = (await accounts.create_token(owner, "tests", [Scope.READ])).secret
        client = await aiohttp_client(app, headers={"Authorization": f"Bearer {token}"})
        body = await (await client.get("/api/v1/cost", params={"period": "cycle"})).json()
        cost = body["cost"]
        assert [(d["label"], d["peak_kw"], d["at"], d["charge"]) for d in cost["demand"]] == [
            ("Facility demand", 3.0, "2026-05-12T00:00:00Z", 27.0), ("On-peak demand", 3.0, "2026-05-12T00:00:00Z", 45.0)]
        assert cost["demand_charges"] == 72.0
        assert cost["total_cost"] == round(cost["energy_cost"] + cost["fixed_charges"] + 72.0, 2)
        assert body["projection"]["demand_charges"] == 72.0
        today = await (await client.get("/api/v1/cost", params={"period": "today"})).json()
        assert today["cost"]["demand_charges"] == 0.0 and today["cost"]["demand"] == []
        tariff = await (await client.get("/api/v1/tariff")).json()
        assert tariff["demand_charges"]["window_minutes"] == 15
        assert tariff["demand_charges"]["charges"][1]["periods"] == ["on-peak"]
        assert "demand" in tariff["kinds"]
    finally:
        await hub.store.close()
def test_a_days_added_allowance_is_answered_without_float_residue():
    """May's baseline on D-BASELINE, zone 10: 31 days x 10.7 kWh added up is 331.6999999999998."""
    from zoneinfo import ZoneInfo

    from ems.costs import price_intervals, summarize
    from ems.tariff import load_rates
    from web.costs_api import breakdown_json

    la = ZoneInfo("America/Los_Angeles")
    plan = load_rates(default_config_dir() / "rates.yaml").plans["D-BASELINE"]
    start = datetime(2026, 5, 1, tzinfo=la)
    readings = ReadingArrays.from_columns([int(start.timestamp())], [3600], [1.0], [0.0])
    cost = summarize(price_intervals(plan, readings, timezone="America/Los_Angeles", climate_zone="10"),
                     start, datetime(2026, 6, 1, tzinfo=la))
    assert cost.tiers[0].allowance_kwh != 331.7  # the sum as added, day by day
    body = breakdown_json(cost)
    assert body["tiers"][0]["allowance_kwh"] == 331.7 and "331.69" not in json.dumps(body)

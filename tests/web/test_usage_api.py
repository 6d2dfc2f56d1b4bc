"""The usage API against a real SQLite store: ranges and buckets, gaps as nulls, a bad range."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.accounts import Accounts, Role, Scope
from ems.clock import FixedClock
from ems.config import default_config_dir, load_config
from ems.hub import Hub
from ems.model import IntervalReading, PriceSignal
from web.app import create_app

NOW = datetime(2026, 5, 12, 19, 0, tzinfo=UTC)  # noon on a Tuesday in Los Angeles: the last hour read ends
ASKED_AT = NOW + timedelta(minutes=20)  # the hubs' fixed clock: the current hour is in progress
GAP_HOURS = range(5, 8)  # hours ago with no interval read


async def _hub(tmp_path: Path, plan: bool, readings: list[IntervalReading] | None = None) -> Hub:
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copy(default_config_dir() / "rates.yaml", folder / "rates.yaml")
    tariff = "tariff:\n  plan: TOU-D-T\n  climate_zone: '10'\n" if plan else ""
    (folder / "ems.yaml").write_text("site:\n  timezone: America/Los_Angeles\n" + tariff)
    hub = Hub(load_config(folder), tmp_path / "data", clock=FixedClock(ASKED_AT))
    await hub.store.open()
    await hub.store.add_intervals(readings if readings is not None else [
        IntervalReading("m1", NOW - timedelta(hours=h), 3600, 1.0, 0.25)
        for h in range(1, 24 * 10) if h not in GAP_HOURS
    ])
    return hub


async def _client(hub: Hub, aiohttp_client):
    app = create_app(hub)
    accounts = Accounts(hub.store)
    owner = await accounts.create_user("owner", "owner-password", Role.OWNER)
    token = (await accounts.create_token(owner, "tests", [Scope.READ])).secret
    return await aiohttp_client(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client):
    hub = await _hub(tmp_path, plan=True)
    yield await _client(hub, aiohttp_client)
    await hub.store.close()


async def _usage(client, range_: str) -> dict:
    response = await client.get("/api/v1/usage", params={"range": range_})
    assert response.status == 200, await response.text()
    return await response.json()


@pytest.mark.parametrize(("range_", "buckets", "bucket_s"), [
    ("day", 24, 3600),  # 15 minutes, or the meter's interval when longer (hourly here)
    ("week", 7 * 24, 3600),
    ("year", 365, 86400),
])
async def test_ranges_have_their_buckets(client, range_, buckets, bucket_s):
    body = await _usage(client, range_)
    assert body["range"] == range_ and body["meter_id"] == "m1"
    assert len(body["t"]) == buckets and body["bucket_s"] == bucket_s
    for column in ("consumed_kwh", "generated_kwh", "price_per_kwh", "coverage"):
        assert len(body[column]) == buckets
    assert body["t"] == sorted(body["t"])
    assert body["plan"] == "TOU-D-T" and body["currency"] == "USD"
    read = [v for v in body["consumed_kwh"] if v is not None]
    assert sum(read) == pytest.approx(body["intervals_read"] * 1.0)


async def test_cycle_is_daily_from_the_billing_cycle_start(client):
    body = await _usage(client, "cycle")
    assert body["bucket_s"] == 86400
    tariff = await (await client.get("/api/v1/tariff")).json()
    start = datetime.fromisoformat(body["start"])
    assert start.astimezone(ZoneInfo("America/Los_Angeles")).date().isoformat() == tariff["billing_cycle"]["start"]


async def test_gaps_are_nulls_never_estimated(client):
    body = await _usage(client, "day")
    by_time = dict(zip(body["t"], range(len(body["t"])), strict=True))
    for h in GAP_HOURS:
        i = by_time[int((NOW - timedelta(hours=h)).timestamp())]
        assert body["consumed_kwh"][i] is None
        assert body["generated_kwh"][i] is None
        assert body["price_per_kwh"][i] is None
        assert body["coverage"][i] == 0
    i = by_time[int((NOW - timedelta(hours=2)).timestamp())]
    assert body["consumed_kwh"][i] == 1.0 and body["coverage"][i] == 1.0
    # The current hour has not been read yet either: a null, not a zero.
    assert body["consumed_kwh"][by_time[int(NOW.timestamp())]] is None


async def test_generation_is_positive_as_read_and_priced_from_the_plan(client):
    body = await _usage(client, "week")
    generated = [v for v in body["generated_kwh"] if v is not None]
    assert generated and all(v == 0.25 for v in generated)  # the chart draws it below zero
    prices = [v for v in body["price_per_kwh"] if v is not None]
    assert prices and all(0.2 < p < 0.7 for p in prices)  # TOU-D-T: 0.27-0.48 plus a block adder


async def test_bad_range_is_a_json_400(client):
    response = await client.get("/api/v1/usage", params={"range": "fortnight"})
    assert response.status == 400
    assert "range must be one of day, week, cycle, year" in (await response.json())["error"]


async def test_without_a_plan_the_price_is_null(tmp_path, aiohttp_client):
    hub = await _hub(tmp_path, plan=False)
    try:
        client = await _client(hub, aiohttp_client)
        body = await _usage(client, "week")
        assert body["plan"] is None and body["currency"] is None
        assert set(body["price_per_kwh"]) == {None}
        assert any(v is not None for v in body["consumed_kwh"])
    finally:
        await hub.store.close()


async def test_the_price_is_the_one_the_cost_api_charges_with_the_meters_prices(tmp_path, aiohttp_client):
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copy(default_config_dir() / "rates.yaml", folder / "rates.yaml")
    (folder / "ems.yaml").write_text("site:\n  timezone: America/Los_Angeles\n"
                                     "tariff: {plan: TOU-D-T, climate_zone: '10', use_meter_prices: true}\n")
    hub = Hub(load_config(folder), tmp_path / "data", clock=FixedClock(NOW))
    await hub.start()
    try:
        await hub.store.add_intervals([IntervalReading("m1", NOW - timedelta(hours=h), 3600, 1.0, 0.0)
                                       for h in range(1, 48)])
        since = NOW - timedelta(hours=3)  # the meter's price for the last three hours
        hub.bus.publish(PriceSignal("m1", 1, 9, "METER", "USD", 0.83, since, None, received_at=since))
        client = await _client(hub, aiohttp_client)
        body = await _usage(client, "day")
        by_time = dict(zip(body["t"], body["price_per_kwh"], strict=True))
        assert [by_time[int((NOW - timedelta(hours=h)).timestamp())] for h in (4, 3, 2, 1)] == [0.29, 0.83, 0.83, 0.83]
        cost = await (await client.get("/api/v1/cost", params={"period": "interval"})).json()
        assert cost["cost"]["energy_cost"] == by_time[int((NOW - timedelta(hours=1)).timestamp())]
        await client.close()
    finally:
        await hub.stop()


def test_the_openapi_document_lists_the_same_ranges():
    from web.openapi import USAGE_RANGES
    from web.usage_api import RANGES

    assert USAGE_RANGES == RANGES


@pytest.mark.parametrize("plan", [True, False])
async def test_a_daily_reading_is_shown_over_its_day(tmp_path, aiohttp_client, plan):
    """A day read as one reading (a Green Button file's daily data) fills each hour of its day with a
    flat share, marked estimated, and counts as one reading: not 24 kWh in the day's first hour."""
    day = datetime(2026, 5, 10, tzinfo=ZoneInfo("America/Los_Angeles"))  # Sunday, two days before NOW
    hub = await _hub(tmp_path, plan=plan, readings=[IntervalReading("m1", day.astimezone(UTC), 86400, 24.0, 0.0)])
    try:
        client = await _client(hub, aiohttp_client)
        body = await _usage(client, "week")
        first = body["t"].index(int(day.timestamp()))
        hours = slice(first, first + 24)
        assert body["consumed_kwh"][hours] == [1.0] * 24
        assert body["estimated"][hours] == [True] * 24 and body["coverage"][hours] == [1.0] * 24
        assert body["intervals_read"] == 1
        assert body["consumed_kwh"][first + 24] is None and body["estimated"][first + 24] is False
        cycle = await _usage(client, "cycle")
        assert cycle["consumed_kwh"][cycle["t"].index(int(day.timestamp()))] == 24.0
    finally:
        await hub.store.close()

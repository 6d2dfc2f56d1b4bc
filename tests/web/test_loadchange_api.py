"""The load-change API on the real app and a real SQLite store: a measured event, unknown events, scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ems.accounts import Accounts, Role, Scope
from ems.clock import FixedClock
from ems.config import load_config
from ems.hub import Hub
from ems.model import Criticality, DeviceClass, IntervalReading, LoadControlEvent
from web.app import create_app

TZ = "America/Los_Angeles"
LA = ZoneInfo(TZ)
RATES = """\
plans:
  FLAT:
    currency: USD
    billing_cycle: {start_day: 1}
    versions:
      - {effective_from: 2020-01-01, energy_price_per_kwh: 0.30}
"""
EVENT_DAY = date(2026, 7, 13)  # a Monday; the appliance's clock reads two days later (over, rebound too)


def local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), LA).astimezone(UTC)


def dr_event(meter_id: str, issuer_event_id: int) -> LoadControlEvent:
    return LoadControlEvent(
        meter_id=meter_id, issuer_event_id=issuer_event_id, device_class=DeviceClass.HVAC, enrollment_group=0,
        start=local(EVENT_DAY, 16), duration_min=300, criticality=Criticality.LEVEL_1,
        received_at=local(EVENT_DAY, 9),
    )


def readings(meter_id: str, first: date) -> list[IntervalReading]:
    """3 kW, except 1 kW during the event (16:00-21:00 on the event day)."""
    rows, t = [], local(first, 0)
    while t < local(EVENT_DAY + timedelta(days=1), 0):
        at = t.astimezone(LA)
        kw = 1.0 if at.date() == EVENT_DAY and 16 <= at.hour < 21 else 3.0
        rows.append(IntervalReading(meter_id, t, 900, kw * 0.25))
        t += timedelta(minutes=15)
    return rows


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "rates.yaml").write_text(RATES)
    (folder / "ems.yaml").write_text(f"site: {{timezone: {TZ}}}\ntariff: {{plan: FLAT}}\n")
    hub = Hub(load_config(folder), tmp_path / "data", FixedClock(local(EVENT_DAY + timedelta(days=2), 12)))
    await hub.store.open()
    await hub.store.add_intervals(readings("m1", EVENT_DAY - timedelta(days=60)))
    await hub.store.add_intervals(readings("m2", EVENT_DAY - timedelta(days=2)))  # two days of history
    hub.store.attach(hub.bus)  # the events as the store keeps them (no DR component runs here)
    hub.bus.publish(dr_event("m1", 7))
    hub.bus.publish(dr_event("m2", 8))
    await hub.store.flush()
    yield hub
    await hub.store.close()


async def _client(hub: Hub, aiohttp_client: Any, scope: Scope) -> Any:
    accounts = Accounts(hub.store)
    owner = await accounts.create_user("owner", "owner-password", Role.OWNER)
    token = (await accounts.create_token(owner, "tests", [scope])).secret
    return await aiohttp_client(create_app(hub), headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    return await _client(hub, aiohttp_client, Scope.READ)


async def test_a_past_event_shows_its_kw_reduced_energy_and_money(client: Any) -> None:
    response = await client.get("/api/v1/events/m1/7/load-change")

    assert response.status == 200
    body = await response.json()
    assert body["status"] == "final" and body["currency"] == "USD"
    assert body["start"] == local(EVENT_DAY, 16).isoformat().replace("+00:00", "Z")
    assert body["kw_reduced"] == 2.0 and body["peak_kw_reduced"] == 2.0
    assert body["baseline_kwh"] == 15.0 and body["actual_kwh"] == 5.0
    assert body["energy_shifted_kwh"] == 10.0 and body["rebound_kwh"] == 0.0
    assert body["money_saved"] == 3.0  # 10 kWh at 0.30
    assert body["rebate_earned"] is None
    assert len(body["baseline"]["days"]) == 10
    assert [i["part"] for i in body["intervals"]].count("event") == 20
    assert {i["baseline_kw"] for i in body["intervals"]} == {3.0}


async def test_too_little_history_is_a_200_that_says_so(client: Any) -> None:
    response = await client.get("/api/v1/events/m2/8/load-change")

    assert response.status == 200
    body = await response.json()
    assert body["status"] == "insufficient history"
    assert body["kw_reduced"] is None and body["money_saved"] is None
    assert "too little history" in body["note"]


@pytest.mark.parametrize("path", ["/api/v1/events/m1/99/load-change", "/api/v1/events/m9/7/load-change",
                                  "/api/v1/events/m1/x/load-change"])
async def test_an_unknown_event_is_a_json_404(client: Any, path: str) -> None:
    response = await client.get(path)

    assert response.status == 404
    assert (await response.json())["status"] == 404


async def test_it_needs_the_read_scope(hub: Hub, aiohttp_client: Any) -> None:
    client = await _client(hub, aiohttp_client, Scope.CONFIRM_MESSAGES)

    response = await client.get("/api/v1/events/m1/7/load-change")

    assert response.status == 403


async def test_it_needs_credentials(hub: Hub, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(hub))

    response = await client.get("/api/v1/events/m1/7/load-change")

    assert response.status == 401

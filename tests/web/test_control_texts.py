"""Demand response's human texts in the reader's language: a Spanish reader gets the reason of each
device's holder, the notes and the actions' reasons in Spanish beside the English the API keeps."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import rules
from ems.accounts import Role
from ems.demand_response import DemandResponse
from ems.hub import Hub
from ems.model import (
    Criticality,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    LoadControlEvent,
    utcnow,
)
from ems.rulebook import RuleBook
from tests.hubs import started_hub
from web.auth import ACCOUNTS

from .control import RecordingPort

PASSWORD = "correct horse battery"
THERMOSTAT, PUMP = "00:0d:6f:00:00:00:00:01", "00:0d:6f:00:00:00:00:02"
RULES = """\
devices:
  Living room: {max_offset_c: 3}
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with started_hub(tmp_path, files={"rules.yaml": RULES}) as hub:
        book = RuleBook(hub.config.config_dir / "rules.yaml", rules.parse_rules, rules.evaluate,
                        rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 0.2})
        await hub.control.start()
        port = RecordingPort()
        hub.device_ports.update({THERMOSTAT: port, PUMP: port})
        hub.port = port  # type: ignore[attr-defined]
        now = utcnow()
        hub.bus.publish(DeviceInfo(THERMOSTAT, "Living room", DeviceKind.THERMOSTAT, DeviceClass.HVAC,
                                   min_setpoint_c=7, max_setpoint_c=32))
        hub.bus.publish(DeviceInfo(PUMP, "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, nominal_kw=1.5))
        hub.bus.publish(DeviceReading(THERMOSTAT, now, indoor_c=24.4, cooling_setpoint_c=24.0, heating_setpoint_c=20.0,
                                      system_mode="cool"))
        hub.bus.publish(DeviceReading(PUMP, now, on=True, power_kw=1.5))
        hub.bus.publish(LoadControlEvent("main", 7, DeviceClass.HVAC | DeviceClass.POOL_PUMP, 0,
                                         now - timedelta(minutes=1), 60, Criticality.LEVEL_2, now,
                                         cooling_offset_c=5.0))
        yield hub
        await hub.control.stop()


async def _sign_in(client: Any, language: str | None) -> None:
    accounts = client.app[ACCOUNTS]
    user = await accounts.create_user("owner", PASSWORD, Role.OWNER)
    await accounts.set_language(user.id, language)
    page = await (await client.get("/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf, "username": "owner", "password": PASSWORD}
    assert (await client.post("/login", data=form, allow_redirects=False)).status == 303


async def _until(check: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _devices(client: Any, hub: Hub) -> dict[str, Any]:
    await _until(lambda: len(hub.port.calls) >= 2)
    devices = (await (await client.get("/api/v1/devices")).json())["devices"]
    return {d["name"]: d for d in devices}


async def test_a_spanish_reader_gets_the_holders_reason_in_spanish_beside_the_english(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es")
    pump = (await _devices(client, hub))["Pool pump"]["held_by"]

    assert pump["reason"].startswith("Event 7 (level 2, until ")
    assert pump["reason"].endswith("): off — rule 'Follow every event'")
    assert pump["reason_text"].startswith("Evento 7 (nivel 2, hasta las ")
    assert pump["reason_text"].endswith("): apagado — regla «Follow every event»")


async def test_a_spanish_reader_gets_the_comfort_limits_note_in_spanish(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es")
    room = (await _devices(client, hub))["Living room"]

    assert room["note"] == "offset held to +3.0 °C (comfort limit)"
    assert room["note_text"] == "desplazamiento limitado a +3,0 °C (límite de confort)"


async def test_an_english_reader_gets_the_same_words_as_the_reason(client: Any, hub: Hub) -> None:
    await _sign_in(client, "en")
    pump = (await _devices(client, hub))["Pool pump"]["held_by"]

    assert pump["reason_text"].endswith("): off — rule 'Follow every event'")


async def test_the_devices_page_shows_the_reason_in_spanish(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es")
    await _devices(client, hub)
    page = await (await client.get("/devices")).text()

    assert "apagado — regla «Follow every event»" in page
    assert "desplazamiento limitado a +3,0 °C (límite de confort)" in page


async def test_an_events_actions_give_their_reason_in_spanish(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es")
    await _devices(client, hub)
    await hub.store.flush()
    actions = (await (await client.get("/api/v1/events/main/7/actions")).json())["actions"]
    pump = next(a for a in actions if a["device_id"] == PUMP)

    assert pump["reason_text"].endswith("): apagado — regla «Follow every event»")
    assert "reason_template" not in pump["detail"] and "reason_params" not in pump["detail"]

"""Demand response over HTTP: the devices and why each is as it is, the rules file, per-device opt-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Accounts, Role, Scope
from ems.hub import Hub
from web.auth import ACCOUNTS

from .control import PUMP, RULES, home_hub

PASSWORD = "correct horse battery"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with home_hub(tmp_path, cooling_offset_c=2.0, duty_cycle_pct=0) as hub:
        yield hub


async def _headers(client: Any, role: Role = Role.OWNER) -> dict[str, str]:
    accounts: Accounts = client.app[ACCOUNTS]
    name = role.value
    user = await accounts.user(name) or await accounts.create_user(name, PASSWORD, role)
    token = await accounts.create_token(user, "test", list(Scope) if role is Role.OWNER else [Scope.READ])
    return {"Authorization": f"Bearer {token.secret}"}


async def _until(check: Any, timeout_s: float = 60.0) -> None:  # a hang guard only
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_device_list_says_what_holds_each_device_and_why(client: Any, hub: Hub) -> None:
    await _until(lambda: len(hub.port.calls) >= 2)
    devices = (await (await client.get("/api/v1/devices", headers=await _headers(client))).json())["devices"]
    by_name = {d["name"]: d for d in devices}
    assert by_name["Living room"]["reading"]["cooling_setpoint_c"] == 24.0
    assert by_name["Living room"]["held_by"]["issuer_event_id"] == 7
    assert by_name["Living room"]["controlled"] is True
    assert "Follow every event" in by_name["Pool pump"]["held_by"]["reason"], by_name["Pool pump"]["held_by"]


async def test_taking_a_device_out_of_the_event_restores_it_at_once(client: Any, hub: Hub) -> None:
    await _until(lambda: ("switch", PUMP, False) in hub.port.calls)
    response = await client.post(f"/api/v1/events/main/7/devices/{PUMP}/opt-out", headers=await _headers(client))
    assert response.status == 200
    assert (await response.json())["excluded_devices"] == [{"device_id": PUMP, "name": "Pool pump"}]
    await _until(lambda: ("switch", PUMP, True) in hub.port.calls)


async def test_an_unknown_device_or_event_is_a_404(client: Any) -> None:
    headers = await _headers(client)
    assert (await client.post("/api/v1/events/main/7/devices/00:00/opt-out", headers=headers)).status == 404
    assert (await client.post(f"/api/v1/events/main/99/devices/{PUMP}/opt-out", headers=headers)).status == 404


async def test_an_events_actions_list_every_command_it_caused(client: Any, hub: Hub) -> None:
    await _until(lambda: len(hub.port.calls) >= 2)
    await hub.store.flush()
    body = await (await client.get("/api/v1/events/main/7/actions", headers=await _headers(client))).json()
    assert {(a["device"], a["action"], a["ok"]) for a in body["actions"]} >= {
        ("Living room", "setpoints", True), ("Pool pump", "off", True)}


async def test_invalid_rules_are_refused_with_the_line_of_each_problem(client: Any, hub: Hub) -> None:
    bad = "rules:\n  - name: Broken\n    action: {offset_c: hot}\n"
    response = await client.put("/api/v1/rules", data=bad, headers={**await _headers(client),
                                                                   "Content-Type": "text/yaml"})
    assert response.status == 422
    problems = (await response.json())["problems"]
    assert any(":3:" in p for p in problems), problems
    assert hub.control.rulebook.path.read_text() == RULES  # nothing changed on disk


async def test_valid_rules_are_put_in_force_and_on_disk(client: Any, hub: Hub) -> None:
    new = RULES.replace("Follow every event", "Do what the utility asks")
    response = await client.put("/api/v1/rules", data=new, headers={**await _headers(client),
                                                                   "Content-Type": "text/yaml"})
    assert response.status == 200, await response.text()
    assert hub.control.rulebook.path.read_text() == new
    got = await (await client.get("/api/v1/rules", headers=await _headers(client))).json()
    assert got["text"] == new and got["problems"] == []


async def test_a_read_only_token_cannot_change_the_rules(client: Any) -> None:
    headers = {**await _headers(client, Role.MEMBER), "Content-Type": "text/yaml"}
    assert (await client.put("/api/v1/rules", data=RULES, headers=headers)).status == 403


async def test_the_devices_and_rules_pages_show_the_devices_and_the_file(client: Any, hub: Hub) -> None:
    headers = await _headers(client)
    await _until(lambda: len(hub.port.calls) >= 2)
    devices = await (await client.get("/devices", headers=headers)).text()
    rules_page = await (await client.get("/rules", headers=headers)).text()
    assert "Living room" in devices and "Pool pump" in devices
    assert "Follow every event" in rules_page

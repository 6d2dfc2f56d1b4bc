"""GET /api/v1/events/{meter}/{event}/actions: the commands of that event and no other's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from ems.accounts import Accounts, Role, Scope
from ems.dr.component import DemandResponse
from ems.hub import Hub
from ems.model import Criticality, DeviceClass, LoadControlEvent, utcnow
from ems.store import tables
from tests.hubs import started_hub
from web.keys import ACCOUNTS

from .control import NoRules

PUMP, THERMOSTAT, HEATER = "pump", "thermostat", "heater"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """Events 7 and 71 of meter main, and what the dispatcher logged for each (oldest first)."""
    async with started_hub(tmp_path) as hub:
        hub.control = DemandResponse(hub, NoRules(tmp_path / "rules.yaml"))
        await hub.control.start()
        now = utcnow()
        for event_id in (7, 71):
            hub.bus.publish(LoadControlEvent("main", event_id, DeviceClass.HVAC, 0, now - timedelta(minutes=30),
                                             60, Criticality.LEVEL_2, now))
        log = [
            (PUMP, "off", "event:main:7"),
            (THERMOSTAT, "setpoints", "rule:Precool@event:main:7"),
            (PUMP, "off", "event:main:71"),
            (HEATER, "off", "rule:Follow every event@event:main:71"),
            (THERMOSTAT, "setpoints", "rule:Precool"),  # a rule of its own, no event
            (PUMP, "on", "restore"),
            (HEATER, "on", "restore"),
            (THERMOSTAT, "setpoints", "restore"),
        ]
        rows = [{"device_id": device, "action": action, "detail": {}, "source": source,
                 "reason": f"{action} for {source}", "at": now - timedelta(minutes=20 - minute), "ok": True,
                 "error": None}
                for minute, (device, action, source) in enumerate(log)]
        await hub.store.write("log device commands", lambda conn: conn.execute(insert(tables.device_commands), rows))
        yield hub
        await hub.control.stop()


async def _get(client: Any, event_id: int, query: str = "") -> list[dict[str, Any]]:
    accounts: Accounts = client.app[ACCOUNTS]
    user = await accounts.user("owner") or await accounts.create_user("owner", "correct horse battery", Role.OWNER)
    token = await accounts.create_token(user, "test", [Scope.READ])
    response = await client.get(f"/api/v1/events/main/{event_id}/actions{query}",
                                headers={"Authorization": f"Bearer {token.secret}"})
    assert response.status == 200
    actions: list[dict[str, Any]] = (await response.json())["actions"]
    return actions


async def _actions(client: Any, event_id: int) -> list[tuple[str, str, str]]:
    return [(a["device_id"], a["action"], a["source"]) for a in await _get(client, event_id)]


async def test_event_7_lists_its_own_commands_and_restores_not_event_71s(client: Any) -> None:
    assert await _actions(client, 7) == [
        (PUMP, "off", "event:main:7"),
        (THERMOSTAT, "setpoints", "rule:Precool@event:main:7"),
        (PUMP, "on", "restore"),
        (THERMOSTAT, "setpoints", "restore"),
    ]
    assert await _actions(client, 71) == [
        (PUMP, "off", "event:main:71"),
        (HEATER, "off", "rule:Follow every event@event:main:71"),
        (PUMP, "on", "restore"),
        (HEATER, "on", "restore"),
    ]


async def test_a_command_logged_before_reasons_kept_their_msgid_reads_as_logged_in_every_language(client: Any) -> None:
    first = (await _get(client, 7, "?lang=es"))[0]

    assert first["reason"] == first["reason_text"] == "off for event:main:7"
    assert first["detail"] == {}

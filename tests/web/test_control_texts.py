"""Demand response's human texts in the reader's language: a Spanish reader gets the reason of each
device's holder, the notes and the actions' reasons in Spanish beside the English the API keeps."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Role
from ems.hub import Hub
from web.auth import ACCOUNTS

from .control import PUMP, home_hub

PASSWORD = "correct horse battery"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with home_hub(tmp_path, cooling_offset_c=5.0) as hub:
        yield hub


async def _sign_in(client: Any, language: str | None, unit: str | None = None) -> None:
    accounts = client.app[ACCOUNTS]
    user = await accounts.create_user("owner", PASSWORD, Role.OWNER)
    await accounts.set_language(user.id, language)
    await accounts.set_temperature_unit(user.id, unit)
    page = await (await client.get("/login")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf, "username": "owner", "password": PASSWORD}
    assert (await client.post("/login", data=form, allow_redirects=False)).status == 303


async def _until(check: Any, timeout_s: float = 60.0) -> None:  # a hang guard only
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

    assert pump["reason"].startswith("Event 7 (urgency 2 of 5, until ")  # SE criticality level 2, in words
    assert pump["reason"].endswith("): off — rule 'Follow every event'")
    assert pump["reason_text"].startswith("Evento 7 (urgencia 2 de 5, hasta las ")
    assert pump["reason_text"].endswith("): apagado — regla «Follow every event»")


async def test_a_spanish_reader_gets_the_comfort_limits_note_in_spanish(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es")
    room = (await _devices(client, hub))["Living room"]

    assert room["note"] == "offset held to +3.0 °C (comfort limit)"  # the API's English keeps °C
    # A Californian site reads °F unless the person chose °C: an offset of 3 °C is 5.4 °F.
    assert room["note_text"] == "desplazamiento limitado a +5,4 °F (límite de confort)"


async def test_a_person_who_chose_celsius_reads_celsius_on_a_fahrenheit_site(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es", unit="C")
    room = (await _devices(client, hub))["Living room"]

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
    assert "desplazamiento limitado a +5,4 °F (límite de confort)" in page
    assert "°C" not in page  # the readings too: in °F, with the decimal comma


async def test_an_events_actions_give_their_reason_in_spanish(client: Any, hub: Hub) -> None:
    await _sign_in(client, "es")
    await _devices(client, hub)
    await hub.store.flush()
    actions = (await (await client.get("/api/v1/events/main/7/actions")).json())["actions"]
    pump = next(a for a in actions if a["device_id"] == PUMP)

    assert pump["reason"].endswith("): off — rule 'Follow every event'")  # the English logged with it
    assert pump["reason_text"].endswith("): apagado — regla «Follow every event»")
    assert "reason_template" not in pump["detail"] and "reason_params" not in pump["detail"]

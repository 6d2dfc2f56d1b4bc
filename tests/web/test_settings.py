"""The Settings page and each person's language: pages, the IHD, the API's human texts and the
WebSocket follow it; a message read on one page is shown read on every other open page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ems import local_text
from ems.accounts import Role
from ems.hub import Hub
from ems.model import MessageImportance, UtilityMessage, utcnow
from tests.hubs import started_hub
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def site_language() -> str:
    return "en"


@pytest.fixture
async def hub(tmp_path: Path, site_language: str) -> AsyncIterator[Hub]:
    site = f"site: {{name: Test home, timezone: America/Los_Angeles, language: {site_language}}}\n"
    async with started_hub(tmp_path, site) as hub:
        now = utcnow()
        hub.bus.publish(UtilityMessage("main", 1, "Grid alert from the utility", MessageImportance.HIGH,
                                       now - timedelta(minutes=1), now + timedelta(hours=1), False, now))
        hub.bus.publish(local_text.local_message(
            "main", 2, local_text.EVENT_STARTED, {"event_id": "4101", "end": "2024-07-02T02:00:00+00:00"},
            importance=MessageImportance.HIGH, start=now - timedelta(minutes=1), end=now + timedelta(hours=1),
            received_at=now, timezone="America/Los_Angeles"))
        yield hub


@pytest.fixture
async def client(client: Any) -> Any:
    """The web app (tests/web/conftest.py) with the owner's account."""
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    return client


@pytest.fixture
def sign_in(client: Any) -> Callable[..., Any]:
    async def sign_in_(username: str = "owner", role: Role | None = None) -> None:
        if role is not None:
            await client.app[ACCOUNTS].create_user(username, PASSWORD, role)
        page = await client.get("/login")
        form = {"csrf_token": _csrf(await page.text()), "username": username, "password": PASSWORD}
        assert (await client.post("/login", data=form, allow_redirects=False)).status == 303

    return sign_in_


async def _choose(client: Any, language: str) -> Any:
    page = await client.get("/settings")
    return await client.post("/settings", data={"csrf_token": _csrf(await page.text()), "language": language},
                             allow_redirects=False)


async def test_the_settings_page_asks_for_a_sign_in(client: Any) -> None:
    response = await client.get("/settings", allow_redirects=False)

    assert response.status == 302
    assert response.headers["Location"] in ("/login?next=%2Fsettings", "/login?next=/settings")


async def test_a_member_who_chooses_spanish_reads_the_dashboard_in_spanish(client: Any, sign_in: Any) -> None:
    await sign_in("ana", Role.MEMBER)

    chosen = await _choose(client, "es")
    dashboard = await (await client.get("/")).text()

    assert chosen.status == 303 and chosen.headers["Location"] == "/settings?done=language"
    assert '<html lang="es">' in dashboard
    assert "Demanda actual" in dashboard and 'href="/settings"' in dashboard
    assert '"locale": "es"' in dashboard  # the script's strings come with the page


async def test_the_choice_is_saved_and_shown_selected(client: Any, sign_in: Any) -> None:
    await sign_in()
    await _choose(client, "es")

    page = await (await client.get("/settings?done=language")).text()

    assert "Guardado. Las páginas ya usan su idioma." in page
    assert re.search(r'<option value="es" lang="es" selected>Español</option>', page)
    assert (await client.app[ACCOUNTS].user("owner")).language == "es"


async def test_following_the_site_again_clears_the_choice(client: Any, sign_in: Any) -> None:
    await sign_in()
    await _choose(client, "es")

    await _choose(client, "site")

    assert (await client.app[ACCOUNTS].user("owner")).language is None
    assert '<html lang="en">' in await (await client.get("/")).text()


async def test_a_signed_in_persons_choice_wins_over_the_browsers_language(client: Any, sign_in: Any) -> None:
    await sign_in()

    page = await client.get("/", headers={"Accept-Language": "es"})

    assert '<html lang="en">' in await page.text()


async def test_an_unknown_language_is_refused(client: Any, sign_in: Any) -> None:
    await sign_in()

    response = await _choose(client, "fr")

    assert response.status == 400
    assert (await client.app[ACCOUNTS].user("owner")).language is None


async def test_a_form_without_its_csrf_token_changes_nothing(client: Any, sign_in: Any) -> None:
    await sign_in()

    response = await client.post("/settings", data={"language": "es"})

    assert response.status == 403
    assert (await client.app[ACCOUNTS].user("owner")).language is None


async def test_an_installer_reaches_the_settings_too(client: Any, sign_in: Any) -> None:
    await sign_in("ian", Role.INSTALLER)

    page = await client.get("/settings")
    text = await page.text()

    assert page.status == 200
    assert 'id="site-info"' not in text and 'href="/installer"' in text and 'href="/devices"' not in text


async def test_only_the_owner_sees_the_site_information(client: Any, sign_in: Any) -> None:
    await sign_in()
    owner_page = await (await client.get("/settings")).text()
    await client.post("/logout", data={"csrf_token": _csrf(owner_page)})
    await sign_in("ana", Role.MEMBER)
    member_page = await (await client.get("/settings")).text()

    assert 'id="site-info"' in owner_page and "America/Los_Angeles" in owner_page
    assert 'id="site-info"' not in member_page


async def test_the_nav_links_every_section_and_marks_the_current_one(client: Any, sign_in: Any) -> None:
    await sign_in()

    page = await (await client.get("/settings")).text()
    nav = re.search(r'<nav class="nav".*?</nav>', page, re.S).group(0)

    for href in ("/", "/devices", "/rules", "/settings", "/account/users"):
        assert f'href="{href}"' in nav
    assert '<a href="/settings" aria-current="page">' in nav
    assert "Sign out" in nav


async def test_the_api_keeps_the_text_and_adds_the_readers_words(client: Any, sign_in: Any) -> None:
    await sign_in()
    await _choose(client, "es")

    messages = {m["message_id"]: m for m in (await (await client.get("/api/v1/messages")).json())["messages"]}

    assert messages[2]["text"] == "Energy event 4101 has started: please use less until Mon, Jul 1, 7:00\u202fPM."
    assert messages[2]["display_text"] == "Ha comenzado el evento energético 4101: consuma menos hasta lun, 1 jul, 19:00, por favor."
    assert messages[1]["display_text"] == messages[1]["text"] == "Grid alert from the utility"  # not ours to translate


async def test_the_websocket_sends_local_messages_in_the_readers_language(client: Any, sign_in: Any) -> None:
    await sign_in()
    await _choose(client, "es")

    async with client.ws_connect("/api/v1/ws?lang=es") as ws:
        snapshot = await ws.receive_json()

    shown = {m["message_id"]: m["display_text"] for m in snapshot["data"]["messages"]}
    assert shown[2].startswith("Ha comenzado el evento energético 4101")


async def test_a_message_read_on_one_page_is_read_on_every_open_page(client: Any, sign_in: Any) -> None:
    await sign_in()
    csrf = _csrf(await (await client.get("/settings")).text())
    async with client.ws_connect("/api/v1/ws") as other:
        first = await other.receive_json()
        assert not next(m for m in first["data"]["messages"] if m["message_id"] == 1)["read"]

        answer = await client.post("/api/v1/messages/main/1/read", headers={"X-CSRF-Token": csrf})
        pushed = await asyncio.wait_for(other.receive_json(), 30)  # the bound guards a hang only

    assert answer.status == 200
    assert pushed["topic"] == "snapshot"
    assert next(m for m in pushed["data"]["messages"] if m["message_id"] == 1)["read"]


@pytest.mark.parametrize("site_language", ["es"])
async def test_the_display_link_follows_the_site_language(client: Any, site_language: str) -> None:
    owner = await client.app[ACCOUNTS].user("owner")
    secret = (await client.app[ACCOUNTS].create_kiosk_token(owner, "Hall")).secret

    page = await client.get(f"/ihd?k={secret}", headers={"Accept-Language": "en"})
    text = await page.text()

    assert '<html lang="es">' in text and "Consumo actual" in text


async def test_the_display_takes_a_language_in_its_address(client: Any) -> None:
    owner = await client.app[ACCOUNTS].user("owner")
    secret = (await client.app[ACCOUNTS].create_kiosk_token(owner, "Hall")).secret
    await client.get(f"/ihd?k={secret}")

    text = await (await client.get("/ihd?lang=es")).text()

    assert '<html lang="es">' in text and "Precio actual" in text


async def _unit(client: Any, unit: str) -> Any:
    page = await client.get("/settings")
    return await client.post("/settings", data={"csrf_token": _csrf(await page.text()), "temperature_unit": unit},
                             allow_redirects=False)


async def test_a_californian_site_reads_fahrenheit_and_a_person_may_choose_celsius(client: Any, sign_in: Any) -> None:
    await sign_in()
    page = await (await client.get("/settings")).text()
    assert "The site's unit (°F)" in page  # America/Los_Angeles: the US reads °F
    assert '"temperature_unit": "F"' in await (await client.get("/")).text()  # the dashboard's script

    chosen = await _unit(client, "C")

    assert chosen.status == 303 and chosen.headers["Location"] == "/settings?done=unit"
    assert (await client.app[ACCOUNTS].user("owner")).temperature_unit == "C"
    page = await (await client.get("/settings?done=unit")).text()
    assert "Saved. Temperatures are now shown in your unit." in page
    assert '<option value="C" selected>' in page
    assert '"temperature_unit": "C"' in await (await client.get("/")).text()
    await _unit(client, "site")
    assert (await client.app[ACCOUNTS].user("owner")).temperature_unit is None


async def test_a_unit_other_than_c_or_f_is_refused_with_a_message(client: Any, sign_in: Any) -> None:
    await sign_in()

    refused = await _unit(client, "K")

    assert refused.status == 400
    assert "Choose °C or °F." in await refused.text()


@pytest.mark.parametrize(("timezone", "unit"), [
    ("America/Los_Angeles", "F"), ("America/New_York", "F"), ("Pacific/Honolulu", "F"),
    ("America/Mexico_City", "C"), ("Europe/Madrid", "C"), ("Asia/Shanghai", "C"), ("UTC", "C"),
])
def test_the_default_unit_is_the_one_of_the_time_zones_country(timezone: str, unit: str) -> None:
    assert local_text.default_temperature_unit(timezone) == unit

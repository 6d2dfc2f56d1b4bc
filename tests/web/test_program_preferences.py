"""Program preferences (C6 3.1 step 4): the owner chooses on Settings which of the utility program's
information is shown, and in which language; the choice is kept in the store, and the dashboard
and the In-Home Display leave out what is switched off."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ems import preferences
from ems.accounts import Role
from ems.hub import Hub
from ems.preferences import ProgramPreferences
from tests.hubs import started_hub
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _classes(html: str, marker: str) -> str:
    """The class attribute of the element whose opening tag holds ``marker``."""
    tag = next(t for t in re.findall(r"<[a-z]+ [^>]*>", html) if marker in t)
    return re.search(r'class="([^"]*)"', tag).group(1)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with started_hub(tmp_path) as hub:
        yield hub


@pytest.fixture
async def client(client: Any) -> Any:
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


async def _save(client: Any, *shown: str, language: str = "site") -> Any:
    page = await (await client.get("/settings")).text()
    form = {"csrf_token": _csrf(page), "program": "1", "program_language": language,
            **{name: "on" for name in shown}}
    return await client.post("/settings", data=form, allow_redirects=False)


async def test_everything_is_shown_until_the_customer_chooses(client: Any, sign_in: Any) -> None:
    await sign_in()
    settings = await (await client.get("/settings")).text()
    for name in preferences.INFORMATION:
        assert re.search(rf'id="show-{name}" checked', settings), name
    dashboard = await (await client.get("/")).text()
    assert "pref-off" not in dashboard and 'data-hide=""' in dashboard


async def test_what_is_switched_off_leaves_the_dashboard_and_the_display(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    response = await _save(client, "usage_and_demand", "scheduled_prices")
    assert response.status == 303 and response.headers["Location"] == "/settings?done=program"
    assert hub.preferences == ProgramPreferences(current_price=False, dr_events=False, current_tier=False)
    settings = await (await client.get("/settings?done=program")).text()
    assert 'id="show-current_price">' in settings and 'id="show-usage_and_demand" checked' in settings

    dashboard = await (await client.get("/")).text()
    assert 'data-hide="current_price current_tier dr_events"' in dashboard
    assert "pref-off" in _classes(dashboard, 'id="price-tile"')
    assert "pref-off" in _classes(dashboard, 'id="events-panel"')
    assert "pref-off" not in _classes(dashboard, 'id="usage-panel"')
    assert "pref-off" not in _classes(dashboard, 'id="rate-periods"')

    display = await (await client.get("/ihd")).text()
    assert 'data-hide="current_price current_tier dr_events"' in display
    assert "pref-off" in _classes(display, 'id="tier"')
    price = display[:display.index('id="price"')]
    assert "pref-off" in price[price.rindex("<section"):]


async def test_usage_and_scheduled_prices_off(client: Any, sign_in: Any) -> None:
    await sign_in()
    await _save(client, "current_price", "dr_events", "current_tier")
    dashboard = await (await client.get("/")).text()
    assert "pref-off" in _classes(dashboard, 'id="usage-panel"')
    assert "pref-off" in _classes(dashboard, 'id="rate-periods"')
    assert "pref-off" in _classes(dashboard, 'id="demand-tile"')
    assert "pref-off" not in _classes(dashboard, 'id="price-tile"')


async def test_the_choice_is_kept_across_a_restart(tmp_path: Path) -> None:
    async with started_hub(tmp_path) as hub:
        await preferences.save(hub.store, ProgramPreferences(dr_events=False, language="zh"), hub.clock(), "owner")
    from ems.config import load_config

    again = Hub(load_config(tmp_path / "config"), tmp_path / "data")
    await again.start()
    try:
        assert again.preferences == ProgramPreferences(dr_events=False, language="zh")
    finally:
        await again.stop()


async def test_the_programs_language_is_the_displays_and_the_sites(client: Any, sign_in: Any) -> None:
    await sign_in()
    await _save(client, *preferences.INFORMATION, language="es")
    assert 'lang="es"' in await (await client.get("/settings")).text()  # the owner follows the site's
    assert 'lang="es"' in await (await client.get("/ihd")).text()


async def test_a_household_member_neither_sees_nor_changes_them(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in("kid", Role.MEMBER)
    settings = await (await client.get("/settings")).text()
    assert 'name="program"' not in settings
    response = await client.post("/settings", data={"csrf_token": _csrf(settings), "program": "1"},
                                 allow_redirects=False)
    assert response.status == 403
    assert hub.preferences == ProgramPreferences()


async def test_an_unknown_language_is_refused(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    response = await _save(client, "current_price", language="fr")
    assert response.status == 400
    assert hub.preferences == ProgramPreferences()

"""The In-Home Display over HTTP: display links, the kiosk cookie, and what a display link may reach."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from argon2 import PasswordHasher

from ems.accounts import AccountRejected, Accounts, Role, Scope
from ems.hub import Hub
from web.app import create_app
from web.auth import ACCOUNTS, KIOSK_COOKIE
from web.ihd import display_origin, reachable_only_here
from web.keys import LISTEN, Listen

PASSWORD = "correct horse battery"


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@pytest.fixture
def site_name() -> str:
    return "Test shop"


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    app = create_app(hub)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    app.router.add_post("/api/v1/messages/{meter}/{message}/confirm", _ok)  # a write a display must not reach
    return await aiohttp_client(app)


@pytest.fixture
async def owner(client: Any) -> Any:
    return await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)


@pytest.fixture
async def kiosk(client: Any, owner: Any) -> str:
    return (await client.app[ACCOUNTS].create_kiosk_token(owner, "  Shop   wall ")).secret


async def _open_link(client: Any, secret: str) -> Any:
    return await client.get(f"/ihd?k={secret}", allow_redirects=False)


async def test_a_kiosk_token_is_named_for_its_place_and_only_reads(client: Any, owner: Any) -> None:
    created = await client.app[ACCOUNTS].create_kiosk_token(owner, " Shop  wall ")

    assert created.token.name == "Kiosk: Shop wall"
    assert created.token.scopes == {Scope.READ}
    assert created.token.is_kiosk
    with pytest.raises(AccountRejected, match="Say where the display hangs"):
        await client.app[ACCOUNTS].create_kiosk_token(owner, "  ")


async def test_the_link_sets_an_httponly_cookie_and_drops_the_token_from_the_address(
    client: Any, kiosk: str
) -> None:
    response = await _open_link(client, kiosk)

    assert response.status == 303
    assert response.headers["Location"] == "/ihd"
    cookie = response.cookies[KIOSK_COOKIE]
    assert cookie.value == kiosk
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"


async def test_the_display_and_its_data_open_with_the_kiosk_cookie(client: Any, kiosk: str) -> None:
    await _open_link(client, kiosk)

    page = await client.get("/ihd", allow_redirects=False)
    meter = await client.get("/api/v1/meter")
    async with client.ws_connect("/api/v1/ws") as ws:
        snapshot = await ws.receive_json()

    assert page.status == 200
    assert "/static/ihd.js" in await page.text() and 'data-kiosk="1"' in await page.text()
    assert meter.status == 200
    assert snapshot["topic"] == "snapshot"
    uses = [u.path for u in await client.app[ACCOUNTS].token_uses()]
    assert "/api/v1/ws" in uses and "/ihd" in uses


async def test_the_kiosk_cookie_cannot_write_nor_reach_other_pages(client: Any, kiosk: str) -> None:
    await _open_link(client, kiosk)

    post = await client.post("/api/v1/messages/m1/7/confirm", json={})
    account = await client.get("/account/users", allow_redirects=False)
    tokens = await client.get("/account/tokens", allow_redirects=False)
    dashboard = await client.get("/", allow_redirects=False)
    whatif = await client.get("/api/v1/cost/whatif")

    assert post.status == 403
    assert account.status == 403 and "only shows the In-Home Display" in await account.text()
    assert tokens.status == 403
    assert dashboard.status == 403
    assert whatif.status == 403


async def test_a_kiosk_token_sent_as_bearer_is_held_to_the_display_too(client: Any, kiosk: str) -> None:
    headers = {"Authorization": f"Bearer {kiosk}"}

    post = await client.post("/api/v1/messages/m1/7/confirm", json={}, headers=headers)
    read = await client.get("/api/v1/meter", headers=headers)
    other = await client.get("/api/v1/cost/whatif", headers=headers)

    assert (post.status, read.status, other.status) == (403, 200, 403)


async def test_an_ordinary_token_is_not_a_display_link(client: Any, owner: Any) -> None:
    full = await client.app[ACCOUNTS].create_token(owner, "scripts", owner.scopes)

    response = await _open_link(client, full.secret)

    assert response.status == 401
    assert "This display link was revoked" in await response.text()
    assert KIOSK_COOKIE not in client.session.cookie_jar.filter_cookies(client.make_url("/"))


async def test_a_revoked_link_says_so_instead_of_asking_for_a_login(client: Any, kiosk: str) -> None:
    await _open_link(client, kiosk)
    accounts = client.app[ACCOUNTS]
    token = next(t for t in await accounts.tokens() if t.is_kiosk)
    await accounts.revoke_token(token.id)

    api = await client.get("/api/v1/meter")
    ws = await client.get("/api/v1/ws")
    page = await client.get("/ihd", allow_redirects=False)
    text = await page.text()

    assert api.status == 401 and "display link was revoked" in (await api.json())["error"]
    assert ws.status == 401
    assert page.status == 401
    assert "This display link was revoked" in text and 'id="password"' not in text


async def test_the_display_without_a_link_asks_for_a_sign_in(client: Any, owner: Any) -> None:
    response = await client.get("/ihd", allow_redirects=False)

    assert response.status == 302
    assert response.headers["Location"] in ("/login?next=/ihd", "/login?next=%2Fihd")


async def test_the_owner_creates_a_display_link_on_the_tokens_page(client: Any, owner: Any) -> None:
    login = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await login.text()).group(1)
    await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": PASSWORD})
    tokens_page = await (await client.get("/account/tokens")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', tokens_page).group(1)

    refused = await client.post("/account/kiosk", data={"place": "Kitchen"})
    empty = await client.post("/account/kiosk", data={"csrf_token": csrf, "place": " "})
    created = await client.post("/account/kiosk", data={"csrf_token": csrf, "place": "Kitchen"})
    link = re.search(r'id="kiosk-link"[^>]*>([^<]+)</textarea>', await created.text()).group(1)
    listed = await (await client.get("/account/tokens")).text()

    assert refused.status == 403
    assert empty.status == 400 and "Say where the display hangs" in await empty.text()
    assert created.status == 200
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/ihd\?k=ems_[\w-]+", link)
    assert "Kiosk: Kitchen" in listed and 'aria-label="Revoke the display link Kiosk: Kitchen"' in listed


async def test_the_link_keeps_the_displays_language_and_night_dimming(client: Any, kiosk: str) -> None:
    response = await client.get(f"/ihd?k={kiosk}&lang=es&dim=22:00-07:00", allow_redirects=False)
    odd = await client.get(f"/ihd?k={kiosk}&lang=xx&dim=late", allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/ihd?lang=es&dim=22%3A00-07%3A00"
    assert odd.headers["Location"] == "/ihd"  # an unknown language or a malformed range is dropped
    shown = await client.get(response.headers["Location"])
    assert '<html lang="es">' in await shown.text()


async def test_a_display_link_carries_its_language_night_dimming_and_a_qr_code(client: Any, owner: Any) -> None:
    login = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await login.text()).group(1)
    await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": PASSWORD})
    settings = await (await client.get("/settings")).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', settings).group(1)

    created = await client.post("/account/kiosk", data={"csrf_token": csrf, "place": "Hall", "lang": "zh", "dim": "on",
                                                         "dim_from": "21:30", "dim_to": "06:45"})
    page = await created.text()
    link = re.search(r'id="kiosk-link"[^>]*>([^<]+)</textarea>', page).group(1)

    assert 'id="wall-title"' in settings and 'id="wall-address"' in settings and "<svg" in settings
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/ihd\?k=ems_[\w-]+&amp;lang=zh&amp;dim=21%3A30-06%3A45", link)
    assert page.count("<svg") == 2  # the new link's QR code, and the display address's
    assert 'id="wall-local"' in page  # 127.0.0.1: the page says a wall screen cannot reach it


def test_the_configured_public_address_names_the_display(hub: Hub) -> None:
    app = create_app(hub)
    app[LISTEN] = Listen("127.0.0.1", 8080)
    object.__setattr__(hub.config, "web", replace(hub.config.web, public_url="http://192.168.1.20:8080/"))

    assert display_origin(app) == "http://192.168.1.20:8080"
    assert not reachable_only_here(app)

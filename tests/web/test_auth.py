"""Access to the dashboard and the API over HTTP: setup, sign-in, cookies, CSRF, roles, tokens, consent."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from argon2 import PasswordHasher

from ems.accounts import Accounts, Role, Scope
from ems.hub import Hub
from tests.processes import running_demo
from web.app import create_app
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})




def _app(hub: Hub, demo: bool = False) -> web.Application:
    app = create_app(hub, demo=demo)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    # Stand-ins for the write routes the dashboard issue adds (confirm, override, settings).
    app.router.add_post("/api/v1/messages/{meter}/{message}/stand-in", _ok)
    app.router.add_post("/api/v1/events/{event}/override", _ok)
    app.router.add_post("/api/v1/settings", _ok)
    return app


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    return await aiohttp_client(_app(hub))


@pytest.fixture
def accounts(client: Any) -> Accounts:
    return client.app[ACCOUNTS]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def _sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    page = await client.get("/login")
    form = {"csrf_token": _csrf(await page.text()), "username": username, "password": password}
    return await client.post("/login", data=form, allow_redirects=False)


async def _user(accounts: Accounts, username: str, role: Role) -> Any:
    return await accounts.create_user(username, PASSWORD, role)


async def _token(accounts: Accounts, scopes: list[Scope], role: Role = Role.OWNER) -> dict[str, str]:
    user = await accounts.user("owner") or await _user(accounts, "owner", Role.OWNER)
    if role is not Role.OWNER:
        user = await _user(accounts, f"a-{role.value}", role)
    new = await accounts.create_token(user, "test", scopes)
    return {"Authorization": f"Bearer {new.secret}"}


async def _page_csrf(client: Any, path: str = "/account/users") -> str:
    return _csrf(await (await client.get(path)).text())


# -- first start, public routes ---------------------------------------------------------------


async def test_health_is_public_and_shows_no_customer_data(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await client.get("/api/v1/health")

    assert response.status == 200
    body = await response.json()
    assert set(body) == {"status", "uptime_s", "meter_links", "frames", "problems"}
    assert not re.search(r"kwh|kw\b|price|message|event|owner", (await response.text()).lower())


async def test_first_start_shows_the_setup_page(client: Any) -> None:
    response = await client.get("/", allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (302, "/setup")
    page = await client.get("/setup")
    assert "create the owner" in (await page.text()).lower()


async def test_setup_creates_the_owner_and_signs_in(client: Any, accounts: Accounts) -> None:
    page = await client.get("/setup")
    form = {"csrf_token": _csrf(await page.text()), "username": "Ann", "password": PASSWORD,
            "confirm": PASSWORD}

    response = await client.post("/setup", data=form, allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (303, "/")
    assert (await accounts.user("ann")).role is Role.OWNER
    assert (await client.get("/api/v1/meter")).status == 200


async def test_setup_is_gone_once_the_owner_exists(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await client.get("/setup", allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (302, "/login")


async def test_the_api_without_credentials_is_a_401_json(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await client.get("/api/v1/meter")

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["status"] == 401


async def test_a_page_without_a_session_goes_to_the_login(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await client.get("/account/users", allow_redirects=False)

    assert response.status == 302
    assert response.headers["Location"] == "/login?next=/account/users"


# -- sign-in, cookies, CSRF ---------------------------------------------------------------------


async def test_the_session_cookie_is_httponly_and_samesite_lax(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await _sign_in(client, "owner")

    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("ems_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on the LAN: a Secure cookie would never come back


async def test_the_session_cookie_is_secure_over_https(hub: Hub, aiohttp_client: Any) -> None:
    @web.middleware
    async def behind_tls(request: web.Request, handler: Any) -> web.StreamResponse:
        return await handler(request.clone(scheme="https"))  # what a TLS front end does

    app = _app(hub)
    app.middlewares.insert(0, behind_tls)
    client = await aiohttp_client(app)
    await _user(client.app[ACCOUNTS], "owner", Role.OWNER)
    page = await client.get("/login")
    csrf = _csrf(await page.text())
    assert "Secure" in page.headers["Set-Cookie"]  # so the test client keeps it to itself

    response = await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": PASSWORD},
                                 cookies={"ems_csrf": csrf}, allow_redirects=False)

    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("ems_session="))
    assert "Secure" in cookie


async def test_the_session_id_is_random_and_new_at_each_sign_in(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    ids = set()
    for _ in range(2):
        client.session.cookie_jar.clear()
        response = await _sign_in(client, "owner")
        ids.add(response.cookies["ems_session"].value)

    assert len(ids) == 2 and all(len(i) >= 43 for i in ids)


async def test_a_form_without_its_csrf_token_is_refused(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")
    form = {"action": "add", "username": "bob", "password": PASSWORD, "role": "member"}

    response = await client.post("/account/users", data=form)

    assert response.status == 403
    assert await accounts.user("bob") is None


async def test_a_form_with_its_csrf_token_is_accepted(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")
    form = {"action": "add", "username": "bob", "password": PASSWORD, "role": "member",
            "csrf_token": await _page_csrf(client)}

    response = await client.post("/account/users", data=form)

    assert response.status == 200 and "User added." in await response.text()
    assert (await accounts.user("bob")).role is Role.MEMBER


async def test_an_api_write_with_the_cookie_needs_the_csrf_header(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")

    refused = await client.post("/api/v1/events/7/override")
    accepted = await client.post("/api/v1/events/7/override",
                                 headers={"X-CSRF-Token": await _page_csrf(client)})

    assert (refused.status, accepted.status) == (403, 200)


async def test_a_bearer_token_needs_no_csrf_token(client: Any, accounts: Accounts) -> None:
    headers = await _token(accounts, [Scope.OVERRIDE_EVENTS])

    response = await client.post("/api/v1/events/7/override", headers=headers)

    assert response.status == 200


async def test_the_login_form_without_its_csrf_token_is_refused(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await client.post("/login", data={"username": "owner", "password": PASSWORD})

    assert response.status == 403
    assert "ems_session" not in response.cookies


async def test_a_wrong_password_says_so_without_naming_the_cause(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    wrong_password = await _sign_in(client, "owner", "not it at all")
    unknown_user = await _sign_in(client, "nobody", "not it at all")

    assert wrong_password.status == unknown_user.status == 401
    assert "Wrong user name or password." in await wrong_password.text()
    assert "Wrong user name or password." in await unknown_user.text()


async def test_five_failures_show_the_lockout_on_the_page(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    for _ in range(4):
        assert (await _sign_in(client, "owner", "guess")).status == 401

    fifth = await _sign_in(client, "owner", "guess")
    right = await _sign_in(client, "owner")

    assert fifth.status == right.status == 429
    assert 1 <= int(right.headers["Retry-After"]) <= 60
    assert "Too many failed sign-ins with this name" in await right.text()


async def test_logout_ends_the_session(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")
    csrf = await _page_csrf(client)

    response = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (303, "/login?bye")
    assert (await client.get("/api/v1/meter")).status == 401


async def test_the_next_page_is_kept_through_the_sign_in(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    page = await client.get("/login?next=/account/tokens")
    form = {"csrf_token": _csrf(await page.text()), "username": "owner", "password": PASSWORD}

    response = await client.post("/login?next=/account/tokens", data=form, allow_redirects=False)

    assert response.headers["Location"] == "/account/tokens"


async def test_the_next_page_never_leads_off_the_appliance(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    page = await client.get("/login")
    form = {"csrf_token": _csrf(await page.text()), "username": "owner", "password": PASSWORD}

    response = await client.post("/login?next=//evil.example/", data=form, allow_redirects=False)

    assert response.headers["Location"] == "/"


# -- roles ---------------------------------------------------------------------------------------


async def test_an_installer_cannot_see_the_dashboard_api(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _user(accounts, "ian", Role.INSTALLER)
    signed_in = await _sign_in(client, "ian")

    assert signed_in.headers["Location"] == "/installer"
    assert (await client.get("/api/v1/meter")).status == 403
    assert (await client.get("/")).status == 403
    assert (await client.get("/installer")).status == 200


async def test_a_member_can_confirm_a_message(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _user(accounts, "mia", Role.MEMBER)
    await _sign_in(client, "mia")

    response = await client.post("/api/v1/messages/main/7/stand-in",
                                 headers={"X-CSRF-Token": await _session_csrf(client, accounts)})

    assert response.status == 200


async def _session_csrf(client: Any, accounts: Accounts) -> str:
    """The CSRF token of the client's session (what the dashboard hands its scripts)."""
    session_id = client.session.cookie_jar.filter_cookies(client.make_url("/"))["ems_session"].value
    return (await accounts.session(session_id)).csrf_token


async def test_a_member_cannot_manage_users(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _user(accounts, "mia", Role.MEMBER)
    await _sign_in(client, "mia")

    page = await client.get("/account/users")
    write = await client.post("/account/users", data={
        "action": "add", "username": "eve", "password": PASSWORD, "role": "owner",
        "csrf_token": await _session_csrf(client, accounts)})

    assert (page.status, write.status) == (403, 403)
    assert "may not do this" in await page.text()
    assert await accounts.user("eve") is None


async def test_an_unnamed_write_is_for_the_owner_only(client: Any, accounts: Accounts) -> None:
    member = await _token(accounts, [Scope.READ, Scope.CONFIRM_MESSAGES, Scope.OVERRIDE_EVENTS], Role.MEMBER)
    owner = await _token(accounts, [Scope.ADMIN])

    assert (await client.post("/api/v1/settings", headers=member)).status == 403
    assert (await client.post("/api/v1/settings", headers=owner)).status == 200


# -- tokens and consent -----------------------------------------------------------------------------


async def test_a_read_token_reads_but_cannot_confirm(client: Any, accounts: Accounts) -> None:
    headers = await _token(accounts, [Scope.READ])

    assert (await client.get("/api/v1/messages", headers=headers)).status == 200
    refused = await client.post("/api/v1/messages/main/7/stand-in", headers=headers)
    assert refused.status == 403
    assert "confirm_messages" in (await refused.json())["error"]


async def test_a_confirm_token_cannot_read(client: Any, accounts: Accounts) -> None:
    headers = await _token(accounts, [Scope.CONFIRM_MESSAGES])

    assert (await client.get("/api/v1/meter", headers=headers)).status == 403
    assert (await client.post("/api/v1/messages/main/7/stand-in", headers=headers)).status == 200


async def test_an_unknown_token_is_a_401(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    response = await client.get("/api/v1/meter", headers={"Authorization": "Bearer ems_nothing"})

    assert response.status == 401


async def test_token_use_is_logged_and_shown_to_the_owner(client: Any, accounts: Accounts) -> None:
    headers = await _token(accounts, [Scope.READ])
    await client.get("/api/v1/meter", headers=headers)
    await client.post("/api/v1/events/9/override", headers=headers)

    uses = await accounts.token_uses()
    await _sign_in(client, "owner")
    page = await (await client.get("/account/tokens")).text()

    assert [(u.method, u.path, u.status) for u in uses] == [
        ("POST", "/api/v1/events/9/override", 403),
        ("GET", "/api/v1/meter", 200),
    ]
    assert "GET /api/v1/meter" in page and "POST /api/v1/events/9/override" in page


async def test_a_token_is_shown_once_at_creation(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")
    form = {"action": "create", "name": "tablet", "scope_read": "on",
            "csrf_token": await _page_csrf(client, "/account/tokens")}

    created = await (await client.post("/account/tokens", data=form)).text()
    secret = re.search(r'value="(ems_[^"]+)"', created).group(1)
    later = await (await client.get("/account/tokens")).text()

    assert secret not in later and "tablet" in later
    assert (await client.get("/api/v1/meter", headers={"Authorization": f"Bearer {secret}"})).status == 200


async def test_revoking_a_consent_on_the_page_revokes_its_token(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")
    csrf = await _page_csrf(client, "/account/consents")
    granted = await client.post("/account/consents", data={
        "action": "grant", "party": "GridFlex", "scope_read": "on", "agree": "on", "csrf_token": csrf})
    secret = re.search(r'value="(ems_[^"]+)"', await granted.text()).group(1)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/meter", headers=bearer)).status == 200
    [consent] = await accounts.consents()

    await client.post("/account/consents", data={
        "action": "revoke", "consent_id": str(consent.id), "csrf_token": csrf})

    assert (await client.get("/api/v1/meter", headers=bearer)).status == 401
    assert not (await accounts.consents())[0].active


async def test_consent_needs_the_owners_explicit_tick(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")
    csrf = await _page_csrf(client, "/account/consents")

    response = await client.post("/account/consents", data={
        "action": "grant", "party": "GridFlex", "scope_read": "on", "csrf_token": csrf})

    assert response.status == 400
    assert await accounts.consents() == []


async def test_the_websocket_needs_credentials(client: Any, accounts: Accounts) -> None:
    headers = await _token(accounts, [Scope.READ])
    secret = headers["Authorization"].removeprefix("Bearer ")

    refused = await client.get("/api/v1/ws")
    async with client.ws_connect(f"/api/v1/ws?token={secret}") as ws:
        snapshot = await ws.receive_json()

    assert refused.status == 401
    assert snapshot["topic"] == "snapshot"
    assert [u.path for u in await accounts.token_uses()] == ["/api/v1/ws"]  # never the query


async def test_the_websocket_opens_with_the_session_cookie(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)
    await _sign_in(client, "owner")

    async with client.ws_connect("/api/v1/ws") as ws:
        assert (await ws.receive_json())["topic"] == "snapshot"


# -- demo ------------------------------------------------------------------------------------------


async def test_the_login_page_names_the_demo_account_in_demo_mode(hub: Hub, aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app(hub, demo=True))
    await _user(client.app[ACCOUNTS], "demo", Role.OWNER)

    page = await (await client.get("/login")).text()

    assert re.search(r"sign in as <strong>demo</strong> with the password <strong>demo</strong>", page)


async def test_the_login_page_names_no_account_outside_demo_mode(client: Any, accounts: Accounts) -> None:
    await _user(accounts, "owner", Role.OWNER)

    assert "demo" not in (await (await client.get("/login")).text()).lower()


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # guards a hang only
            return response.status
    except urllib.error.HTTPError as err:
        err.close()  # the error holds the response body open; unclosed, GC warns later
        return err.code


def test_ems_demo_creates_the_demo_owner_and_writes_its_token(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_demo(data) as demo:  # waits for the demo to say it is ready, not for a number of seconds
        token_file = data / "demo-api-token"
        assert token_file.exists(), "ems demo wrote no token"
        token = token_file.read_text().strip()
        assert _get(demo.url + "/api/v1/meter", token) == 200
        assert _get(demo.url + "/api/v1/meter") == 401
        returncode = demo.stop()
        err = demo.stderr
    assert returncode == 0, err
    assert token not in err

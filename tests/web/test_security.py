"""Security findings of issue 11 (finding 7): the sign-in's next page, response headers, the files
the appliance writes, and the display link's host."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher

from ems.accounts import MAX_FAILURES, Accounts, Role, _write_secret
from ems.clock import FixedClock
from ems.hub import Hub
from tests.hubs import new_hub, started_hub
from web.app import WebServer, create_app
from web.auth import ACCOUNTS, DEVICE_COOKIE, _safe_next
from web.ihd import display_origin, lan_address
from web.keys import HUB, LISTEN, Listen
from web.throttle import FREE_FAILURES, MAX_DELAY, ClientThrottle

PASSWORD = "correct horse battery"

HOSTILE_NEXT = [
    "//evil.example/",
    "/\\evil.example/",
    "/%09/evil.example/phish",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "https://evil.example/",
    "http:/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/ /evil.example",
    "/%20/evil.example",
    "/%00/evil.example",
    "/%0d%0aSet-Cookie:x=1",
    "javascript:alert(1)",
    "/%E2%80%A8/evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_NEXT)
def test_a_hostile_next_page_becomes_the_dashboard(value: str) -> None:
    assert _safe_next(value) == "/"


@pytest.mark.parametrize("value", ["/", "/account/tokens", "/ihd", "/rules?x=1", "/devices/plug%2D1"])
def test_a_path_on_the_appliance_is_kept(value: str) -> None:
    assert _safe_next(value) == value


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize("query", ["/%09/evil.example/phish", "%2F%2Fevil.example", "/%5Cevil.example"])
async def test_signing_in_with_a_hostile_next_stays_on_the_appliance(client: Any, query: str) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    page = await client.get("/login")
    form = {"csrf_token": _csrf(await page.text()), "username": "owner", "password": PASSWORD}

    response = await client.post(f"/login?next={query}", data=form, allow_redirects=False)

    assert response.status == 303 and response.headers["Location"] == "/"


# -- headers -------------------------------------------------------------------------------------

async def _signed_in(client: Any) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    page = await client.get("/login")
    form = {"csrf_token": _csrf(await page.text()), "username": "owner", "password": PASSWORD}
    await client.post("/login", data=form, allow_redirects=False)


@pytest.mark.parametrize("path", [
    "/", "/ihd", "/login", "/api/v1/health", "/api/v1/meter", "/api/v1/nowhere", "/nowhere",
    "/static/live.js", "/static/nothing.js", "/account/tokens",
])
async def test_every_response_carries_the_security_headers(client: Any, path: str) -> None:
    await _signed_in(client)

    response = await client.get(path, allow_redirects=False)

    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in directives.get("script-src", []) and "'unsafe-eval'" not in csp
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_an_error_response_carries_them_too(client: Any) -> None:
    response = await client.post("/api/v1/health")  # 405, answered by aiohttp itself

    assert response.status == 405 and "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_server_header_names_no_version(client: Any) -> None:
    for path in ("/", "/api/v1/health", "/static/live.js", "/nowhere"):
        server = (await client.get(path, allow_redirects=False)).headers.get("Server", "")
        assert not re.search(r"\d|python|aiohttp", server, re.IGNORECASE), (path, server)


# -- files ---------------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_the_database_and_its_wal_are_for_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, under which SQLite makes files 0644
    try:
        hub = new_hub(tmp_path)
        await hub.store.open()
        try:
            accounts = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
            await accounts.create_user("owner", PASSWORD, Role.OWNER)  # a write: the -wal and -shm exist
            data = tmp_path / "data"
            files = sorted(p.name for p in data.iterdir())
            modes = {name: _mode(data / name) for name in files}
        finally:
            await hub.store.close()
    finally:
        os.umask(old)

    assert {"ems.db", "ems.db-wal", "ems.db-shm"} <= set(files)
    assert all(mode == 0o600 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}


async def test_a_database_made_readable_to_all_is_closed_again(tmp_path: Path) -> None:
    hub = new_hub(tmp_path)
    await hub.store.open()
    await hub.store.close()
    db = tmp_path / "data" / "ems.db"
    db.chmod(0o644)

    await hub.store.open()
    await hub.store.close()

    assert _mode(db) == 0o600


async def test_the_data_directory_is_created_for_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, under which a new directory is 0755
    try:
        async with started_hub(tmp_path) as hub:
            mode = _mode(hub.data_dir)
    finally:
        os.umask(old)

    assert mode == 0o700, oct(mode)


async def test_a_data_directory_readable_to_all_is_tightened_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    caplog.set_level(logging.INFO, logger="ems.store.engine")

    async with started_hub(tmp_path):
        pass

    assert _mode(data) == 0o700
    assert any("was mode 755; now 700" in r.getMessage() for r in caplog.records), caplog.text


async def test_the_store_alone_makes_its_folder_for_the_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        hub = new_hub(tmp_path)
        await hub.store.open()
        await hub.store.close()
    finally:
        os.umask(old)

    assert _mode(tmp_path / "data") == 0o700


def test_a_secret_file_readable_to_all_is_closed_when_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old\n")
    path.chmod(0o644)

    _write_secret(path, "new\n")

    assert _mode(path) == 0o600 and path.read_text() == "new\n"


# -- the display link ----------------------------------------------------------------------------

async def test_a_forged_host_does_not_change_the_display_link(client: Any, hub: Hub) -> None:
    await _signed_in(client)
    csrf = _csrf(await (await client.get("/account/tokens")).text())
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}

    created = await client.post("/account/kiosk", data={"csrf_token": csrf, "place": "Kitchen"}, headers=forged)

    assert created.status == 200
    link = re.search(r'id="kiosk-link"[^>]*>([^<]+)</textarea>', await created.text())
    assert link is not None
    web = hub.config.web
    assert re.fullmatch(rf"http://{re.escape(web.host)}:{web.port}/ihd\?k=ems_[\w-]+", link.group(1))


@pytest.mark.parametrize(("host", "origin"), [
    ("127.0.0.1", "http://127.0.0.1:8080"),
    ("ems.local", "http://ems.local:8080"),
    ("::1", "http://[::1]:8080"),
    ("0.0.0.0", f"http://{lan_address()}:8080"),  # listening everywhere: the machine's LAN address
    ("::", f"http://{lan_address()}:8080"),
])
def test_the_display_origin_is_the_configured_address(hub: Hub, host: str, origin: str) -> None:
    app = create_app(hub)
    app[LISTEN] = Listen(host, 8080)

    assert display_origin(app) == origin


async def test_the_display_origin_names_the_port_bound(hub: Hub) -> None:
    server = WebServer(hub, "127.0.0.1", 0)
    await server.start()
    try:
        origin, url = display_origin(server.app), server.url
    finally:
        await server.stop()

    assert origin == url and not origin.endswith(":0")


# -- sign-in: bounded hashing ---------------------------------------------------------------------

class _GatedHasher(PasswordHasher):
    """A hasher whose verify waits for the test's word, counting how many run at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.go = threading.Event()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002 (argon2's name)
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.go.wait(10)
        with self.lock:
            self.running -= 1
        return super().verify(hash, password)


async def test_at_most_two_passwords_are_hashed_at_once(hub: Hub) -> None:
    hasher = _GatedHasher()
    accounts = Accounts(hub.store, hasher)
    await accounts.create_user("owner", PASSWORD, Role.OWNER)
    attempts = [asyncio.create_task(accounts.verify_login(f"name{i}", "wrong password")) for i in range(8)]
    try:
        for _ in range(1000):  # until two are hashing (the rest, unbounded, would start as soon)
            await asyncio.sleep(0.001)
            if hasher.running >= 2:
                break
        await asyncio.sleep(0.05)  # room for a third to start, if anything let it
        peak = hasher.peak
    finally:
        hasher.go.set()
        await asyncio.gather(*attempts)

    assert peak == 2


# -- sign-in: backoff per client ------------------------------------------------------------------

async def test_one_client_trying_many_names_is_slowed(client: Any) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    answers = []
    for i in range(FREE_FAILURES + 2):  # the free ones, one that starts the backoff, one refused
        page = await client.get("/login")
        form = {"csrf_token": _csrf(await page.text()), "username": f"name{i}", "password": "guess"}
        answers.append(await client.post("/login", data=form, allow_redirects=False))

    assert [a.status for a in answers[:-1]] == [401] * (FREE_FAILURES + 1)
    assert answers[-1].status == 429 and int(answers[-1].headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins from this device" in await answers[-1].text()


def test_the_backoff_doubles_is_capped_and_is_per_client() -> None:
    throttle, now = ClientThrottle(), datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(FREE_FAILURES):
        throttle.failed("198.51.100.7", now)
    assert throttle.wait_until("198.51.100.7", now) is None  # the free failures cost nothing
    waits = []
    for _ in range(12):
        throttle.failed("198.51.100.7", now)
        until = throttle.wait_until("198.51.100.7", now)
        assert until is not None
        waits.append(until - now)

    assert waits[:3] == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]
    assert max(waits) == MAX_DELAY
    assert throttle.wait_until("192.0.2.1", now) is None  # the owner elsewhere is not slowed
    throttle.succeeded("198.51.100.7")
    assert throttle.wait_until("198.51.100.7", now) is None


async def test_a_request_too_malformed_for_the_app_names_no_version_either(hub: Hub) -> None:
    server = WebServer(hub, "127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")  # aiohttp's parser answers
        head = (await reader.read()).split(b"\r\n\r\n")[0].decode()
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()

    assert head.startswith("HTTP/1.0 400")
    assert not re.search(r"(?im)^server:.*(\d|python|aiohttp)", head), head


# -- sign-in: a stranger cannot lock the owner out ------------------------------------------------

async def _try(client: Any, username: str, password: str) -> Any:
    page = await client.get("/login")
    form = {"csrf_token": _csrf(await page.text()), "username": username, "password": password}
    return await client.post("/login", data=form, allow_redirects=False)


@pytest.fixture
async def fixed_client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Any]:
    """The web app on a hub whose clock the test holds."""
    hub = new_hub(tmp_path, clock=FixedClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)))
    await hub.store.open()
    app = create_app(hub)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield await aiohttp_client(app)
    await hub.store.close()


async def test_a_stranger_locks_the_name_but_not_the_owners_browser(fixed_client: Any) -> None:
    client = fixed_client
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    first = await _try(client, "owner", PASSWORD)
    assert first.status == 303
    device = first.cookies[DEVICE_COOKIE].value
    client.session.cookie_jar.clear()  # now a stranger's browser, on the same address

    for _ in range(MAX_FAILURES):
        await _try(client, "owner", "guess")
    stranger = await _try(client, "owner", PASSWORD)
    assert stranger.status == 429 and int(stranger.headers["Retry-After"]) == 60  # the hub's clock: a minute
    assert "Too many failed sign-ins with this name" in await stranger.text()

    client.session.cookie_jar.update_cookies({DEVICE_COOKIE: device})  # the owner's own browser
    owner = await _try(client, "owner", PASSWORD)
    assert owner.status == 303 and owner.headers["Location"] == "/"


async def test_the_known_device_cookie_is_httponly_strict_and_for_the_sign_in_only(client: Any) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)

    response = await _try(client, "owner", PASSWORD)

    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith(f"{DEVICE_COOKIE}="))
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/login" and int(attributes["max-age"].split("=")[1]) >= 365 * 86400


async def test_the_name_lock_follows_the_hub_clock(fixed_client: Any) -> None:
    client = fixed_client
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    for _ in range(MAX_FAILURES):
        await _try(client, "owner", "guess")
    assert (await _try(client, "owner", PASSWORD)).status == 429

    client.app[HUB].clock.advance(minutes=1)  # type: ignore[attr-defined]

    assert (await _try(client, "owner", PASSWORD)).status == 303


async def test_sixty_names_from_one_client_are_slowed(client: Any) -> None:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    statuses = [(await _try(client, f"name{i}", "guess")).status for i in range(60)]

    assert statuses.count(401) == FREE_FAILURES + 1 and statuses.count(429) == 60 - FREE_FAILURES - 1

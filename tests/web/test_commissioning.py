"""The Commissioning page (/commissioning) and its API: the identity as the utility registers it (text,
QR code, printable label), where to register, each meter's stages, the self-test; owner and installer
only; the link key never in a page, an API answer or the log."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import zigpy.util

from ems.accounts import Role
from ems.clock import FixedClock
from ems.hub import Hub
from ems.identity import load_or_create
from ems.model import CommissioningStage, CommissioningStep, LinkState, MeterLinkChanged
from integrations.zigbee.install_code import InstallCode
from tests.hubs import new_hub
from tests.web.conftest import sign_in_as
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"
NOW = datetime(2026, 6, 1, 19, 0, tzinfo=UTC)
CODE = InstallCode(bytes.fromhex("83FED3407A939723A5C639B26916D505"))
KEY_HEX = "66B6900981E1EE3CA4206B6B861C02BB"  # its link key (spec §9.1)
IEEE = "02:1a:2b:3c:4d:5e:6f:70"
CONFIG = """site: {name: Test home, timezone: America/Los_Angeles}
commissioning:
  utility_contact: {name: SmartConnect HAN program, url: "https://utility.example/han", phone: 1-800-555-0100}
  meter_number: "55512345"
  selftest_meter_timeout_s: 1
"""


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _key_forms() -> list[str]:
    key = bytes.fromhex(KEY_HEX)
    return [KEY_HEX, KEY_HEX.lower(), ":".join(f"{b:02x}" for b in key), " ".join(f"{b:02X}" for b in key)]


@pytest.fixture
def config_text() -> str:
    return CONFIG


@pytest.fixture
async def hub(tmp_path: Path, config_text: str) -> AsyncIterator[Hub]:
    hub = new_hub(tmp_path, config_text, clock=FixedClock(NOW))
    await hub.store.open()
    hub.identity = await load_or_create(hub.store, NOW, lambda: CODE.with_crc, ieee=IEEE)
    yield hub
    await hub.store.close()


@pytest.fixture
async def client(client: Any) -> Any:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    return client


@pytest.fixture
def sign_in(client: Any) -> Callable[..., Any]:
    async def sign_in_(username: str = "owner", role: Role | None = None) -> None:
        await sign_in_as(client, username, role)

    return sign_in_


async def test_the_page_tells_what_to_give_the_utility_and_where(client: Any, sign_in: Any) -> None:
    await sign_in()
    response = await client.get("/commissioning")
    html = await response.text()
    assert response.status == 200
    assert "Energy Management System" in html and "0x0502" in html
    assert "02:1A:2B:3C:4D:5E:6F:70" in html
    assert "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5" in html
    assert "55512345" in html
    assert 'href="https://utility.example/han"' in html and 'href="tel:1-800-555-0100"' in html
    assert "SmartConnect HAN program" in html
    assert 'id="label"' in html and "/static/commissioning.css" in html
    assert 'href="/commissioning" aria-current="page"' in html


async def test_the_qr_code_holds_the_device_id_and_install_code(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    html = await (await client.get("/commissioning")).text()
    assert "<svg" in html and "QR code of the device ID and install code" in html
    ieee, key = zigpy.util.parse_install_code_qr(hub.identity.qr_text)
    assert str(ieee) == IEEE and bytes(key) == bytes.fromhex(KEY_HEX)


async def test_without_a_contact_it_says_how_to_find_the_utility(tmp_path: Path, aiohttp_client: Any) -> None:
    from argon2 import PasswordHasher

    from ems.accounts import Accounts
    from web.app import create_app

    hub = new_hub(tmp_path, "site: {timezone: UTC}\n", clock=FixedClock(NOW))
    await hub.store.open()
    try:
        hub.identity = await load_or_create(hub.store, NOW, lambda: CODE.with_crc, ieee=IEEE)
        app = create_app(hub)
        app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        client = await aiohttp_client(app)
        await app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
        page = await client.get("/login")
        await client.post("/login", data={"csrf_token": _csrf(await page.text()), "username": "owner",
                                          "password": PASSWORD}, allow_redirects=False)
        html = unescape(await (await client.get("/commissioning")).text())
        assert "the number printed on the front of your electric meter" in html
        assert "on your bill or the utility's website" in html
    finally:
        await hub.store.close()


async def test_the_installer_opens_it_and_a_household_member_does_not(client: Any, sign_in: Any) -> None:
    await sign_in("fitter", Role.INSTALLER)
    assert (await client.get("/commissioning")).status == 200
    assert (await client.get("/api/v1/selftest")).status == 200
    await client.post("/logout", data={"csrf_token": _csrf(await (await client.get("/settings")).text())})
    await sign_in("kid", Role.MEMBER)
    assert (await client.get("/commissioning", allow_redirects=False)).status == 403
    assert (await client.get("/api/v1/selftest")).status == 403
    assert (await client.get("/api/v1/commissioning")).status == 403


async def test_nobody_signed_in_is_sent_to_sign_in(client: Any) -> None:
    response = await client.get("/commissioning", allow_redirects=False)
    assert response.status in (302, 303) and response.headers["Location"].startswith("/login")
    assert (await client.get("/api/v1/commissioning")).status == 401


async def test_no_stage_yet_says_it_waits_for_the_utility(client: Any, sign_in: Any) -> None:
    await sign_in()
    html = await (await client.get("/commissioning")).text()
    assert "Waiting for the utility to register this appliance" in html
    assert 'data-stage="none"' in html


async def test_the_latest_stage_per_meter_with_its_time(client: Any, sign_in: Any, hub: Hub) -> None:
    for step, minutes in ((CommissioningStep.JOINING, 0), (CommissioningStep.JOINED, 1),
                          (CommissioningStep.CONFIGURED, 2)):
        hub.state.apply(CommissioningStage("main", step, NOW + timedelta(minutes=minutes)))
    hub.state.apply(CommissioningStage("garage", CommissioningStep.REFUSED, NOW,
                                       "The meter does not know this appliance's install code yet."))
    await sign_in()
    html = unescape(await (await client.get("/commissioning")).text())
    main = html[html.index('data-meter="main"'):]
    assert 'data-stage="configured"' in main.split("</li>")[0]
    assert "Configured by the utility" in main and "2026-06-01 12:02" in main  # the site's local time
    assert "Joined the meter's network" in main  # among the earlier steps
    garage = html[html.index('data-meter="garage"'):]
    assert 'data-stage="refused"' in garage and "does not know this appliance's install code yet" in garage
    api = await (await client.get("/api/v1/commissioning")).json()
    assert {m["meter_id"]: m["latest"]["stage"] for m in api["meters"]} == {"main": "configured", "garage": "refused"}
    assert api["identity"] == {"device_type": "Energy Management System", "device_id": "0x0502",
                               "ieee": "02:1A:2B:3C:4D:5E:6F:70",
                               "install_code": "83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5"}


async def test_the_page_reads_in_spanish_and_chinese(client: Any, sign_in: Any) -> None:
    await sign_in()
    for language, words in (("es", "Registre este equipo"), ("zh", "注册")):
        html = await (await client.get(f"/commissioning?lang={language}",
                                       headers={"Accept-Language": language})).text()
        assert f'lang="{language}"' in html
        assert words in html, language


async def test_the_selftest_button_runs_it_and_the_results_show(client: Any, sign_in: Any, hub: Hub) -> None:
    hub.state.apply(MeterLinkChanged("main", LinkState.OFFLINE, NOW, "no answer"))
    await sign_in()
    html = await (await client.get("/commissioning")).text()
    assert "The self-test has not run yet" in html
    response = await client.post("/commissioning/selftest", data={"csrf_token": _csrf(html)}, allow_redirects=False)
    assert response.status == 303
    html = await (await client.get("/commissioning?done=selftest")).text()
    assert 'data-check="store"' in html and 'data-check="meter_link"' in html and 'data-check="disk"' in html
    assert "The database opens, is intact and takes writes." in html
    assert "No session with the meter main within 1 seconds: no answer" in html
    api = await (await client.get("/api/v1/selftest")).json()
    assert api["passed"] is False  # no meter link
    assert [c["name"] for c in api["checks"]][:1] == ["store"]
    assert {c["name"]: c["outcome"] for c in api["checks"]}["meter_link"] == "failed"


async def test_the_selftest_button_wants_the_forms_csrf_token(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    response = await client.post("/commissioning/selftest", data={}, allow_redirects=False)
    assert response.status == 403
    assert hub.state.selftest is None


async def test_the_link_key_is_in_no_page_no_api_answer_and_no_log(
    client: Any, sign_in: Any, hub: Hub, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hub.state.apply(CommissioningStage("main", CommissioningStep.KEYS_ESTABLISHED, NOW))
    await sign_in()
    html = await (await client.get("/commissioning")).text()
    await client.post("/commissioning/selftest", data={"csrf_token": _csrf(html)})
    seen = [html, await (await client.get("/commissioning")).text()]
    for path in ("/api/v1/commissioning", "/api/v1/selftest", "/api/v1/health", "/api/v1/meter",
                 "/settings", "/installer"):
        seen.append(await (await client.get(path)).text())
    seen.append(caplog.text)
    assert CODE.printed() in seen[0]  # the install code is shown, as it must be
    for text in seen:
        for form in _key_forms():
            assert form not in text

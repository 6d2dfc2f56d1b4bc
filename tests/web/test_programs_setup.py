"""The Commissioning page's "Programs and Home Assistant" setup: each form checked, tried against the
real peer (Mosquitto on loopback, openleadr's own VTN), saved in the store only if it works, applied
by restarting the integration; secrets never shown back nor logged; owner and installer only; it
fits a phone and a desktop in every language."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ems.accounts import Role
from ems.cli import SECRET_BEARING_LOGGERS
from ems.clock import FixedClock
from ems.hub import Hub
from ems.program_setup import RegisteredSetup, load_section
from integrations import mqtt, openadr
from integrations.mqtt.setup import MqttSetup
from integrations.openadr.setup import OpenAdrSetup
from tests.conftest import require_tool
from tests.e2e.test_page_layouts import CHECK, LANGUAGES
from tests.hubs import new_hub
from tests.integrations.openadr.vtn import Vtn
from tests.mosquitto import MOSQUITTO, free_port, running_broker
from tests.web.browser import chromium
from tests.web.conftest import sign_in_as
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"
BROKER_PASSWORD = "s3cret-broker-pw"
NOW = datetime(2026, 6, 1, 19, 0, tzinfo=UTC)
SIZES = [(360, 740), (1280, 800)]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


class Restarts:
    """What the composition root would do: the integration restarted on the saved section."""

    def __init__(self) -> None:
        self.sections: dict[str, list[dict[str, Any]]] = {"mqtt": [], "openadr": []}

    def register(self, hub: Hub) -> None:
        for setup, file_section in ((MqttSetup(timeout_s=3), mqtt.CONFIG_SCHEMA({})),
                                    (OpenAdrSetup(hub.config.config_dir, timeout_s=5), openadr.CONFIG_SCHEMA({}))):
            async def restart(section: dict[str, Any], name: str = setup.name) -> None:
                self.sections[name].append(section)
            hub.program_setups[setup.name] = RegisteredSetup(setup, restart, lambda s=file_section: dict(s))


@pytest.fixture
def restarts() -> Restarts:
    return Restarts()


@pytest.fixture
async def hub(tmp_path: Path, restarts: Restarts) -> AsyncIterator[Hub]:
    hub = new_hub(tmp_path, "site: {name: Test home, timezone: America/Los_Angeles}\n", clock=FixedClock(NOW))
    await hub.store.open()
    restarts.register(hub)
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


async def _post(client: Any, name: str, fields: dict[str, Any]) -> Any:
    page = await client.get("/commissioning/programs")
    data = aiohttp.FormData()
    data.add_field("csrf_token", _csrf(await page.text()))
    for key, value in fields.items():
        if isinstance(value, bytes):
            data.add_field(key, value, filename=f"{key}.pem", content_type="application/x-pem-file")
        else:
            data.add_field(key, str(value))
    return await client.post(f"/commissioning/programs/{name}", data=data, allow_redirects=False)


def _mqtt_form(port: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "username": "ems", "password": BROKER_PASSWORD,
            "site_id": "maple-12", **extra}


async def test_the_page_shows_both_forms_off_as_ems_yaml_says(client: Any, sign_in: Any) -> None:
    await sign_in()
    html = await (await client.get("/commissioning/programs")).text()
    assert 'id="setup-openadr"' in html and 'id="setup-mqtt"' in html
    assert html.count('data-state="off"') == 2 and html.count("(as ems.yaml says)") == 2
    commissioning = await (await client.get("/commissioning")).text()
    assert 'href="/commissioning/programs"' in commissioning


async def test_only_the_owner_and_the_installer_reach_it(client: Any, sign_in: Any) -> None:
    await sign_in("mia", Role.MEMBER)
    assert (await client.get("/commissioning/programs", allow_redirects=False)).status == 403
    client.session.cookie_jar.clear()  # signed out
    await sign_in("ian", Role.INSTALLER)
    assert (await client.get("/commissioning/programs")).status == 200


async def test_a_broker_that_works_is_saved_applied_and_its_password_never_shown_back(
        client: Any, sign_in: Any, hub: Hub, restarts: Restarts, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    require_tool(MOSQUITTO, "the MQTT setup is tried against a real broker")
    caplog.set_level(logging.DEBUG)
    await sign_in()
    async with running_broker(tmp_path / "broker") as broker:
        response = await _post(client, "mqtt", _mqtt_form(broker.port))
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/commissioning/programs?done=mqtt"
    saved = await load_section(hub.store, "mqtt")
    assert saved is not None
    assert (saved["host"], saved["port"], saved["username"], saved["password"], saved["site_id"]) == (
        "127.0.0.1", broker.port, "ems", BROKER_PASSWORD, "maple-12")
    assert restarts.sections["mqtt"] == [saved]  # applied: the integration restarted on it
    html = await (await client.get("/commissioning/programs?done=mqtt")).text()
    assert "the broker accepted the connection" in html
    assert BROKER_PASSWORD not in html
    assert re.search(r'name="password" autocomplete="new-password" value=""', html)
    assert 'data-set="password"' in html and "(set on this page)" in html
    # Every log line but the database drivers' (held at WARNING by the appliance: they log each call's arguments).
    assert all(BROKER_PASSWORD not in record.getMessage() for record in caplog.records
               if not record.name.startswith(SECRET_BEARING_LOGGERS))

    # Saved again with the password left empty: the saved one stays (the broker is gone: nothing saved then).
    response = await _post(client, "mqtt", _mqtt_form(broker.port, password=""))
    assert response.status == 422
    html = await response.text()
    assert "Not saved:" in html and f"127.0.0.1:{broker.port}" in html
    assert (await load_section(hub.store, "mqtt")) == saved and len(restarts.sections["mqtt"]) == 1


async def test_a_broker_that_does_not_answer_is_not_saved(client: Any, sign_in: Any, hub: Hub,
                                                          restarts: Restarts) -> None:
    await sign_in()
    port = free_port()  # nothing listens there
    response = await _post(client, "mqtt", _mqtt_form(port))
    assert response.status == 422
    html = await response.text()
    assert f"Nothing answers at 127.0.0.1:{port}" in html
    assert 'value="maple-12"' in html  # what was entered is shown again (not the password)
    assert BROKER_PASSWORD not in html
    assert await load_section(hub.store, "mqtt") is None and restarts.sections["mqtt"] == []


async def test_values_the_section_refuses_are_listed_and_nothing_is_tried(client: Any, sign_in: Any,
                                                                           hub: Hub) -> None:
    await sign_in()
    response = await _post(client, "mqtt", _mqtt_form(99999, site_id="a/b"))
    assert response.status == 400
    html = await response.text()
    assert "mqtt.port" in html and "mqtt.site_id" in html
    response = await _post(client, "mqtt", {**_mqtt_form(1883), "port": "eighteen"})
    assert response.status == 400 and "expected a whole number" in await response.text()
    assert await load_section(hub.store, "mqtt") is None


async def test_turning_mqtt_off_needs_no_broker(client: Any, sign_in: Any, hub: Hub, restarts: Restarts) -> None:
    await sign_in()
    response = await _post(client, "mqtt", {"host": "", "port": 1883, "site_id": "home"})
    assert response.status == 303
    assert restarts.sections["mqtt"][0]["host"] is None


async def test_a_form_without_its_csrf_token_changes_nothing(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    response = await client.post("/commissioning/programs/mqtt", data={"host": "127.0.0.1"}, allow_redirects=False)
    assert response.status == 403
    assert await load_section(hub.store, "mqtt") is None


@pytest.fixture
async def vtn() -> AsyncIterator[Vtn]:
    server = Vtn()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_vtn_that_registers_the_ven_is_saved_and_applied(client: Any, sign_in: Any, hub: Hub,
                                                                 restarts: Restarts, vtn: Vtn) -> None:
    await sign_in()
    response = await _post(client, "openadr", {"vtn_url": vtn.url, "ven_name": "home"})
    assert response.status == 303, await response.text()
    saved = await load_section(hub.store, "openadr")
    assert saved is not None and (saved["vtn_url"], saved["ven_name"]) == (vtn.url, "home")
    assert restarts.sections["openadr"] == [saved]
    html = await (await client.get("/commissioning/programs?done=openadr")).text()
    assert "the VTN registered this home" in html and f'value="{vtn.url}"' in html


async def test_a_ven_name_the_vtn_refuses_is_not_saved(client: Any, sign_in: Any, hub: Hub, vtn: Vtn) -> None:
    await sign_in()
    response = await _post(client, "openadr", {"vtn_url": vtn.url, "ven_name": "stranger"})
    assert response.status == 422
    assert "refused to register the VEN name stranger" in await response.text()
    assert await load_section(hub.store, "openadr") is None


async def test_a_vtn_that_does_not_answer_is_not_saved(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    response = await _post(client, "openadr", {"vtn_url": url, "ven_name": "home"})
    assert response.status == 422
    assert f"Nothing answers at {url}" in await response.text()
    assert await load_section(hub.store, "openadr") is None


def _certificate(name: str = "home") -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=365)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


async def test_an_uploaded_key_must_be_the_certificates_and_is_never_shown_back(
        client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    cert, _key = _certificate()
    _other_cert, other_key = _certificate("someone else")
    url = f"http://127.0.0.1:{free_port()}/OpenADR2/Simple/2.0b"
    response = await _post(client, "openadr", {"vtn_url": url, "ven_name": "home", "cert_pem": cert,
                                               "key_pem": other_key})
    assert response.status == 400
    html = await response.text()
    assert "not the one of the certificate" in html and "PRIVATE KEY" not in html
    response = await _post(client, "openadr", {"vtn_url": url, "ven_name": "home", "cert_pem": cert,
                                               "key_pem": b"not a key"})
    assert response.status == 400 and "openadr.key" in await response.text()
    response = await _post(client, "openadr", {"vtn_url": url, "ven_name": "home", "cert_pem": cert})
    assert response.status == 400 and "upload both" in await response.text()
    assert await load_section(hub.store, "openadr") is None


async def test_the_setup_fits_a_phone_and_a_desktop_in_every_language(
        client: Any, sign_in: Any, output_dir: Path) -> None:
    problems: list[str] = []
    base = str(client.make_url("/")).rstrip("/")
    port = free_port()
    async with chromium() as browser:
        for language in LANGUAGES:
            context = await browser.new_context(reduced_motion="reduce")
            page = await context.new_page()
            await page.goto(base + "/login")
            await page.fill("#username", "owner")
            await page.fill("#password", PASSWORD)
            await page.click("form button[type=submit]")
            await page.wait_for_url(re.compile(r".*/(?!login).*"))
            # As a person reads the pages: their language chosen on the Settings page.
            await page.goto(base + "/settings")
            await page.select_option("#language", language)
            await page.click("form[action='/settings'] button[type=submit]")
            await page.wait_for_selector(f"html[lang={language}]", state="attached")
            for width, height in SIZES:
                await page.set_viewport_size({"width": width, "height": height})
                await page.goto(base + "/commissioning/programs")
                # A broker that does not answer: the form comes back with why.
                await page.fill("#mqtt-host", "127.0.0.1")
                await page.fill("#mqtt-port", str(port))
                await page.fill("#mqtt-password", BROKER_PASSWORD)
                await page.click("#setup-mqtt button[type=submit]")
                await page.wait_for_selector("#mqtt-reason")
                assert await page.input_value("#mqtt-password") == ""
                name = f"programs-setup-{language}-{width}x{height}"
                await page.wait_for_timeout(150)
                await page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)
                problems += [f"{name}: {p}" for p in await page.evaluate(CHECK, False)]
            await context.close()
    assert not problems, "\n".join(problems)

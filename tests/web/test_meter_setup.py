"""The meter setup page (/commissioning/meter) and its API: how each meter is read, setting up another
source as a config flow does (find, test, see the figures, then save; nothing saved before a test read
the meter), a credential never shown back, a different meter waiting for the owner's word.

The source kind here stands in for an integration at the seam the page uses (ems.meter_source's
MeterSourceKind); the integrations' own tests drive the page with their simulated bridges."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Role
from ems.clock import FixedClock
from ems.hub import Hub
from ems.local_text import N_
from ems.meter_source import SourceCandidate, SourceField, SourceProbe
from ems.model import MeterReading, PriceSignal, Text
from tests.hubs import new_hub
from tests.web.conftest import sign_in_as
from web.auth import ACCOUNTS

PASSWORD = "correct horse battery"
NOW = datetime(2026, 6, 1, 19, 0, tzinfo=UTC)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Bridge:
    """A bridge kind whose device answers only on /dev/ttyACM0 with the code 1234."""

    kind = "emu2"
    title = "Rainforest EMU-2 (USB)"
    fields = (SourceField("port", "Serial port", "address", required=True),
              SourceField("code", "Access code", "password"),
              SourceField("interval_s", "Interval length (seconds)", "number", default="60"))

    def __init__(self) -> None:
        self.probed: list[dict[str, Any]] = []

    async def discover(self, timeout_s: float) -> list[SourceCandidate]:
        return [SourceCandidate("emu2", "/dev/ttyACM0", "Rainforest EMU-2 on /dev/ttyACM0")]

    async def probe(self, section: dict[str, Any]) -> SourceProbe:
        self.probed.append(section)
        if section["port"] != "/dev/ttyACM0" or section.get("code") != "1234":
            return SourceProbe(False, "No bridge answered on that port. Check that it is plugged in.")
        return SourceProbe(True, None, "0x00135003007a1b2c",
                           MeterReading("main", NOW, demand_kw=1.234, summation_delivered_kwh=12345.6),
                           PriceSignal("main", 1, 1, "TOU", "USD", 0.2345, NOW, None),
                           (("Firmware", "2.0.0 (7400)"),))


class Running:
    closed = False

    async def close(self) -> None:
        self.closed = True


class Starter:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def validate(self, section: dict[str, Any]) -> dict[str, Any]:
        if not str(section.get("port", "")).startswith("/dev/"):
            raise ValueError("port: expected a serial port such as /dev/ttyACM0")
        interval = section.get("interval_s", 60)
        if not isinstance(interval, int):
            raise ValueError("interval_s: expected a whole number of seconds")
        return {"meter_id": section.get("meter_id", "main"), "interval_s": interval, **section}

    async def start(self, section: dict[str, Any]) -> Running:
        self.started.append(section)
        return Running()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    hub = new_hub(tmp_path, "site: {name: Test home, timezone: America/Los_Angeles}\n", clock=FixedClock(NOW))
    await hub.store.open()
    hub.meter_source_kinds["emu2"] = Bridge()
    hub.meter_sources.starters["emu2"] = Starter()
    yield hub
    await hub.meter_sources.close()
    await hub.store.close()


@pytest.fixture
async def client(client: Any) -> Any:
    await client.app[ACCOUNTS].create_user("owner", PASSWORD, Role.OWNER)
    return client


@pytest.fixture
def sign_in(client: Any) -> Callable[..., Any]:
    async def sign_in_(username: str = "owner", role: Role | None = None) -> str:
        await sign_in_as(client, username, role)
        return _csrf(await (await client.get("/commissioning/meter")).text())

    return sign_in_


async def test_find_fills_the_port_test_shows_the_figures_and_save_starts_it(client: Any, sign_in: Any,
                                                                            hub: Hub) -> None:
    csrf = await sign_in()
    html = unescape(await (await client.get("/commissioning/meter?kind=emu2")).text())
    assert "Rainforest EMU-2 (USB)" in html and 'name="port"' in html
    found = unescape(await (await client.post("/commissioning/meter", data={
        "csrf_token": csrf, "kind": "emu2", "action": "find"})).text())
    assert "Rainforest EMU-2 on /dev/ttyACM0" in found
    used = await (await client.post("/commissioning/meter", data={
        "csrf_token": csrf, "kind": "emu2", "action": "use", "address": "/dev/ttyACM0"})).text()
    assert 'name="port" value="/dev/ttyACM0"' in used
    form = {"csrf_token": csrf, "kind": "emu2", "meter_id": "main", "port": "/dev/ttyACM0", "code": "1234",
            "interval_s": "60"}
    tested = unescape(await (await client.post("/commissioning/meter", data={**form, "action": "test"})).text())
    assert "The test read your meter" in tested
    assert "1.234 kW" in tested and "12,345.6 kWh" in tested and "$0.2345 per kWh" in tested
    assert "0x00135003007a1b2c" in tested and "2.0.0 (7400)" in tested
    assert hub.meter_sources.starters["emu2"].started == []  # a test saves nothing
    saved = await client.post("/commissioning/meter", data={**form, "action": "save"}, allow_redirects=False)
    assert saved.status == 303 and saved.headers["Location"] == "/commissioning/meter?done=saved"
    assert hub.meter_sources.starters["emu2"].started[0]["port"] == "/dev/ttyACM0"
    page = unescape(await (await client.get("/commissioning/meter?done=saved&kind=emu2")).text())
    assert "Saved. The appliance now reads the meter this way." in page
    assert "Set up on this page by owner" in page
    # The access code is never shown back: the field holds a marker that keeps it.
    assert 'value="1234"' not in page and "Saved; leave it as it is to keep it." in page
    again = await client.post("/commissioning/meter", data={**form, "code": "\u2022set\u2022", "action": "test"})
    assert "The test read your meter" in unescape(await again.text())
    assert hub.meter_source_kinds["emu2"].probed[-1]["code"] == "1234"


async def test_nothing_is_saved_when_the_test_fails_or_a_setting_is_wrong(client: Any, sign_in: Any,
                                                                          hub: Hub) -> None:
    csrf = await sign_in()
    base = {"csrf_token": csrf, "kind": "emu2", "meter_id": "main", "code": "1234", "action": "save"}
    refused = await client.post("/commissioning/meter", data={**base, "port": "/dev/ttyUSB9"})
    assert refused.status == 400
    assert "Not saved: No bridge answered on that port." in unescape(await refused.text())
    bad = await client.post("/commissioning/meter", data={**base, "port": "COM3"})
    assert bad.status == 400 and "Check this setting: Serial port" in unescape(await bad.text())
    number = await client.post("/commissioning/meter", data={**base, "port": "/dev/ttyACM0", "interval_s": "1.5"})
    assert number.status == 400 and "Check this setting: Interval length (seconds)" in unescape(await number.text())
    assert hub.meter_sources.starters["emu2"].started == []
    assert await hub.meter_sources.saved() == {}


async def test_the_api_tests_and_saves_with_the_same_rules(client: Any, sign_in: Any, hub: Hub) -> None:
    csrf = await sign_in()
    headers = {"X-CSRF-Token": csrf}
    kinds = await (await client.get("/api/v1/commissioning/meter-sources")).json()
    assert kinds["kinds"][0]["kind"] == "emu2" and kinds["kinds"][0]["fields"][0]["name"] == "port"
    found = await (await client.get("/api/v1/commissioning/meter-sources/emu2/candidates")).json()
    assert found["candidates"][0]["address"] == "/dev/ttyACM0"
    probe = await client.post("/api/v1/commissioning/meter-sources/emu2/probe", headers=headers,
                              json={"port": "/dev/ttyACM0", "code": "1234"})
    body = await probe.json()
    assert probe.status == 200 and body["ok"] and body["demand_kw"] == 1.234
    bad = await client.post("/api/v1/commissioning/meter-sources/emu2/probe", headers=headers, json={"port": 3})
    assert bad.status == 400 and "port" in (await bad.json())["error"]
    assert (await client.post("/api/v1/commissioning/meter-sources/emu2/probe", headers=headers,
                              data="[")).status == 400
    assert (await client.post("/api/v1/commissioning/meter-sources/nope/probe", headers=headers,
                              json={})).status == 404
    failed = await client.post("/api/v1/commissioning/meter-sources/emu2", headers=headers,
                               json={"port": "/dev/ttyACM0", "code": "0000"})
    assert failed.status == 422 and await hub.meter_sources.saved() == {}
    saved = await client.post("/api/v1/commissioning/meter-sources/emu2", headers=headers,
                              json={"port": "/dev/ttyACM0", "code": "1234"})
    assert saved.status == 201 and (await saved.json())["meter_id"] == "main"
    assert (await hub.meter_sources.saved_for("main")).section["code"] == "1234"
    listed = await (await client.get("/api/v1/commissioning/meter-sources")).json()
    assert "1234" not in str(listed)


async def test_a_different_meter_waits_for_the_owner_to_confirm_it(client: Any, sign_in: Any, hub: Hub) -> None:
    await hub.meter_pins.admit("main", "emu2", "0x00135003007A1B2C")
    await hub.meter_pins.admit("main", "emu2", "0x0013500300FFFFFF")
    csrf = await sign_in()
    html = unescape(await (await client.get("/commissioning/meter")).text())
    assert "A different meter answered" in html and "0x0013500300ffffff" in html
    confirmed = await client.post("/commissioning/meter", allow_redirects=False, data={
        "csrf_token": csrf, "action": "confirm", "meter_id": "main", "hardware_id": "0x0013500300ffffff"})
    assert confirmed.status == 303
    assert await hub.meter_pins.admit("main", "emu2", "0x0013500300ffffff")
    stale = await client.post("/commissioning/meter", data={
        "csrf_token": csrf, "action": "confirm", "meter_id": "main", "hardware_id": "0x0013500300ffffff"})
    assert stale.status == 409


async def test_only_the_owner_and_the_installer_set_up_the_meter(client: Any, sign_in: Any) -> None:
    await sign_in("fitter", Role.INSTALLER)
    assert (await client.get("/commissioning/meter")).status == 200
    await client.post("/logout", data={"csrf_token": _csrf(await (await client.get("/settings")).text())})
    await sign_in_member(client)
    assert (await client.get("/commissioning/meter", allow_redirects=False)).status == 403
    assert (await client.get("/api/v1/commissioning/meter-sources")).status == 403


async def sign_in_member(client: Any) -> None:
    await client.app[ACCOUNTS].create_user("kid", PASSWORD, Role.MEMBER)
    page = await client.get("/login")
    await client.post("/login", data={"csrf_token": _csrf(await page.text()), "username": "kid",
                                      "password": PASSWORD}, allow_redirects=False)


async def test_a_form_without_its_csrf_token_is_refused(client: Any, sign_in: Any, hub: Hub) -> None:
    await sign_in()
    response = await client.post("/commissioning/meter", data={"kind": "emu2", "action": "save",
                                                               "port": "/dev/ttyACM0", "code": "1234"})
    assert response.status == 403 and await hub.meter_sources.saved() == {}


class SpeakingBridge(Bridge):
    """A kind whose words carry values (``Text``): a candidate's label, a reason, the details."""

    async def discover(self, timeout_s: float) -> list[SourceCandidate]:
        return [SourceCandidate("emu2", "/dev/ttyACM0", Text.of(N_("Serial port {port}"), port="/dev/ttyACM0"))]

    async def probe(self, section: dict[str, Any]) -> SourceProbe:
        if section["port"] != "/dev/ttyACM0":
            return SourceProbe(False, Text.of(N_("Nothing answered at {host}: check the address, and that the EAGLE "
                                                 "is powered and on the same network as this appliance."),
                                              host=section["port"]))
        return SourceProbe(True, None, "0x00135003007a1b2c", MeterReading("main", NOW, demand_kw=1.5),
                           details=(("Connection to the meter", Text.of(N_("Connected"))),
                                    ("Last heard from the meter", Text.of("{heard_at}", heard_at=NOW)),
                                    ("Firmware", "2.0.0 (7400)")))


async def test_a_kinds_words_and_values_are_shown_in_the_readers_language(client: Any, sign_in: Any,
                                                                         hub: Hub) -> None:
    hub.meter_source_kinds["emu2"] = SpeakingBridge()
    csrf = await sign_in()
    form = {"csrf_token": csrf, "kind": "emu2", "meter_id": "main"}
    found = unescape(await (await client.post("/commissioning/meter?lang=es", data={**form, "action": "find"})).text())
    assert "Puerto serie /dev/ttyACM0" in found
    tested = unescape(await (await client.post("/commissioning/meter?lang=es", data={
        **form, "port": "/dev/ttyACM0", "action": "test"})).text())
    assert "<dd>Conectado</dd>" in tested and "2.0.0 (7400)" in tested
    assert "2026-06-01" not in tested and "12:00" in tested  # the site's wall clock, as Spanish writes it
    refused = unescape(await (await client.post("/commissioning/meter?lang=es", data={
        **form, "port": "/dev/ttyUSB4", "action": "test"})).text())
    assert 'id="probe"' in refused and "Nada respondió en /dev/ttyUSB4" in refused  # beside the form
    wrong = unescape(await (await client.post("/commissioning/meter?lang=es", data={
        **form, "port": "COM3", "action": "test"})).text())
    assert "Revise este ajuste: Puerto serie" in wrong and "expected" not in wrong


async def test_a_kind_that_needs_registering_says_what_to_give_the_utility(client: Any, sign_in: Any,
                                                                          hub: Hub) -> None:
    class Registered(Bridge):
        kind = "ieee2030_5"

        async def registration(self) -> tuple[tuple[str, str], ...]:
            return (("This appliance's LFDI", "6626C 87A74 05401 19E84 3393C 169BA CA10B 59316"),
                    ("This appliance's SFDI", "274-210-835-594"))

    hub.meter_source_kinds["ieee2030_5"] = Registered()
    await sign_in()
    html = unescape(await (await client.get("/commissioning/meter?kind=ieee2030_5")).text())
    assert "Your utility must register this appliance before the meter answers it" in html
    assert "6626C 87A74 05401 19E84 3393C 169BA CA10B 59316" in html and "274-210-835-594" in html
    spanish = unescape(await (await client.get("/commissioning/meter?kind=ieee2030_5&lang=es")).text())
    assert "LFDI de este equipo" in spanish or "Su compañía eléctrica" in spanish
    assert 'id="registration"' not in await (await client.get("/commissioning/meter?kind=emu2")).text()


async def test_a_credential_typed_for_a_failed_test_is_not_sent_back(client: Any, sign_in: Any) -> None:
    csrf = await sign_in()
    failed = await client.post("/commissioning/meter", data={
        "csrf_token": csrf, "kind": "emu2", "meter_id": "main", "port": "/dev/ttyUSB9", "code": "s3cret-code",
        "action": "test"})
    html = await failed.text()
    assert "No bridge answered on that port" in unescape(html) and "s3cret-code" not in html

"""The meter setup page (/commissioning/meter) in a browser, with the real EMU-2 kind and a simulated
EMU-2 on a pty: the owner chooses the EMU-2, finds its port, tests it (the meter's figures shown),
sees a wrong port refused with a reason to act on, saves it (the appliance then reads the meter
through it), and confirms a different meter after the bridge moved. Every state fits a phone, a
wall tablet, a laptop and a big screen in English, Spanish and Chinese (test_page_layouts' CHECK),
and a Spanish or Chinese page has no English sentence left in it."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Accounts
from ems.model import LinkState
from integrations.simulator import load_scenario
from integrations.simulator.emu2 import METER_MAC, SimulatedEmu2, running
from tests.e2e.conftest import CONFIG, OWNER, running_appliance
from tests.e2e.test_page_layouts import CHECK, LANGUAGES, SIZES
from tests.web.browser import chromium, csp_violations

pytestmark = pytest.mark.timeout(300)

SCENARIO = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "demo.yaml"
MOVED_MAC = "00135001002a9f01"  # the meter the bridge reads after the move
MISSING_PORT = "/nonexistent/ttyACM7"  # a port that is not there (a path as short as a customer's)
# What the page says in each language once a test failed on a port that does not exist, and once
# it read the meter (the words of the catalogs: a sign the reason and the figures were translated).
CANNOT_OPEN = {"en": "Cannot open this serial port", "es": "No se puede abrir este puerto serie",
               "zh": "无法打开此串口"}
NOTHING_ANSWERED = {"en": "Nothing answered at", "es": "Nada respondió en", "zh": "没有应答"}
POWER_NOW = {"en": "Power now", "es": "Potencia", "zh": "功率"}
# English words that must not be left in a Spanish or Chinese page (names, units and addresses may).
ENGLISH = re.compile(r"\b(the|and|your|meter|port|serial|connected|test|found|saved|check|answered)\b", re.I)
ALLOWED = ("Rainforest EMU-2", "EMU-2", "RAVEn", "Z105-2-EMU2", "kWh", "kW", "USB", "/dev/")


def _config(port: str) -> str:
    """The e2e appliance without its ZigBee meter link: the EMU-2 reads meter "main" once saved
    (its port named in ems.yaml, off, so Find lists the pty a real USB port would be)."""
    start = CONFIG.index("zigbee_se:")
    return CONFIG[:start] + f"zigbee_se: {{enabled: false}}\nemu2: {{enabled: false, port: \"{port}\"}}\n"


async def _shoot(page: Any, output_dir: Path, state: str, language: str, problems: list[str]) -> None:
    """The page as it is now at every size: a full-page screenshot and the layout checks."""
    for width, height in SIZES:
        await page.set_viewport_size({"width": width, "height": height})
        name = f"meter-setup-{state}-{language}-{width}x{height}"
        await page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)
        problems += [f"{name}: {p}" for p in await page.evaluate(CHECK, False)]


async def _english_left(page: Any, language: str) -> list[str]:
    """The sentences of the page's main part that read as English, in a Spanish or Chinese page."""
    if language == "en":
        return []
    text = await page.inner_text("main")
    for allowed in ALLOWED:
        text = text.replace(allowed, " ")
    return [line for line in text.splitlines() if ENGLISH.search(line)]


async def test_the_owner_finds_tests_and_saves_an_emu2_in_every_language(tmp_path: Path, output_dir: Path,
                                                                         e2e_clock: Any) -> None:
    problems: list[str] = []
    english: list[str] = []
    async with running(SimulatedEmu2(load_scenario(SCENARIO), e2e_clock)) as bridge, \
            running_appliance(tmp_path, config_text=_config(bridge.path)) as home, chromium() as browser:
        hub = home.hub
        await home.wait_until(lambda: hub.meter_sources.loader is not None, what="the meter sources")
        await hub.meter_sources.ensure_kinds()  # what the page does first (the kinds load when first needed)
        accounts = Accounts(hub.store)
        owner = await accounts.user(OWNER)
        page = await (await browser.new_context(reduced_motion="reduce")).new_page()
        blocked = csp_violations(page)
        await home.sign_in(page)
        url = f"{home.url}/commissioning/meter"
        with socket.socket() as free:  # a port nothing listens on
            free.bind(("127.0.0.1", 0))
            silent = f"127.0.0.1:{free.getsockname()[1]}"

        for language in LANGUAGES:
            await accounts.set_language(owner.id, language)
            await page.set_viewport_size({"width": 1280, "height": 800})
            # Choose the EMU-2.
            await page.goto(f"{url}?kind=emu2")
            assert await page.evaluate("document.documentElement.lang") == language
            assert await page.get_attribute("nav.kinds [aria-current=true]", "href") == "/commissioning/meter?kind=emu2"
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "chosen", language, problems)
            # Find: the pty is listed; choosing it fills the port.
            await page.click("button[value=find]")
            await page.wait_for_selector("#candidates")
            assert bridge.path in await page.inner_text("#candidates")
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "found", language, problems)
            await page.click(f"#candidates button:has-text('{bridge.path}')")
            assert await page.input_value("#f-port") == bridge.path
            # Test: the meter's figures.
            await page.click("button[value=test]")
            await page.wait_for_selector("#probe")
            figures = await page.inner_text("#probe")
            assert METER_MAC in figures and "Z105-2-EMU2" in figures
            assert POWER_NOW[language] in figures, figures
            assert "main" not in hub.meter_sources.running  # a test saves nothing
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "tested", language, problems)
            # A wrong port: the reason, in the reader's language.
            await page.fill("#f-port", MISSING_PORT)
            await page.click("button[value=test]")
            await page.wait_for_selector("#probe.probe-bad")
            assert CANNOT_OPEN[language] in await page.inner_text("#probe.probe-bad")
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "refused", language, problems)
            # The other kinds' forms: their labels and hints in the reader's language too.
            for other in ("eagle", "ieee2030_5"):
                await page.set_viewport_size({"width": 1280, "height": 800})
                await page.goto(f"{url}?kind={other}")
                english += await _english_left(page, language)
                await _shoot(page, output_dir, f"chosen-{other}", language, problems)
            # An EAGLE where nothing listens: the reason names the address, in the reader's words.
            await page.goto(f"{url}?kind=eagle")
            await page.fill("#f-host", silent)
            await page.fill("#f-cloud_id", "0a1b2c")
            await page.fill("#f-install_code", "0123456789abcdef")
            await page.click("button[value=test]")
            await page.wait_for_selector("#probe.probe-bad")
            reason = await page.inner_text("#probe.probe-bad")
            assert silent in reason and NOTHING_ANSWERED[language] in reason, reason
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "refused-eagle", language, problems)

        # Save: the appliance reads the meter through the EMU-2.
        await accounts.set_language(owner.id, "en")
        await page.set_viewport_size({"width": 1280, "height": 800})
        await page.goto(f"{url}?kind=emu2")
        await page.fill("#f-port", bridge.path)
        await page.click("button[value=save]")
        await page.wait_for_url(re.compile(re.escape(f"{url}?done=saved")))  # (#probe kept: nothing to scroll to)
        await home.wait_until(lambda: (m := hub.state.meters.get("main")) is not None and m.link is LinkState.ONLINE,
                              what="the EMU-2 link online")
        assert hub.meter_sources.running["main"][0] == "emu2"
        assert (await hub.meter_pins.get("main")).hardware_id == METER_MAC
        for language in LANGUAGES:
            await accounts.set_language(owner.id, language)
            await page.goto(f"{url}?done=saved")
            await page.wait_for_selector("[data-meter=main][data-link=online]")
            assert await page.is_visible(".alert-ok")
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "saved", language, problems)

        # The bridge now reads another meter: its figures wait for the owner's word.
        bridge.move(MOVED_MAC)

        async def moved_is_pending() -> bool:
            pin = await hub.meter_pins.get("main")
            return pin is not None and pin.pending_hardware_id == MOVED_MAC

        await home.wait_until(moved_is_pending, what="the moved meter waiting for the owner's word")
        for language in LANGUAGES:
            await accounts.set_language(owner.id, language)
            await page.goto(url)
            await page.wait_for_selector(f"[data-pending='{MOVED_MAC}'] button")
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "pending", language, problems)
        await accounts.set_language(owner.id, "en")
        await page.set_viewport_size({"width": 1280, "height": 800})
        await page.goto(url)
        await page.click(f"[data-pending='{MOVED_MAC}'] button")
        await page.wait_for_url(re.compile(re.escape(f"{url}?done=confirmed")))
        assert not await page.is_visible("[data-pending]")
        assert (await hub.meter_pins.get("main")).hardware_id == MOVED_MAC
        await home.wait_until(lambda: hub.state.meters["main"].link is LinkState.ONLINE,
                              what="the confirmed meter's figures taken")
        for language in LANGUAGES:
            await accounts.set_language(owner.id, language)
            await page.goto(f"{url}?done=confirmed")
            await page.wait_for_selector("[data-meter=main][data-link=online]")
            english += await _english_left(page, language)
            await _shoot(page, output_dir, "confirmed", language, problems)
    assert not problems, "\n".join(problems)
    assert not english, "English left in a Spanish or Chinese page:\n" + "\n".join(english)
    assert blocked == []

"""The Commissioning page in a browser: it fits a phone, a wall tablet, a laptop and a big screen in
English, Spanish and Chinese (the layout checks of test_page_layouts), follows the stages the meter
link publishes, and prints the label alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ems.model import CommissioningStage, CommissioningStep
from tests.e2e.conftest import running_appliance
from tests.e2e.test_page_layouts import CHECK, LANGUAGES, SIZES
from tests.web.browser import chromium, csp_violations

pytestmark = pytest.mark.timeout(300)


async def test_the_commissioning_page_fits_every_screen_and_prints_the_label(tmp_path: Path, output_dir: Path) -> None:
    problems: list[str] = []
    async with running_appliance(tmp_path) as home, chromium() as browser:
        await home.online()
        await home.wait_until(lambda: home.hub.state.selftest, what="the start's self-test")
        now = home.hub.clock()
        for step, minutes in ((CommissioningStep.WAITING, 0), (CommissioningStep.REFUSED, 1),
                              (CommissioningStep.JOINING, 2), (CommissioningStep.JOINED, 3),
                              (CommissioningStep.AUTHENTICATED, 4), (CommissioningStep.KEYS_ESTABLISHED, 5)):
            detail = "The meter does not know this appliance's install code yet." if step is CommissioningStep.REFUSED else ""
            home.hub.bus.publish(CommissioningStage("main", step, now + timedelta(seconds=minutes), detail))
        page = await (await browser.new_context(reduced_motion="reduce")).new_page()
        blocked = csp_violations(page)
        await home.sign_in(page)
        for language in LANGUAGES:
            for width, height in SIZES:
                await page.set_viewport_size({"width": width, "height": height})
                await page.goto(f"{home.url}/commissioning?lang={language}")
                await page.wait_for_selector("#selftest-title")
                assert await page.evaluate("document.documentElement.lang") == language
                name = f"commissioning-{language}-{width}x{height}"
                await page.screenshot(path=str(output_dir / f"{name}.png"), full_page=True)
                problems += [f"{name}: {p}" for p in await page.evaluate(CHECK, False)]
        assert await page.get_attribute("[data-meter=main] .stage", "data-stage") == "keys_established"
        assert await page.is_visible("#print-label")  # its script ran (the CSP let it)

        await page.goto(f"{home.url}/commissioning")
        await page.emulate_media(media="print")
        assert await page.is_visible("#label")
        for hidden in ("#stages-title", "#selftest-title", "nav.nav", "#register-title", "#print-label"):
            assert not await page.is_visible(hidden), hidden
        await page.screenshot(path=str(output_dir / "commissioning-print.png"), full_page=True)
        await page.pdf(path=str(output_dir / "commissioning-label.pdf"))
    assert not problems, "\n".join(problems)
    assert blocked == []

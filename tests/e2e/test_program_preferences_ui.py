"""Program preferences in a browser: the owner switches off DR events, the price and the tier on the
Settings page, and the In-Home Display and the dashboard stop showing them (their scripts too: the
event banner of a scheduled event, the tier in the price's line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import running_appliance
from tests.e2e.test_ihd import _kiosk_link
from tests.web.browser import chromium

pytestmark = pytest.mark.timeout(300)


async def test_switched_off_information_leaves_the_display_and_the_dashboard(tmp_path: Path) -> None:
    async with running_appliance(tmp_path) as home, chromium() as browser:
        await home.online()
        await home.wait_until(lambda: home.hub.control.events(), what="the scenario's event")
        wall = await (await browser.new_context(viewport={"width": 1024, "height": 600})).new_page()
        link = await _kiosk_link(home)
        await wall.goto(link)
        await wall.wait_for_selector(".banner-event")  # everything shown: the event's banner is there
        assert await wall.is_visible("#price")

        page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        await home.sign_in(page)
        await page.goto(home.url + "/settings")
        for name in ("dr_events", "current_price", "current_tier"):
            await page.uncheck(f"#show-{name}")
        await page.click("#program button[type=submit]")
        await page.wait_for_url("**/settings?done=program")
        assert not await page.is_checked("#show-dr_events") and await page.is_checked("#show-usage_and_demand")

        await page.goto(home.url + "/")
        await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
        assert not await page.is_visible("#price-tile")
        assert not await page.is_visible("#events-title")
        assert await page.is_visible("#demand") and await page.is_visible("#usage-title")

        await wall.reload()
        await wall.wait_for_function("document.getElementById('demand').textContent !== '–'")
        await wall.wait_for_function("!document.body.classList.contains('stale')")
        assert await wall.locator(".banner-event").count() == 0
        assert not await wall.is_visible("#price") and not await wall.is_visible("#tier")
        assert await wall.is_visible("#demand")

"""The first page, in a real browser: live values that update by themselves, on a phone too."""

from __future__ import annotations

from tests.web.browser import chromium, csp_violations


async def test_live_page_shows_meter_values_that_update_by_themselves(appliance, output_dir):
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        blocked = csp_violations(page)
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
        first = await page.text_content("#updated")
        await page.wait_for_function(
            "t => document.getElementById('updated').textContent !== t", arg=first, timeout=5000
        )
        assert await page.text_content("#link") == "Meter online"
        delivered = float((await page.text_content("#delivered")).replace(",", ""))
        assert abs(delivered - appliance.simulator.meter.delivered_kwh) < 0.1  # shown to 0.1 kWh
        await page.wait_for_function("document.getElementById('price').textContent.includes('$')")  # then /kWh
        assert "/kWh" in await page.text_content("#price-tile")
        await page.wait_for_function("document.querySelectorAll('#events li:not(.empty)').length === 1")
        await page.wait_for_function("[...document.querySelectorAll('#messages li:not(.empty)')].some(li => li.textContent.includes('Grid reliability'))")
        assert "4101" in await page.text_content("#events")
        await page.screenshot(path=str(output_dir / "live-1280.png"), full_page=True)
        response = await page.reload()
        await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
        assert "default-src 'self'" in (await response.all_headers())["content-security-policy"]
        assert blocked == []  # the page's scripts, styles, chart and WebSocket all pass the policy


async def test_live_page_fits_a_phone_without_horizontal_scrolling(appliance, output_dir):
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
        await page.wait_for_function("[...document.querySelectorAll('#messages li:not(.empty)')].some(li => li.textContent.includes('Grid reliability'))")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360
        await page.screenshot(path=str(output_dir / "live-360.png"), full_page=True)


async def test_live_page_shows_when_the_appliance_is_unreachable(appliance):
    async with chromium() as browser:
        page = await browser.new_page()
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('link').textContent === 'Meter online'")
        await appliance.web.stop()
        await page.wait_for_function("document.getElementById('link').textContent.includes('unreachable')")
        assert "stale" in await page.evaluate("document.body.className")

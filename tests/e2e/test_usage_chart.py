"""The usage chart on the live page: drawn after sign-in, ranges switch, fits a 360 px phone."""

from __future__ import annotations

from tests.web.browser import chromium


async def test_usage_chart_renders_switches_range_and_fits_a_phone(appliance, output_dir):
    await appliance.wait_until(lambda: appliance.hub.state.meters["main"].last_interval, what="an interval")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        await appliance.sign_in(page)
        await page.wait_for_selector("#usage-chart canvas")
        await page.wait_for_function("document.getElementById('usage-status').textContent.includes('intervals read')")
        box = await page.eval_on_selector("#usage-chart canvas", "c => [c.width, c.height]")
        assert box[0] > 300 and box[1] > 100

        async with page.expect_request(lambda r: "/api/v1/usage?range=week" in r.url) as request:
            await page.click("button.range[data-range=week]")
        assert (await (await request.value).response()).status == 200
        assert await page.get_attribute("button.range[data-range=week]", "aria-pressed") == "true"
        await page.wait_for_selector("#usage-chart canvas")

        await page.set_viewport_size({"width": 360, "height": 800})
        await page.wait_for_function(
            "document.querySelector('#usage-chart .uplot').getBoundingClientRect().width <= 360")
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        await page.screenshot(path=str(output_dir / "live-usage-360.png"), full_page=True)

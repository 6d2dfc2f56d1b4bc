"""The navigation in a real browser: it fits a 360 px phone without sideways scrolling and works by keyboard."""

from __future__ import annotations

from tests.web.browser import chromium

NO_SIDEWAYS = "document.documentElement.scrollWidth <= innerWidth"


async def test_no_page_scrolls_sideways_on_a_360_px_phone(appliance, output_dir):
    async with chromium() as browser:
        page = await (await browser.new_context(viewport={"width": 360, "height": 740})).new_page()
        await appliance.sign_in(page)
        await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
        for path in ("/", "/settings", "/account/users", "/account/tokens"):
            await page.goto(appliance.url + path)
            await page.wait_for_load_state("load")
            assert await page.evaluate(NO_SIDEWAYS), f"{path} scrolls sideways at 360 px"
            for name in ("Dashboard", "Devices", "Rules", "Settings", "Account", "Sign out"):
                assert await page.locator("nav.nav").get_by_text(name, exact=True).is_visible(), (path, name)
        await page.goto(appliance.url + "/")
        await page.wait_for_selector("#usage-chart canvas")
        assert await page.evaluate(NO_SIDEWAYS)
        await page.screenshot(path=str(output_dir / "dashboard-360.png"), full_page=True)


async def test_the_nav_works_by_keyboard(appliance):
    async with chromium() as browser:
        page = await (await browser.new_context(viewport={"width": 1024, "height": 768})).new_page()
        await appliance.sign_in(page)
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to the content"
        for _ in range(12):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent") == "Settings":
                break
        else:
            raise AssertionError("Settings is not reachable with Tab")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        await page.keyboard.press("Enter")
        await page.wait_for_url(appliance.url + "/settings")

        assert outline != "none"  # the focus is visible
        assert await page.get_attribute("nav.nav a[href='/settings']", "aria-current") == "page"

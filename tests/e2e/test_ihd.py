"""The In-Home Display in a real browser: opened by a display link, live, fitting two screens, stale and revoked."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from ems.accounts import Accounts
from tests.e2e.conftest import CONFIG, OWNER, local_clock, running_appliance
from tests.web.browser import chromium, csp_violations

FITS = "document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _kiosk_link(appliance: Any, place: str = "Shop wall") -> str:
    accounts = Accounts(appliance.hub.store)
    created = await accounts.create_kiosk_token(await accounts.user(OWNER), place)
    return f"{appliance.url}/ihd?k={created.secret}"


async def _live(page: Any) -> None:
    await page.wait_for_function("document.getElementById('demand').textContent !== '–'")
    await page.wait_for_function("!document.body.classList.contains('stale')")


async def _open_display(appliance: Any, browser: Any) -> Any:
    """The appliance's display link opened on an 800x480 wall screen, once the display is live."""
    await appliance.online()
    link = await _kiosk_link(appliance)
    page = await (await browser.new_context(viewport={"width": 800, "height": 480})).new_page()
    await page.goto(link)
    await _live(page)
    return page


async def test_the_owner_makes_a_display_link_that_opens_live_without_a_login(appliance, output_dir):
    async with chromium() as browser:
        owner = await browser.new_page()
        await appliance.sign_in(owner)
        await owner.goto(appliance.url + "/account/tokens")
        await owner.fill("#kiosk-place", "Shop wall")
        await owner.click("#kiosk-place ~ button[type=submit]")
        link = await owner.input_value("#kiosk-link")

        wall = await (await browser.new_context(viewport={"width": 1280, "height": 720})).new_page()
        blocked = csp_violations(wall)
        response = await wall.goto(link)
        assert "frame-ancestors 'none'" in (await response.all_headers())["content-security-policy"]
        assert wall.url == appliance.url + "/ihd"  # the token left the address bar for an HttpOnly cookie
        cookies = {c["name"]: c for c in await wall.context.cookies()}
        assert cookies["ems_kiosk"]["httpOnly"] and "ems_session" not in cookies
        await _live(wall)
        first = await wall.text_content("#updated")
        await wall.wait_for_function("t => document.getElementById('updated').textContent !== t", arg=first)
        await wall.wait_for_function("document.getElementById('cost-today').textContent.includes('$')")
        # One price truth: the rate plan's price now (TOU-D-T on-peak at 20:00, what the costs use), and
        # the meter's own price, which differs, named beside it.
        await wall.wait_for_function("document.getElementById('price-sub').textContent.includes('meter')")
        assert "$0.51" in await wall.text_content("#price")
        assert "on-peak" in await wall.text_content("#price-sub")
        assert "meter: $0.29" in await wall.text_content("#price-sub")
        assert "tier-3" in await wall.evaluate("document.body.className")  # on-peak: the high price's colour
        await wall.wait_for_function("document.querySelector('.banner-event') !== null")
        assert await wall.get_attribute(".banner-event", "data-event-id") == "4101"
        assert "Energy event announced" in await wall.text_content(".banner-event")
        await wall.wait_for_function("document.querySelector('.banner-message') !== null")
        assert "Grid reliability alert" in await wall.text_content(".banner-message")
        # A public broadcast (also sent by Inter-PAN) is named as one, not as the utility writing to this home.
        assert (await wall.text_content(".banner-message strong")) == "Public alert"
        post = "fetch('/api/v1/events/4101/override', {method: 'POST'}).then(r => r.status)"
        assert await wall.evaluate(post) == 403  # the display link only reads ...
        assert await wall.evaluate("fetch('/account/users').then(r => r.status)") == 403  # ... the display
        assert blocked == []  # the display's script, styles and WebSocket all pass the policy
        await owner.goto(appliance.url + "/account/tokens")
        assert "Kiosk: Shop wall" in await owner.text_content("#kiosk-links")


async def test_the_display_fits_a_small_and_a_large_screen_without_scrolling(appliance, output_dir):
    link = await _kiosk_link(appliance)
    async with chromium() as browser:
        for width, height in ((800, 480), (1920, 1080)):
            page = await (await browser.new_context(viewport={"width": width, "height": height})).new_page()
            await page.goto(link)
            await _live(page)
            await page.wait_for_function("document.querySelectorAll('#banners .ihd-banner').length === 2")
            await page.wait_for_function("document.getElementById('cost-today').textContent !== '–'")
            assert await page.evaluate(FITS), f"the display scrolls at {width}x{height}"
            await page.wait_for_timeout(1000)  # the tier colour fades in
            await page.screenshot(path=str(output_dir / f"ihd-{width}x{height}.png"))


def _fixed_port_config(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path, CONFIG.replace("port: 0", f"port: {_free_port()}")


async def test_the_display_shows_stale_data_and_recovers_by_itself(tmp_path, output_dir):
    folder, config = _fixed_port_config(tmp_path)
    async with running_appliance(folder, config_text=config) as appliance:
        async with chromium() as browser:
            page = await _open_display(appliance, browser)
            await appliance.web.stop()
            await page.wait_for_function("document.body.classList.contains('stale')")
            band = await page.text_content("#stale")
            assert band.startswith("Data not current since "), band
            assert await page.is_visible("#stale")
            await page.wait_for_timeout(600)  # the figures fade out
            await page.screenshot(path=str(output_dir / "ihd-stale-800x480.png"))
            await appliance.web.start()
            await page.wait_for_function("!document.body.classList.contains('stale')", timeout=15000)
            assert not await page.is_visible("#revoked")


async def test_a_revoked_display_link_stops_at_the_next_reconnect(tmp_path, output_dir):
    folder, config = _fixed_port_config(tmp_path)
    async with running_appliance(folder, config_text=config) as appliance:
        await appliance.online()
        link = await _kiosk_link(appliance)
        async with chromium() as browser:
            page = await (await browser.new_context(viewport={"width": 800, "height": 480})).new_page()
            await page.goto(link)
            await _live(page)
            accounts = Accounts(appliance.hub.store)
            kiosk = next(t for t in await accounts.tokens() if t.is_kiosk)
            await accounts.revoke_token(kiosk.id)
            await appliance.web.stop()  # the open socket ends; the page reconnects with its cookie
            await appliance.web.start()
            await page.wait_for_selector("#revoked", state="visible", timeout=15000)
            assert "This display link was revoked" in await page.text_content("#revoked")
            await page.screenshot(path=str(output_dir / "ihd-revoked-800x480.png"))
            await page.reload()
            assert "This display link was revoked" in await page.text_content("h1")
            assert await page.query_selector("#password") is None  # not a login form
            status = await page.evaluate("fetch('/api/v1/meter').then(r => r.status)")
            assert status == 401
            posted = await page.evaluate("fetch('/api/v1/events', {method: 'POST'}).then(r => r.status)")
            assert posted in (401, 403)


async def test_a_display_left_on_shows_the_on_peak_price_when_it_starts(tmp_path, output_dir):
    # On the appliance's clock, seconds before the plan's on-peak (16:00): the display asks the rate
    # sheet again at the time its price now says it ends, not at the next interval or reload.
    async with running_appliance(tmp_path, clock=local_clock("15:59:54")) as appliance:
        async with chromium() as browser:
            page = await _open_display(appliance, browser)
            await page.wait_for_function("document.getElementById('price-sub').textContent.includes('off-peak')")
            assert "Low price" in await page.text_content("#tier")
            await page.wait_for_function("document.getElementById('tier').textContent === 'High price'", timeout=30000)
            assert "on-peak" in await page.text_content("#price-sub")
            assert "$0.51" in await page.text_content("#price")

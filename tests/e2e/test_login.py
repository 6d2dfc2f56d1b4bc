"""Accounts in a real browser: first start, sign-in, a wrong password, the lockout, sign-out, keyboard only."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import OWNER, OWNER_PASSWORD, running_appliance
from tests.web.browser import chromium


@pytest.fixture
async def first_start(tmp_path):
    async with running_appliance(tmp_path, owner=False) as running:
        yield running


async def _try(page, username: str, password: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def test_first_start_asks_for_the_owner_and_signs_them_in(first_start, output_dir):
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await page.goto(first_start.url + "/")
        assert page.url == first_start.url + "/setup"
        await page.screenshot(path=str(output_dir / "setup-360.png"), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await page.get_by_label("User name").fill("Ann")
        await page.get_by_label("Password", exact=True).fill("a long password")
        await page.get_by_label("Password again").fill("a long password")
        await page.get_by_role("button", name="Create the account").click()
        await page.wait_for_url(first_start.url + "/")
        await page.wait_for_function("document.getElementById('link').textContent === 'Meter online'")
        await page.goto(first_start.url + "/setup")
        assert page.url == first_start.url + "/"  # setup is gone: to /login, and on, as she is signed in


async def test_sign_in_opens_the_dashboard(appliance):
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(appliance.url + "/")
        assert page.url == appliance.url + "/login"
        await _try(page, OWNER, OWNER_PASSWORD)
        await page.wait_for_url(appliance.url + "/")
        await page.wait_for_function("document.getElementById('demand').textContent !== '–'")


async def test_a_wrong_password_is_refused_with_a_clear_message(appliance, output_dir):
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await page.goto(appliance.url + "/login")
        await _try(page, OWNER, "not my password")
        assert await page.text_content("[role=alert]") == "Wrong user name or password."
        assert await page.input_value("#username") == OWNER  # kept, so only the password is retyped
        await page.screenshot(path=str(output_dir / "login-wrong-360.png"), full_page=True)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360


async def test_five_failures_lock_the_sign_in_and_say_so(appliance, output_dir):
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(appliance.url + "/login")
        for _ in range(5):
            await _try(page, OWNER, "guess")
        await _try(page, OWNER, OWNER_PASSWORD)
        message = await page.text_content("[role=alert]")
        assert "Too many failed sign-ins with this name" in message and "Try again in" in message
        assert page.url.startswith(appliance.url + "/login")
        await page.screenshot(path=str(output_dir / "login-locked.png"), full_page=True)


async def test_sign_out_returns_to_the_login_page(appliance):
    async with chromium() as browser:
        page = await browser.new_page()
        await appliance.sign_in(page)
        await page.goto(appliance.url + "/account/users")
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(appliance.url + "/login?bye")
        assert await page.text_content("[role=status]") == "You are signed out."
        await page.goto(appliance.url + "/")
        assert page.url == appliance.url + "/login"


async def test_the_login_form_works_with_the_keyboard_alone(appliance):
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(appliance.url + "/login")
        assert await page.evaluate("document.activeElement.id") == "username"  # focused on arrival
        await page.keyboard.type(OWNER)
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "password"
        await page.keyboard.type(OWNER_PASSWORD)
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Sign in"
        await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Enter")
        await page.wait_for_url(appliance.url + "/")


async def test_signing_out_from_the_live_page_returns_to_the_login(appliance):
    async with chromium() as browser:
        page = await browser.new_page()
        await appliance.sign_in(page)
        await page.click("text=Sign out")
        await page.wait_for_url("**/login**")
        await page.goto(appliance.url + "/")
        assert "/login" in page.url

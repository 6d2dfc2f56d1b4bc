"""Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tests.conftest import require_tool

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    require_tool(CHROMIUM, "browser tests")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()

"""Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from tests.conftest import require_tool

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# Playwright runs a wait_for_function expression given as a plain string ("document.x === 1") with
# eval() at every poll after the first, which the pages' Content-Security-Policy (no 'unsafe-eval')
# blocks; an arrow function is eval'd once, within the DevTools call that may, and then only called.
_A_FUNCTION = re.compile(r"^\s*(async\s+)?(function\b|\(?[\w\s,{}\[\]=]*\)?\s*=>)")


def _as_function(expression: str) -> str:
    return expression if _A_FUNCTION.match(expression) else f"() => ({expression})"


def _wait_as_function(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wait_for_function(self: Any, expression: str, *args: Any, **kwargs: Any) -> Any:
        return original(self, _as_function(expression), *args, **kwargs)

    wait_for_function.__wrapped_for_csp__ = True  # type: ignore[attr-defined]
    return wait_for_function


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    require_tool(CHROMIUM, "browser tests")
    from playwright.async_api import Frame, Page, async_playwright

    for cls in (Page, Frame):
        if not getattr(cls.wait_for_function, "__wrapped_for_csp__", False):
            cls.wait_for_function = _wait_as_function(cls.wait_for_function)  # type: ignore[method-assign]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def csp_violations(page: object) -> list[str]:
    """What the Content-Security-Policy blocks on ``page`` from now on (Chromium says so on the console)."""
    seen: list[str] = []

    def note(message: object) -> None:
        text = str(getattr(message, "text", ""))
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            seen.append(text)

    page.on("console", note)  # type: ignore[attr-defined]
    return seen

"""Every page fits a phone, a laptop, a wall tablet and a big screen, in English, Spanish and Chinese.

One appliance (the simulated home with an event running) and one browser for the module. Each page
is opened at 360x740, 800x480, 1280x800 and 1920x1080 (the display also at 1024x600) in en, es and
zh, and fails on text that is clipped or overflows its box (an element whose scrollWidth exceeds
its clientWidth, or on the display, whose scrollHeight exceeds its clientHeight where it hides the
rest), on a page that scrolls sideways, and on text whose contrast with its background is below
4.5:1 (3:1 for large text, WCAG 1.4.3). The screenshots are kept under test-output/<test>/.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    HOME_CONFIG,
    HOME_RULES,
    HOME_SCENARIO,
    Appliance,
    local_clock,
    running_appliance,
)
from tests.e2e.test_ihd import _kiosk_link
from tests.web.browser import chromium, csp_violations

pytestmark = pytest.mark.timeout(600)

SIZES = [(360, 740), (800, 480), (1280, 800), (1920, 1080)]
WALL_SIZES = [(800, 480), (1024, 600), (1280, 800), (1920, 1080)]
LANGUAGES = ["en", "es", "zh"]

# An event that runs for the whole test (the home's scenario has a one-minute one).
SCENARIO = {**HOME_SCENARIO, "events": [{**HOME_SCENARIO["events"][0], "duration_min": 120}]}

# What the page measures: overflowing or clipped text, sideways scrolling, contrast.
CHECK = """(wall) => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) problems.push(`the page scrolls sideways (${doc.scrollWidth} > ${doc.clientWidth})`);
  if (wall && doc.scrollHeight > innerHeight + 1) problems.push(`the display scrolls (${doc.scrollHeight} > ${innerHeight})`);
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const rgba = (text) => { const m = text.match(/[\\d.]+/g) || []; return m.map(Number).concat([1]).slice(0, 4); };
  const lum = ([r, g, b]) => { const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; };
  const background = (el) => {
    for (let at = el; at; at = at.parentElement) {
      const c = rgba(getComputedStyle(at).backgroundColor);
      if (c[3] > 0.5) return c;
    }
    return [255, 255, 255, 1];
  };
  const shown = (el) => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  const skip = "svg, canvas, textarea, .u-wrap, .u-legend, .visually-hidden, .skip, .gutter, [hidden], script, style";
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest(skip) || !shown(el)) continue;
    const s = getComputedStyle(el);
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && s.display !== "inline")
      problems.push(`${name(el)} overflows: "${el.textContent.trim().slice(0, 60)}" (${el.scrollWidth} > ${el.clientWidth})`);
    if (wall && el.clientHeight > 0 && el.scrollHeight > el.clientHeight + 1 && s.overflowY !== "visible")
      problems.push(`${name(el)} is cut: "${el.textContent.trim().slice(0, 60)}" (${el.scrollHeight} > ${el.clientHeight})`);
    const text = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text || parseFloat(s.opacity) < 1) continue;
    const fg = rgba(s.color), bg = background(el);
    const mixed = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
    const [hi, lo] = [lum(mixed), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(`${name(el)} contrast ${ratio.toFixed(2)} < ${needed}: "${el.textContent.trim().slice(0, 40)}"`);
  }
  if (wall) for (const el of document.querySelectorAll(".ihd-num")) {  // read from across the room
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < 0.09 * innerHeight) problems.push(`${name(el)} is small: ${size}px on a ${innerHeight}px screen`);
  }
  return problems;
}"""


@contextlib.asynccontextmanager
async def _home(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path, SCENARIO, config_text=HOME_CONFIG, rules_text=HOME_RULES,
                                 clock=local_clock("17:00")) as running:
        await running.online()
        devices = running.hub.control.registry.devices
        await running.wait_until(lambda: len(devices) == 3 and all(d.reading is not None for d in devices.values()),
                                 timeout_s=15, what="the three home devices set up")
        await running.wait_until(lambda: any(v.phase.value == "active" for v in running.hub.control.events()),
                                 timeout_s=15, what="event 5101 running")
        yield running


async def _measure(page: Any, out: Path, name: str, wall: bool = False) -> list[str]:
    await page.wait_for_timeout(150)  # a push or a fetch lands; fonts settle
    await page.screenshot(path=str(out / f"{name}.png"), full_page=not wall)
    return [f"{name}: {p}" for p in await page.evaluate(CHECK, wall)]


async def _small_buttons(page: Any, name: str) -> list[str]:
    """The page's buttons a finger cannot easily hit (under 44 px high, WCAG 2.5.5)."""
    small = await page.eval_on_selector_all(
        "main button", "bs => bs.map(b => [b.textContent.trim(), b.getBoundingClientRect().height]).filter(x => x[1] < 44)")
    return [f"{name}: the button {text!r} is {height:.0f} px high" for text, height in small]


async def test_every_page_fits_every_screen_in_every_language(tmp_path: Path, output_dir: Path) -> None:
    problems: list[str] = []
    async with _home(tmp_path) as home, chromium() as browser:
        context = await browser.new_context(reduced_motion="reduce")
        page = await context.new_page()
        blocked = csp_violations(page)
        await home.sign_in(page)
        # A rules text with two mistakes, so the problems list and the gutter's marks show.
        await page.goto(home.url + "/rules")
        await page.fill("#rules-text", HOME_RULES.replace("{max_offset_c: 3}", "{max_offset_c: three}")
                        .replace("Living room:", "Living rooom:"))
        await page.click("button[value=check]")
        await page.wait_for_selector("#rule-problems")
        rules_text = await page.input_value("#rules-text")
        for language in LANGUAGES:
            # As a person reads the pages: their language chosen on the Settings page.
            await page.goto(home.url + "/settings")
            await page.select_option("#language", language)
            await page.click("form[action='/settings'] button[type=submit]")
            await page.wait_for_selector(f"html[lang={language}]")
            for width, height in SIZES:
                await page.set_viewport_size({"width": width, "height": height})
                for path, name, ready in [
                    ("/", "dashboard", "#now .now-what:not(:empty)"),
                    ("/devices", "devices", ".device"),
                    ("/devices/add", "add-devices", "#found .device"),
                    ("/commissioning", "commissioning", "#selftest-title"),
                    ("/settings", "settings", "#wall-title"),  # last: the display-link form below is on it
                ]:
                    await page.goto(home.url + path)
                    await page.wait_for_selector(ready)
                    problems += await _measure(page, output_dir, f"{name}-{language}-{width}x{height}")
                    if name in ("devices", "add-devices"):
                        problems += await _small_buttons(page, f"{name}-{language}-{width}x{height}")
                    if name == "add-devices":  # the test tool's results and a scan, with their guidance
                        await page.click("form[action='/devices/add/test'] button")
                        await page.wait_for_selector("#test-results")
                        problems += await _measure(page, output_dir, f"add-devices-test-{language}-{width}x{height}")
                        await page.click("form[action='/devices/add/scan'] button")
                        await page.wait_for_selector("#scan-result")
                        problems += await _measure(page, output_dir, f"add-devices-scan-{language}-{width}x{height}")
                    if name == "devices" and language == "es":
                        assert "refrigeración" in await page.text_content(".device")  # the thermostat's mode, in words
                    if name == "dashboard":  # the event running, on the first screen, with its end and time left
                        now = await page.text_content("#now-what")
                        assert "5101" in now and re.search(r"\b(19|0?7):00", now), now
                        if await page.evaluate("document.getElementById('now').getBoundingClientRect().bottom > innerHeight"):
                            problems.append(f"{name}-{language}-{width}x{height}: Now is not all on the first screen")
                # A new display link from the Settings page's Wall display form: the link, its copy button, its QR code.
                await page.fill("#kiosk-place", "Hall")
                await page.select_option("#wall-lang", language)
                await page.check("#wall-dim")
                await page.click("#wall-form button[type=submit]")
                await page.wait_for_selector("#kiosk-link")
                assert f"&lang={language}&dim=22%3A00-07%3A00" in await page.input_value("#kiosk-link")
                problems += await _measure(page, output_dir, f"display-link-{language}-{width}x{height}")
                await page.goto(home.url + "/rules")
                await page.fill("#rules-text", rules_text)
                await page.click("button[value=check]")
                await page.wait_for_selector("#rule-problems")
                problems += await _measure(page, output_dir, f"rules-{language}-{width}x{height}")
                problems += await _small_buttons(page, f"rules-{language}-{width}x{height}")
        # The gutter keeps one number per line as the text grows, the problem lines marked.
        await page.fill("#rules-text", rules_text + "# one more line\n# and another\n")
        lines = (rules_text + "# one more line\n# and another\n").count("\n") + 1
        assert await page.eval_on_selector_all("#rules-gutter span", "s => s.length") == lines
        assert await page.eval_on_selector_all("#rules-gutter span.bad", "s => s.map(x => x.textContent)") == ["2"]

        # Night dimming from the appliance's clock (17:00 and a few minutes here): the display darkens
        # within its hours, and its text keeps its contrast; outside them it does not.
        night = await (await browser.new_context(viewport={"width": 1024, "height": 600}, reduced_motion="reduce")).new_page()
        await night.goto(await _kiosk_link(home) + "&dim=06:00-07:00")
        await night.wait_for_function("!document.body.classList.contains('stale')")
        assert not await night.evaluate("document.body.classList.contains('night')")
        await night.goto(await _kiosk_link(home) + "&dim=16:30-18:30")
        await night.wait_for_selector("body.night")
        await night.wait_for_function("!document.body.classList.contains('stale')")
        problems += await _measure(night, output_dir, "ihd-night-1024x600", wall=True)

        wall = await (await browser.new_context(reduced_motion="reduce")).new_page()
        for language in LANGUAGES:
            await wall.goto(await _kiosk_link(home) + f"&lang={language}")  # the language survives the link
            assert await wall.evaluate("document.documentElement.lang") == language
            for width, height in WALL_SIZES:
                await wall.set_viewport_size({"width": width, "height": height})
                await wall.reload()
                await wall.wait_for_function("!document.body.classList.contains('stale')")
                await wall.wait_for_selector(".banner-event")
                assert re.search(r"\b(19|0?7):00", await wall.text_content(".banner-event"))  # the end time, always
                problems += await _measure(wall, output_dir, f"ihd-{language}-{width}x{height}", wall=True)
                # Signed in, the owner's display has the Opt out button beside the banner's words.
                await page.set_viewport_size({"width": width, "height": height})
                await page.goto(f"{home.url}/ihd?lang={language}")
                await page.wait_for_selector(".banner-event .ihd-act")
                await page.wait_for_function("!document.body.classList.contains('stale')")
                assert re.search(r"\b(19|0?7):00", await page.text_content(".banner-event"))
                problems += await _measure(page, output_dir, f"ihd-owner-{language}-{width}x{height}", wall=True)
    assert not problems, "\n".join(problems)
    assert blocked == []  # the gutter, the copy button, the QR code and the fitting all pass the policy

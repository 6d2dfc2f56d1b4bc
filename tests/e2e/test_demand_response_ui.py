"""Demand response on the dashboard and the In-Home Display, in a real browser against the simulated home:
what the EMS did for event 5101 (the devices it holds, the commands it sent), the load change measured,
a device taken out by keyboard, and the display's Opt out button for a signed-in person only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ems.accounts import Accounts
from ems.model import IntervalReading
from tests.e2e.conftest import (
    HOME_CONFIG,
    HOME_IEEE,
    HOME_RULES,
    HOME_SCENARIO,
    OWNER,
    Appliance,
    running_appliance,
)
from tests.e2e.test_actions import _opt_out_frame
from tests.e2e.test_ihd import _kiosk_link
from tests.web.browser import chromium

SITE_TZ = ZoneInfo("America/Los_Angeles")  # conftest.CONFIG's site
CARD = "#events li.event[data-event-id='5101']"
NO_SIDEWAYS = "document.documentElement.scrollWidth <= innerWidth"
FITS = "document.documentElement.scrollHeight <= innerHeight && document.documentElement.scrollWidth <= innerWidth"


def flat_history(now: datetime, days: int = 15, kw: float = 2.0) -> list[IntervalReading]:
    """``days`` of a flat load in 15-minute intervals before ``now``'s day (the site's): enough for a baseline."""
    today = now.astimezone(SITE_TZ).date()
    at = datetime.combine(today - timedelta(days=days), time(0), SITE_TZ).astimezone(UTC)
    end = datetime.combine(today, time(0), SITE_TZ).astimezone(UTC)
    readings = []
    while at < end:
        readings.append(IntervalReading("main", at, 900, kw * 0.25))
        at += timedelta(minutes=15)
    return readings


@contextlib.asynccontextmanager
async def home(tmp_path: Path, history: bool = False) -> AsyncIterator[Appliance]:
    """The simulated home with event 5101 running and every device shed; with ``history``, a baseline."""
    async with running_appliance(tmp_path, HOME_SCENARIO, config_text=HOME_CONFIG, rules_text=HOME_RULES) as running:
        if history:
            await running.hub.store.add_intervals(flat_history(running.hub.clock()))
        await running.online()
        devices = running.hub.control.registry.devices
        await running.wait_until(lambda: len(devices) == 3 and all(d.reading is not None for d in devices.values()),
                                 timeout_s=15, what="the three home devices set up")
        pump = running.simulator.home.device("Pool pump")
        await running.wait_until(lambda: not pump.on and running.simulator.home.device("Spa heater").shedding,
                                 timeout_s=15, what="event 5101 applied")
        yield running


async def _screenshot_card(page: Any, path: str) -> None:
    """The page clipped to the event's card. A screenshot of the card's element itself waits for that
    node to be stable, and fails when a live push re-renders the card (a new node) meanwhile; the
    card's box is read in one step in the page, and the page has no such race."""
    box = await page.evaluate(
        f"""(() => {{ const r = document.querySelector("{CARD}").getBoundingClientRect();
                     return {{x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}}; }})()""")
    await page.screenshot(path=path, full_page=True, clip=box)


async def _spanish(appliance: Appliance) -> None:
    accounts = Accounts(appliance.hub.store)
    owner = await accounts.user(OWNER)
    await accounts.set_language(owner.id, "es")


async def _card_shows_what_the_ems_did(page: Any) -> None:
    await page.wait_for_selector(CARD)
    await page.wait_for_function(
        f"document.querySelectorAll(\"{CARD} .ev-held li\").length === 3", timeout=10000)
    await page.wait_for_function(f"document.querySelectorAll(\"{CARD} .ev-log li\").length >= 3", timeout=10000)


async def test_the_dashboard_shows_what_the_ems_did_and_too_little_history_in_the_users_language(
        tmp_path, output_dir):
    async with home(tmp_path) as appliance:
        await _spanish(appliance)
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await appliance.sign_in(page)
            await _card_shows_what_the_ems_did(page)

            held = await page.text_content(f"{CARD} .ev-held")
            assert "Pool pump" in held and "Spa heater" in held and "Living room" in held
            assert "apagado" in held  # the pump is kept off, in Spanish
            log = await page.text_content(f"{CARD} .ev-log")
            assert "Pool pump" in log and "hecho" in log  # each command, and that it took
            buttons = await page.eval_on_selector_all(f"{CARD} button[data-action=device-opt-out]",
                                                      "bs => bs.map(b => b.textContent)")
            assert buttons == ["Sacar"] * 3
            status = await page.text_content(f"{CARD} .ev-status")
            assert status.startswith("Aún no hay historial suficiente"), status
            assert await page.is_hidden(f"{CARD} .ev-figures")  # no number made up
            assert "historial insuficiente" in await page.text_content(f"{CARD} .ev-note")  # the API's note_text
            await _screenshot_card(page, str(output_dir / "event-card-es-1280.png"))


async def test_the_dashboard_shows_the_load_change_measured_against_a_baseline(tmp_path, output_dir):
    async with home(tmp_path, history=True) as appliance:
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await appliance.sign_in(page)
            await _card_shows_what_the_ems_did(page)
            await page.wait_for_selector(f"{CARD} .ev-average dd", timeout=10000)

            change = await appliance.get("/api/v1/events/main/5101/load-change")
            assert change["status"] == "live" and change["kw_reduced"] is not None
            assert (await page.text_content(f"{CARD} .ev-status")).startswith("Live")
            average = await page.text_content(f"{CARD} .ev-average dd")
            assert average.endswith(" kW") and abs(float(average[:-3]) - change["kw_reduced"]) < 0.05
            assert (await page.text_content(f"{CARD} .ev-saved dd")).startswith("$")  # USD, as the locale writes it
            assert (await page.text_content(f"{CARD} .ev-shifted dd")).endswith(" kWh")
            assert await page.query_selector(f"{CARD} .ev-now dd") is not None
            assert await page.query_selector(f"{CARD} .ev-rebate") is None  # not a peak-time-rebate plan
            await _screenshot_card(page, str(output_dir / "event-card-1280.png"))

            await page.set_viewport_size({"width": 360, "height": 740})
            await page.wait_for_timeout(200)
            assert await page.evaluate(NO_SIDEWAYS), "the dashboard scrolls sideways at 360 px"
            await _screenshot_card(page, str(output_dir / "event-card-360.png"))


async def test_taking_the_pool_pump_out_by_keyboard_runs_it_again_and_offers_to_put_it_back(tmp_path, output_dir):
    async with home(tmp_path) as appliance:
        pump = appliance.simulator.home.device("Pool pump")
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await appliance.sign_in(page)
            await _card_shows_what_the_ems_did(page)

            # Keyboard only: Tab to the pool pump's Take out button, then Enter.
            for _ in range(80):
                await page.keyboard.press("Tab")
                focused = await page.evaluate("[document.activeElement.dataset.action, document.activeElement.dataset.deviceId]")
                if focused == ["device-opt-out", HOME_IEEE["pump"]]:
                    break
            else:
                raise AssertionError("Tab never reached the pool pump's Take out button")
            assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
            await page.keyboard.press("Enter")

            await appliance.wait_until(lambda: pump.on, timeout_s=10, what="the pump back on")
            await page.wait_for_selector(f"{CARD} .ev-out li")
            assert "Pool pump" in await page.text_content(f"{CARD} .ev-out")
            assert "Pool pump" not in await page.text_content(f"{CARD} .ev-held")
            focused = await page.evaluate("[document.activeElement.dataset.action, document.activeElement.dataset.deviceId,"
                                          " document.activeElement.textContent]")
            assert focused == ["device-opt-in", HOME_IEEE["pump"], "Put back"]  # the keyboard stays on the device
            assert "Pool pump is out of event 5101" in await page.text_content("#events-status")
            assert appliance.simulator.home.device("Spa heater").shedding  # the others stay in the event
            await page.wait_for_function(  # the restore is in the event's command log
                f"document.querySelector(\"{CARD} .ev-log\").textContent.includes('put back')", timeout=10000)
            await _screenshot_card(page, str(output_dir / "event-card-pump-taken-out.png"))

            await page.keyboard.press("Enter")  # Put back: the pump is in the event again ...
            await page.wait_for_function(f"document.querySelector(\"{CARD} .ev-out\") === null")
            assert appliance.hub.control.load_control.run("main", 5101).excluded == set()
            await page.wait_for_function(  # ... but its protection keeps it on, and the card says why
                f"(document.querySelector(\"{CARD} .ev-idle\") || {{}}).textContent?.includes('stays on at least')",
                timeout=10000)
            assert "Pool pump" in await page.text_content(f"{CARD} .ev-idle")
            assert pump.on


async def test_the_display_offers_opt_out_to_the_signed_in_owner_and_it_reaches_the_meter(tmp_path, output_dir):
    async with home(tmp_path, history=True) as appliance:
        async with chromium() as browser:
            page = await (await browser.new_context(viewport={"width": 800, "height": 480})).new_page()
            await appliance.sign_in(page)
            await page.goto(appliance.url + "/ihd")
            await page.wait_for_selector(".banner-event.banner-active .ihd-act[data-action=opt-out]")
            assert await page.text_content(".banner-event .ihd-act") == "Opt out"
            # The saving shows once the first slot is measured (a hang guard only: a busy machine is slow).
            await page.wait_for_function("document.querySelector('.ihd-saving') && !document.querySelector('.ihd-saving').hidden",
                                         timeout=45000)
            assert (await page.text_content(".ihd-saving")).startswith("Saving now: ")
            assert await page.evaluate(FITS), "the display scrolls at 800x480"
            await page.wait_for_function("!document.body.classList.contains('stale')")
            await page.wait_for_timeout(1000)  # the tier colour fades in
            await page.screenshot(path=str(output_dir / "ihd-owner-800x480.png"))

            await page.click(".banner-event .ihd-act")
            frame = await _opt_out_frame(appliance)
            assert frame.fields["issuer_event_id"] == 5101 and frame.fields["event_status"] == 0x04
            await page.wait_for_selector(".banner-event .ihd-act[data-action=opt-in]")
            assert await page.text_content(".banner-event .ihd-act") == "Opt back in"
            assert "you opted out" in await page.text_content(".banner-event")
            await page.screenshot(path=str(output_dir / "ihd-owner-opted-out-800x480.png"))


async def test_the_display_through_a_kiosk_link_shows_the_saving_and_no_button(tmp_path, output_dir):
    async with home(tmp_path, history=True) as appliance:
        link = await _kiosk_link(appliance)
        async with chromium() as browser:
            page = await (await browser.new_context(viewport={"width": 800, "height": 480})).new_page()
            await page.goto(link)
            await page.wait_for_selector(".banner-event.banner-active")
            # The saving shows once the first slot is measured (a hang guard only: a busy machine is slow).
            await page.wait_for_function("document.querySelector('.ihd-saving') && !document.querySelector('.ihd-saving').hidden",
                                         timeout=45000)
            assert await page.query_selector(".ihd-act") is None
            assert await page.query_selector("meta[name=csrf-token]") is None
            read = "fetch('/api/v1/events/main/5101/load-change').then(r => r.status)"
            assert await page.evaluate(read) == 200  # the display link reads the saving ...
            post = "fetch('/api/v1/events/main/5101/opt-out', {method: 'POST'}).then(r => r.status)"
            assert await page.evaluate(post) == 403  # ... and cannot opt out
            assert await page.evaluate("fetch('/api/v1/events/main/5101/actions').then(r => r.status)") == 403
            assert await page.evaluate(FITS), "the display scrolls at 800x480"
            await page.wait_for_function("!document.body.classList.contains('stale')")
            await page.wait_for_timeout(1000)
            await page.screenshot(path=str(output_dir / "ihd-kiosk-800x480.png"))
    assert appliance.hub.control.load_control.run("main", 5101).opted_out is False


async def test_a_device_is_taken_out_before_the_event_starts_and_stays_out(tmp_path: Path) -> None:
    """C6 3.3 step 4 and issue 5: the customer takes one device out of an announced event on the dashboard;
    when the event starts, the others are shed and that one keeps running."""
    later = {**HOME_SCENARIO, "events": [{**HOME_SCENARIO["events"][0], "starts_in": "25s"}]}
    async with running_appliance(tmp_path, later, config_text=HOME_CONFIG, rules_text=HOME_RULES) as app:
        await app.online()
        devices = app.hub.control.registry.devices
        await app.wait_until(lambda: len(devices) == 3 and all(d.reading is not None for d in devices.values()),
                             timeout_s=15, what="the three home devices set up")
        await app.wait_until(lambda: any(v.key == ("main", 5101) for v in app.hub.control.events()), timeout_s=10, what="event 5101 announced")
        async with chromium() as browser:
            page = await browser.new_page()
            await app.sign_in(page)
            button = f"{CARD} .ev-coming button[data-action='device-opt-out'][aria-label*='Pool pump']"
            await page.wait_for_selector(button, timeout=15_000)
            await page.click(button)
            await page.wait_for_selector(f"{CARD} .ev-out", timeout=10_000)
        run = app.hub.control.load_control.run("main", 5101)
        assert run.excluded == {HOME_IEEE["pump"]}
        pump, spa = app.simulator.home.device("Pool pump"), app.simulator.home.device("Spa heater")
        await app.wait_until(lambda: spa.shedding, timeout_s=40, what="the event started and the spa shed")
        assert pump.on  # taken out before the start: never switched off

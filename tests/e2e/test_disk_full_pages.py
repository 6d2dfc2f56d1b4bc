"""Issue 11 finding 6: when the data disk fills, the dashboard and the display say what is wrong,
in the reader's language, at once (a push, no reload), and say nothing once space returns."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from ems.bus import EventBus
from ems.model import MeterReading, StorageChanged
from integrations.zigbee_se.frames import BACKFILL
from tests.disk import full_disk
from tests.e2e.conftest import CONFIG, running_appliance
from tests.e2e.test_ihd import _kiosk_link
from tests.web.browser import chromium

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
SHOWN = "!document.getElementById('problems').closest('[hidden]') && document.getElementById('problems').textContent"
GONE = "!!document.getElementById('problems').closest('[hidden]')"


async def _fill(store: Any) -> None:
    """Write readings (of long ago, past the store's own bus: the pages do not show them) until the
    store says its disk is full."""
    bus = EventBus()
    store.attach(bus)
    written = 0
    while store.outage is None:
        assert written < 40_000, "the capped database never filled"
        for i in range(200):
            bus.publish(MeterReading("main", LONG_AGO + timedelta(seconds=written + i), demand_kw=1.0))
        written += 200
        await store.flush()


async def test_a_full_disk_is_said_on_the_dashboard_and_the_display_until_space_returns(tmp_path, output_dir):
    # The site speaks Chinese (the display's language); the owner reads the dashboard in Spanish.
    config = CONFIG.replace("timezone: America/Los_Angeles}", "timezone: America/Los_Angeles, language: zh}")
    async with running_appliance(tmp_path, config_text=config) as app:
        await app.online()
        kiosk = await _kiosk_link(app)
        async with chromium() as browser:
            dashboard = await (await browser.new_context(viewport={"width": 360, "height": 740},
                                                         locale="es-ES")).new_page()
            await app.sign_in(dashboard)
            await dashboard.goto(app.url + "/settings")  # the owner reads the pages in Spanish
            await dashboard.select_option("#language", "es")
            await dashboard.click("form[action='/settings'] button[type=submit]")
            await dashboard.wait_for_selector("text=Guardado. Las páginas ya usan su idioma.")
            await dashboard.goto(app.url + "/")
            display = await (await browser.new_context(viewport={"width": 800, "height": 480},
                                                       locale="zh-CN")).new_page()
            await display.goto(kiosk)
            await dashboard.wait_for_function("document.getElementById('demand').textContent !== '–'")
            await display.wait_for_function("document.getElementById('demand').textContent !== '–'")
            assert await dashboard.evaluate(GONE) and await display.evaluate(GONE)

            with full_disk(app.hub.store):
                await _fill(app.hub.store)
                health = await app.get("/api/v1/health")
                assert health["status"] == "degraded"
                assert [p["problem"] for p in health["problems"]] == ["disk_full"]
                said = await (await dashboard.wait_for_function(SHOWN)).json_value()
                assert said.startswith("El disco de datos del equipo está lleno")
                shown = await (await display.wait_for_function(SHOWN)).json_value()
                assert shown == "读数没有被保存：数据磁盘已满。"
                await dashboard.screenshot(path=str(output_dir / "disk-full-dashboard-es-360x740.png"))
                await display.screenshot(path=str(output_dir / "disk-full-ihd-zh-800x480.png"))
                # The meter is still read meanwhile: the pages keep showing what it says.
                assert app.hub.state.meters["main"].link.value == "online"

            await app.hub.store.flush()  # space is back: the writer writes what it held
            await dashboard.wait_for_function(GONE)
            await display.wait_for_function(GONE)
            assert (await app.get("/api/v1/health"))["problems"] == []


async def test_intervals_lost_in_a_storage_outage_are_read_again_from_the_meter_when_it_ends(tmp_path):
    """Finding 6: intervals the writer could not keep (beyond its cap) are read again from the meter's
    profile once the database takes writes again, not at the next reconnect."""
    async with running_appliance(tmp_path) as app:
        await app.online()
        store, now = app.hub.store, app.hub.clock()
        await app.wait_until(lambda: app.hub.state.meters["main"].last_interval, what="the profile read")
        counts: list[int] = []

        async def history_read() -> bool:  # the link-up's backfill is over: the count stands still
            counts.append(len(await store.intervals("main", now - timedelta(days=2), now + timedelta(hours=1))))
            await asyncio.sleep(1)
            return len(counts) > 2 and counts[-1] == counts[-2] == counts[-3] > 0
        await app.wait_until(history_read, what="the interval history read at link-up")
        held = await store.intervals("main", now - timedelta(days=2), now + timedelta(hours=1))
        # As if those rows never made it to disk: a size limit of nothing thins every interval.
        store.retention = dataclasses.replace(store.retention, max_bytes=1)
        await store.keep_within_size()
        store.retention = dataclasses.replace(store.retention, max_bytes=None)
        left = await store.intervals("main", now - timedelta(days=2), now + timedelta(hours=1))
        assert len(left) < len(held) / 2  # (the regular poll may bring back the newest few)

        app.hub.bus.publish(StorageChanged(None, now))  # the outage is over
        # Every one the meter still has to give: its history is read back BACKFILL from now, so an
        # interval that aged past that while the test ran (a minute boundary) is not among them.
        reach = app.hub.clock() - BACKFILL + timedelta(minutes=1)
        wanted = {i.start for i in held if i.start >= reach}
        assert len(wanted) >= len(held) - 5  # only the few at the edge of the meter's reach

        async def read_again() -> bool:
            again = await store.intervals("main", now - timedelta(days=2), now + timedelta(hours=1))
            return wanted <= {i.start for i in again}
        await app.wait_until(read_again, what="the intervals read again")

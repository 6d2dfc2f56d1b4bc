"""The self-test's checks, each on real parts: a real SQLite store (and a damaged one), a real TCP
listener for a virtual radio, a real file for a serial one, the disk the test runs on; the clock
as the test sets it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ems.bus import EventBus
from ems.clock import FixedClock
from ems.config import StoreConfig
from ems.errors import StoreError
from ems.model import (
    CheckOutcome,
    CommissioningStage,
    CommissioningStep,
    LinkState,
    MeterLinkChanged,
    SelfTestReport,
)
from ems.selftest import (
    RadioTarget,
    SelfTest,
    check_clock,
    check_disk,
    check_meter_link,
    check_radio,
    check_store,
    radio_targets,
)
from ems.state import CurrentState
from ems.store import Store, tables
from tests.hubs import new_hub

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def test_a_healthy_store_passes_and_each_run_leaves_a_row(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    await hub.store.open()
    try:
        check, run_id = await check_store(hub.store, NOW)
        assert check.outcome is CheckOutcome.PASSED and run_id is not None
        assert "intact and takes writes" in check.summary.english()

        async def count(conn):
            return (await conn.execute(sa.select(sa.func.count()).select_from(tables.selftest_runs))).scalar_one()

        assert await hub.store.read("count", count) == 1
    finally:
        await hub.store.close()


async def test_a_damaged_database_fails_critically(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    await hub.store.open()
    await hub.store.write("fill", lambda conn: conn.execute(
        sa.insert(tables.selftest_runs), [{"at": NOW, "checks": ["x" * 2000]} for _ in range(200)]))
    await hub.store.close()
    path = tmp_path / "data" / "ems.db"
    raw = bytearray(path.read_bytes())
    page = 4096
    for offset in range(len(raw) // 2 // page * page, len(raw) - page, page):  # the rows' pages, not the schema's
        raw[offset: offset + 12] = b"\x0d\xff\xff\x00\x09\xff\xff\x00\xff\xff\xff\xff"
    path.write_bytes(bytes(raw))
    store = Store(StoreConfig(None, 24.0, 400), tmp_path / "data")
    try:
        await store.open()
    except StoreError:
        pytest.skip("this damage stops the store opening at all (the start says so)")
    try:
        check, _run_id = await check_store(store, NOW)
        assert check.outcome is CheckOutcome.FAILED and check.critical
        assert "damaged" in check.summary.english()
    finally:
        await store.close()


async def test_a_virtual_radio_that_listens_answers_and_a_closed_port_does_not() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ok = await check_radio(RadioTarget("meter network", "virtual", f"virtual://127.0.0.1:{port}"), critical=True)
    finally:
        server.close()
        await server.wait_closed()
    assert ok.outcome is CheckOutcome.PASSED
    assert ok.summary.english() == f"The meter network radio answers (127.0.0.1:{port})."
    silent = await check_radio(RadioTarget("meter network", "virtual", f"virtual://127.0.0.1:{port}"), critical=True)
    assert silent.outcome is CheckOutcome.FAILED and silent.critical
    assert "does not answer" in silent.summary.english()


async def test_a_serial_radio_is_there_when_its_device_is(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.write_text("")
    assert (await check_radio(RadioTarget("home network", "znp", str(device)), critical=False)).outcome \
        is CheckOutcome.PASSED
    missing = await check_radio(RadioTarget("home network", "znp", str(tmp_path / "ttyACM9")), critical=False)
    assert missing.outcome is CheckOutcome.FAILED and not missing.critical
    assert "is not plugged in" in missing.summary.english()


def test_the_radios_come_from_both_networks_sections() -> None:
    sections = {"zigbee_se": {"radio": {"type": "virtual", "path": "virtual://127.0.0.1:8811"}},
                "zigbee_home": {"radio": {"type": "znp", "path": "/dev/ttyUSB0"}}}
    assert radio_targets(sections) == [RadioTarget("meter network", "virtual", "virtual://127.0.0.1:8811"),
                                       RadioTarget("home network", "znp", "/dev/ttyUSB0")]


def test_the_meter_networks_radio_is_not_checked_when_a_bridge_reads_the_meter() -> None:
    sections = {"zigbee_se": {"enabled": False, "radio": {"type": "virtual", "path": "virtual://127.0.0.1:8811"}},
                "zigbee_home": {"radio": {"type": "znp", "path": "/dev/ttyUSB0"}}}
    assert radio_targets(sections) == [RadioTarget("home network", "znp", "/dev/ttyUSB0")]


async def test_the_meter_link_passes_once_the_link_comes_up() -> None:
    state, bus = CurrentState(), EventBus()
    state.attach(bus)
    asyncio.get_running_loop().call_later(0.05, bus.publish, MeterLinkChanged("main", LinkState.ONLINE, NOW))
    [check] = await check_meter_link(state, bus, ["main"], timeout_s=30)
    assert check.outcome is CheckOutcome.PASSED
    assert check.summary.english() == "The meter main answers: the link is up."


async def test_a_meter_that_never_answers_fails_with_the_stage_that_says_why() -> None:
    state, bus = CurrentState(), EventBus()
    state.apply(CommissioningStage("main", CommissioningStep.REFUSED, NOW,
                                   "The meter does not know this appliance's install code yet."))
    [check] = await check_meter_link(state, bus, ["main"], timeout_s=0.1)
    assert check.outcome is CheckOutcome.FAILED and check.critical
    assert check.summary.english() == ("No session with the meter main within 0.1 seconds: "
                                       "The meter does not know this appliance's install code yet.")


@pytest.mark.parametrize(
    ("now", "offset", "outcome", "words"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), None, CheckOutcome.FAILED, "before this software was made"),
        (datetime(1970, 1, 1, tzinfo=UTC), timedelta(days=20000), CheckOutcome.WARNING, "keeps to the meter"),
        (NOW, None, CheckOutcome.PASSED, "not been compared"),
        (NOW, timedelta(seconds=-30), CheckOutcome.PASSED, "keeps to the meter's time"),
        (NOW, timedelta(minutes=-12), CheckOutcome.WARNING, "12 minutes ahead"),
    ],
)
def test_the_clock_is_after_the_build_date_and_not_ahead_of_the_meter(now, offset, outcome, words) -> None:
    check = check_clock(now, offset, build_date=date(2025, 1, 1))
    assert check.outcome is outcome
    assert words in check.summary.english()
    assert check.critical == (outcome is CheckOutcome.FAILED)


async def test_free_disk_is_told_and_too_little_warns(tmp_path: Path) -> None:
    ok = await check_disk(tmp_path, min_free_mb=1)
    assert ok.outcome is CheckOutcome.PASSED and "MB free on the data disk" in ok.summary.english()
    low = await check_disk(tmp_path, min_free_mb=10**12)
    assert low.outcome is CheckOutcome.WARNING and low.summary.english().startswith("Only ")


async def test_a_run_checks_everything_in_order_and_publishes_it(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, clock=FixedClock(NOW))
    await hub.start()
    try:
        heard: list[SelfTestReport] = []
        hub.bus.listen(SelfTestReport, heard.append)
        report = await SelfTest(hub, radios=[], meter_ids=["main"]).run(meter_timeout_s=0)
        assert [c.name for c in report.checks] == ["store", "radio", "meter_link", "clock", "disk"]
        assert report.failed_critically  # no radio, no meter link
        assert hub.state.selftest == report
        await hub.bus.drain()
        assert heard == [report]
    finally:
        await hub.stop()

"""I1NFR3 and SE §7: a missing meter is retried with capped backoff; the meter's clock rules."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta

import zigpy.exceptions

from ems.cli import compose, read_config
from ems.model import EventStatusReport, LinkState, MeterLinkChanged
from integrations.simulator import SimulatedHan, scenario_from_dict
from integrations.zigbee_se.frames import MeterSession
from tests.e2e.conftest import FAST_SCENARIO, running_appliance, write_config


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_meter_is_retried_with_capped_backoff_and_shown_offline(tmp_path):
    folder = write_config(tmp_path / "config", f"""
web: {{host: 127.0.0.1, port: 0}}
zigbee_se:
  radio: {{type: virtual, path: "virtual://127.0.0.1:{_closed_port()}"}}
  first_retry_s: 0.05
  registration_retry_interval_min: 0.01
""")
    hub, _web = compose(read_config(folder), tmp_path / "data")
    await hub.start()
    try:
        link = hub.integrations["zigbee_se"]
        for _ in range(1200):  # up to 60 s: a hang guard only
            if link.attempts >= 2:
                break
            await asyncio.sleep(0.05)
        assert link.attempts >= 2
        before = link.attempts
        await asyncio.sleep(1.5)
        # Waits of 0.05, 0.1, 0.2, 0.4, then capped at 0.6 s: it keeps retrying, and never floods
        # (at most about 5 attempts in 1.5 s; a busy machine only manages fewer).
        assert link.attempts - before <= 8
        meter = hub.state.meters["main"]
        assert meter.link.value == "offline"
        assert "not ready" in meter.link_detail or "refused" in meter.link_detail.lower()
        assert hub.running  # the rest of the appliance keeps running
    finally:
        await hub.stop()


async def test_appliance_follows_the_meters_clock(tmp_path):
    skew = timedelta(minutes=7)
    scenario = scenario_from_dict(FAST_SCENARIO)
    simulator = SimulatedHan(scenario, clock=lambda: datetime.now(UTC) + skew)
    hub, _web = compose(read_config(write_config(tmp_path / "config")), tmp_path / "data", simulator=simulator)
    await hub.start()
    try:
        async with asyncio.timeout(60):  # guards against a hang only
            while True:
                link = hub.integrations["zigbee_se"]
                # The session exists (and hears the event) from the start of its setup; the meter's
                # Time is read a step later: wait for that read, not only for the event.
                if link.session is not None and hub.control.events() and link.session.clock_offset:
                    break
                await asyncio.sleep(0.05)
        offset = link.session.clock_offset
        assert abs(offset - skew) < timedelta(seconds=2)
        # The event starts "in 2 minutes" by the meter's clock, which is 7 minutes ahead: the EMS
        # has the start the meter sent (compared with the sent start, not with the time now, so a
        # slow machine does not move it).
        (event,) = [v.event for v in hub.control.events()]
        (sent,) = simulator.meter.events.values()
        assert event.start == sent.start.replace(microsecond=0)
    finally:
        await hub.stop()


async def test_restart_during_an_outage_resumes_when_the_meter_returns(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="integrations.zigbee_se.link")
    async with running_appliance(tmp_path) as app:
        await app.online()
        changes: list[MeterLinkChanged] = []
        unsubscribe = app.hub.bus.listen(MeterLinkChanged, changes.append)
        try:
            await app.simulator.han.stop()
            await app.wait_until(lambda: app.hub.state.meters["main"].link.value == "offline", what="offline")
            await app.simulator.han.start()
            await app.online()
        finally:
            unsubscribe()
    # Offline, then attempts (connecting, offline again) until the meter is back online.
    states = [change.state for change in changes]
    assert states[0] is LinkState.OFFLINE and states[-1] is LinkState.ONLINE
    assert set(states[1:-1]) <= {LinkState.CONNECTING, LinkState.OFFLINE}
    assert [c.detail for c in changes if c.state is LinkState.CONNECTING] == ["joining the HAN"] * states.count(
        LinkState.CONNECTING)
    # The outage is logged once at warning (each further failed attempt at debug only), and its end once.
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "integrations.zigbee_se.link"]
    warnings = [m for level, m in messages if level == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("[main] Meter link down: ")
    assert [m for level, m in messages if level == logging.INFO] == ["[main] Meter link restored"]
    assert all(m.startswith("[main] Meter link still down: ") for level, m in messages if level == logging.DEBUG)


async def _first_status_lost_across_an_outage(tmp_path, monkeypatch, *, forget_tsns: bool) -> None:
    """The first answer to a LoadControlEvent fails on its way; the meter goes away and comes back
    (``forget_tsns``: and the link forgets the TSNs it owes, as a restarted process does); the
    outbox delivers it over the next session. The strict meter checks its echo when the test ends."""
    sent = MeterSession.report_event_status
    failed: list[int] = []
    link_back = asyncio.Event()

    async def lost_until_the_link_is_back(session: MeterSession, report: EventStatusReport) -> None:
        if not link_back.is_set():
            failed.append(report.issuer_event_id)
            raise zigpy.exceptions.DeliveryError("the link dropped with the frame on its way")
        await sent(session, report)

    monkeypatch.setattr(MeterSession, "report_event_status", lost_until_the_link_is_back)
    async with running_appliance(tmp_path) as app:
        await app.wait_until(lambda: failed, what="the first status report")
        await app.simulator.han.stop()
        await app.wait_until(lambda: app.hub.state.meters["main"].link.value == "offline", what="offline")
        if forget_tsns:
            app.hub.integrations["zigbee_se"]._awaiting_reports.clear()  # noqa: SLF001 - what a restart forgets
        link_back.set()
        await app.simulator.han.start()
        await app.online()
        app.hub.outbox.resume("main")
        checker = app.simulator.meter.checker
        await app.wait_until(lambda: checker.reported_statuses(failed[0]), what="the status to reach the meter")


async def test_a_first_status_lost_with_the_link_still_echoes_the_events_tsn_after_reconnect(tmp_path, monkeypatch):
    """The outbox's retry over the next session still echoes the TSN of the command it answers."""
    await _first_status_lost_across_an_outage(tmp_path, monkeypatch, forget_tsns=False)


async def test_a_first_status_owed_from_before_a_restart_echoes_the_events_resend(tmp_path, monkeypatch):
    """After a restart (a power cut) the appliance cannot know that frame's TSN: it answers the
    resend the meter's schedule sends at link-up, echoing that one's TSN."""
    await _first_status_lost_across_an_outage(tmp_path, monkeypatch, forget_tsns=True)

"""Issue 11 finding 4: after an outage of any length the meter link is back within 10 s of the meter
answering again (C6: 10 s meter to display), and the data is stale exactly at the stale limit.

The test owns the clock (a ``FixedClock``): the outage's hours pass when the test moves it, and the
recovery is measured in the clock's seconds, moved one at a time while the link is idle (waiting
out its backoff), so the radio's own real-time work (connect, discovery, reads) costs none of them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ems import messages
from ems.clock import FixedClock
from tests.e2e.conftest import CONFIG, FAST_SCENARIO, HANG_GUARD_S, running_appliance

QUIET_SCENARIO = {**FAST_SCENARIO, "messages": [], "events": []}
# The default backoff shape (first wait far above the probe interval, a 15-minute cap).
BACKOFF_CONFIG = CONFIG.replace("first_retry_s: 0.2", "first_retry_s: 30").replace(
    "registration_retry_interval_min: 0.02", "registration_retry_interval_min: 15").replace(
    "stale_after_s: 1.5", "stale_after_s: 30")
START = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)


async def _until(predicate, what: str) -> None:  # noqa: ARG001 - says what it waits for
    """Wait (real time) until ``predicate`` holds; the bound only guards against a hang."""
    async with asyncio.timeout(HANG_GUARD_S):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("outage", [timedelta(seconds=70), timedelta(seconds=300), timedelta(hours=2)],
                         ids=["70s", "300s", "2h"])
async def test_the_link_is_back_within_10_s_of_the_meter_answering_whatever_the_outage(tmp_path, outage):
    clock = FixedClock(START)
    async with running_appliance(tmp_path, QUIET_SCENARIO, config_text=BACKOFF_CONFIG, clock=clock) as app:
        link = app.hub.integrations["zigbee_se"]
        supervisor = link._supervisor
        meter = app.hub.state.meters
        await _until(lambda: "main" in meter and meter["main"].link.value == "online", "online")

        await app.simulator.han.stop()
        await _until(lambda: supervisor.waiting, "the link backing off")
        # The outage: the clock moves a minute at a time; the link retries on its own schedule meanwhile.
        end = clock() + outage
        while clock() < end:
            clock.advance(seconds=min(60.0, (end - clock()).total_seconds()))
            await _until(lambda: supervisor.waiting and clock.sleepers, "the link backing off again")
        assert meter["main"].link.value == "offline"

        await app.simulator.han.start()  # the meter answers again
        answered_at = clock()
        while meter["main"].link.value != "online":
            assert clock() - answered_at <= timedelta(seconds=10), "not back within 10 s of the meter answering"
            clock.advance(seconds=1)
            await asyncio.sleep(0.02)
            await _until(lambda: supervisor.waiting or meter["main"].link.value == "online", "an attempt to end")
        assert supervisor.probes > 0


async def test_a_frozen_meter_is_stale_exactly_at_the_stale_limit(tmp_path):
    clock = FixedClock(START)
    async with running_appliance(tmp_path, QUIET_SCENARIO, config_text=BACKOFF_CONFIG, clock=clock) as app:
        meter = app.hub.state.meters
        await _until(lambda: "main" in meter and meter["main"].link.value == "online", "online")
        app.simulator.han.freeze()  # connection open, nothing answered
        await asyncio.sleep(0.2)  # what was on the air has landed
        last = app.hub.integrations["zigbee_se"].session.last_frame_at
        clock.set(last + timedelta(seconds=30) - timedelta(milliseconds=1))
        await asyncio.sleep(0.2)
        assert meter["main"].link.value == "online"  # within the limit the demand is current
        clock.set(last + timedelta(seconds=30))
        await _until(lambda: meter["main"].link.value == "stale", "stale at the limit")
        assert (await app.meter())["link"] == "stale"  # the display no longer shows it as current
        app.simulator.han.unfreeze()
        clock.advance(seconds=1)  # the meter's next report
        await _until(lambda: meter["main"].link.value == "online", "reports resumed")


async def test_a_report_that_failed_during_a_short_silence_goes_out_as_soon_as_the_meter_speaks(tmp_path):
    clock = FixedClock(START)
    async with running_appliance(tmp_path, config_text=BACKOFF_CONFIG, clock=clock) as app:
        hub, meter = app.hub, app.simulator.meter
        await _until(lambda: "main" in hub.state.meters and hub.state.meters["main"].link.value == "online", "online")
        for _ in range(10):  # the script's message (0.3 s in)
            clock.advance(seconds=0.1)
            await asyncio.sleep(0.05)
        def confirmable():
            return [key for key, state in hub.state.messages.items() if state.message.confirmation_required]
        await _until(confirmable, "the message")
        ((meter_id, message_id),) = confirmable()
        app.simulator.han.freeze()  # a silence shorter than the stale limit: the link stays online
        await messages.confirm(hub, meter_id, message_id)
        await _until(lambda: hub.outbox._lanes and any(lane.failing for lane in hub.outbox._lanes.values()),
                     "the confirmation failing")
        app.simulator.han.unfreeze()
        clock.advance(seconds=0.3)  # the meter's next report, well within the outbox's 1 s backoff
        await _until(lambda: [a for a in meter.answers if a.command == "message_confirmation"], "the confirmation")
        assert hub.state.meters["main"].link.value == "online"
        async with asyncio.timeout(HANG_GUARD_S):  # the outbox marks it delivered once the send returned
            while True:
                if not await hub.outbox.pending():
                    break
                await asyncio.sleep(0.02)

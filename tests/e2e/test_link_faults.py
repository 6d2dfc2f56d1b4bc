"""Issue 11 "Link faults", the whole appliance against the strict meter over a faulty air.

Frames are dropped, duplicated and reordered at seeded rates (the scenario's ``faults:``); the meter
freezes (connection open, nothing answered) and goes away for minutes and hours. The appliance keeps
its readings right (no spike, nothing scaled or invented), marks the data stale within the stale
limit, is back within 10 s of the meter answering again, and owes the utility nothing: every status
reported once (the strict meter's duplicate counters), no SE violation (``running_appliance``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

import pytest

from ems import messages
from ems.clock import FixedClock
from ems.model import MeterReading
from integrations.zigbee.se.clusters import Drlc
from integrations.zigbee_se.frames import REQUEST_TIMEOUT_S
from tests.e2e.conftest import (
    CONFIG,
    FAST_SCENARIO,
    HANG_GUARD_S,
    SITE_TZ,
    local_clock,
    running_appliance,
)

MAX_DEMAND_KW = 20.0  # far above what the simulated home draws: a reading above it is a spike


def _check_readings(readings: list[MeterReading], meter: Any) -> None:
    demands = [r.demand_kw for r in readings if r.demand_kw is not None]
    assert demands and all(abs(kw) < MAX_DEMAND_KW for kw in demands), max(demands, key=abs)
    delivered = [r.summation_delivered_kwh for r in readings if r.summation_delivered_kwh is not None]
    assert delivered == sorted(delivered), "the delivered total went backwards"
    register = meter.delivered_kwh if hasattr(meter, "delivered_kwh") else None
    if register is not None and delivered:
        assert abs(delivered[-1] - register) < 1.0, (delivered[-1], register)


# A lost request costs the appliance its 8 s request timeout (a real stack's APS retries hide most
# of that), so over this air an answer may take longer than the strict meter's default 5 s.
LOSSY_AIR = {"drop": 0.1, "duplicate": 0.1, "reorder": 0.1, "seed": 5}
LOSSY_GRACE = {"grace": "30s"}


async def test_readings_arrive_without_spikes_or_violations_over_a_lossy_air(tmp_path):
    scenario = {**FAST_SCENARIO, "faults": LOSSY_AIR, "conformance": LOSSY_GRACE}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        readings: list[MeterReading] = []
        unsubscribe = app.hub.bus.listen(MeterReading, readings.append)
        try:
            await app.online()
            await app.wait_until(lambda: len(readings) >= 30, what="30 readings")
            await app.wait_until(lambda: app.simulator.script_done.is_set(), what="the utility's script")
            await app.wait_until(lambda: [v for v in app.hub.control.events()], what="the event")
            (key,) = await app.wait_until(lambda: [k for k, m in app.hub.state.messages.items()
                                                   if m.message.confirmation_required], what="the message")
            await messages.confirm(app.hub, *key)
            await app.wait_until(lambda: [a for a in app.simulator.meter.answers
                                          if a.command == "message_confirmation"], what="the confirmation")
        finally:
            unsubscribe()
        counters = app.simulator.han.counters
        assert counters["fault_dropped"] and counters["fault_duplicated"] and counters["fault_reordered"]
        _check_readings(readings, app.simulator.meter)
        assert not app.simulator.meter.checker.duplicate_reports


# -- freeze and away, on a clock the test moves ------------------------------------------------------

START = datetime(2026, 7, 15, 20, 0, tzinfo=SITE_TZ)
STEP_S = 1.0
FAULT_CONFIG = CONFIG.replace("first_retry_s: 0.2", "first_retry_s: 30").replace(
    "registration_retry_interval_min: 0.02", "registration_retry_interval_min: 15").replace(
    "stale_after_s: 1.5", "stale_after_s: 30") + """
demand_response:
  start_randomization_min: 0
  cycle_tick_s: 0.5
"""
EVENT_ID = 4301


def _scenario(**faults: Any) -> dict[str, Any]:
    return {**FAST_SCENARIO, "messages": [], "conformance": {"grace": "30s"}, "faults": faults,
            "events": [{"at": "1s", "id": EVENT_ID, "starts_in": "2m", "duration_min": 30, "criticality": 3,
                        "device_class": 1, "cooling_offset_c": 2.0}]}


class _Stepper:
    """Moves a FixedClock a second at a time, letting the appliance settle (real time) after each."""

    def __init__(self, app: Any, clock: FixedClock) -> None:
        self.app, self.clock = app, clock
        self.link = app.hub.integrations["zigbee_se"]

    @property
    def state(self) -> str:
        meter = self.app.hub.state.meters.get("main")
        return meter.link.value if meter else "none"

    async def step(self, seconds: float = STEP_S) -> None:
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0.05)
        async with asyncio.timeout(HANG_GUARD_S):  # while an attempt runs, the clock waits for it
            while True:
                if self.state in ("online", "stale") or self.link._supervisor.waiting:
                    return
                await asyncio.sleep(0.02)

    async def until(self, predicate: Any, limit: timedelta, what: str) -> timedelta:
        """Step until ``predicate``; how much clock time it took (at most ``limit``)."""
        began = self.clock()
        while not predicate():
            assert self.clock() - began <= limit, f"{what}: not within {limit}"
            await self.step()
        return self.clock() - began

    def statuses(self) -> list[int]:
        return [int(a.fields["event_status"]) for a in self.app.simulator.meter.answers
                if a.command == "report_event_status" and int(a.fields["issuer_event_id"]) == EVENT_ID]


async def test_a_frozen_meter_is_stale_within_the_limit_and_back_within_10_s_of_unfreezing(tmp_path):
    clock = FixedClock(START)
    scenario = _scenario(freeze=[{"at": "1m", "for": "2m"}])
    async with running_appliance(tmp_path, scenario, config_text=FAULT_CONFIG, clock=clock) as app:
        run = _Stepper(app, clock)
        await run.until(lambda: run.state == "online", timedelta(minutes=1), "online")
        await run.until(lambda: app.simulator.han.frozen, timedelta(minutes=2), "the freeze")
        frozen_at = clock()
        await run.until(lambda: run.state == "stale", timedelta(seconds=30 + STEP_S), "stale")
        assert app.simulator.han.frozen and clock() - frozen_at <= timedelta(seconds=30 + STEP_S)
        await run.until(lambda: not app.simulator.han.frozen, timedelta(minutes=3), "the thaw")
        await run.until(lambda: run.state == "online", timedelta(seconds=10), "back after the freeze")
        await run.until(lambda: 2 in run.statuses(), timedelta(minutes=2), "the event's start reported")
        assert not app.simulator.meter.checker.duplicate_reports


@pytest.mark.parametrize("away", ["5m", "2h"])
async def test_a_meter_away_for_minutes_or_hours_is_back_within_10_s_and_owed_every_status_once(tmp_path, away):
    clock = FixedClock(START)
    scenario = _scenario(away=[{"at": "30s", "for": away}])
    async with running_appliance(tmp_path, scenario, config_text=FAULT_CONFIG, clock=clock) as app:
        run, han = _Stepper(app, clock), app.simulator.han
        await run.until(lambda: 1 in run.statuses(), timedelta(minutes=1), "the event received")
        await run.until(lambda: not han.listening, timedelta(minutes=1), "the meter gone")
        # The outage: a minute at a time (the link retries and probes on its own schedule meanwhile).
        while not han.listening:
            await run.step(60.0)
        await run.until(lambda: run.state == "online", timedelta(seconds=10), "back after the meter returned")
        owed = [1, 2] if away == "5m" else [1, 2, 3]  # received, started (and completed, 30 min in)
        await run.until(lambda: run.statuses() == owed, timedelta(minutes=2), f"statuses {owed}")
        for _ in range(10):  # nothing more comes
            await run.step()
        assert run.statuses() == owed
        assert not app.simulator.meter.checker.duplicate_reports


async def test_an_event_cancelled_while_the_meter_was_away_ends_when_its_schedule_no_longer_lists_it(tmp_path):
    """The utility cancels the event while the link is down (the cancel is lost on the air): when the
    link is back, the meter's answer to GetScheduledEvents no longer lists it, so the appliance ends
    it as cancelled (0x06) instead of keeping the home's devices shed until its end."""
    clock = FixedClock(START)
    scenario = _scenario(away=[{"at": "150s", "for": "5m"}])
    async with running_appliance(tmp_path, scenario, config_text=FAULT_CONFIG, clock=clock) as app:
        run, han = _Stepper(app, clock), app.simulator.han
        await run.until(lambda: 2 in run.statuses(), timedelta(minutes=3), "the event started")
        await run.until(lambda: not han.listening, timedelta(minutes=1), "the meter gone")
        cancel = app.simulator.meter.send_raw(
            Drlc, "cancel_load_control_event", disable_default_response=False, issuer_event_id=EVENT_ID,
            device_class=1, utility_enrollment_group=0, cancel_control=0, effective_time=0)
        with contextlib.suppress(Exception):  # nobody is listening: the cancel is lost
            await cancel
        while not han.listening:
            await run.step(60.0)
        await run.until(lambda: run.state == "online", timedelta(seconds=10), "back after the meter returned")
        await run.until(lambda: 6 in run.statuses(), timedelta(seconds=30), "the event ended as cancelled")
        assert run.statuses() == [1, 2, 6]
        view = next(v for v in app.hub.control.events() if v.event.issuer_event_id == EVENT_ID)
        assert view.phase.value != "active"


async def test_a_schedule_question_lost_on_the_air_is_asked_again_and_the_cancel_still_ends_the_event(tmp_path):
    """As the soak found: the utility cancels while the meter is away, and when it is back the
    meter's answer to the appliance's GetScheduledEvents is lost (the air froze for a moment just
    then). The session carries on; the appliance asks again on its own, and the event still ends
    as cancelled (0x06) instead of holding the home's devices until its end (30 minutes)."""
    clock = FixedClock(START)
    scenario = _scenario(away=[{"at": "150s", "for": "5m"}])
    async with running_appliance(tmp_path, scenario, config_text=FAULT_CONFIG, clock=clock) as app:
        run, han, meter = _Stepper(app, clock), app.simulator.han, app.simulator.meter
        await run.until(lambda: 2 in run.statuses(), timedelta(minutes=3), "the event started")
        await run.until(lambda: not han.listening, timedelta(minutes=1), "the meter gone")
        cancel = meter.send_raw(
            Drlc, "cancel_load_control_event", disable_default_response=False, issuer_event_id=EVENT_ID,
            device_class=1, utility_enrollment_group=0, cancel_control=0, effective_time=0)
        with contextlib.suppress(Exception):  # nobody is listening: the cancel is lost
            await cancel
        asked: list[float] = []  # real (loop) times the meter heard the question
        loop = asyncio.get_running_loop()

        def lose_the_answers_for_a_while(request: Any) -> Any:
            asked.append(loop.time())
            if loop.time() - asked[0] < REQUEST_TIMEOUT_S + 1:  # the answer to it (and to each
                han.freeze()  # retry of it) vanishes on an air frozen for a moment, until the
                loop.call_later(0.3, han.unfreeze)  # appliance's question has timed out
            return meter._get_scheduled_events(request)

        meter.node.on_command(1, Drlc.cluster_id, "get_scheduled_events", lose_the_answers_for_a_while)
        while not han.listening:
            await run.step(60.0)
        await run.until(lambda: bool(asked), timedelta(minutes=1), "the schedule asked")
        await run.until(lambda: 6 in run.statuses(), timedelta(minutes=5), "the event ended as cancelled")
        assert run.statuses() == [1, 2, 6]
        assert any(t - asked[0] >= REQUEST_TIMEOUT_S + 1 for t in asked)  # asked again, and answered
        view = next(v for v in app.hub.control.events() if v.event.issuer_event_id == EVENT_ID)
        assert view.phase.value != "active"

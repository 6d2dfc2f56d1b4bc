"""The DRLC client rules as the meter sees them (spec digest §2.12): the ReportEventStatus frames the
appliance sends, decoded by the simulated meter, for events, cancels and rejections it sends by hand.

The appliance here is enrolled in utility enrollment group 5 and starts events without randomisation;
it has no home devices, so its DeviceClassValue is every class (0x0FFF) and addressing by group is what
can be seen on the wire. Setpoints and load adjustments applied need devices: those tests use a home.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ems.model import EventStatus
from integrations.simulator.meter import event_fields
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc
from tests.e2e.conftest import (
    CONFIG,
    FAST_SCENARIO,
    HOME_CONFIG,
    HOME_RULES,
    HOME_SCENARIO,
    Appliance,
    local_clock,
    running_appliance,
)

GROUP = 5
WIRE_CONFIG = CONFIG + f"""
demand_response:
  start_randomization_min: 0
  enrollment_group: {GROUP}
  cycle_tick_s: 0.5
"""
QUIET = {**FAST_SCENARIO, "messages": [], "events": [],
         "conformance": {"utility_enrollment_group": GROUP}}  # the client's group, as WIRE_CONFIG sets it


@pytest.fixture
async def meter(tmp_path: Path) -> AsyncIterator[Appliance]:
    async with running_appliance(tmp_path, QUIET, config_text=WIRE_CONFIG, clock=local_clock("20:00")) as running:
        await running.online()
        yield running


def fields(appliance: Appliance, event_id: int, *, starts_in: timedelta | None = timedelta(minutes=5),
           **overrides: Any) -> dict[str, Any]:
    """A LoadControlEvent's fields (class 1, group 0, 30 min, level 2) with ``overrides``; start 0 = now."""
    spec = {"id": event_id, "device_class": 1, "enrollment_group": 0, "duration_min": 30, "criticality": 3,
            "randomize_start": False, "randomize_end": False}
    now = appliance.simulator.meter.clock()
    out = event_fields(spec, now + (starts_in or timedelta(0)))
    if starts_in is None:
        out["start_time"] = 0
    out.update(overrides)
    return out


async def send_event(appliance: Appliance, event_id: int, **kw: Any) -> None:
    await appliance.simulator.node.send_command(1, Drlc, "load_control_event", **fields(appliance, event_id, **kw))


async def send_cancel(appliance: Appliance, event_id: int, *, device_class: int = 1, group: int = 0,
                      effective_time: int = 0, cancel_control: int = 0) -> None:
    await appliance.simulator.node.send_command(
        1, Drlc, "cancel_load_control_event", issuer_event_id=event_id, device_class=device_class,
        utility_enrollment_group=group, cancel_control=cancel_control, effective_time=effective_time)


def reports(appliance: Appliance, event_id: int) -> list[Any]:
    """The decoded fields of every ReportEventStatus the meter received for ``event_id``, in order."""
    return [f.fields for f in appliance.simulator.node.received("report_event_status")
            if f.fields["issuer_event_id"] == event_id]


def statuses(appliance: Appliance, event_id: int) -> list[int]:
    return [int(f["event_status"]) for f in reports(appliance, event_id)]


async def until_statuses(appliance: Appliance, event_id: int, count: int) -> list[int]:
    await appliance.wait_until(lambda: len(reports(appliance, event_id)) >= count,
                               what=f"{count} status report(s) for event {event_id}")
    return statuses(appliance, event_id)


async def marker(appliance: Appliance, event_id: int = 99) -> None:
    """Send an event addressed to us and wait for its RECEIVED: what was sent before has been handled."""
    await send_event(appliance, event_id, starts_in=timedelta(hours=20), duration_in_minutes=10)
    await until_statuses(appliance, event_id, 1)


# -- §2.12 item 1: addressing ---------------------------------------------------------------------


async def test_an_event_for_another_enrollment_group_gets_no_answer_and_is_not_shown_as_ours(meter):
    await send_event(meter, 7001, utility_enrollment_group=GROUP + 1)
    await marker(meter)
    assert statuses(meter, 7001) == []
    assert 7001 not in [e["issuer_event_id"] for e in (await meter.get("/api/v1/events"))["events"]]
    assert meter.hub.control.load_control.view("main", 7001) is None


async def test_an_event_for_our_group_or_for_every_group_is_received(meter):
    await send_event(meter, 7002, utility_enrollment_group=GROUP)
    await send_event(meter, 7003, utility_enrollment_group=0, starts_in=timedelta(hours=2))
    assert await until_statuses(meter, 7002, 1) == [EventStatus.RECEIVED]
    assert await until_statuses(meter, 7003, 1) == [EventStatus.RECEIVED]


async def test_a_cancel_for_another_enrollment_group_is_ignored(meter):
    await send_event(meter, 7010)
    await until_statuses(meter, 7010, 1)
    await send_cancel(meter, 7010, group=GROUP + 1)
    await marker(meter)
    assert statuses(meter, 7010) == [EventStatus.RECEIVED]
    view = meter.hub.control.load_control.view("main", 7010)
    assert view is not None and view.cancelled_at is None and view.outcome is None


async def test_a_cancel_for_no_class_here_is_ignored(meter):
    await send_event(meter, 7011)
    await until_statuses(meter, 7011, 1)
    await send_cancel(meter, 7011, device_class=0x1000)  # a reserved class only: none of ours
    await marker(meter)
    assert statuses(meter, 7011) == [EventStatus.RECEIVED]


# -- §2.12 items 5, 8: received first, and status times in causal order ---------------------------


async def test_an_event_that_starts_at_once_is_received_before_it_starts(meter):
    await send_event(meter, 7020, starts_in=None)
    found = await until_statuses(meter, 7020, 2)
    assert found == [EventStatus.RECEIVED, EventStatus.STARTED]


async def test_an_event_whose_start_is_past_is_received_before_it_starts(meter):
    await send_event(meter, 7021, starts_in=-timedelta(minutes=5))
    assert await until_statuses(meter, 7021, 2) == [EventStatus.RECEIVED, EventStatus.STARTED]


async def test_status_times_never_precede_the_events_arrival_nor_go_back(meter):
    await send_event(meter, 7022, starts_in=None, duration_in_minutes=1)
    await until_statuses(meter, 7022, 2)
    await send_cancel(meter, 7022)
    await until_statuses(meter, 7022, 3)
    run = meter.hub.control.load_control.run("main", 7022)
    arrived = codec.datetime_to_utc_time(run.event.received_at)
    times = [int(f["event_status_time"]) for f in reports(meter, 7022)]
    assert statuses(meter, 7022) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.CANCELLED]
    assert all(t >= arrived for t in times)
    assert times == sorted(times)


# -- §2.12 items 3, 11: rejections echo the event ---------------------------------------------------


async def test_a_cancel_effective_after_the_end_echoes_the_events_criticality_and_control(meter):
    await send_event(meter, 7030, criticality_level=5, event_control=0x02)
    await until_statuses(meter, 7030, 1)
    late = codec.datetime_to_utc_time(meter.simulator.meter.clock() + timedelta(hours=3))
    await send_cancel(meter, 7030, effective_time=late)
    await until_statuses(meter, 7030, 2)
    refusal = reports(meter, 7030)[1]
    assert int(refusal["event_status"]) == EventStatus.REJECTED_INVALID_CANCEL_TIME
    assert int(refusal["criticality_level_applied"]) == 5
    assert int(refusal["event_control"]) == 0x02


# -- §2.12 items 4, 6, 11: duplicates, superseded and ended events --------------------------------


async def test_a_cancel_of_a_superseded_event_is_an_undefined_event(meter):
    await send_event(meter, 7040)
    await until_statuses(meter, 7040, 1)
    await send_event(meter, 7041, starts_in=timedelta(minutes=10))  # overlaps: 7040 superseded at once
    assert await until_statuses(meter, 7040, 2) == [EventStatus.RECEIVED, EventStatus.SUPERSEDED]
    await send_cancel(meter, 7040)
    assert await until_statuses(meter, 7040, 3) == [EventStatus.RECEIVED, EventStatus.SUPERSEDED,
                                                    EventStatus.REJECTED_UNDEFINED_EVENT]
    assert statuses(meter, 7041) == [EventStatus.RECEIVED]


async def test_an_ended_events_id_used_again_is_rejected_as_expired(meter):
    await send_event(meter, 7050)
    await until_statuses(meter, 7050, 1)
    await send_cancel(meter, 7050)
    assert await until_statuses(meter, 7050, 2) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
    await send_event(meter, 7050, starts_in=timedelta(hours=1))
    assert await until_statuses(meter, 7050, 3) == [EventStatus.RECEIVED, EventStatus.CANCELLED,
                                                    EventStatus.REJECTED_EXPIRED]


async def test_a_live_event_heard_again_gets_no_second_answer(meter):
    await send_event(meter, 7060)
    await until_statuses(meter, 7060, 1)
    await send_event(meter, 7060)
    await marker(meter)
    assert statuses(meter, 7060) == [EventStatus.RECEIVED]


async def test_a_running_event_is_superseded_one_second_before_the_new_one_starts(meter):
    await send_event(meter, 7070, starts_in=None)
    await until_statuses(meter, 7070, 2)
    newer = fields(meter, 7071, starts_in=timedelta(seconds=3))
    await meter.simulator.node.send_command(1, Drlc, "load_control_event", **newer)
    found = await until_statuses(meter, 7070, 3)
    assert found == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.SUPERSEDED]
    await until_statuses(meter, 7071, 2)
    superseded = int(reports(meter, 7070)[2]["event_status_time"])
    started = int(reports(meter, 7071)[1]["event_status_time"])
    assert superseded == int(newer["start_time"]) - 1  # §2.12 item 6: one second before the new start
    assert started >= int(newer["start_time"])


# -- §2.12 item 12: cancel all ----------------------------------------------------------------------


async def test_cancel_all_reports_one_cancel_per_live_event_and_nothing_for_ended_ones(meter):
    await send_event(meter, 7080)
    await send_event(meter, 7081, starts_in=timedelta(hours=2))
    await send_event(meter, 7082, starts_in=timedelta(hours=4))
    await until_statuses(meter, 7082, 1)
    await send_cancel(meter, 7082)
    await until_statuses(meter, 7082, 2)
    await meter.simulator.node.send_command(1, Drlc, "cancel_all_load_control_events", cancel_control=0)
    assert await until_statuses(meter, 7080, 2) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
    assert await until_statuses(meter, 7081, 2) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
    await marker(meter)
    assert statuses(meter, 7082) == [EventStatus.RECEIVED, EventStatus.CANCELLED]


# -- what was applied (a home with a thermostat, a pool pump and a load controller) -----------------


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Appliance]:
    scenario = {**HOME_SCENARIO, "events": []}
    # A summer evening, whatever the real time: the home draws from the grid (no sun on its panels), so
    # the share of its load shed can be measured (while it exports, there is no share to give).
    async with running_appliance(tmp_path, scenario, config_text=HOME_CONFIG, rules_text=HOME_RULES,
                                 clock=local_clock("20:00")) as running:
        await running.online()
        await running.wait_until(lambda: len(running.hub.control.registry.devices) == 3
                                 and all(d.reading is not None for d in running.hub.control.registry.devices.values()),
                                 timeout_s=15, what="the three home devices set up")
        yield running


def _centi(value: Any) -> float | None:
    return None if int(value) == -0x8000 else int(value) / 100


async def test_the_setpoint_applied_is_what_the_thermostat_was_set_to_and_nothing_else_is_claimed(home):
    thermostat = home.simulator.home.device("Living room")
    await send_event(home, 7090, starts_in=None, duration_in_minutes=1, device_class=0x0001,
                     cooling_temperature_set_point=2635)
    await home.wait_until(lambda: thermostat.logic.cooling_setpoint_c == 26.5, timeout_s=15,
                          what="the thermostat set to 26.5 (its half degrees)")
    started = (await until_statuses(home, 7090, 2))[1]
    assert started == EventStatus.STARTED
    report = reports(home, 7090)[1]
    assert _centi(report["cooling_temperature_set_point_applied"]) == 26.5
    assert _centi(report["heating_temperature_set_point_applied"]) is None
    assert int(report["average_load_adjustment_percentage_applied"]) == -128  # not asked: not used
    assert int(report["duty_cycle_applied"]) == 0xFF
    await home.wait_until(lambda: home.hub.control.load_control.run("main", 7090).achieved_pct is not None,
                          what="the shed share measured")
    await send_cancel(home, 7090)
    assert (await until_statuses(home, 7090, 3))[2] == EventStatus.CANCELLED
    cancelled = reports(home, 7090)[2]
    assert int(cancelled["average_load_adjustment_percentage_applied"]) == -128  # not the home's shed share
    assert _centi(cancelled["cooling_temperature_set_point_applied"]) == 26.5  # what was set while it ran


async def test_an_adjustment_asked_is_reported_as_applied(home):
    await send_event(home, 7091, starts_in=None, duration_in_minutes=1, device_class=0x0019,
                     average_load_adjustment_percentage=-15)
    assert (await until_statuses(home, 7091, 2))[1] == EventStatus.STARTED
    report = reports(home, 7091)[1]
    assert int(report["average_load_adjustment_percentage_applied"]) == -15
    await home.wait_until(lambda: home.hub.control.load_control.run("main", 7091).achieved_pct is not None,
                          what="the shed share measured")
    await send_cancel(home, 7091, device_class=0x0019)
    assert (await until_statuses(home, 7091, 3))[2] == EventStatus.CANCELLED
    assert int(reports(home, 7091)[2]["average_load_adjustment_percentage_applied"]) == -15  # what it asked


# -- a restart ----------------------------------------------------------------------------------------


async def test_after_a_restart_the_meter_hears_nothing_again_of_what_was_reported(tmp_path):
    clock = local_clock("20:00")
    async with running_appliance(tmp_path, QUIET, config_text=WIRE_CONFIG, clock=clock) as first:
        await first.online()
        await send_event(first, 7100, starts_in=None, duration_in_minutes=30)
        await send_event(first, 7101, starts_in=timedelta(hours=2))
        await until_statuses(first, 7100, 2)
        await until_statuses(first, 7101, 1)
        await send_cancel(first, 7101)
        assert await until_statuses(first, 7101, 2) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
        last_time = max(int(f["event_status_time"]) for f in reports(first, 7100))
    async with running_appliance(tmp_path, QUIET, config_text=WIRE_CONFIG, clock=clock) as again:
        again.simulator.meter.checker.remember_reported(7100, [int(s) for s in statuses(first, 7100)])
        await again.online()
        await send_event(again, 7100, starts_in=None, duration_in_minutes=30)  # the ESI sends it again
        await marker(again)
        assert statuses(again, 7100) == [] and statuses(again, 7101) == []
        await send_cancel(again, 7100)
        assert await until_statuses(again, 7100, 1) == [EventStatus.CANCELLED]
        assert int(reports(again, 7100)[0]["event_status_time"]) >= last_time
